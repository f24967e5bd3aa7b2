// The nearmesh GATT service layout (characteristic UUIDs) and its readable info record, shared by
// peripheral.ts (which serves them) and central.ts (which looks them up); pure, no radio library.
import { isPeerId } from '../../agent/identity/peer-id.js';
import { decodeItem, encodeItem } from '../../agent/protocol/index.js';
import { NEARMESH_SERVICE_UUID_HEX } from './advertisement.js';

/** Characteristic UUIDs: the service UUID with its last byte replaced, so the four read as one family. */
const characteristicUuid = (lastByte: number): string =>
  `${NEARMESH_SERVICE_UUID_HEX.slice(0, 30)}${lastByte.toString(16).padStart(2, '0')}`;
/** The central writes link fragments here (Write Without Response). */
export const RX_CHARACTERISTIC_UUID_HEX = characteristicUuid(0x01);
/** The peripheral notifies link fragments here. */
export const TX_CHARACTERISTIC_UUID_HEX = characteristicUuid(0x02);
/** A readable CBOR record [version, peerId, name] about the agent behind the peripheral. */
export const INFO_CHARACTERISTIC_UUID_HEX = characteristicUuid(0x03);

export interface BleInfo {
  version: number;
  peerId: string;
  name: string;
}

export function encodeInfo(info: BleInfo): Uint8Array {
  return encodeItem([info.version, info.peerId, info.name]);
}

/** The info record, or undefined when the bytes are not one (a hint only: the handshake proves the id). */
export function decodeInfo(bytes: Uint8Array): BleInfo | undefined {
  const decoded = decodeItem(bytes);
  if (!decoded.ok || !Array.isArray(decoded.value)) return undefined;
  const [version, peerId, name] = decoded.value as unknown[];
  if (typeof version !== 'number' || typeof peerId !== 'string' || typeof name !== 'string') return undefined;
  if (!isPeerId(peerId)) return undefined;
  return { version, peerId, name };
}
