// Unit tests of agent/protocol beyond the fixed vectors: envelope overhead, memory ownership of inputs
// and outputs, encoder validation and the decoder's handling of each kind of hostile or odd input.
import { describe, expect, test } from 'vitest';
import { FrameTooLargeError, NearmeshError } from '../../../agent/core/errors.js';
import {
  DecodeError,
  type DecodeResult,
  decodeMessage,
  EncodeError,
  encodeMessage,
  MAX_DATA_OVERHEAD_BYTES,
  MAX_ENCODED_MESSAGE_BYTES,
  MAX_ROUTED_DATA_OVERHEAD_BYTES,
  type Message,
} from '../../../agent/protocol/index.js';
import { fromHex, toHex } from './vector-json.js';

const MiB = 1024 * 1024;
const route = { ttlHops: 15, source: '0123456789abcdef', destination: 'fedcba9876543210' };
// The codec only checks the lengths of an origin's auth, not what it proves: made-up bytes of each form.
const tag = new Uint8Array(16).fill(7);
const signatureAuth = new Uint8Array(96).fill(9);
/** src, dst and a 16-byte auth as CBOR hex, for hand-written routed frames. */
const SRC = '480123456789abcdef';
const DST = '48fedcba9876543210';
const TAG = `50${'07'.repeat(16)}`;

function reasonOf(result: DecodeResult): string {
  return result.kind === 'error' ? result.error.reason : result.kind;
}

function decodeHex(hex: string): DecodeResult {
  return decodeMessage(fromHex(hex));
}

describe('envelope overhead', () => {
  const payloadSizes = [0, 1, 23, 24, 255, 256, 65_535, 65_536, MiB];
  const ids = [0, 1, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32];

  test('a link-local DATA adds at most 20 bytes (payloads up to 1 MiB, ids up to 2^32)', () => {
    let worst = 0;
    for (const size of payloadSizes) {
      const payload = new Uint8Array(size).fill(0xa5);
      for (const id of ids) {
        for (const ackRequested of [false, true]) {
          const encoded = encodeMessage({ type: 'data', id, ackRequested, payload });
          const overhead = encoded.length - payload.length;
          expect(overhead).toBeLessThanOrEqual(20);
          worst = Math.max(worst, overhead);
        }
      }
    }
    // 1 array + 2 hdr (v2 hdrs are 32 and up, past the 1-byte head) + 1 flags + 9 id (2^32 needs the
    // 8-byte head) + 5 bstr head (1 MiB): the exported bound is reached.
    expect(worst).toBe(18);
    expect(worst).toBe(MAX_DATA_OVERHEAD_BYTES);
  });

  test('typical sizes: 6 bytes for a small message, 14 at most for ids below 2^32', () => {
    // 4 bytes of array head, hdr and flags, then the heads of the id and of the payload.
    const overhead = (id: number, size: number) =>
      encodeMessage({ type: 'data', id, ackRequested: false, payload: new Uint8Array(size) }).length - size;
    expect(overhead(1, 10)).toBe(6);
    expect(overhead(1000, 200)).toBe(9);
    expect(overhead(2 ** 32 - 1, MiB)).toBe(14);
  });

  test('the exported bounds hold for the largest id, link-local and routed, and are reached', () => {
    let worstLocal = 0;
    let worstTagged = 0;
    let worstSigned = 0;
    for (const size of payloadSizes) {
      const payload = new Uint8Array(size);
      const id = Number.MAX_SAFE_INTEGER;
      const local = encodeMessage({ type: 'data', id, ackRequested: true, payload }).length - size;
      const tagged =
        encodeMessage({ type: 'data', id, ackRequested: true, payload, route, auth: tag }).length - size;
      const signed =
        encodeMessage({ type: 'data', id, ackRequested: true, payload, route, auth: signatureAuth }).length -
        size;
      expect(local).toBeLessThanOrEqual(MAX_DATA_OVERHEAD_BYTES);
      expect(tagged).toBeLessThanOrEqual(MAX_ROUTED_DATA_OVERHEAD_BYTES);
      expect(signed).toBeLessThanOrEqual(MAX_ROUTED_DATA_OVERHEAD_BYTES);
      worstLocal = Math.max(worstLocal, local);
      worstTagged = Math.max(worstTagged, tagged);
      worstSigned = Math.max(worstSigned, signed);
    }
    expect(worstLocal).toBe(MAX_DATA_OVERHEAD_BYTES);
    // The route adds ttl 1 + src 9 + dst 9, then the auth: a 16-byte tag in 17 bytes, or 96 bytes of key
    // and signature in 98. The signature form is the bound.
    expect(worstTagged).toBe(18 + 19 + 17);
    expect(worstSigned).toBe(18 + 19 + 98);
    expect(MAX_ROUTED_DATA_OVERHEAD_BYTES).toBe(135);
    expect(MAX_DATA_OVERHEAD_BYTES).toBeLessThanOrEqual(20);
  });
});

