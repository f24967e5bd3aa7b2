// The nearmesh BLE advertisement (transports/ble/advertisement.ts): the 31-byte budgets, the PROTOCOL.md §12.2
// vector, round trips, name truncation on UTF-8 boundaries, mesh matching, and hostile bytes.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ADVERTISEMENT_VERSION,
  type AdvertisementFields,
  decodeAdvertisement,
  decodeManufacturerData,
  encodeAdvertisement,
  encodeScanResponse,
  isNearmeshServiceUuid,
  LEGACY_ADVERTISING_DATA_BYTES,
  MAX_NAME_BYTES,
  matchesMesh,
  meshTag,
  NEARMESH_SERVICE_UUID,
  NEARMESH_SERVICE_UUID_HEX,
  type NearmeshAdvertisement,
  parseAdStructures,
  SHORT_PEER_ID_BYTES,
  shortPeerIdMatches,
} from '../../transports/ble/advertisement.js';
import { AdvertisementError } from '../../transports/ble/errors.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const fromHex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'hex'));
const utf8Bytes = (text: string): number => Buffer.byteLength(text, 'utf8');

/** The PROTOCOL.md example: the identity-vector peer id and the mesh key 00 01 .. 1f. */
const VECTOR_FIELDS: AdvertisementFields = {
  version: 1,
  peerId: '56475aa75463474c',
  meshKey: Uint8Array.from({ length: 32 }, (_, i) => i),
  isWifiAvailable: true,
  isAcceptingLinks: true,
};
const VECTOR_ADVERTISING_DATA = [
  '020106', // Flags: LE General Discoverable, BR/EDR not supported
  '1107', // Complete List of 128-bit Service UUIDs, then the UUID least significant byte first
  '4dcd79ad5b88158e1641f881c44e3517',
  '09ffffff', // Manufacturer Specific Data, company id 0xFFFF
  '13', // version 1, flags: Wi-Fi available, accepting links
  '6cae', // mesh tag
  '56475a', // short peer id
].join('');
const VECTOR_SCAN_RESPONSE = '0b096b69746368656e2d7069';

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
  version: fc.constant(ADVERTISEMENT_VERSION),
  peerId: fc.uint8Array({ minLength: 8, maxLength: 8 }).map(hex),
  meshKey: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  isWifiAvailable: fc.boolean(),
  isAcceptingLinks: fc.boolean(),
});

