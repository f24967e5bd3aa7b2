// The nearmesh BLE advertisement, version 2 (transports/ble/advertisement.ts): the 31-byte budgets, the
// PROTOCOL.md §12.2 vector, round trips through raw bytes and noble's parsed form, version 1 advertisements
// recognised as such, and hostile bytes.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ADVERTISEMENT_VERSION,
  type AdvertisementFields,
  BLE_HINT_LAYOUT,
  decodeAdvertisement,
  decodeAdvertisementParts,
  encodeAdvertisement,
  HINT_BYTES_IN_ADVERTISING_DATA,
  HINT_BYTES_IN_SCAN_RESPONSE,
  isNearmeshServiceUuid,
  LEGACY_ADVERTISING_DATA_BYTES,
  NEARMESH_SERVICE_UUID,
  NEARMESH_SERVICE_UUID_HEX,
  type NearmeshAdvertisement,
  parseAdStructures,
} from '../../../../transports/ble/advertisement.js';
import { AdvertisementError } from '../../../../transports/ble/errors.js';
import { hintBytes, openHint, sealHint } from '../../../../transports/discovery-hint.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const fromHex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'hex'));

/** The PROTOCOL.md example: the §10.1 BLE hint (mesh key 00 01 .. 1f, peer 56475aa75463474c, nonce a0..a5). */
const MESH_KEY = Uint8Array.from({ length: 32 }, (_, i) => i);
const VECTOR_FIELDS: AdvertisementFields = {
  hint: fromHex('a0a1a2a3a4a5868f200deeaa97ff84c4b77f'),
  isWifiAvailable: true,
  isAcceptingLinks: true,
  isInviting: false,
};
const VECTOR_ADVERTISING_DATA = [
  '020106', // Flags: LE General Discoverable, BR/EDR not supported
  '1107', // Complete List of 128-bit Service UUIDs, then the UUID least significant byte first
  '4dcd79ad5b88158e1641f881c44e3517',
  '09ffffff', // Manufacturer Specific Data, company id 0xFFFF
  '23', // version 2, flags: Wi-Fi available, accepting links
  'a0a1a2a3a4', // hint bytes 0..4
].join('');
const VECTOR_SCAN_RESPONSE = [
  '1e21', // Service Data - 128-bit UUID, 30 bytes follow
  '4dcd79ad5b88158e1641f881c44e3517', // the nearmesh service UUID
  'a5868f200deeaa97ff84c4b77f', // hint bytes 5..17
].join('');
/** What a protocol version 1 agent advertised (its short peer id and mesh tag in the clear). */
const VERSION_1_ADVERTISING_DATA = '02010611074dcd79ad5b88158e1641f881c44e351709ffffff136cae56475a';

function decoded(result: NearmeshAdvertisement | AdvertisementError): NearmeshAdvertisement {
  if (result instanceof AdvertisementError) throw result;
  return result;
}

function expectReason(result: unknown, reason: AdvertisementError['reason']): void {
  expect(result).toBeInstanceOf(AdvertisementError);
  expect((result as AdvertisementError).reason).toBe(reason);
  expect((result as AdvertisementError).code).toBe('ble-advertisement');
}

const fieldsArb = fc.record({
  hint: fc.uint8Array({ minLength: 18, maxLength: 18 }),
  isWifiAvailable: fc.boolean(),
  isAcceptingLinks: fc.boolean(),
  isInviting: fc.boolean(),
});

describe('service UUID', () => {
  it('is one random (version 4) UUID, also given as 32 lowercase hex characters', () => {
    expect(NEARMESH_SERVICE_UUID).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(NEARMESH_SERVICE_UUID_HEX).toBe(NEARMESH_SERVICE_UUID.replaceAll('-', ''));
  });

  it('is recognised in the spellings noble and bleno use', () => {
    expect(isNearmeshServiceUuid(NEARMESH_SERVICE_UUID)).toBe(true);
    expect(isNearmeshServiceUuid(NEARMESH_SERVICE_UUID_HEX)).toBe(true);
    expect(isNearmeshServiceUuid(NEARMESH_SERVICE_UUID.toUpperCase())).toBe(true);
    expect(isNearmeshServiceUuid('180f')).toBe(false);
  });
});