describe('memory ownership', () => {
  test('encodeMessage returns a plain Uint8Array that owns its whole buffer', () => {
    const a = encodeMessage({ type: 'ping', id: 1 });
    const b = encodeMessage({ type: 'ping', id: 2 });
    for (const bytes of [a, b]) {
      expect(Object.getPrototypeOf(bytes)).toBe(Uint8Array.prototype);
      expect(bytes.byteOffset).toBe(0);
      expect(bytes.buffer.byteLength).toBe(bytes.length);
    }
    expect(a.buffer).not.toBe(b.buffer);
    expect(toHex(a)).toBe('8418230001f6');
  });

  test('a Buffer payload encodes exactly like a Uint8Array one (no tag)', () => {
    const fromBuffer = encodeMessage({
      type: 'data',
      id: 3,
      ackRequested: false,
      payload: Buffer.from('abc'),
    });
    const fromArray = encodeMessage({
      type: 'data',
      id: 3,
      ackRequested: false,
      payload: new Uint8Array([0x61, 0x62, 0x63]),
    });
    expect(toHex(fromBuffer)).toBe(toHex(fromArray));
    expect(toHex(fromArray)).toBe('841821000343616263');
  });

  test('a decoded payload is a plain Uint8Array copy: the input can be reused at once', () => {
    // A pooled Buffer at a non-zero offset, like a socket read.
    const pool = Buffer.alloc(64, 0xee);
    const frame = encodeMessage({
      type: 'data',
      id: 9,
      ackRequested: false,
      payload: Buffer.from('payload'),
    });
    pool.set(frame, 10);
    const input = pool.subarray(10, 10 + frame.length);
    const result = decodeMessage(input);
    if (result.kind !== 'message' || result.message.type !== 'data') throw new Error('expected data');
    const payload = result.message.payload;
    expect(Object.getPrototypeOf(payload)).toBe(Uint8Array.prototype);
    expect(payload.buffer).not.toBe(pool.buffer);
    pool.fill(0);
    expect(Buffer.from(payload).toString()).toBe('payload');
    // Decoding leaves the input object alone (cbor-x, used before, cached a `dataView` property on it).
    expect(Object.keys(input)).not.toContain('dataView');
    expect('dataView' in input).toBe(false);
  });

  test("a decoded auth is a plain Uint8Array copy too: the origin's proof outlives the input", () => {
    // A Buffer input, like a socket read: its slice() is a view, not a copy.
    const frame = encodeMessage({ type: 'ack', id: 9, route, auth: tag });
    const input = Buffer.alloc(frame.length + 10, 0xee);
    input.set(frame, 10);
    const result = decodeMessage(input.subarray(10));
    if (result.kind !== 'message' || result.message.type !== 'ack') throw new Error('expected ack');
    const auth = result.message.auth as Uint8Array;
    expect(Object.getPrototypeOf(auth)).toBe(Uint8Array.prototype);
    expect(auth.buffer).not.toBe(input.buffer);
    input.fill(0);
    expect(toHex(auth)).toBe(toHex(tag));
  });
});