describe('service UUID', () => {
  it('is one random (version 4) UUID, also given as 32 lowercase hex characters', () => {
    expect(NEARMESH_SERVICE_UUID).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(NEARMESH_SERVICE_UUID_HEX).toMatch(/^[0-9a-f]{32}$/);
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
  it('fills the 31 bytes exactly: Flags 3 + service UUID 18 + manufacturer data 10 (3-byte short peer id)', () => {
    expect(SHORT_PEER_ID_BYTES).toBe(3);
    const advertisingData = encodeAdvertisement(VECTOR_FIELDS);
    expect(advertisingData.length).toBe(LEGACY_ADVERTISING_DATA_BYTES);
    const structures = parseAdStructures(advertisingData);
    if (structures instanceof AdvertisementError) throw structures;
    expect(structures.map(({ type, data }) => [type, 2 + data.length])).toEqual([
      [0x01, 3],
      [0x07, 18],
      [0xff, 10],
    ]);
  });

  it('keeps advertising data at 31 bytes and the scan response within 31 for any input', () => {
    fc.assert(
      fc.property(fieldsArb, fc.string({ unit: 'binary', maxLength: 60 }), (fields, name) => {
        expect(encodeAdvertisement(fields).length).toBe(LEGACY_ADVERTISING_DATA_BYTES);
        expect(encodeScanResponse(name).length).toBeLessThanOrEqual(LEGACY_ADVERTISING_DATA_BYTES);
      }),
      { numRuns: 300 },
    );
  });
});

describe('test vector (PROTOCOL.md §12.2)', () => {
  it('encodes the fixed input to the documented bytes', () => {
    expect(hex(encodeAdvertisement(VECTOR_FIELDS))).toBe(VECTOR_ADVERTISING_DATA);
    expect(hex(encodeScanResponse('kitchen-pi'))).toBe(VECTOR_SCAN_RESPONSE);
  });

  it('derives the mesh tag as the first 2 bytes of SHA-256("nearmesh-ble-mesh-tag-v1" || key)', () => {
    const digest = createHash('sha256')
      .update(Buffer.concat([Buffer.from('nearmesh-ble-mesh-tag-v1'), VECTOR_FIELDS.meshKey]))
      .digest();
    expect(hex(meshTag(VECTOR_FIELDS.meshKey))).toBe(digest.subarray(0, 2).toString('hex'));
    expect(hex(meshTag(VECTOR_FIELDS.meshKey))).toBe('6cae');
  });

  it('is the example PROTOCOL.md §12.2 shows', () => {
    const protocol = readFileSync(new URL('../../docs/PROTOCOL.md', import.meta.url), 'utf8');
    const documented = /Advertising data `([0-9a-f ]+)`/.exec(protocol)?.[1];
    expect(documented?.replaceAll(' ', '')).toBe(VECTOR_ADVERTISING_DATA);
    expect(protocol).toContain(`Scan response \`${VECTOR_SCAN_RESPONSE}\``);
    expect(protocol).toContain(`\`${NEARMESH_SERVICE_UUID}\``);
    expect(protocol).toContain(`as \`${hex(encodeAdvertisement(VECTOR_FIELDS).subarray(23))}\``);
  });

  it('decodes the documented bytes', () => {
    expect(decodeAdvertisement(fromHex(VECTOR_ADVERTISING_DATA), fromHex(VECTOR_SCAN_RESPONSE))).toEqual({
      version: 1,
      shortPeerId: '56475a',
      meshTag: '6cae',
      isWifiAvailable: true,
      isAcceptingLinks: true,
      name: 'kitchen-pi',
      isNameShortened: false,
    });
  });
});

describe('round trip', () => {
  it('decodes what it encodes, for any peer id, mesh key, flags and name', () => {
    fc.assert(
      fc.property(fieldsArb, fc.string({ unit: 'binary', maxLength: 40 }), (fields, name) => {
        const result = decoded(decodeAdvertisement(encodeAdvertisement(fields), encodeScanResponse(name)));
        expect(result.version).toBe(ADVERTISEMENT_VERSION);
        expect(result.shortPeerId).toBe(fields.peerId.slice(0, 2 * SHORT_PEER_ID_BYTES));
        expect(shortPeerIdMatches(result.shortPeerId, fields.peerId)).toBe(true);
        expect(result.isWifiAvailable).toBe(fields.isWifiAvailable);
        expect(result.isAcceptingLinks).toBe(fields.isAcceptingLinks);
        expect(matchesMesh(result, fields.meshKey)).toBe(true);
        // Names are sent as UTF-8, so lone surrogates come back as U+FFFD, as TextEncoder writes them.
        const sentName = new TextDecoder('utf-8', { ignoreBOM: true }).decode(new TextEncoder().encode(name));
        if (sentName === '') expect(result.name).toBeUndefined();
        else if (utf8Bytes(sentName) <= MAX_NAME_BYTES) {
          expect(result.name).toBe(sentName);
          expect(result.isNameShortened).toBe(false);
        } else {
          expect(sentName.startsWith(result.name ?? '\u0000')).toBe(true);
          expect(result.isNameShortened).toBe(true);
          expect(utf8Bytes(result.name ?? '')).toBeGreaterThan(MAX_NAME_BYTES - 4);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("decodes from noble's parsed manufacturerData (company id included) alone", () => {
    const advertisingData = encodeAdvertisement({ ...VECTOR_FIELDS, isWifiAvailable: false });
    const manufacturerData = advertisingData.subarray(23); // what noble hands out for the 0xFF AD
    expect(hex(manufacturerData)).toBe('ffff126cae56475a');
    expect(decodeManufacturerData(Buffer.from(manufacturerData))).toEqual({
      version: 1,
      shortPeerId: '56475a',
      meshTag: '6cae',
      isWifiAvailable: false,
      isAcceptingLinks: true,
    });
  });

  it('encodes each flag in its own bit', () => {
    const byte = (isWifiAvailable: boolean, isAcceptingLinks: boolean) =>
      encodeAdvertisement({ ...VECTOR_FIELDS, isWifiAvailable, isAcceptingLinks })[25];
    expect([byte(false, false), byte(true, false), byte(false, true), byte(true, true)]).toEqual([
      0x10, 0x11, 0x12, 0x13,
    ]);
  });

  it('refuses to encode a bad version or peer id', () => {
    expect(() => encodeAdvertisement({ ...VECTOR_FIELDS, version: 0 })).toThrow(RangeError);
    expect(() => encodeAdvertisement({ ...VECTOR_FIELDS, version: 16 })).toThrow(RangeError);
    expect(() => encodeAdvertisement({ ...VECTOR_FIELDS, peerId: '56475AA75463474C' })).toThrow(RangeError);
    expect(() => encodeAdvertisement({ ...VECTOR_FIELDS, peerId: '56475a' })).toThrow(RangeError);
  });
});

describe('scan response name', () => {
  it('keeps a name of up to 29 UTF-8 bytes whole, as a Complete Local Name', () => {
    const name = 'a'.repeat(29);
    const scanResponse = encodeScanResponse(name);
    expect(scanResponse.length).toBe(31);
    expect(scanResponse[1]).toBe(0x09);
    expect(encodeScanResponse('')).toEqual(new Uint8Array(0));
  });

  it('cuts a longer name on a character boundary, as a Shortened Local Name', () => {
    const cases: Array<[string, string]> = [
      ['a'.repeat(30), 'a'.repeat(29)],
      ['é'.repeat(20), 'é'.repeat(14)], // 2-byte characters: 28 bytes, not 29
      ['台北'.repeat(6), `${'台北'.repeat(4)}台`], // 3-byte characters: 27 bytes
      ['🍓'.repeat(8), '🍓'.repeat(7)], // 4-byte characters: 28 bytes
      [`${'x'.repeat(27)}ü`, `${'x'.repeat(27)}ü`], // exactly 29 bytes: whole
      [`${'x'.repeat(28)}ü`, 'x'.repeat(28)], // the 2-byte character would straddle the limit
    ];
    for (const [name, expected] of cases) {
      const scanResponse = encodeScanResponse(name);
      expect(scanResponse.length).toBeLessThanOrEqual(31);
      const result = decoded(decodeAdvertisement(encodeAdvertisement(VECTOR_FIELDS), scanResponse));
      expect(result.name).toBe(expected);
      expect(result.isNameShortened).toBe(expected !== name);
      expect(scanResponse[1]).toBe(expected === name ? 0x09 : 0x08);
    }
  });
});

describe('mesh matching', () => {
  it('does not match an agent of another mesh', () => {
    const result = decoded(decodeAdvertisement(encodeAdvertisement(VECTOR_FIELDS)));
    const otherKey = Uint8Array.from(VECTOR_FIELDS.meshKey);
    otherKey[0] = 0xff;
    expect(hex(meshTag(otherKey))).not.toBe(result.meshTag);
    expect(matchesMesh(result, otherKey)).toBe(false);
    expect(matchesMesh(result, VECTOR_FIELDS.meshKey)).toBe(true);
  });

  it('separates random mesh keys (2-byte tags: rare false matches, which the handshake refuses)', () => {
    let falseMatches = 0;
    fc.assert(
      fc.property(fieldsArb, fc.uint8Array({ minLength: 32, maxLength: 32 }), (fields, otherKey) => {
        fc.pre(hex(otherKey) !== hex(fields.meshKey));
        if (matchesMesh(decoded(decodeAdvertisement(encodeAdvertisement(fields))), otherKey)) falseMatches++;
      }),
      { numRuns: 500 },
    );
    expect(falseMatches).toBeLessThanOrEqual(2);
  });

  it('matches short peer ids only as a prefix of at least 3 bytes', () => {
    expect(shortPeerIdMatches('56475a', '56475aa75463474c')).toBe(true);
    expect(shortPeerIdMatches('56475b', '56475aa75463474c')).toBe(false);
    expect(shortPeerIdMatches('5647', '56475aa75463474c')).toBe(false);
  });
});

describe('decoding hostile or foreign advertisements', () => {
  const advertisingData = fromHex(VECTOR_ADVERTISING_DATA);

  it('returns an AdvertisementError or a valid advertisement for any bytes, never throws', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 40 }),
        fc.option(fc.uint8Array({ maxLength: 40 }), { nil: undefined }),
        (data, scanResponse) => {
          const result = decodeAdvertisement(data, scanResponse);
          if (!(result instanceof AdvertisementError)) expect(result.version).toBe(ADVERTISEMENT_VERSION);
          expect(() => decodeManufacturerData(data)).not.toThrow();
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('survives bit flips in a valid advertisement, and does not modify its input', () => {
    fc.assert(
      fc.property(fc.nat(30), fc.integer({ min: 0, max: 7 }), (at, bit) => {
        const mutated = Uint8Array.from(advertisingData);
        mutated[at] = (mutated[at] ?? 0) ^ (1 << bit);
        const copy = Uint8Array.from(mutated);
        const result = decodeAdvertisement(mutated, fromHex(VECTOR_SCAN_RESPONSE));
        expect(result instanceof AdvertisementError || typeof result.shortPeerId === 'string').toBe(true);
        expect(mutated).toEqual(copy);
      }),
      { numRuns: 500 },
    );
  });

  it('reports an AD structure that runs past the end as malformed', () => {
    expectReason(decodeAdvertisement(advertisingData.subarray(0, 30)), 'malformed');
    expectReason(decodeAdvertisement(fromHex('05ff0102')), 'malformed');
    expectReason(decodeAdvertisement(advertisingData, fromHex('ff09')), 'malformed');
    expectReason(decodeAdvertisement(fromHex('0307aabb')), 'malformed'); // a 2-byte "128-bit UUID list"
  });

  it('stops at a zero length byte, as the Core spec pads advertising data', () => {
    const padded = Uint8Array.from([...advertisingData, 0, 0, 0]);
    expect(decoded(decodeAdvertisement(padded)).shortPeerId).toBe('56475a');
    expectReason(decodeAdvertisement(Uint8Array.from([0, ...advertisingData])), 'not-nearmesh');
    expectReason(decodeAdvertisement(new Uint8Array(0)), 'not-nearmesh');
  });

  it('is not nearmesh without the service UUID, even with 0xFFFF manufacturer data', () => {
    const withoutUuid = Uint8Array.from([...advertisingData.subarray(0, 3), ...advertisingData.subarray(21)]);
    expectReason(decodeAdvertisement(withoutUuid), 'not-nearmesh');
    expectReason(decodeAdvertisement(advertisingData.subarray(0, 21)), 'not-nearmesh');
  });

  it("reads the nearmesh data next to another company's manufacturer data", () => {
    const other = fromHex('054c000215aa'); // Apple-style manufacturer AD, company 0x004c
    const result = decodeAdvertisement(Uint8Array.from([...other, ...advertisingData]));
    expect(decoded(result).meshTag).toBe('6cae');
  });

  it('checks manufacturer data: company id, size, version', () => {
    expectReason(decodeManufacturerData(fromHex('4c00136cae56475a')), 'not-nearmesh');
    expectReason(decodeManufacturerData(fromHex('ff')), 'not-nearmesh');
    expectReason(decodeManufacturerData(fromHex('ffff136cae5647')), 'bad-data'); // 2-byte short id
    expectReason(decodeManufacturerData(fromHex('ffff136cae56475aa75463474c00')), 'bad-data'); // 9 bytes
    expectReason(decodeManufacturerData(fromHex('ffff036cae56475a')), 'bad-data'); // version 0
    const later = decodeManufacturerData(fromHex('ffff236cae56475a'));
    expectReason(later, 'unsupported-version');
    expect((later as AdvertisementError).version).toBe(2);
  });

  it('ignores the reserved flag bits and accepts longer short ids (up to the whole peer id)', () => {
    const result = decodeManufacturerData(fromHex('ffff1f6cae56475aa75463474c'));
    expect(result).toEqual({
      version: 1,
      shortPeerId: '56475aa75463474c',
      meshTag: '6cae',
      isWifiAvailable: true,
      isAcceptingLinks: true,
    });
  });
});
