// Unit tests of the hand-written CBOR layer under agent/protocol: the UTF-8 validator against a fatal
// TextDecoder, encodeItem/decodeItem against cborg, encodeJsonCbor's deterministic CBOR against cborg and
// python3-cbor2, and decodeMessage's payloadView option.
import * as cborg from 'cborg';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { floatSize, writeFloat } from '../../../agent/protocol/cbor-write.js';
import {
  type CborValue,
  decodeItem,
  decodeMessage,
  EncodeError,
  encodeItem,
  encodeMessage,
} from '../../../agent/protocol/index.js';
import { decodeJsonCbor, encodeJsonCbor, type JsonValue } from '../../../agent/protocol/json-cbor.js';
import { isWellFormedUtf8, utf8Length, writeUtf8 } from '../../../agent/protocol/utf8.js';
import { cbor2CanonicalOfJson, cbor2Missing } from '../../support/cbor2.js';
import { describeWhenAvailable } from '../../support/requirements.js';
import { fromHex, toHex } from './vector-json.js';

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function acceptedByTextDecoder(bytes: Uint8Array): boolean {
  try {
    fatalUtf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

describe('UTF-8', () => {
  // Bytes around every boundary of Unicode Table 3-7, so that short random arrays hit the edge cases.
  const interesting = [
    0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee,
    0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff,
  ];
  const byteArb = fc.oneof(fc.constantFrom(...interesting), fc.nat(255));

  test('the validator accepts exactly what a fatal TextDecoder accepts', () => {
    fc.assert(
      fc.property(fc.array(byteArb, { maxLength: 12 }), (array) => {
        const bytes = Uint8Array.from(array);
        expect(isWellFormedUtf8(bytes, 0, bytes.length)).toBe(acceptedByTextDecoder(bytes));
      }),
      { numRuns: 20_000 },
    );
  });

  test('every 1- to 3-byte sequence with a lead byte >= 0xc0 agrees with TextDecoder', () => {
    for (let lead = 0xc0; lead <= 0xff; lead++) {
      for (const second of interesting) {
        for (const third of [0x80, 0xbf, 0x41]) {
          for (const bytes of [[lead], [lead, second], [lead, second, third], [lead, second, third, 0x80]]) {
            const array = Uint8Array.from(bytes);
            expect(isWellFormedUtf8(array, 0, array.length), toHex(array)).toBe(acceptedByTextDecoder(array));
          }
        }
      }
    }
  });

  test('checks only the given range', () => {
    const bytes = fromHex('ff6869ff');
    expect(isWellFormedUtf8(bytes, 1, 3)).toBe(true);
    expect(isWellFormedUtf8(fromHex('41c3a9'), 0, 2)).toBe(false);
  });

  test('length and writer agree with TextEncoder for well-formed strings; lone surrogates are -1', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 30 }), (text) => {
        const expected = new TextEncoder().encode(text);
        expect(utf8Length(text)).toBe(expected.length);
        const out = new Uint8Array(expected.length);
        expect(writeUtf8(out, 0, text)).toBe(expected.length);
        expect(toHex(out)).toBe(toHex(expected));
      }),
    );
    for (const lone of ['\ud800', 'a\udc00', '\ud83d', '\ud83dx', '\udc4b\ud83d']) {
      expect(utf8Length(lone)).toBe(-1);
    }
  });
});

/** The values encodeItem writes; uints up to 2^53 - 1 as numbers. */
const cborValueArb: fc.Arbitrary<CborValue> = fc.letrec<{ value: CborValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.oneof(fc.constantFrom(0, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32), fc.maxSafeNat()),
    fc.uint8Array({ maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 10 }),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
  ),
})).value;

