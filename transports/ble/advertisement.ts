// The nearmesh BLE advertisement (PROTOCOL.md §12.2): what an agent's peripheral broadcasts in legacy 31-byte
// advertising data + scan response, and what its central reads to choose whom to dial. Pure bytes, no radio.
import { createHash } from 'node:crypto';
import { isPeerId, PEER_ID_BYTES } from '../../agent/identity/peer-id.js';
import { AdvertisementError } from './errors.js';

/** The nearmesh GATT service, advertised so scanners find agents (a random v4 UUID, ours alone). */
export const NEARMESH_SERVICE_UUID = '17354ec4-81f8-4116-8e15-885bad79cd4d';
/** The same UUID as bleno and noble spell it: 32 lowercase hex characters, no dashes. */
export const NEARMESH_SERVICE_UUID_HEX = NEARMESH_SERVICE_UUID.replaceAll('-', '');

/** The advertisement layout version this module writes and reads; it is the protocol version. */
export const ADVERTISEMENT_VERSION = 1;
/** Legacy advertising data and scan response each hold at most this much. */
export const LEGACY_ADVERTISING_DATA_BYTES = 31;

/** AD types (Bluetooth Assigned Numbers, "Common Data Types"). */
export const AD_TYPE_FLAGS = 0x01;
export const AD_TYPE_INCOMPLETE_128_BIT_UUIDS = 0x06;
export const AD_TYPE_COMPLETE_128_BIT_UUIDS = 0x07;
export const AD_TYPE_SHORTENED_LOCAL_NAME = 0x08;
export const AD_TYPE_COMPLETE_LOCAL_NAME = 0x09;
export const AD_TYPE_MANUFACTURER_DATA = 0xff;
/** Flags AD value: LE General Discoverable (0x02) | BR/EDR Not Supported (0x04). */
export const AD_FLAGS_VALUE = 0x06;
/**
 * Company id 0xFFFF is the SIG's "reserved for testing" value: free to use, but shared with anyone else's
 * test devices, so manufacturer data alone never identifies nearmesh; the service UUID does.
 */
export const TEST_COMPANY_ID = 0xffff;
export const MESH_TAG_BYTES = 2;
export const MESH_TAG_CONTEXT = 'nearmesh-ble-mesh-tag-v1';

const UUID_BYTES = 16;
const COMPANY_ID_BYTES = 2;
/** An AD structure's own length byte and type byte. */
const AD_HEADER_BYTES = 2;
const FLAGS_AD_BYTES = AD_HEADER_BYTES + 1;
const SERVICE_UUID_AD_BYTES = AD_HEADER_BYTES + UUID_BYTES;
/** Version/flags byte and mesh tag; the short peer id takes the rest. */
const FIXED_DATA_BYTES = 1 + MESH_TAG_BYTES;
/** The byte budget: what is left of 31 bytes once the fixed parts are in (3 + 18 + 4 + 3 = 28, so 3). */
export const SHORT_PEER_ID_BYTES =
  LEGACY_ADVERTISING_DATA_BYTES -
  FLAGS_AD_BYTES -
  SERVICE_UUID_AD_BYTES -
  (AD_HEADER_BYTES + COMPANY_ID_BYTES) -
  FIXED_DATA_BYTES;
/** Fewer leading bytes than this would make short-id collisions inside one mesh likely. */
export const MIN_SHORT_PEER_ID_BYTES = 3;
/** Room for the name's UTF-8 bytes in the scan response. */
export const MAX_NAME_BYTES = LEGACY_ADVERTISING_DATA_BYTES - AD_HEADER_BYTES;

const FLAG_WIFI_AVAILABLE = 0x01;
const FLAG_ACCEPTING_LINKS = 0x02;
const UTF8_CONTINUATION_MASK = 0xc0;
const UTF8_CONTINUATION = 0x80;
/** Not fatal: a name cut mid-character by someone else's encoder decodes with U+FFFD instead of failing. */
const utf8Decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

