// Unit tests of agent/protocol beyond the fixed vectors: envelope overhead, memory ownership of inputs
// and outputs, encoder validation and the decoder's handling of each kind of hostile or odd input.
import { describe, expect, test } from 'vitest';
import { FrameTooLargeError, NearmeshError } from '../../agent/errors.js';
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
} from '../../agent/protocol/index.js';
import { fromHex, toHex } from './protocol-vector-json.js';

const MiB = 1024 * 1024;
const route = { ttlHops: 15, source: '0123456789abcdef', destination: 'fedcba9876543210' };

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
    // 1 array + 1 hdr + 1 flags + 9 id (2^32 needs the 8-byte head) + 5 bstr head (1 MiB).
    expect(worst).toBe(17);
  });

  test('typical sizes: 5 bytes for a small message, 13 at most for ids below 2^32', () => {
    const overhead = (id: number, size: number) =>
      encodeMessage({ type: 'data', id, ackRequested: false, payload: new Uint8Array(size) }).length - size;
    expect(overhead(1, 10)).toBe(5);
    expect(overhead(1000, 200)).toBe(8);
    expect(overhead(2 ** 32 - 1, MiB)).toBe(13);
  });

  test('the exported bounds hold for the largest id, link-local and routed', () => {
    for (const size of payloadSizes) {
      const payload = new Uint8Array(size);
      const id = Number.MAX_SAFE_INTEGER;
      const local = encodeMessage({ type: 'data', id, ackRequested: true, payload });
      const routed = encodeMessage({ type: 'data', id, ackRequested: true, payload, route });
      expect(local.length - size).toBeLessThanOrEqual(MAX_DATA_OVERHEAD_BYTES);
      expect(routed.length - size).toBeLessThanOrEqual(MAX_ROUTED_DATA_OVERHEAD_BYTES);
    }
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
    expect(toHex(a)).toBe('84030001f6');
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
    expect(toHex(fromArray)).toBe('8401000343616263');
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
});