describe('encodeItem', () => {
  test('writes what cborg writes for the same value (shortest forms, no tags)', () => {
    fc.assert(
      fc.property(cborValueArb, (value) => {
        expect(toHex(encodeItem(value))).toBe(toHex(cborg.encode(value)));
      }),
      { numRuns: 2000 },
    );
  });

  test('the identity payload shape: [1, bstr32, bstr64, tstr]', () => {
    const key = new Uint8Array(32).fill(0xaa);
    const signature = Buffer.alloc(64, 0xbb);
    const encoded = encodeItem([1, key, signature, 'pi']);
    expect(toHex(encoded)).toBe(
      `84015820${'aa'.repeat(32)}5840${'bb'.repeat(64)}62${toHex(Buffer.from('pi'))}`,
    );
    expect(Object.getPrototypeOf(encoded)).toBe(Uint8Array.prototype);
    expect(encoded.byteOffset).toBe(0);
    expect(encoded.buffer.byteLength).toBe(encoded.length);
  });

  const cyclic: unknown[] = [];
  cyclic.push(cyclic);
  const deep = (depth: number): CborValue => (depth === 0 ? 0 : [deep(depth - 1)]);
  const bad: Array<[string, unknown]> = [
    ['a negative number', -1],
    ['a fraction', 1.5],
    ['2^53', 2 ** 53],
    ['NaN', Number.NaN],
    ['a bigint', 1n],
    ['a boolean', true],
    ['undefined', undefined],
    ['an object', { a: 1 }],
    ['a Map', new Map()],
    ['a Uint16Array', new Uint16Array(2)],
    ['a lone surrogate', 'a\ud800'],
    ['an array nested 17 deep', deep(17)],
    ['a cyclic array', cyclic],
  ];
  test.each(bad)('refuses %s with EncodeError', (_name, value) => {
    expect(() => encodeItem(value as CborValue)).toThrow(EncodeError);
  });

  test('an array nested 16 deep is fine, and decodes again', () => {
    const encoded = encodeItem(deep(16));
    expect(decodeItem(encoded)).toEqual({ ok: true, value: deep(16) });
  });
});

describe('decodeItem', () => {
  test('round-trips whatever encodeItem writes', () => {
    fc.assert(
      fc.property(cborValueArb, (value) => {
        expect(decodeItem(encodeItem(value))).toEqual({ ok: true, value });
      }),
      { numRuns: 2000 },
    );
  });

  test('builds every allowed kind of item', () => {
    const decoded = decodeItem(
      fromHex('8a2039ffff3bfffffffffffffffff4f5f6f7f93e00fb3ff8000000000000a20161610202'),
    );
    expect(decoded).toEqual({
      ok: true,
      value: [
        -1,
        -65_536,
        -(2n ** 64n),
        false,
        true,
        null,
        undefined,
        1.5,
        1.5,
        new Map<unknown, unknown>([
          [1, 'a'],
          [2, 2],
        ]),
      ],
    });
  });

  test('reads integers in any head size as numbers, and as bigint only beyond 2^53 - 1', () => {
    expect(decodeItem(fromHex('1b0000000000000001'))).toEqual({ ok: true, value: 1 });
    expect(decodeItem(fromHex('1b001fffffffffffff'))).toEqual({ ok: true, value: 2 ** 53 - 1 });
    expect(decodeItem(fromHex('1b0020000000000000'))).toEqual({ ok: true, value: 2n ** 53n });
    expect(decodeItem(fromHex('3b001ffffffffffffe'))).toEqual({ ok: true, value: -(2 ** 53 - 1) });
    expect(decodeItem(fromHex('3b001fffffffffffff'))).toEqual({ ok: true, value: -(2n ** 53n) });
  });

  test('half-precision floats, including subnormals, infinities and NaN', () => {
    const cases: Array<[string, number]> = [
      ['f90001', 2 ** -24],
      ['f903ff', 0.000060975551605224609],
      ['f97bff', 65_504],
      ['f9c400', -4],
      ['f98000', -0],
      ['f97c00', Number.POSITIVE_INFINITY],
      ['f9fc00', Number.NEGATIVE_INFINITY],
      ['f97e00', Number.NaN],
    ];
    for (const [hex, value] of cases) expect(decodeItem(fromHex(hex)), hex).toEqual({ ok: true, value });
  });

  test('byte strings are plain copies owning their memory, also from a Buffer', () => {
    const input = Buffer.from('820a43010203', 'hex');
    const decoded = decodeItem(input);
    if (!decoded.ok) throw decoded.error;
    const bytes = (decoded.value as unknown[])[1] as Uint8Array;
    expect(Object.getPrototypeOf(bytes)).toBe(Uint8Array.prototype);
    expect(bytes.buffer).not.toBe(input.buffer);
    input.fill(0);
    expect(toHex(bytes)).toBe('010203');
  });

  const rejected: Array<[string, string, string]> = [
    ['empty input', '', 'not-cbor'],
    ['truncated', '8201', 'not-cbor'],
    ['two items', '0101', 'trailing-bytes'],
    ['a tag', 'c11a00000000', 'unsupported-item'],
    ['an indefinite array', '9fff', 'unsupported-item'],
    ['invalid UTF-8', '62c328', 'not-cbor'],
    ['duplicate map keys', 'a2616100616100', 'unsupported-item'],
    ['a simple value', 'f0', 'unsupported-item'],
    ['nesting 17 deep', `${'81'.repeat(17)}00`, 'unsupported-item'],
  ];
  test.each(rejected)('rejects %s', (_name, hex, reason) => {
    const decoded = decodeItem(fromHex(hex));
    expect(decoded.ok).toBe(false);
    if (!decoded.ok) expect(decoded.error.reason).toBe(reason);
  });

  test('never throws, and what it accepts cborg reads the same', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const decoded = decodeItem(bytes);
        if (!decoded.ok) return;
        const expected: unknown = cborg.decode(bytes, {
          useMaps: true,
          allowIndefinite: false,
          allowUndefined: true,
          strict: false,
        });
        expect(normalise(decoded.value)).toEqual(normalise(expected));
      }),
      { numRuns: 5000 },
    );
  });
});

