// Property tests of agent/protocol: whatever bytes arrive, decodeMessage returns a result and never
// throws; valid messages round-trip exactly; what we accept, cborg (an independent decoder) reads alike.
import * as cborg from 'cborg';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  type DecodeResult,
  decodeMessage,
  encodeMessage,
  encodeMessageParts,
  MAX_TTL_HOPS,
  type Message,
  MessageType,
  type Route,
} from '../../agent/protocol/index.js';
import { mutate, mutationsOverwriting } from '../support/byte-mutation.js';
import { toHex } from './protocol-vector-json.js';

const KINDS = ['message', 'unknown-type', 'error'];

/** Decodes and checks the result is one of the three kinds; an exception fails the property. */
function decodeSafely(bytes: Uint8Array): DecodeResult {
  const result = decodeMessage(bytes);
  expect(KINDS).toContain(result.kind);
  if (result.kind === 'error') expect(typeof result.error.reason).toBe('string');
  return result;
}

const peerIdArb = fc.uint8Array({ minLength: 8, maxLength: 8 }).map(toHex);
const routeArb: fc.Arbitrary<Route> = fc.record({
  ttlHops: fc.integer({ min: 0, max: MAX_TTL_HOPS }),
  source: peerIdArb,
  destination: peerIdArb,
});
// Biased towards the boundaries where CBOR heads change size.
const idArb = fc.oneof(
  fc.constantFrom(0, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER),
  fc.nat(1000),
  fc.maxSafeNat(),
);
const payloadArb = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 200, maxLength: 70_000 }) },
);

const messageArb: fc.Arbitrary<Message> = fc.oneof(
  fc
    .record({
      id: idArb,
      ackRequested: fc.boolean(),
      payload: payloadArb,
      route: fc.option(routeArb, { nil: undefined }),
    })
    .map(
      ({ route, ...rest }): Message => ({ type: 'data', ...rest, ...(route === undefined ? {} : { route }) }),
    ),
  fc
    .record({ id: idArb, route: fc.option(routeArb, { nil: undefined }) })
    .map(({ id, route }): Message => ({ type: 'ack', id, ...(route === undefined ? {} : { route }) })),
  idArb.map((id): Message => ({ type: 'ping', id })),
  idArb.map((id): Message => ({ type: 'pong', id })),
  fc
    .record({
      code: fc.oneof(fc.nat(3), fc.maxSafeNat()),
      reason: fc.string({ unit: 'binary', maxLength: 40 }),
    })
    .map(({ code, reason }): Message => ({ type: 'close', code, reason })),
);

/** Small frames only: mutation tests want many runs and the payload size does not matter there. */
const smallFrameArb = messageArb
  .filter((m) => m.type !== 'data' || m.payload.length <= 64)
  .map((m) => encodeMessage(m));

// Overwrites with bytes that are heads of interesting items: tags, indefinite, breaks, 8-byte heads,
// arrays, simple values.
const mutationArb = mutationsOverwriting([
  0x1b, 0x3b, 0x5f, 0x7f, 0x9f, 0xbf, 0xc0, 0xd8, 0xf7, 0xf8, 0xf9, 0xfb, 0xff,
]);

/**
 * For a frame we accepted as a message: cborg must decode it too, to an array whose envelope fields say
 * the same thing. Loose cborg options, because we accept what v1 allows in ignored fields (undefined,
 * floats, non-shortest integers).
 */
function expectCborgAgrees(bytes: Uint8Array, result: DecodeResult): void {
  if (result.kind !== 'message') return;
  const decoded: unknown = cborg.decode(bytes, { useMaps: true, allowIndefinite: false });
  expect(Array.isArray(decoded)).toBe(true);
  const fields = decoded as unknown[];
  const message = result.message;
  expect(fields[0]).toBe(MessageType[message.type]);
  if (message.type !== 'close' && message.type !== 'endpoints') expect(Number(fields[2])).toBe(message.id);
  if (message.type === 'data') {
    expect(Number(BigInt(fields[1] as number | bigint) & 1n) === 1).toBe(message.ackRequested);
    expect(toHex(fields[3] as Uint8Array)).toBe(toHex(message.payload));
  }
  if (message.type === 'close') expect(fields[3]).toEqual([message.code, message.reason]);
  if ((message.type === 'data' || message.type === 'ack') && message.route !== undefined) {
    expect(fields[4]).toBe(message.route.ttlHops);
    expect(toHex(fields[5] as Uint8Array)).toBe(message.route.source);
    expect(toHex(fields[6] as Uint8Array)).toBe(message.route.destination);
  }
  expect(result.ignoredFields).toBe(Math.max(0, fields.length - 7));
}

