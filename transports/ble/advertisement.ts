// The nearmesh BLE advertisement (PROTOCOL.md §12.2): what an agent's peripheral broadcasts in legacy 31-byte
// advertising data + scan response, and what its central reads to choose whom to dial. Pure bytes, no radio;
// who is behind it is sealed in a discovery hint (../discovery-hint.ts) that only mesh members open.
import { HINT_CHECK_BYTES, type HintLayout, hintBytes } from '../discovery-hint.js';
import { DISCOVERY_PROTOCOL_VERSION } from '../resolver.js';
import { AdvertisementError } from './errors.js';

/** The nearmesh GATT service, advertised so scanners find agents (a random v4 UUID, ours alone). */
export const NEARMESH_SERVICE_UUID = '17354ec4-81f8-4116-8e15-885bad79cd4d';
/** The same UUID as bleno and noble spell it: 32 lowercase hex characters, no dashes. */
export const NEARMESH_SERVICE_UUID_HEX = NEARMESH_SERVICE_UUID.replaceAll('-', '');

/** The advertisement layout version this module writes and reads; it is the protocol version. */
export const ADVERTISEMENT_VERSION = DISCOVERY_PROTOCOL_VERSION;
/** Legacy advertising data and scan response each hold at most this much. */
export const LEGACY_ADVERTISING_DATA_BYTES = 31;

/** AD types (Bluetooth Assigned Numbers, "Common Data Types"). */
export const AD_TYPE_FLAGS = 0x01;
export const AD_TYPE_INCOMPLETE_128_BIT_UUIDS = 0x06;
export const AD_TYPE_COMPLETE_128_BIT_UUIDS = 0x07;
export const AD_TYPE_SERVICE_DATA_128_BIT_UUID = 0x21;
export const AD_TYPE_MANUFACTURER_DATA = 0xff;
/** Flags AD value: LE General Discoverable (0x02) | BR/EDR Not Supported (0x04). */
export const AD_FLAGS_VALUE = 0x06;
/**
 * Company id 0xFFFF is the SIG's "reserved for testing" value: free to use, but shared with anyone else's
 * test devices, so manufacturer data alone never identifies nearmesh; the service UUID does.
 */
export const TEST_COMPANY_ID = 0xffff;

const UUID_BYTES = 16;
const COMPANY_ID_BYTES = 2;
/** An AD structure's own length byte and type byte. */
const AD_HEADER_BYTES = 2;
const FLAGS_AD_BYTES = AD_HEADER_BYTES + 1;
const SERVICE_UUID_AD_BYTES = AD_HEADER_BYTES + UUID_BYTES;
/** The version/flags byte that starts the manufacturer data after the company id. */
const VERSION_AND_FLAGS_BYTES = 1;
/** What is left of the 31 bytes once Flags, the UUID and the manufacturer data's fixed part are in: 5. */
export const HINT_BYTES_IN_ADVERTISING_DATA =
  LEGACY_ADVERTISING_DATA_BYTES -
  FLAGS_AD_BYTES -
  SERVICE_UUID_AD_BYTES -
  (AD_HEADER_BYTES + COMPANY_ID_BYTES + VERSION_AND_FLAGS_BYTES);
/** The scan response is one service data AD (header and UUID, then hint bytes): 13. */
export const HINT_BYTES_IN_SCAN_RESPONSE = LEGACY_ADVERTISING_DATA_BYTES - SERVICE_UUID_AD_BYTES;
/**
 * The hint's layout: 18 bytes, as much as the two halves hold. The whole peer id fits, so a member recognises
 * an agent it is already linked to whatever address it advertises from; the nonce gets what is left.
 */
const HINT_ID_BYTES = 8;
export const BLE_HINT_LAYOUT: HintLayout = {
  nonceBytes: HINT_BYTES_IN_ADVERTISING_DATA + HINT_BYTES_IN_SCAN_RESPONSE - HINT_ID_BYTES - HINT_CHECK_BYTES,
  idBytes: HINT_ID_BYTES,
};
const MANUFACTURER_DATA_BYTES = COMPANY_ID_BYTES + VERSION_AND_FLAGS_BYTES + HINT_BYTES_IN_ADVERTISING_DATA;

const FLAG_WIFI_AVAILABLE = 0x01;
const FLAG_ACCEPTING_LINKS = 0x02;
const FLAG_INVITING = 0x04;