/** cborg and we may differ in number vs bigint for safe values written with 8-byte heads. */
function normalise(value: unknown): unknown {
  const safe = 2n ** 53n - 1n;
  if (typeof value === 'bigint' && value >= -safe && value <= safe) return Number(value);
  if (Array.isArray(value)) return value.map(normalise);
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [normalise(k), normalise(v)]));
  return value;
}

describe('encodeJsonCbor writes deterministic CBOR (RFC 8949 §4.2.1)', () => {
  test('map keys in the order of their encodings, whatever order the object lists them in', () => {
    const hex = 'a2647374657029656c6576656cf93400';
    expect(toHex(encodeJsonCbor({ level: 0.25, step: -10 }))).toBe(hex);
    expect(toHex(encodeJsonCbor({ step: -10, level: 0.25 }))).toBe(hex);
    // Shorter UTF-8 first, then bytewise: "a" "b" "aa" "é" (c3a9), then U+FFFF "a" (efbfbf61) before
    // U+1F600 (f09f9880), although UTF-16 (JavaScript's string order) puts the emoji's d83d first.
    const keys = { '\u{1f600}': 5, '\uffffa': 4, é: 3, aa: 2, b: 1, a: 0 };
    expect(toHex(encodeJsonCbor(keys))).toBe('a66161006162016261610262c3a90364efbfbf610464f09f988005');
    expect(toHex(encodeJsonCbor({ outer: { z: 1, y: [{ b: 2, a: 1 }] } }))).toBe(
      toHex(encodeJsonCbor({ outer: { y: [{ a: 1, b: 2 }], z: 1 } })),
    );
  });

  test('floats in the shortest width that holds them exactly; whole safe numbers as integers', () => {
    const cases: Array<[number, string]> = [
      [0.25, 'f93400'],
      [-0, 'f98000'],
      [65_504.5, 'fa477fe080'],
      [100_000.5, 'fa47c35040'],
      [3 * 2 ** -24, 'f90003'],
      [2 ** -25, 'fa33000000'],
      [0.1, 'fb3fb999999999999a'],
      [1, '01'],
      [-10, '29'],
      [2 ** 53 - 1, '1b001fffffffffffff'],
      [2 ** 53, 'fa5a000000'],
    ];
    for (const [value, hex] of cases) expect(toHex(encodeJsonCbor(value)), String(value)).toBe(hex);
  });

  test('refuses NaN and the infinities: JSON has none, and no peer accepts them', () => {
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      expect(() => encodeJsonCbor(value)).toThrow(EncodeError);
    }
  });

  test('the decoder stays liberal: unsorted keys and wider floats read as the same value', () => {
    // {"level": 0.25 as float64, "step": -10}: neither the key order nor the width is deterministic.
    const decoded = decodeJsonCbor(fromHex('a2656c6576656cfb3fd0000000000000647374657029'));
    expect(decoded).toEqual({ level: 0.25, step: -10 });
  });

  test('writes what cborg writes with its RFC 8949 options', () => {
    fc.assert(
      fc.property(jsonArb, (value) => {
        expect(toHex(encodeJsonCbor(value))).toBe(toHex(cborg.encode(value, cborg.rfc8949EncodeOptions)));
      }),
      { numRuns: 3000 },
    );
  });
});