describe('encodeMessage validation', () => {
  const bad: Array<[string, unknown]> = [
    ['negative id', { type: 'ping', id: -1 }],
    ['fractional id', { type: 'ping', id: 1.5 }],
    ['id 2^53', { type: 'ack', id: 2 ** 53 }],
    ['NaN id', { type: 'pong', id: Number.NaN }],
    ['payload not bytes', { type: 'data', id: 1, ackRequested: false, payload: 'text' }],
    ['ttl 16', { type: 'ack', id: 1, route: { ...route, ttlHops: 16 } }],
    ['negative ttl', { type: 'ack', id: 1, route: { ...route, ttlHops: -1 } }],
    ['upper-case source', { type: 'ack', id: 1, route: { ...route, source: '0123456789ABCDEF' } }],
    ['short destination', { type: 'ack', id: 1, route: { ...route, destination: '0123' } }],
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
    for (const input of [null, undefined, '84030001f6', 42, {}, [0x84], new ArrayBuffer(4)]) {
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
    // id 1 written as a 4-byte and as an 8-byte uint; flags as a 1-byte uint.
    expect(decodeHex('8401001a0000000140')).toMatchObject({ kind: 'message', message: { id: 1 } });
    expect(decodeHex('8401001b000000000000000140')).toMatchObject({ kind: 'message', message: { id: 1 } });
    expect(decodeHex('840118010140')).toMatchObject({ kind: 'message', message: { ackRequested: true } });
  });

  test('flags may be a 64-bit uint: only bit 0 counts', () => {
    expect(decodeHex('84011b80000000000000010140')).toMatchObject({
      kind: 'message',
      message: { type: 'data', ackRequested: true },
    });
    expect(decodeHex('84011b80000000000000000140')).toMatchObject({ message: { ackRequested: false } });
  });

  test('the ack flag on other types is ignored', () => {
    expect(decodeHex('84030105f6')).toEqual({
      kind: 'message',
      message: { type: 'ping', id: 5 },
      ignoredFields: 0,
    });
  });

  test('CLOSE ignores the id a peer put there', () => {
    expect(decodeHex('84050007820060')).toEqual({
      kind: 'message',
      message: { type: 'close', code: 0, reason: '' },
      ignoredFields: 0,
    });
  });

  test('checks the version before anything else it could object to', () => {
    // version 2 (hdr 0x21) with a tag and an indefinite map: still 'unsupported-version'.
    expect(reasonOf(decodeHex('8418210000c1bf01ff'))).toBe('unsupported-version');
    // hdr with huge version bits.
    expect(reasonOf(decodeHex('841b7fffffffffffffff000040'))).toBe('unsupported-version');
  });

  const rejected: Array<[string, string, string]> = [
    ['empty input', '', 'not-cbor'],
    ['a lone break', 'ff', 'not-cbor'],
    ['reserved additional info 28', '84010001fc', 'not-cbor'],
    ['an array claiming 2^32 elements', '9b0000000100000000', 'not-cbor'],
    ['a byte string claiming 2^63 bytes', '840100015b8000000000000000', 'not-cbor'],
    ['an indefinite byte string', '840100015f4101ff', 'unsupported-item'],
    ['an unassigned simple value in a trailing field', '88030005f6f6f6f6f0', 'unsupported-item'],
    ['a one-byte simple value', '88030005f6f6f6f6f820', 'unsupported-item'],
    ['duplicate keys in a trailing map', '88030005f6f6f6f6a201000100', 'unsupported-item'],
    ['an empty array', '80', 'bad-field'],
    ['hdr is text', '846164000040', 'bad-field'],
    ['hdr is negative', '8420000040', 'bad-field'],
    ['flags negative', '8401200140', 'bad-field'],
    ['id negative', '8401002040', 'bad-field'],
    ['id as a float (1.5)', '840100f93e0040', 'bad-field'],
    ['DATA body is text', '840100016161', 'bad-field'],
    ['DATA body is null', '84010001f6', 'bad-field'],
    ['ACK body is not null', '8402000140', 'bad-field'],
    ['PING body is undefined', '84030001f7', 'bad-field'],
    ['CLOSE body of one element', '8405000081 00', 'bad-field'],
    ['CLOSE body of three elements', '84050000830060 00', 'bad-field'],
    ['CLOSE code as float', '8405000082f93c0060', 'bad-field'],
    ['CLOSE reason as bytes', '84050000820040', 'bad-field'],
    ['CLOSE with a route', '8705000082006001480123456789abcdef48fedcba9876543210', 'bad-field'],
    ['six elements', '86010001400148 0123456789abcdef', 'bad-field'],
    ['src of 7 bytes', '870100014001470123456789abcd48fedcba9876543210', 'bad-field'],
    ['src as text', '870100014001 50 30313233343536373839616263646566 48fedcba9876543210', 'bad-field'],
    ['ttl null but src present', '87010001 40 f6 480123456789abcdef 48fedcba9876543210', 'bad-field'],
    ['unknown type with an invalid route', '870900014010480123456789abcdef48fedcba9876543210', 'bad-field'],
    ['unknown type with three elements', '83090001', 'bad-field'],
  ];
  test.each(rejected)('rejects %s', (_name, hex, reason) => {
    expect(reasonOf(decodeHex(hex.replaceAll(' ', '')))).toBe(reason);
  });

  test('trailing fields may hold any allowed item, including floats and nested maps', () => {
    const hex = '8b030005f6f6f6f6fb3ff8000000000000f97c00a2016178028180f7';
    expect(decodeHex(hex)).toEqual({ kind: 'message', message: { type: 'ping', id: 5 }, ignoredFields: 4 });
  });

  test('nesting is limited, without recursion trouble for deep input', () => {
    const nest = (depth: number) => `${'81'.repeat(depth)}00`;
    // The envelope is level 1, so items inside it may open 15 more levels (limit 16).
    expect(decodeHex(`88030005f6f6f6f6${nest(15)}`).kind).toBe('message');
    expect(reasonOf(decodeHex(`88030005f6f6f6f6${nest(16)}`))).toBe('unsupported-item');
    expect(reasonOf(decodeMessage(fromHex(`88030005f6f6f6f6${nest(100_000)}`)))).toBe('unsupported-item');
  });
});
