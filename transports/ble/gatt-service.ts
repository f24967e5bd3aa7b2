// The nearmesh GATT service layout (characteristic UUIDs), shared by peripheral.ts (which serves them) and
// central.ts (which looks them up); pure, no radio library. Nothing in it is readable: a central that connects
// learns nothing until the Noise handshake over RX/TX admits it.
import { NEARMESH_SERVICE_UUID_HEX } from './advertisement.js';

/** Characteristic UUIDs: the service UUID with its last byte replaced, so they read as one family. */
const characteristicUuid = (lastByte: number): string =>
  `${NEARMESH_SERVICE_UUID_HEX.slice(0, 30)}${lastByte.toString(16).padStart(2, '0')}`;
/** The central writes link fragments here (Write Without Response). */
export const RX_CHARACTERISTIC_UUID_HEX = characteristicUuid(0x01);
/** The peripheral notifies link fragments here. */
export const TX_CHARACTERISTIC_UUID_HEX = characteristicUuid(0x02);