export interface AdvertisementFields {
  /** BLE_HINT_LAYOUT's 18 bytes (sealHint()). */
  hint: Uint8Array;
  isWifiAvailable: boolean;
  isAcceptingLinks: boolean;
  /** An invitation is open here (PROTOCOL.md §18): a device joining with a code may dial it. */
  isInviting?: boolean;
}

/** A decoded nearmesh advertisement: all an outsider can read, plus the hint only members open. */
export interface NearmeshAdvertisement extends AdvertisementFields {
  version: number;
}

/** What a peripheral hands its controller. */
export interface EncodedAdvertisement {
  /** Exactly 31 bytes: Flags, the nearmesh service UUID, manufacturer data. */
  advertisingData: Uint8Array;
  /** Exactly 31 bytes: nearmesh service data. */
  scanResponse: Uint8Array;
}

/** One AD structure: [length][type][data], where length counts type and data. */
export interface AdStructure {
  type: number;
  data: Uint8Array;
}

/** Whether a UUID as noble or bleno give it (any case, with or without dashes) is the nearmesh service. */
export function isNearmeshServiceUuid(uuid: string): boolean {
  return uuid.replaceAll('-', '').toLowerCase() === NEARMESH_SERVICE_UUID_HEX;
}

/**
 * The raw AD structures for bleno's startAdvertisingWithEIRData(): the hint's first 5 bytes go in the
 * advertising data's manufacturer data, the other 13 in the scan response's service data. Throws RangeError
 * for a hint of the wrong size.
 */
export function encodeAdvertisement(fields: AdvertisementFields): EncodedAdvertisement {
  const { hint } = fields;
  if (hint.length !== hintBytes(BLE_HINT_LAYOUT)) {
    throw new RangeError(`the hint must be ${hintBytes(BLE_HINT_LAYOUT)} bytes, got ${hint.length}`);
  }
  const advertisingData = new Uint8Array(LEGACY_ADVERTISING_DATA_BYTES);
  let offset = 0;
  const put = (...bytes: number[]) => {
    advertisingData.set(bytes, offset);
    offset += bytes.length;
  };
  put(FLAGS_AD_BYTES - 1, AD_TYPE_FLAGS, AD_FLAGS_VALUE);
  put(SERVICE_UUID_AD_BYTES - 1, AD_TYPE_COMPLETE_128_BIT_UUIDS, ...serviceUuidLittleEndian());
  put(1 + MANUFACTURER_DATA_BYTES, AD_TYPE_MANUFACTURER_DATA, TEST_COMPANY_ID & 0xff, TEST_COMPANY_ID >> 8);
  const flags =
    (fields.isWifiAvailable ? FLAG_WIFI_AVAILABLE : 0) |
    (fields.isAcceptingLinks ? FLAG_ACCEPTING_LINKS : 0) |
    (fields.isInviting === true ? FLAG_INVITING : 0);
  put((ADVERTISEMENT_VERSION << 4) | flags, ...hint.subarray(0, HINT_BYTES_IN_ADVERTISING_DATA));

  const scanResponse = new Uint8Array(LEGACY_ADVERTISING_DATA_BYTES);
  scanResponse.set([LEGACY_ADVERTISING_DATA_BYTES - 1, AD_TYPE_SERVICE_DATA_128_BIT_UUID]);
  scanResponse.set(serviceUuidLittleEndian(), AD_HEADER_BYTES);
  scanResponse.set(hint.subarray(HINT_BYTES_IN_ADVERTISING_DATA), SERVICE_UUID_AD_BYTES);
  return { advertisingData, scanResponse };
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
 * Reads a nearmesh advertisement from raw advertising data and, optionally, the scan response (their AD
 * structures together, in any order). Needs the nearmesh service UUID and nearmesh manufacturer data; never
 * throws, whatever the bytes.
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
  let serviceData: Uint8Array | undefined;
  const manufacturerData: Uint8Array[] = [];
  for (const { type, data } of structures) {
    if (type === AD_TYPE_COMPLETE_128_BIT_UUIDS || type === AD_TYPE_INCOMPLETE_128_BIT_UUIDS) {
      if (data.length % UUID_BYTES !== 0) {
        return new AdvertisementError('malformed', `128-bit UUID list of ${data.length} bytes`);
      }
      for (let i = 0; i < data.length; i += UUID_BYTES) {
        if (isNearmeshUuidLittleEndian(data.subarray(i, i + UUID_BYTES))) hasService = true;
      }
    } else if (type === AD_TYPE_SERVICE_DATA_128_BIT_UUID && data.length >= UUID_BYTES) {
      if (isNearmeshUuidLittleEndian(data.subarray(0, UUID_BYTES))) serviceData ??= data.subarray(UUID_BYTES);
    } else if (type === AD_TYPE_MANUFACTURER_DATA) {
      manufacturerData.push(data);
    }
  }
  if (!hasService) return new AdvertisementError('not-nearmesh', 'no nearmesh service UUID');
  if (manufacturerData.length === 0) return new AdvertisementError('not-nearmesh', 'no manufacturer data');
  // Other test devices use 0xFFFF too: keep the first nearmesh-shaped one, else the last error.
  let result: NearmeshAdvertisement | AdvertisementError | undefined;
  for (const data of manufacturerData) {
    if (result === undefined || result instanceof AdvertisementError) {
      result = decodeAdvertisementParts(data, serviceData);
    }
  }
  return result as NearmeshAdvertisement | AdvertisementError;
}