describeWhenAvailable('encodeJsonCbor against python3-cbor2 (canonical)', cbor2Missing(), () => {
  test('our bytes = cborg RFC 8949 bytes = cbor2 canonical bytes, for random JSON values', () => {
    fc.assert(
      fc.property(fc.array(jsonArb, { minLength: 1, maxLength: 200 }), (values) => {
        const theirs = cbor2CanonicalOfJson(values.map((value) => JSON.stringify(value)));
        values.forEach((value, i) => {
          const ours = toHex(encodeJsonCbor(value));
          expect(ours, JSON.stringify(value)).toBe(theirs[i]);
          expect(ours, JSON.stringify(value)).toBe(toHex(cborg.encode(value, cborg.rfc8949EncodeOptions)));
        });
      }),
      { numRuns: 15 },
    );
  });

  test('every float16 (NaN, infinities and -0 included) and the edges of float32 and float64', () => {
    const values: number[] = [];
    for (let bits = 0; bits <= 0xffff; bits++) {
      const half = decodeItem(Uint8Array.of(0xf9, bits >>> 8, bits & 0xff));
      if (half.ok) values.push(half.value as number);
    }
    values.push(
      ...[2 ** -149, 2 ** -126, 3.4028234663852886e38, 65_520, 2 ** -14 + 2 ** -30, 16_777_217],
      ...[5e-324, 2.2250738585072014e-308, Number.MAX_VALUE, 2 ** 53 + 2, -(2 ** 63), 1e21],
    );
    const theirs = cbor2CanonicalOfJson(values.map(jsonNumberText));
    // Pairs, so that a difference names its value.
    expect(values.map((value) => [String(value), floatOrIntegerHex(value)])).toEqual(
      values.map((value, i) => [String(value), theirs[i]]),
    );
  });
});

/** What encodeJsonCbor writes for a number, or for NaN and ±Infinity (which it refuses) the float writer's bytes. */
function floatOrIntegerHex(value: number): string {
  if (Number.isFinite(value)) return toHex(encodeJsonCbor(value));
  const out = new Uint8Array(floatSize(value));
  writeFloat(out, 0, value);
  return toHex(out);
}

/** A number as Python's json reads it: -0.0, NaN and the infinities too (JSON.stringify has none of them). */
function jsonNumberText(value: number): string {
  if (Object.is(value, -0)) return '-0.0';
  return Number.isFinite(value) ? JSON.stringify(value) : String(value);
}

/**
 * Numbers of every width: integers, float16-exact, float32-exact and other doubles, integers beyond
 * 2^53 − 1 (floats). Not -0 (cborg writes it as the integer 0) and nothing in float16's subnormal range
 * (cborg writes the subnormals that are not powers of two as float32): both are checked against cbor2
 * alone, with every float16, above.
 */