describe('decodeMessage never throws', () => {
  test('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
        expectCborgAgrees(bytes, decodeSafely(bytes));
      }),
      { numRuns: 5000 },
    );
  });

  test('random bytes that start like an envelope', () => {
    const prefixArb = fc.constantFrom([0x84], [0x87], [0x88], [0x84, 0x01], [0x84, 0x05, 0x00, 0x00, 0x82]);
    fc.assert(
      fc.property(prefixArb, fc.uint8Array({ maxLength: 40 }), (prefix, rest) => {
        const bytes = Uint8Array.from([...prefix, ...rest]);
        expectCborgAgrees(bytes, decodeSafely(bytes));
      }),
      { numRuns: 5000 },
    );
  });

  test('valid frames with random mutations (bit flips, truncation, insertion, deletion, overwrites)', () => {
    fc.assert(
      fc.property(
        smallFrameArb,
        fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
        (frame, mutations) => {
          const bytes = mutations.reduce(mutate, frame);
          const result = decodeSafely(bytes);
          expectCborgAgrees(bytes, result);
          // Whatever we accept, we can re-encode, and that re-encoding decodes to the same message.
          if (result.kind === 'message') {
            expect(decodeMessage(encodeMessage(result.message))).toEqual({
              kind: 'message',
              message: result.message,
              ignoredFields: 0,
            });
          }
        },
      ),
      { numRuns: 5000 },
    );
  });

  test('random splits and concatenations of valid frames', () => {
    fc.assert(
      fc.property(
        fc.array(smallFrameArb, { minLength: 1, maxLength: 5 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (frames, cuts) => {
          const stream = Uint8Array.from(frames.flatMap((f) => Array.from(f)));
          const points = [...new Set([0, stream.length, ...cuts.map((c) => c % (stream.length + 1))])].sort(
            (a, b) => a - b,
          );
          for (let i = 0; i + 1 < points.length; i++) {
            decodeSafely(stream.subarray(points[i], points[i + 1]));
          }
          const whole = decodeSafely(stream);
          if (frames.length > 1) {
            expect(whole.kind === 'error' && whole.error.reason).toBe('trailing-bytes');
          } else {
            expect(whole.kind).toBe('message');
          }
          // Every strict prefix of a frame is a truncated item.
          const first = frames[0] as Uint8Array;
          const prefix = first.subarray(0, (cuts[0] ?? 0) % first.length);
          const truncated = decodeSafely(prefix);
          expect(truncated.kind === 'error' && truncated.error.reason).toBe('not-cbor');
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('round trip', () => {
  test('decodeMessage(encodeMessage(m)) is m for any valid message', () => {
    fc.assert(
      fc.property(messageArb, (message) => {
        const encoded = encodeMessage(message);
        expect(decodeMessage(encoded)).toEqual({ kind: 'message', message, ignoredFields: 0 });
      }),
      { numRuns: 2000 },
    );
  });

  test('encodeMessageParts(m) joined is exactly encodeMessage(m), and a bulk payload is not copied', () => {
    fc.assert(
      fc.property(messageArb, (message) => {
        const parts = encodeMessageParts(message);
        expect(toHex(Buffer.concat(parts))).toBe(toHex(encodeMessage(message)));
        if (message.type === 'data' && message.payload.length >= 4096)
          expect(parts).toContain(message.payload);
      }),
      { numRuns: 1000 },
    );
  });

  test('the encoding is the one cborg writes for the same array (shortest forms, no tags)', () => {
    fc.assert(
      fc.property(messageArb, (message) => {
        const encoded = encodeMessage(message);
        const array = cborg.decode(encoded);
        expect(toHex(cborg.encode(array))).toBe(toHex(encoded));
      }),
      { numRuns: 1000 },
    );
  });
});