export interface AdvertisementFields {
  /** 1..15; ADVERTISEMENT_VERSION for this document. */
  version: number;
  /** 16 lowercase hex characters; its first SHORT_PEER_ID_BYTES bytes are advertised. */
  peerId: string;
  meshKey: Uint8Array;
  isWifiAvailable: boolean;
  isAcceptingLinks: boolean;
}

/** What the manufacturer data says; also all noble's parsed `manufacturerData` can give. */
export interface NearmeshManufacturerData {
  version: number;
  /** Leading bytes of the peer id as lowercase hex (6 characters in legacy advertising, up to 16). */
  shortPeerId: string;
  /** 4 lowercase hex characters; compare with matchesMesh(). */
  meshTag: string;
  isWifiAvailable: boolean;
  isAcceptingLinks: boolean;
}

export interface NearmeshAdvertisement extends NearmeshManufacturerData {
  /** From the scan response (or wherever a local-name AD was); absent when none was seen. */
  name?: string;
  /** True when the name came from a Shortened Local Name AD: it is a prefix of the agent's name. */
  isNameShortened?: boolean;
}

/** One AD structure: [length][type][data], where length counts type and data. */
export interface AdStructure {
  type: number;
  data: Uint8Array;
}

/** The 2-byte tag of a mesh: SHA-256(MESH_TAG_CONTEXT || meshKey), first 2 bytes. Reveals nothing usable of the key. */
export function meshTag(meshKey: Uint8Array): Uint8Array {
  const digest = createHash('sha256').update(MESH_TAG_CONTEXT, 'utf8').update(meshKey).digest();
  return Uint8Array.from(digest.subarray(0, MESH_TAG_BYTES));
}

/** Whether a decoded advertisement comes from an agent of this mesh (false matches: 1 in 65 536). */
export function matchesMesh(
  decoded: Pick<NearmeshManufacturerData, 'meshTag'>,
  meshKey: Uint8Array,
): boolean {
  return decoded.meshTag === toHex(meshTag(meshKey));
}

/** Whether an advertised short peer id can belong to this full peer id (a hint: the handshake proves it). */
export function shortPeerIdMatches(shortPeerId: string, peerId: string): boolean {
  return shortPeerId.length >= 2 * MIN_SHORT_PEER_ID_BYTES && peerId.startsWith(shortPeerId);
}

/** Whether a UUID as noble or bleno give it (any case, with or without dashes) is the nearmesh service. */
export function isNearmeshServiceUuid(uuid: string): boolean {
  return uuid.replaceAll('-', '').toLowerCase() === NEARMESH_SERVICE_UUID_HEX;
}

/**
 * The advertising data (exactly 31 bytes), as raw AD structures for bleno's startAdvertisingWithEIRData():
 * Flags, the nearmesh service UUID, and manufacturer data. Throws RangeError for a bad version or peer id.
 */
export function encodeAdvertisement(fields: AdvertisementFields): Uint8Array {
  if (!Number.isInteger(fields.version) || fields.version < 1 || fields.version > 15) {
    throw new RangeError(`advertisement version must be an integer in 1..15, got ${fields.version}`);
  }
  if (!isPeerId(fields.peerId)) throw new RangeError(`not a peer id: ${JSON.stringify(fields.peerId)}`);
  const out = new Uint8Array(LEGACY_ADVERTISING_DATA_BYTES);
  let offset = 0;
  const put = (...bytes: number[]) => {
    out.set(bytes, offset);
    offset += bytes.length;
  };
  put(FLAGS_AD_BYTES - 1, AD_TYPE_FLAGS, AD_FLAGS_VALUE);
  // AD fields are little-endian: a 128-bit UUID goes out least significant byte first.
  put(SERVICE_UUID_AD_BYTES - 1, AD_TYPE_COMPLETE_128_BIT_UUIDS, ...serviceUuidBytes().reverse());
  const dataBytes = COMPANY_ID_BYTES + FIXED_DATA_BYTES + SHORT_PEER_ID_BYTES;
  put(1 + dataBytes, AD_TYPE_MANUFACTURER_DATA, TEST_COMPANY_ID & 0xff, TEST_COMPANY_ID >> 8);
  const flags =
    (fields.isWifiAvailable ? FLAG_WIFI_AVAILABLE : 0) | (fields.isAcceptingLinks ? FLAG_ACCEPTING_LINKS : 0);
  put((fields.version << 4) | flags, ...meshTag(fields.meshKey));
  put(...Buffer.from(fields.peerId, 'hex').subarray(0, SHORT_PEER_ID_BYTES));
  return out;
}