const numberArb: fc.Arbitrary<number> = fc
  .oneof(
    fc.maxSafeInteger(),
    fc
      .tuple(fc.constantFrom(1, -1), fc.integer({ min: 1024, max: 2047 }), fc.integer({ min: -24, max: 5 }))
      .map(([sign, significand, exponent]) => sign * significand * 2 ** exponent),
    fc.float({ noNaN: true, noDefaultInfinity: true }),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.constantFrom(2 ** 53, -(2 ** 53), 2 ** 60, 1e21, -1e300),
  )
  .map((value) => value + 0)
  .filter((value) => !(Math.abs(value) >= 2 ** -24 && Math.abs(value) < 2 ** -14));

/** Text from every plane, and from a few characters whose UTF-8 and UTF-16 orders differ (keys collide often). */
const textArb = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.string({ unit: fc.constantFrom('a', 'b', 'é', '\uffff', '\u{1f600}', '\u{10ffff}'), maxLength: 4 }),
);

/** JSON values as JSON.parse builds them (plain objects, "__proto__" an ordinary key). */
const jsonArb: fc.Arbitrary<JsonValue> = fc
  .letrec<{ value: JsonValue }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constant(null),
      fc.boolean(),
      numberArb,
      textArb,
      fc.array(tie('value'), { maxLength: 5 }),
      fc.dictionary(textArb, tie('value'), { maxKeys: 6 }),
    ),
  }))
  .value.map((value) => JSON.parse(JSON.stringify(value)) as JsonValue);

describe('decodeMessage payloadView', () => {
  const frame = encodeMessage({ type: 'data', id: 9, ackRequested: false, payload: Buffer.from('payload') });

  test('returns the payload as a plain Uint8Array view of the input', () => {
    const pool = Buffer.alloc(64, 0xee);
    pool.set(frame, 10);
    const input = pool.subarray(10, 10 + frame.length);
    const result = decodeMessage(input, { payloadView: true });
    if (result.kind !== 'message' || result.message.type !== 'data') throw new Error('expected data');
    const payload = result.message.payload;
    expect(Object.getPrototypeOf(payload)).toBe(Uint8Array.prototype);
    expect(payload.buffer).toBe(pool.buffer);
    expect(payload.byteOffset).toBe(pool.byteOffset + 10 + frame.length - 7);
    expect(Buffer.from(payload).toString()).toBe('payload');
    pool.fill(0x41, 10);
    expect(Buffer.from(payload).toString()).toBe('AAAAAAA');
  });

  test('is off by default and when false: the payload is a copy', () => {
    for (const options of [undefined, {}, { payloadView: false }]) {
      const input = Uint8Array.from(frame);
      const result = decodeMessage(input, options);
      if (result.kind !== 'message' || result.message.type !== 'data') throw new Error('expected data');
      expect(result.message.payload.buffer).not.toBe(input.buffer);
    }
  });

  test('changes nothing else: same results as without it, for valid and invalid frames', () => {
    const frames = [
      '840100014568656c6c6f',
      '870101182a42686907480123456789abcdef48fedcba9876543210',
      '84020007f6',
    ];
    for (const hex of [...frames, '840100014568656c6c', '84010001d84041ff']) {
      expect(decodeMessage(fromHex(hex), { payloadView: true })).toEqual(decodeMessage(fromHex(hex)));
    }
  });

  test('a 64 KiB payload is not copied', () => {
    const payload = new Uint8Array(64 * 1024).fill(3);
    const encoded = encodeMessage({ type: 'data', id: 1, ackRequested: false, payload });
    expect(encoded.buffer.byteLength).toBe(encoded.length);
    const result = decodeMessage(encoded, { payloadView: true });
    if (result.kind !== 'message' || result.message.type !== 'data') throw new Error('expected data');
    expect(result.message.payload.buffer).toBe(encoded.buffer);
    expect(result.message.payload.length).toBe(payload.length);
  });
});