describe('byte budget', () => {
  it('fills both 31-byte halves: Flags 3 + UUID 18 + manufacturer data 10, and service data 31', () => {
    expect([HINT_BYTES_IN_ADVERTISING_DATA, HINT_BYTES_IN_SCAN_RESPONSE]).toEqual([5, 13]);
    expect(HINT_BYTES_IN_ADVERTISING_DATA + HINT_BYTES_IN_SCAN_RESPONSE).toBe(hintBytes(BLE_HINT_LAYOUT));
    const { advertisingData, scanResponse } = encodeAdvertisement(VECTOR_FIELDS);
    expect(advertisingData.length).toBe(LEGACY_ADVERTISING_DATA_BYTES);
    expect(scanResponse.length).toBe(LEGACY_ADVERTISING_DATA_BYTES);
    const structures = parseAdStructures(advertisingData);
    const response = parseAdStructures(scanResponse);
    if (structures instanceof AdvertisementError) throw structures;
    if (response instanceof AdvertisementError) throw response;
    expect(structures.map(({ type, data }) => [type, 2 + data.length])).toEqual([
      [0x01, 3],
      [0x07, 18],
      [0xff, 10],
    ]);
    expect(response.map(({ type, data }) => [type, 2 + data.length])).toEqual([[0x21, 31]]);
  });

  it('refuses a hint of the wrong size', () => {
    expect(() => encodeAdvertisement({ ...VECTOR_FIELDS, hint: new Uint8Array(17) })).toThrow(RangeError);
  });
});

describe('test vector (PROTOCOL.md §12.2)', () => {
  it('encodes the fixed input to the documented bytes', () => {
    const { advertisingData, scanResponse } = encodeAdvertisement(VECTOR_FIELDS);
    expect(hex(advertisingData)).toBe(VECTOR_ADVERTISING_DATA);
    expect(hex(scanResponse)).toBe(VECTOR_SCAN_RESPONSE);
  });

  it('is the example PROTOCOL.md §12.2 shows', () => {
    const protocol = readFileSync(new URL('../../../../docs/PROTOCOL.md', import.meta.url), 'utf8');
    const documented = /Advertising data `([0-9a-f ]+)`/.exec(protocol)?.[1];
    expect(documented?.replaceAll(' ', '')).toBe(VECTOR_ADVERTISING_DATA);
    const response = /Scan response `([0-9a-f ]+)`/.exec(protocol)?.[1];
    expect(response?.replaceAll(' ', '')).toBe(VECTOR_SCAN_RESPONSE);
    expect(protocol).toContain(`\`${NEARMESH_SERVICE_UUID}\``);
    expect(protocol).toContain('`ffff23a0a1a2a3a4`');
    expect(protocol).toContain('`a5868f200deeaa97ff84c4b77f`');
  });

  it('decodes the documented bytes, and a member opens the hint to the peer id', () => {
    const result = decoded(
      decodeAdvertisement(fromHex(VECTOR_ADVERTISING_DATA), fromHex(VECTOR_SCAN_RESPONSE)),
    );
    expect(result).toEqual({ version: 2, ...VECTOR_FIELDS });
    expect(openHint(() => [MESH_KEY], result.hint, BLE_HINT_LAYOUT)?.peerId).toBe('56475aa75463474c');
  });

  it("decodes noble's parsed form: manufacturerData (company id included) and the service data's bytes", () => {
    const result = decodeAdvertisementParts(
      fromHex('ffff23a0a1a2a3a4'),
      fromHex('a5868f200deeaa97ff84c4b77f'),
    );
    expect(result).toEqual({ version: 2, ...VECTOR_FIELDS });
  });
});

