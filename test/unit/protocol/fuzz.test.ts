// Property tests of agent/protocol: whatever bytes arrive, decodeMessage returns a result and never
// throws; valid messages round-trip exactly; what we accept, cborg (an independent decoder) reads alike.
import * as cborg from 'cborg';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  type Announcement,
  announceMessage,
  type DecodeResult,
  decodeMessage,
  encodeMessage,
  encodeMessageParts,
  MAX_TTL_HOPS,
  type Message,
  MessageType,
  ORIGIN_SIGNATURE_AUTH_BYTES,
  ORIGIN_TAG_BYTES,
  type Route,
} from '../../../agent/protocol/index.js';
import { mutate, mutationsOverwriting } from '../../support/byte-mutation.js';
import { toHex } from './vector-json.js';

const KINDS = ['message', 'unknown-type', 'error'];

/** Decodes and checks the result is one of the three kinds; an exception fails the property. */
function decodeSafely(bytes: Uint8Array): DecodeResult {
  const result = decodeMessage(bytes);
  expect(KINDS).toContain(result.kind);
  if (result.kind === 'error') expect(typeof result.error.reason).toBe('string');
  return result;
}

/** hdr of a v2 message: (version − 1) × 32 + type (§2). */
const hdr = (type: number): number => 32 + type;

const peerIdArb = fc.uint8Array({ minLength: 8, maxLength: 8 }).map(toHex);
const routeArb: fc.Arbitrary<Route> = fc.record({
  ttlHops: fc.integer({ min: 0, max: MAX_TTL_HOPS }),
  source: peerIdArb,
  destination: peerIdArb,
});
/** An origin's auth in either form; the codec checks its length, not what it proves. */
const authArb = fc.oneof(
  fc.uint8Array({ minLength: ORIGIN_TAG_BYTES, maxLength: ORIGIN_TAG_BYTES }),
  fc.uint8Array({ minLength: ORIGIN_SIGNATURE_AUTH_BYTES, maxLength: ORIGIN_SIGNATURE_AUTH_BYTES }),
);
/** A route with its auth, or neither (link-local). */
const routingArb = fc.option(fc.record({ route: routeArb, auth: authArb }), { nil: undefined });
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

/** A name as §13.2 allows it: 1..63 code points, no lone surrogates. */
const nameArb = fc.string({ unit: 'binary', minLength: 1, maxLength: 63 });
const announcementArb: fc.Arbitrary<Announcement> = fc.record({
  initialTtl: fc.integer({ min: 1, max: MAX_TTL_HOPS }),
  name: nameArb,
  groups: fc.array(nameArb, { maxLength: 4 }),
  neighbours: fc.array(peerIdArb, { maxLength: 4 }),
  capabilities: fc.record({
    actions: fc.array(nameArb, { maxLength: 3 }),
    sensors: fc.array(fc.record({ name: nameArb, unit: fc.option(nameArb, { nil: null }) }), {
      maxLength: 3,
    }),
  }),
  keyEpoch: fc.oneof(fc.constantFrom(0, 23, 24, 2 ** 32, Number.MAX_SAFE_INTEGER), fc.nat(1000)),
  revocationDigest: fc.uint8Array({ minLength: 8, maxLength: 8 }),
});

// Flags are only generated where they survive a round trip: flood on routed DATA and ACK, system on
// DATA; each either set or absent (a decoded message never says `false` for them).
const messageArb: fc.Arbitrary<Message> = fc.oneof(
  fc
    .record({
      id: idArb,
      ackRequested: fc.boolean(),
      system: fc.boolean(),
      flood: fc.boolean(),
      payload: payloadArb,
      routing: routingArb,
    })
    .map(
      ({ system, flood, routing, ...rest }): Message => ({
        type: 'data',
        ...rest,
        ...(system && { system: true }),
        ...(routing !== undefined && { ...routing, ...(flood && { flood: true }) }),
      }),
    ),
  fc.record({ id: idArb, flood: fc.boolean(), routeLost: fc.boolean(), routing: routingArb }).map(
    ({ id, flood, routeLost, routing }): Message => ({
      type: 'ack',
      id,
      ...(routing !== undefined && {
        ...routing,
        ...(flood && { flood: true }),
        ...(routeLost && { routeLost: true }),
      }),
    }),
  ),
  idArb.map((id): Message => ({ type: 'ping', id })),
  idArb.map((id): Message => ({ type: 'pong', id })),
  idArb.map((id): Message => ({ type: 'cutover', id })),
  fc
    .record({
      code: fc.oneof(fc.nat(3), fc.maxSafeNat()),
      reason: fc.string({ unit: 'binary', maxLength: 40 }),
    })
    .map(({ code, reason }): Message => ({ type: 'close', code, reason })),
  fc
    .array(
      fc
        .tuple(
          fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }),
          fc.integer({ min: 0, max: 65_535 }),
        )
        .map(([host, port]) => `${host}:${port}`),
      { maxLength: 16 },
    )
    .map((addresses): Message => ({ type: 'endpoints', addresses })),
  fc
    .record({
      id: idArb,
      relays: fc.boolean(),
      announcement: announcementArb,
      route: routeArb,
      auth: authArb,
    })
    .map((fields): Message => announceMessage(fields)),
);