/**
 * The scan response: the name as a Complete Local Name AD, or, when its UTF-8 is over 29 bytes, cut at a
 * character boundary as a Shortened Local Name AD. An empty name gives an empty scan response.
 */
export function encodeScanResponse(name: string): Uint8Array {
  const utf8 = new TextEncoder().encode(name);
  if (utf8.length === 0) return new Uint8Array(0);
  let nameBytes = Math.min(utf8.length, MAX_NAME_BYTES);
  // Back up over continuation bytes so the cut never splits a character.
  while (nameBytes < utf8.length && ((utf8[nameBytes] ?? 0) & UTF8_CONTINUATION_MASK) === UTF8_CONTINUATION) {
    nameBytes--;
  }
  const type = nameBytes < utf8.length ? AD_TYPE_SHORTENED_LOCAL_NAME : AD_TYPE_COMPLETE_LOCAL_NAME;
  const out = new Uint8Array(AD_HEADER_BYTES + nameBytes);
  out[0] = 1 + nameBytes;
  out[1] = type;
  out.set(utf8.subarray(0, nameBytes), AD_HEADER_BYTES);
  return out;
}

/** Splits advertising data into AD structures. A zero length byte ends the data (the rest is padding). */
export function parseAdStructures(bytes: Uint8Array): AdStructure[] | AdvertisementError {
  const structures: AdStructure[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const length = bytes[offset] ?? 0;
    if (length === 0) break;
    const end = offset + 1 + length;
    if (end > bytes.length) {
      return new AdvertisementError(
        'malformed',
        `AD structure at byte ${offset} claims ${length} bytes, only ${bytes.length - offset - 1} follow`,
      );
    }
    structures.push({ type: bytes[offset + 1] ?? 0, data: bytes.subarray(offset + 2, end) });
    offset = end;
  }
  return structures;
}

/**
 * Reads a nearmesh advertisement from raw advertising data and, optionally, the scan response. Needs the
 * nearmesh service UUID and nearmesh manufacturer data; never throws, whatever the bytes.
 */