describe('round trip', () => {
  it('decodes what it encodes, for any hint and flags, raw or as noble parses it', () => {
    fc.assert(
      fc.property(fieldsArb, (fields) => {
        const { advertisingData, scanResponse } = encodeAdvertisement(fields);
        expect(decoded(decodeAdvertisement(advertisingData, scanResponse))).toEqual({
          version: ADVERTISEMENT_VERSION,
          ...fields,
        });
        // Scan response first: receivers read the AD structures together, in any order.
        expect(decoded(decodeAdvertisement(scanResponse, advertisingData)).hint).toEqual(fields.hint);
        expect(
          decoded(decodeAdvertisementParts(advertisingData.subarray(23), scanResponse.subarray(18))),
        ).toEqual({ version: ADVERTISEMENT_VERSION, ...fields });
      }),
      { numRuns: 300 },
    );
  });

  it('encodes each flag in its own bit', () => {
    const byte = (isWifiAvailable: boolean, isAcceptingLinks: boolean, isInviting = false) =>
      encodeAdvertisement({ ...VECTOR_FIELDS, isWifiAvailable, isAcceptingLinks, isInviting })
        .advertisingData[25];
    expect([byte(false, false), byte(true, false), byte(false, true), byte(true, true)]).toEqual([
      0x20, 0x21, 0x22, 0x23,
    ]);
    // Inviting (PROTOCOL.md §18): bit 2, as the §12.2 example with an invitation open shows.
    expect(byte(true, true, true)).toBe(0x27);
  });

  it('ignores the reserved bit 3, so a later flag needs no new version', () => {
    const data = fromHex(VECTOR_ADVERTISING_DATA);
    data[25] = 0x2b;
    expect(decoded(decodeAdvertisement(data, fromHex(VECTOR_SCAN_RESPONSE)))).toEqual({
      version: 2,
      ...VECTOR_FIELDS,
    });
  });

  it('carries what sealHint() gives, which only members open', () => {
    const hint = sealHint(() => [MESH_KEY], '0123456789abcdef', BLE_HINT_LAYOUT);
    const { advertisingData, scanResponse } = encodeAdvertisement({ ...VECTOR_FIELDS, hint });
    const heard = decoded(decodeAdvertisement(advertisingData, scanResponse));
    expect(openHint(() => [MESH_KEY], heard.hint, BLE_HINT_LAYOUT)?.peerId).toBe('0123456789abcdef');
    expect(openHint(() => [new Uint8Array(32)], heard.hint, BLE_HINT_LAYOUT)).toBeUndefined();
  });
});

describe('older and newer agents', () => {
  it('recognises a version 1 advertisement as an older agent, not as garbage', () => {
    const result = decodeAdvertisement(fromHex(VERSION_1_ADVERTISING_DATA));
    expectReason(result, 'older-version');
    expect((result as AdvertisementError).version).toBe(1);
    expectReason(decodeAdvertisementParts(fromHex('ffff136cae56475a'), undefined), 'older-version');
  });

  it('reports a later version as unsupported, whatever its size', () => {
    const later = decodeAdvertisementParts(fromHex('ffff33a0a1a2a3a4a5a6'), undefined);
    expectReason(later, 'unsupported-version');
    expect((later as AdvertisementError).version).toBe(3);
  });
});