describe('encodeMessage validation', () => {
  const bad: Array<[string, unknown]> = [
    ['negative id', { type: 'ping', id: -1 }],
    ['fractional id', { type: 'ping', id: 1.5 }],
    ['id 2^53', { type: 'ack', id: 2 ** 53 }],
    ['NaN id', { type: 'pong', id: Number.NaN }],
    ['payload not bytes', { type: 'data', id: 1, ackRequested: false, payload: 'text' }],
    // Routed ones with a valid auth, so that the route is what is refused.
    ['ttl 16', { type: 'ack', id: 1, route: { ...route, ttlHops: 16 }, auth: tag }],
    ['negative ttl', { type: 'ack', id: 1, route: { ...route, ttlHops: -1 }, auth: tag }],
    ['upper-case source', { type: 'ack', id: 1, route: { ...route, source: '0123456789ABCDEF' }, auth: tag }],
    ['short destination', { type: 'ack', id: 1, route: { ...route, destination: '0123' }, auth: tag }],
    // A routed message must carry its origin's auth, of one of the two lengths.
    ['route without auth', { type: 'ack', id: 1, route }],
    [
      'DATA route without auth',
      { type: 'data', id: 1, ackRequested: false, payload: new Uint8Array(1), route },
    ],
    ['auth of 15 bytes', { type: 'ack', id: 1, route, auth: new Uint8Array(15) }],
    ['auth of 17 bytes', { type: 'ack', id: 1, route, auth: new Uint8Array(17) }],
    ['auth of 95 bytes', { type: 'ack', id: 1, route, auth: new Uint8Array(95) }],
    ['auth of 97 bytes', { type: 'ack', id: 1, route, auth: new Uint8Array(97) }],
    ['auth not bytes', { type: 'ack', id: 1, route, auth: Array.from(tag) }],
    ['negative close code', { type: 'close', code: -1, reason: '' }],
    ['lone surrogate in reason', { type: 'close', code: 0, reason: 'a\ud800b' }],
    ['reason not a string', { type: 'close', code: 0, reason: 5 }],
    ['unknown type', { type: 'hello', id: 1 }],
  ];
  test.each(bad)('%s throws EncodeError', (_name, message) => {
    let thrown: unknown;
    try {
      encodeMessage(message as Message);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(EncodeError);
    expect(thrown).toBeInstanceOf(NearmeshError);
    expect((thrown as EncodeError).code).toBe('encode');
  });

  test('a payload above the maximum throws FrameTooLargeError', () => {
    const payload = new Uint8Array(MAX_ENCODED_MESSAGE_BYTES);
    expect(() => encodeMessage({ type: 'data', id: 1, ackRequested: false, payload })).toThrow(
      FrameTooLargeError,
    );
  });

  test('paired surrogates (emoji) in a reason round-trip', () => {
    const message: Message = { type: 'close', code: 0, reason: 'bye 👋' };
    expect(decodeMessage(encodeMessage(message))).toEqual({ kind: 'message', message, ignoredFields: 0 });
  });
});

describe('decodeMessage', () => {
  test('returns DecodeError values (a NearmeshError with code "decode")', () => {
    const result = decodeHex('');
    expect(result.kind).toBe('error');
    if (result.kind !== 'error') return;
    expect(result.error).toBeInstanceOf(DecodeError);
    expect(result.error).toBeInstanceOf(NearmeshError);
    expect(result.error.code).toBe('decode');
    expect(result.error.reason).toBe('not-cbor');
    expect(result.error.name).toBe('DecodeError');
  });

  test('never throws for inputs that are not Uint8Array at all', () => {
    for (const input of [null, undefined, '8418230001f6', 42, {}, [0x84], new ArrayBuffer(4)]) {
      expect(reasonOf(decodeMessage(input as unknown as Uint8Array))).toBe('not-cbor');
    }
  });

  test('rejects input above the maximum before parsing it', () => {
    const huge = new Uint8Array(MAX_ENCODED_MESSAGE_BYTES + 1);
    expect(reasonOf(decodeMessage(huge))).toBe('too-large');
  });

  test('decodes a DATA of the maximum size', () => {
    const payload = new Uint8Array(MAX_ENCODED_MESSAGE_BYTES - 20).fill(7);
    const encoded = encodeMessage({ type: 'data', id: 1, ackRequested: false, payload });
    const result = decodeMessage(encoded);
    expect(result.kind).toBe('message');
  });

  test('accepts non-shortest integer heads (liberal in what it reads)', () => {
    // id 1 written as a 4-byte and as an 8-byte uint; flags as a 1-byte uint; hdr 33 as a 2-byte uint.
    expect(decodeHex('841821001a0000000140')).toMatchObject({ kind: 'message', message: { id: 1 } });
    expect(decodeHex('841821001b000000000000000140')).toMatchObject({ kind: 'message', message: { id: 1 } });
    expect(decodeHex('84182118010140')).toMatchObject({ kind: 'message', message: { ackRequested: true } });
    expect(decodeHex('84190021000140')).toMatchObject({ kind: 'message', message: { type: 'data', id: 1 } });
  });

  test('flags may be a 64-bit uint: bits above the defined ones are ignored', () => {
    const payload = new Uint8Array(0);
    // Bit 63 with bit 0 (ack requested), then bit 63 alone.
    expect(decodeHex('8418211b80000000000000010140')).toEqual({
      kind: 'message',
      message: { type: 'data', id: 1, ackRequested: true, payload },
      ignoredFields: 0,
    });
    expect(decodeHex('8418211b80000000000000000140')).toEqual({
      kind: 'message',
      message: { type: 'data', id: 1, ackRequested: false, payload },
      ignoredFields: 0,
    });
  });

  test('the ack flag on other types is ignored', () => {
    expect(decodeHex('8418230105f6')).toEqual({
      kind: 'message',
      message: { type: 'ping', id: 5 },
      ignoredFields: 0,
    });
  });

  test('CLOSE ignores the id a peer put there', () => {
    expect(decodeHex('8418250007820060')).toEqual({
      kind: 'message',
      message: { type: 'close', code: 0, reason: '' },
      ignoredFields: 0,
    });
  });

  test('checks the version before anything else it could object to', () => {
    // Version 1 (hdr 0x01, what v1 agents send) and version 3 (hdr 0x41), each followed by a tag and a
    // malformed indefinite map: still 'unsupported-version'. The same frame in version 2 is refused for
    // the tag, so it is the version that decides.
    expect(reasonOf(decodeHex('84010000c1bf01ff'))).toBe('unsupported-version');
    expect(reasonOf(decodeHex('8418410000c1bf01ff'))).toBe('unsupported-version');
    expect(reasonOf(decodeHex('8418210000c1bf01ff'))).toBe('unsupported-item');
    // A v1 frame that was valid in v1 (a PING) and a v1 routed DATA of seven elements.
    expect(reasonOf(decodeHex('84030001f6'))).toBe('unsupported-version');
    expect(reasonOf(decodeHex(`870100014001${SRC}${DST}`))).toBe('unsupported-version');
    // hdr with huge version bits: the largest exact one, and one above 2^53.
    expect(reasonOf(decodeHex('841b001fffffffffffff000040'))).toBe('unsupported-version');
    expect(reasonOf(decodeHex('841b7fffffffffffffff000040'))).toBe('unsupported-version');
  });

  const rejected: Array<[string, string, string]> = [
    ['empty input', '', 'not-cbor'],
    ['a lone break', 'ff', 'not-cbor'],
    ['reserved additional info 28', '8418210001fc', 'not-cbor'],
    ['an array claiming 2^32 elements', '9b0000000100000000', 'not-cbor'],
    ['a byte string claiming 2^63 bytes', '84182100015b8000000000000000', 'not-cbor'],
    ['an indefinite byte string', '84182100015f4101ff', 'unsupported-item'],
    // Trailing fields follow the four null route fields of a link-local frame.
    ['an unassigned simple value in a trailing field', '8918230005f6f6f6f6f6f0', 'unsupported-item'],
    ['a one-byte simple value', '8918230005f6f6f6f6f6f820', 'unsupported-item'],
    ['duplicate keys in a trailing map', '8918230005f6f6f6f6f6a201000100', 'unsupported-item'],
    ['an empty array', '80', 'bad-field'],
    ['hdr is text', '846164000040', 'bad-field'],
    ['hdr is negative', '8420000040', 'bad-field'],
    ['flags negative', '841821200140', 'bad-field'],
    ['id negative', '841821002040', 'bad-field'],
    ['id as a float (1.5)', '84182100f93e0040', 'bad-field'],
    ['DATA body is text', '8418210001 6161', 'bad-field'],
    ['DATA body is null', '8418210001f6', 'bad-field'],
    ['ACK body is not null', '841822000140', 'bad-field'],
    ['PING body is undefined', '8418230001f7', 'bad-field'],
    ['CLOSE body of one element', '841825000081 00', 'bad-field'],
    ['CLOSE body of three elements', '8418250000830060 00', 'bad-field'],
    ['CLOSE code as float', '841825000082f93c0060', 'bad-field'],
    ['CLOSE reason as bytes', '8418250000820040', 'bad-field'],
    ['CLOSE with a route', `8818250000820060 01 ${SRC} ${DST} ${TAG}`, 'bad-field'],
    // The route fields and the auth are all present or all absent: 5 to 7 elements are invalid.
    ['five elements', '8518210001 40 01', 'bad-field'],
    ['six elements', `8618210001 40 01 ${SRC}`, 'bad-field'],
    ['seven elements: a route without auth', `8718210001 40 01 ${SRC} ${DST}`, 'bad-field'],
    ['src of 7 bytes', `8818210001 40 01 470123456789abcd ${DST} ${TAG}`, 'bad-field'],
    ['src as text', `8818210001 40 01 50 30313233343536373839616263646566 ${DST} ${TAG}`, 'bad-field'],
    ['ttl null but src present', `8818210001 40 f6 ${SRC} ${DST} ${TAG}`, 'bad-field'],
    ['a route with a null auth', `8818210001 40 01 ${SRC} ${DST} f6`, 'bad-field'],
    ['an auth without a route', `8818210001 40 f6 f6 f6 ${TAG}`, 'bad-field'],
    ['an empty auth', `8818210001 40 01 ${SRC} ${DST} 40`, 'bad-field'],
    ['an auth of 15 bytes', `8818210001 40 01 ${SRC} ${DST} 4f${'07'.repeat(15)}`, 'bad-field'],
    ['an auth of 17 bytes', `8818210001 40 01 ${SRC} ${DST} 51${'07'.repeat(17)}`, 'bad-field'],
    ['an auth of 95 bytes', `8818210001 40 01 ${SRC} ${DST} 585f${'07'.repeat(95)}`, 'bad-field'],
    ['an auth of 97 bytes', `8818210001 40 01 ${SRC} ${DST} 5861${'07'.repeat(97)}`, 'bad-field'],
    ['an auth of 16 characters of text', `8818210001 40 01 ${SRC} ${DST} 70${'30'.repeat(16)}`, 'bad-field'],
    ['unknown type with an invalid route', `8818290001 40 10 ${SRC} ${DST} ${TAG}`, 'bad-field'],
    ['unknown type with three elements', '83182900 01', 'bad-field'],
  ];
  test.each(rejected)('rejects %s', (_name, hex, reason) => {
    expect(reasonOf(decodeHex(hex.replaceAll(' ', '')))).toBe(reason);
  });

  test('trailing fields may hold any allowed item, including floats and nested maps', () => {
    // A link-local PING, its four route fields null, then four trailing fields.
    const hex = '8c18230005f6f6f6f6f6fb3ff8000000000000f97c00a2016178028180f7';
    expect(decodeHex(hex)).toEqual({ kind: 'message', message: { type: 'ping', id: 5 }, ignoredFields: 4 });
  });

  test('nesting is limited, without recursion trouble for deep input', () => {
    const nest = (depth: number) => `${'81'.repeat(depth)}00`;
    // The envelope is level 1, so items inside it may open 15 more levels (limit 16).
    const ping = '8918230005f6f6f6f6f6';
    expect(decodeHex(`${ping}${nest(15)}`).kind).toBe('message');
    expect(reasonOf(decodeHex(`${ping}${nest(16)}`))).toBe('unsupported-item');
    expect(reasonOf(decodeMessage(fromHex(`${ping}${nest(100_000)}`)))).toBe('unsupported-item');
  });
});