export function decodeAdvertisement(
  advertisingData: Uint8Array,
  scanResponse?: Uint8Array,
): NearmeshAdvertisement | AdvertisementError {
  const structures: AdStructure[] = [];
  for (const bytes of scanResponse === undefined ? [advertisingData] : [advertisingData, scanResponse]) {
    const parsed = parseAdStructures(bytes);
    if (parsed instanceof AdvertisementError) return parsed;
    structures.push(...parsed);
  }
  let hasService = false;
  let manufacturerData: NearmeshManufacturerData | AdvertisementError | undefined;
  let name: { text: string; isShortened: boolean } | undefined;
  for (const { type, data } of structures) {
    if (type === AD_TYPE_COMPLETE_128_BIT_UUIDS || type === AD_TYPE_INCOMPLETE_128_BIT_UUIDS) {
      if (data.length % UUID_BYTES !== 0) {
        return new AdvertisementError('malformed', `128-bit UUID list of ${data.length} bytes`);
      }
      for (let i = 0; i < data.length; i += UUID_BYTES) {
        // A copy: reverse() works in place, and the caller's bytes are not ours to change.
        const uuid = Uint8Array.from(data.subarray(i, i + UUID_BYTES)).reverse();
        if (toHex(uuid) === NEARMESH_SERVICE_UUID_HEX) hasService = true;
      }
    } else if (type === AD_TYPE_MANUFACTURER_DATA) {
      // Other test devices use 0xFFFF too: keep the first nearmesh-shaped one, else the last error.
      const decoded = decodeManufacturerData(data);
      if (manufacturerData === undefined || manufacturerData instanceof AdvertisementError) {
        manufacturerData = decoded;
      }
    } else if ((type === AD_TYPE_COMPLETE_LOCAL_NAME || type === AD_TYPE_SHORTENED_LOCAL_NAME) && !name) {
      name = { text: utf8Decoder.decode(data), isShortened: type === AD_TYPE_SHORTENED_LOCAL_NAME };
    }
  }
  if (!hasService) return new AdvertisementError('not-nearmesh', 'no nearmesh service UUID');
  if (manufacturerData === undefined) {
    return new AdvertisementError('not-nearmesh', 'no manufacturer data');
  }
  if (manufacturerData instanceof AdvertisementError) return manufacturerData;
  return name === undefined
    ? manufacturerData
    : { ...manufacturerData, name: name.text, isNameShortened: name.isShortened };
}

/**
 * Reads nearmesh manufacturer data: the AD's data starting with the company id, which is the form noble gives
 * as `advertisement.manufacturerData`. Check the service UUID separately (isNearmeshServiceUuid).
 */
export function decodeManufacturerData(bytes: Uint8Array): NearmeshManufacturerData | AdvertisementError {
  if (bytes.length < COMPANY_ID_BYTES || (bytes[0] ?? 0) + 256 * (bytes[1] ?? 0) !== TEST_COMPANY_ID) {
    return new AdvertisementError('not-nearmesh', 'manufacturer data of another company id');
  }
  const peerIdBytes = bytes.length - COMPANY_ID_BYTES - FIXED_DATA_BYTES;
  if (peerIdBytes < MIN_SHORT_PEER_ID_BYTES || peerIdBytes > PEER_ID_BYTES) {
    return new AdvertisementError(
      'bad-data',
      `manufacturer data of ${bytes.length} bytes, expected ${COMPANY_ID_BYTES + FIXED_DATA_BYTES + MIN_SHORT_PEER_ID_BYTES}..${COMPANY_ID_BYTES + FIXED_DATA_BYTES + PEER_ID_BYTES}`,
    );
  }
  const versionAndFlags = bytes[COMPANY_ID_BYTES] ?? 0;
  const version = versionAndFlags >> 4;
  if (version === 0) return new AdvertisementError('bad-data', 'version 0');
  if (version > ADVERTISEMENT_VERSION) {
    return new AdvertisementError(
      'unsupported-version',
      `version ${version}, this agent speaks ${ADVERTISEMENT_VERSION}`,
      version,
    );
  }
  const tagStart = COMPANY_ID_BYTES + 1;
  return {
    version,
    shortPeerId: toHex(bytes.subarray(tagStart + MESH_TAG_BYTES)),
    meshTag: toHex(bytes.subarray(tagStart, tagStart + MESH_TAG_BYTES)),
    // Bits 2 and 3 are reserved: ignored, so a later revision can add a flag without a version bump.
    isWifiAvailable: (versionAndFlags & FLAG_WIFI_AVAILABLE) !== 0,
    isAcceptingLinks: (versionAndFlags & FLAG_ACCEPTING_LINKS) !== 0,
  };
}

/** The UUID's 16 bytes in its written (big-endian) order. */
function serviceUuidBytes(): number[] {
  return [...Buffer.from(NEARMESH_SERVICE_UUID_HEX, 'hex')];
}

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
