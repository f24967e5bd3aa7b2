// The stream wire format (agent/protocol/stream.ts, docs/PROTOCOL.md §16), pinned by
// test/fixtures/stream-vectors.json: the doc's test vector tables and the fixture list the same vectors,
// encodeStream writes exactly those bytes and decodeStream reads them back, cborg reads the documented
// arrays. Properties: every message round-trips exactly; whatever bytes arrive, decodeStream returns a
// message or a DecodeError and never throws; stream names are judged acceptable or not as documented.
import * as cborg from 'cborg';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { DecodeError, EncodeError } from '../../../../agent/protocol/errors.js';
import {
  decodeStream,
  END_CODES,
  encodeStream,
  MAX_REASON_CHARS,
  MAX_STREAM_DATA_BYTES,
  MAX_STREAM_NAME_BYTES,
  REFUSE_CODES,
  STREAM_DATA_OVERHEAD_BYTES,
  STREAM_ID_BYTES,
  StreamKind,
  type StreamMessage,
  streamNameProblem,
} from '../../../../agent/protocol/stream.js';
import { systemServiceOf } from '../../../../agent/protocol/system-kind.js';
import {
  bytesArb,
  nameArb,
  reasonArb,
  testDecoderRobustness,
  uintArb,
} from '../../../support/system-codec.js';
import { describeSystemVectors } from '../../protocol/system-vectors.js';
import { fromHex } from '../../protocol/vector-json.js';

/** The array of each message, per docs/PROTOCOL.md §16.2, built without our encoder. */
function expectedFields(m: StreamMessage): unknown[] {
  switch (m.kind) {
    case 'open':
      return [24, m.streamId, m.name];
    case 'accept':
      return [25, m.streamId, m.credit];
    case 'refuse':
      return [26, m.streamId, m.code, m.message];
    case 'data':
      return [27, m.streamId, m.offset, m.bytes];
    case 'credit':
      return [28, m.streamId, m.upTo];
    case 'end':
      return m.outcome.ok
        ? [29, m.streamId, true, m.outcome.length]
        : [29, m.streamId, false, m.outcome.code, m.outcome.message];
  }
}

const vectors = describeSystemVectors<StreamMessage>({
  file: 'stream-vectors.json',
  section: 'Streams',
  key: 'stream',
  byteFields: ['streamId', 'bytes'],
  encode: encodeStream,
  decode: decodeStream,
  expectedFields,
});

test('the fixture has every stream kind and both END forms', () => {
  const messages = vectors.map((v) => v.stream as StreamMessage | undefined).filter((m) => m !== undefined);
  expect([...new Set(messages.map((m) => m.kind))].sort()).toEqual(Object.keys(StreamKind).sort());
  const ends = messages.filter((m) => m.kind === 'end');
  expect(new Set(ends.map((m) => m.outcome.ok))).toEqual(new Set([true, false]));
});

test('kinds are 24..29, and the agent hands each to the stream service', () => {
  expect(Object.values(StreamKind).sort((a, b) => a - b)).toEqual([24, 25, 26, 27, 28, 29]);
  for (const vector of vectors.filter((v) => v.stream !== undefined)) {
    expect(systemServiceOf(fromHex(vector.hex)), vector.name).toBe('stream');
  }
});

test('DATA overhead is what the largest header costs', () => {
  const data = encodeStream({
    kind: 'data',
    streamId: new Uint8Array(STREAM_ID_BYTES),
    offset: Number.MAX_SAFE_INTEGER - MAX_STREAM_DATA_BYTES,
    bytes: new Uint8Array(MAX_STREAM_DATA_BYTES),
  });
  expect(data.length - MAX_STREAM_DATA_BYTES).toBe(STREAM_DATA_OVERHEAD_BYTES);
});

const id = bytesArb(STREAM_ID_BYTES);
const name = nameArb(40, MAX_STREAM_NAME_BYTES);

const message: fc.Arbitrary<StreamMessage> = fc.oneof(
  fc.record({ kind: fc.constant('open' as const), streamId: id, name }),
  fc.record({ kind: fc.constant('accept' as const), streamId: id, credit: uintArb }),
  fc.record({
    kind: fc.constant('refuse' as const),
    streamId: id,
    code: fc.constantFrom(...REFUSE_CODES),
    message: reasonArb,
  }),
  fc.record({
    kind: fc.constant('data' as const),
    streamId: id,
    offset: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 300 }),
  }),
  fc.record({ kind: fc.constant('credit' as const), streamId: id, upTo: uintArb }),
  fc.record({
    kind: fc.constant('end' as const),
    streamId: id,
    outcome: fc.oneof(
      fc.record({ ok: fc.constant(true as const), length: uintArb }),
      fc.record({ ok: fc.constant(false as const), code: fc.constantFrom(...END_CODES), message: reasonArb }),
    ),
  }),
);

/** decodeStream must return a message or a DecodeError; an exception fails the property. */
function decodeSafely(bytes: Uint8Array): StreamMessage | DecodeError {
  const result = decodeStream(bytes);
  if (result instanceof DecodeError) expect(typeof result.reason).toBe('string');
  else expect(Object.keys(StreamKind)).toContain(result.kind);
  return result;
}