const routedMessageArb = messageArb.filter((m) => 'route' in m && m.route !== undefined);

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
 * cborg's reading of bytes we accepted. Loose options: we accept undefined, floats and non-shortest
 * integers where the protocol allows them (ignored fields, longer-than-shortest heads).
 */
function cborgLoose(bytes: Uint8Array): unknown {
  return cborg.decode(bytes, { useMaps: true, allowIndefinite: false });
}

/**
 * For a frame we accepted as a message: cborg must decode it too, to an array whose envelope fields say
 * the same thing: hdr, the meaningful flag bits, id, body, the route with its auth after dst, and the
 * elements after the eighth as ignored fields.
 */
function expectCborgAgrees(bytes: Uint8Array, result: DecodeResult): void {
  if (result.kind !== 'message') return;
  const decoded = cborgLoose(bytes);
  expect(Array.isArray(decoded)).toBe(true);
  const fields = decoded as unknown[];
  const message = result.message;
  const flags = BigInt(fields[1] as number | bigint);
  const flag = (bit: number): boolean => (flags & BigInt(bit)) !== 0n;
  expect(fields[0]).toBe(hdr(MessageType[message.type]));
  if ('id' in message) expect(Number(fields[2])).toBe(message.id);
  if (message.type === 'data') {
    expect(flag(1)).toBe(message.ackRequested);
    expect(flag(4)).toBe(message.system === true);
    expect(toHex(fields[3] as Uint8Array)).toBe(toHex(message.payload));
  }
  if (message.type === 'ack' && message.route !== undefined) expect(flag(1)).toBe(message.routeLost === true);
  if (message.type === 'close') expect(fields[3]).toEqual([message.code, message.reason]);
  if (message.type === 'endpoints') {
    expect((cborgLoose(fields[3] as Uint8Array) as unknown[])[0]).toEqual(message.addresses);
  }
  if (message.type === 'announce') {
    expect(flag(1)).toBe(message.relays);
    expect(toHex(fields[3] as Uint8Array)).toBe(toHex(message.body));
  }
  if (message.type === 'data' || message.type === 'ack' || message.type === 'announce') {
    if (message.route !== undefined) {
      if (message.type !== 'announce') expect(flag(2)).toBe(message.flood === true);
      expect(fields[4]).toBe(message.route.ttlHops);
      expect(toHex(fields[5] as Uint8Array)).toBe(message.route.source);
      expect(toHex(fields[6] as Uint8Array)).toBe(message.route.destination);
      expect(toHex(fields[7] as Uint8Array)).toBe(toHex(message.auth as Uint8Array));
    }
  }
  if (!('route' in message) || message.route === undefined) {
    // Link-local: either exactly four elements, or the four route fields null before ignored ones.
    if (fields.length > 4) expect(fields.slice(4, 8)).toEqual([null, null, null, null]);
  }
  expect(result.ignoredFields).toBe(Math.max(0, fields.length - 8));
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
    // Array heads of 4 (link-local), 7 (v1's routed form, now invalid), 8 (routed) and 9 (with an ignored
    // field) elements; the v2 hdrs of DATA (0x18 0x21), routed DATA and ANNOUNCE (0x18 0x26); a CLOSE up to
    // its body.
    const prefixArb = fc.constantFrom(
      [0x84],
      [0x87],
      [0x88],
      [0x89],
      [0x84, 0x18, 0x21],
      [0x88, 0x18, 0x21],
      [0x88, 0x18, 0x26],
      [0x84, 0x18, 0x25, 0x00, 0x00, 0x82],
    );
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

describe('the v2 envelope rules hold for every valid frame', () => {
  test('a routed frame with its auth of any other length, or without it (5 to 7 elements), is bad-field', () => {
    fc.assert(
      fc.property(
        routedMessageArb,
        fc.nat(200).filter((n) => n !== ORIGIN_TAG_BYTES && n !== ORIGIN_SIGNATURE_AUTH_BYTES),
        (message, length) => {
          const fields = cborg.decode(encodeMessage(message)) as unknown[];
          expect(fields).toHaveLength(8);
          const reasons = [
            decodeMessage(cborg.encode([...fields.slice(0, 7), new Uint8Array(length)])),
            ...[5, 6, 7].map((count) => decodeMessage(cborg.encode(fields.slice(0, count)))),
          ].map((result) => result.kind === 'error' && result.error.reason);
          expect(reasons).toEqual(['bad-field', 'bad-field', 'bad-field', 'bad-field']);
        },
      ),
      { numRuns: 500 },
    );
  });

  test("the same frame with another version's hdr is unsupported-version", () => {
    fc.assert(
      fc.property(
        messageArb.filter((m) => m.type !== 'data' || m.payload.length <= 64),
        fc.oneof(fc.constant(0), fc.integer({ min: 2, max: 2 ** 20 })),
        (message, versionMinusOne) => {
          const fields = cborg.decode(encodeMessage(message)) as unknown[];
          const typeCode = (fields[0] as number) % 32;
          fields[0] = versionMinusOne * 32 + typeCode;
          const result = decodeMessage(cborg.encode(fields));
          expect(result.kind === 'error' && result.error.reason).toBe('unsupported-version');
        },
      ),
      { numRuns: 500 },
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