describe('decoding hostile or foreign advertisements', () => {
  const advertisingData = fromHex(VECTOR_ADVERTISING_DATA);
  const scanResponse = fromHex(VECTOR_SCAN_RESPONSE);

  it('returns an AdvertisementError or a valid advertisement for any bytes, never throws', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 40 }),
        fc.option(fc.uint8Array({ maxLength: 40 }), { nil: undefined }),
        (data, response) => {
          const result = decodeAdvertisement(data, response);
          if (!(result instanceof AdvertisementError)) expect(result.hint.length).toBe(18);
          expect(() => decodeAdvertisementParts(data, response)).not.toThrow();
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('survives bit flips in a valid advertisement, and does not modify its input', () => {
    fc.assert(
      fc.property(fc.nat(61), fc.integer({ min: 0, max: 7 }), (at, bit) => {
        const both = Uint8Array.from([...advertisingData, ...scanResponse]);
        both[at] = (both[at] ?? 0) ^ (1 << bit);
        const copy = Uint8Array.from(both);
        const result = decodeAdvertisement(both.subarray(0, 31), both.subarray(31));
        expect(result instanceof AdvertisementError || result.hint.length === 18).toBe(true);
        expect(both).toEqual(copy);
      }),
      { numRuns: 500 },
    );
  });

  it('reports an AD structure that runs past the end as malformed', () => {
    expectReason(decodeAdvertisement(advertisingData.subarray(0, 30)), 'malformed');
    expectReason(decodeAdvertisement(fromHex('05ff0102')), 'malformed');
    expectReason(decodeAdvertisement(advertisingData, scanResponse.subarray(0, 30)), 'malformed');
    expectReason(decodeAdvertisement(fromHex('0307aabb')), 'malformed'); // a 2-byte "128-bit UUID list"
  });

  it('stops at a zero length byte, as the Core spec pads advertising data', () => {
    const padded = Uint8Array.from([...advertisingData, 0, 0, 0]);
    expect(decoded(decodeAdvertisement(padded, scanResponse)).hint).toEqual(VECTOR_FIELDS.hint);
    expectReason(decodeAdvertisement(Uint8Array.from([0, ...advertisingData])), 'not-nearmesh');
    expectReason(decodeAdvertisement(new Uint8Array(0)), 'not-nearmesh');
  });

  it('is not nearmesh without the service UUID, even with 0xFFFF manufacturer data', () => {
    const withoutUuid = Uint8Array.from([...advertisingData.subarray(0, 3), ...advertisingData.subarray(21)]);
    expectReason(decodeAdvertisement(withoutUuid, scanResponse), 'not-nearmesh');
    expectReason(decodeAdvertisement(advertisingData.subarray(0, 21), scanResponse), 'not-nearmesh');
  });

  it('is incomplete until the scan response (the service data) is heard', () => {
    expectReason(decodeAdvertisement(advertisingData), 'incomplete');
    // Service data of another service does not count.
    const otherService = Uint8Array.from(scanResponse);
    otherService[2] = (otherService[2] ?? 0) ^ 0xff;
    expectReason(decodeAdvertisement(advertisingData, otherService), 'incomplete');
  });

  it("reads the nearmesh data next to another company's manufacturer data", () => {
    const other = fromHex('054c000215aa'); // Apple-style manufacturer AD, company 0x004c
    const result = decodeAdvertisement(Uint8Array.from([...other, ...advertisingData]), scanResponse);
    expect(decoded(result).hint).toEqual(VECTOR_FIELDS.hint);
  });

  it('checks manufacturer and service data: company id, sizes, version', () => {
    const serviceData = scanResponse.subarray(18);
    expectReason(decodeAdvertisementParts(fromHex('4c0023a0a1a2a3a4'), serviceData), 'not-nearmesh');
    expectReason(decodeAdvertisementParts(fromHex('ff'), serviceData), 'not-nearmesh');
    expectReason(decodeAdvertisementParts(fromHex('ffff'), serviceData), 'bad-data');
    expectReason(decodeAdvertisementParts(fromHex('ffff23a0a1a2a3'), serviceData), 'bad-data');
    expectReason(decodeAdvertisementParts(fromHex('ffff23a0a1a2a3a4a5'), serviceData), 'bad-data');
    expectReason(decodeAdvertisementParts(fromHex('ffff03a0a1a2a3a4'), serviceData), 'bad-data'); // version 0
    expectReason(decodeAdvertisementParts(fromHex('ffff23a0a1a2a3a4'), serviceData.subarray(1)), 'bad-data');
  });

  it('ignores the reserved flag bits', () => {
    const result = decodeAdvertisementParts(fromHex('ffff2fa0a1a2a3a4'), scanResponse.subarray(18));
    expect(decoded(result)).toMatchObject({ isWifiAvailable: true, isAcceptingLinks: true });
  });
});