/**
 * Reads a nearmesh advertisement from the forms noble gives: `manufacturerData` (company id included) and the
 * data of the nearmesh entry of `serviceData` (absent until the scan response is heard). Check the service UUID
 * separately (isNearmeshServiceUuid). Never throws.
 */
export function decodeAdvertisementParts(
  manufacturerData: Uint8Array,
  serviceData: Uint8Array | undefined,
): NearmeshAdvertisement | AdvertisementError {
  const bytes = manufacturerData;
  if (bytes.length < COMPANY_ID_BYTES || (bytes[0] ?? 0) + 256 * (bytes[1] ?? 0) !== TEST_COMPANY_ID) {
    return new AdvertisementError('not-nearmesh', 'manufacturer data of another company id');
  }
  if (bytes.length < COMPANY_ID_BYTES + VERSION_AND_FLAGS_BYTES) {
    return new AdvertisementError('bad-data', 'manufacturer data without a version');
  }
  // Every version keeps the version in the high bits of the first byte after the company id.
  const versionAndFlags = bytes[COMPANY_ID_BYTES] ?? 0;
  const version = versionAndFlags >> 4;
  if (version === 0) return new AdvertisementError('bad-data', 'version 0');
  if (version < ADVERTISEMENT_VERSION) {
    return new AdvertisementError(
      'older-version',
      `version ${version}, this agent speaks ${ADVERTISEMENT_VERSION}`,
      version,
    );
  }
  if (version > ADVERTISEMENT_VERSION) {
    return new AdvertisementError(
      'unsupported-version',
      `version ${version}, this agent speaks ${ADVERTISEMENT_VERSION}`,
      version,
    );
  }
  if (bytes.length !== MANUFACTURER_DATA_BYTES) {
    return new AdvertisementError(
      'bad-data',
      `manufacturer data of ${bytes.length} bytes, expected ${MANUFACTURER_DATA_BYTES}`,
    );
  }
  if (serviceData === undefined) return new AdvertisementError('incomplete', 'no nearmesh service data yet');
  if (serviceData.length !== HINT_BYTES_IN_SCAN_RESPONSE) {
    return new AdvertisementError(
      'bad-data',
      `service data of ${serviceData.length} bytes, expected ${HINT_BYTES_IN_SCAN_RESPONSE}`,
    );
  }
  const hint = new Uint8Array(hintBytes(BLE_HINT_LAYOUT));
  hint.set(bytes.subarray(COMPANY_ID_BYTES + VERSION_AND_FLAGS_BYTES));
  hint.set(serviceData, HINT_BYTES_IN_ADVERTISING_DATA);
  return {
    version,
    hint,
    // Bit 3 is reserved: ignored, so a later revision can add a flag without a version bump.
    isWifiAvailable: (versionAndFlags & FLAG_WIFI_AVAILABLE) !== 0,
    isAcceptingLinks: (versionAndFlags & FLAG_ACCEPTING_LINKS) !== 0,
    isInviting: (versionAndFlags & FLAG_INVITING) !== 0,
  };
}

/** AD fields are little-endian: a 128-bit UUID goes out least significant byte first. */
function serviceUuidLittleEndian(): number[] {
  return [...Buffer.from(NEARMESH_SERVICE_UUID_HEX, 'hex')].reverse();
}

function isNearmeshUuidLittleEndian(bytes: Uint8Array): boolean {
  // A copy: reverse() works in place, and the caller's bytes are not ours to change.
  return Buffer.from(Uint8Array.from(bytes).reverse()).toString('hex') === NEARMESH_SERVICE_UUID_HEX;
}