describe('stream codec', () => {
  test('every message round-trips, and cborg reads the documented array', () => {
    fc.assert(
      fc.property(message, (original) => {
        const bytes = encodeStream(original);
        expect(decodeSafely(bytes)).toEqual(original);
        expect(cborg.decode(bytes, { strict: true })).toEqual(expectedFields(original));
      }),
      { numRuns: 2000 },
    );
  });

  test('random bytes after the head of a stream array never throw', () => {
    const prefix = fc.constantFrom(
      ...Object.values(StreamKind).flatMap((kind) => [
        [0x83, 0x18, kind, 0x50],
        [0x84, 0x18, kind, 0x50],
        [0x85, 0x18, kind],
      ]),
    );
    fc.assert(
      fc.property(prefix, fc.uint8Array({ maxLength: 60 }), (head, rest) => {
        decodeSafely(Uint8Array.from([...head, ...rest]));
      }),
      { numRuns: 5000 },
    );
  });

  testDecoderRobustness({
    decode: decodeStream,
    encode: encodeStream,
    message,
    interestingBytes: [0x18, 0x1b, 0x20, 0x40, 0x60, 0x80, 0x84, 0xf4, 0xf5, 0xf9, 0xfb],
    seeds: vectors.map((v) => fromHex(v.hex)),
  });

  test('CBOR arrays of a stream kind but the wrong fields are refused', () => {
    const sid = new Uint8Array(STREAM_ID_BYTES);
    const cases: unknown[] = [
      [24, sid],
      [24, sid, ''],
      [24, sid, 'a'.repeat(MAX_STREAM_NAME_BYTES + 1)],
      [24, sid, 'é'.repeat(MAX_STREAM_NAME_BYTES / 2 + 1)],
      [24, sid, new Uint8Array(3)],
      [24, new Uint8Array(17), 'x'],
      [25, sid, -1],
      [25, sid, 2 ** 53],
      [25, sid, 1, 2],
      [26, sid, 'nope', ''],
      [26, sid, 'busy', 'm'.repeat(MAX_REASON_CHARS + 1)],
      [26, sid, 'busy'],
      [27, sid, 0, new Uint8Array(0)],
      [27, sid, 0, new Uint8Array(MAX_STREAM_DATA_BYTES + 1)],
      [27, sid, Number.MAX_SAFE_INTEGER, new Uint8Array(1)],
      [27, sid, 0, 'text, not bytes'],
      [28, sid],
      [28, sid, 'x'],
      [29, sid, true],
      [29, sid, true, 5, 'extra'],
      [29, sid, false, 'closed'],
      [29, sid, false, 'unknown-code', ''],
      [29, sid, null, 5],
      [30, sid],
      [23, sid],
      [],
      'not an array',
    ];
    for (const value of cases) {
      expect(decodeStream(cborg.encode(value)), JSON.stringify(value)).toBeInstanceOf(DecodeError);
    }
  });

  test('encoding an invalid message throws EncodeError', () => {
    const sid = new Uint8Array(STREAM_ID_BYTES);
    const invalid: unknown[] = [
      { kind: 'credit', streamId: new Uint8Array(3), upTo: 0 },
      { kind: 'open', streamId: sid, name: '' },
      { kind: 'open', streamId: sid, name: 'x'.repeat(MAX_STREAM_NAME_BYTES + 1) },
      { kind: 'accept', streamId: sid, credit: -1 },
      { kind: 'refuse', streamId: sid, code: 'nope', message: '' },
      { kind: 'data', streamId: sid, offset: 0, bytes: new Uint8Array(0) },
      { kind: 'data', streamId: sid, offset: 1.5, bytes: new Uint8Array(1) },
      { kind: 'end', streamId: sid, outcome: { ok: true, length: -1 } },
      { kind: 'end', streamId: sid, outcome: { ok: false, code: 'nope', message: '' } },
    ];
    for (const value of invalid) expect(() => encodeStream(value as StreamMessage)).toThrow(EncodeError);
  });

  test('long messages are clipped to what a decoder accepts', () => {
    const decoded = decodeStream(
      encodeStream({
        kind: 'end',
        streamId: new Uint8Array(STREAM_ID_BYTES),
        outcome: { ok: false, code: 'aborted', message: '€'.repeat(5000) },
      }),
    );
    expect(decoded).not.toBeInstanceOf(DecodeError);
    expect((decoded as { outcome: { message: string } }).outcome.message.length).toBeLessThanOrEqual(
      MAX_REASON_CHARS,
    );
  });
});

describe('streamNameProblem', () => {
  test.each([
    [''],
    ['a'.repeat(MAX_STREAM_NAME_BYTES + 1)],
    ['é'.repeat(MAX_STREAM_NAME_BYTES / 2 + 1)],
    [' leading'],
    ['trailing '],
    ['line\nbreak'],
    ['nul\u0000'],
    ['del\u007f'],
    ['c1\u0085'],
    ['sep\u2028'],
    ['bidi\u202eoverride'],
    ['isolate\u2066'],
    ['\ud800'],
  ])('refuses %j', (candidate) => {
    expect(streamNameProblem(candidate)).not.toBeNull();
  });

  test.each([
    ['camera'],
    ['camera/front'],
    ['logs:kernel'],
    ['a b'],
    ['日本語'],
    ['a'.repeat(MAX_STREAM_NAME_BYTES)],
  ])('accepts %j', (candidate) => {
    expect(streamNameProblem(candidate)).toBeNull();
  });
});
