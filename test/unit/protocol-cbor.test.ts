// Unit tests of the hand-written CBOR layer under agent/protocol: the UTF-8 validator against a fatal
// TextDecoder, encodeItem/decodeItem against cborg, and decodeMessage's payloadView option.
import * as cborg from 'cborg';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  type CborValue,
  decodeItem,
  decodeMessage,
  EncodeError,
  encodeItem,
  encodeMessage,
} from '../../agent/protocol/index.js';
import { isWellFormedUtf8, utf8Length, writeUtf8 } from '../../agent/protocol/utf8.js';
import { fromHex, toHex } from './protocol-vector-json.js';

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
