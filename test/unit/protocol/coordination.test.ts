// The coordination wire format (docs/PROTOCOL.md §14), pinned by test/fixtures/coordination-vectors.json:
// the doc's §14.9 tables and the fixture list the same vectors, our encoder writes exactly those bytes and
// our decoder reads them back, and two independent CBOR implementations agree: cborg reads the documented
// structure and writes the same bytes for it with its RFC 8949 (deterministic) options, and python3-cbor2
// re-encodes each vector to itself in its canonical mode. Properties: whatever bytes arrive,
// decodeCoordination returns a message or a DecodeError and never throws; valid messages round-trip
// exactly, and cborg writes them as we do.
import { readFileSync } from 'node:fs';
import * as cborg from 'cborg';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  CALL_ID_BYTES,
  type CoordinationMessage,
  decodeCoordination,
  encodeCoordination,
  MAX_CALL_TIMEOUT_MS,
  MAX_LEASE_MS,
  MAX_WATCH_INTERVAL_MS,
  MAX_WATCH_MS,
  MIN_WATCH_INTERVAL_MS,
} from '../../../agent/protocol/coordination.js';
import {
  DecodeError,
  type DecodeErrorReason,
  decodeMessage,
  encodeMessage,
  MessageType,
} from '../../../agent/protocol/index.js';
import type { JsonObject, JsonValue } from '../../../agent/protocol/json-cbor.js';
import { mutate, mutationsOverwriting } from '../../support/byte-mutation.js';
import { describeDeterministicUnderCbor2, docVectorHexes } from './system-vectors.js';
import { fromHex, type JsonMessage, messageFromJson, toHex } from './vector-json.js';

// ---------------------------------------------------------------------------------------------------------
// The fixture

/** A coordination message as JSON: byte fields (callId) as hex. */
type JsonCoordination = Record<string, unknown> & { kind: CoordinationMessage['kind'] };

interface CoordinationVector {
  name: string;
  hex: string;
  /** A coordination message (the payload of a system DATA). */
  coordination?: JsonCoordination;
  /** A whole envelope (ANNOUNCE with capabilities, system DATA), in the form of protocol-vectors.json. */
  message?: JsonMessage;
  /** Decodes to the message but is not what an encoder writes. */
  decodeOnly?: boolean;
  /** decodeCoordination rejects it with this reason. */
  error?: DecodeErrorReason;
}

const vectors = JSON.parse(
  readFileSync(new URL('../../fixtures/coordination-vectors.json', import.meta.url), 'utf8'),
) as CoordinationVector[];
const coordinationVectors = vectors.filter((v) => v.coordination !== undefined);
const encodable = coordinationVectors.filter((v) => v.decodeOnly !== true);
const envelopeVectors = vectors.filter((v) => v.message !== undefined);
const rejected = vectors.filter((v) => v.error !== undefined);

const BYTE_FIELDS = new Set(['callId']);

function coordinationFromJson(json: JsonCoordination): CoordinationMessage {
  const entries = Object.entries(json).map(([key, value]) => [
    key,
    BYTE_FIELDS.has(key) ? fromHex(value as string) : structuredClone(value),
  ]);
  return Object.fromEntries(entries) as CoordinationMessage;
}

/** The array a coordination message must be, per docs/PROTOCOL.md §14.2, built without our encoder. */
function expectedFields(m: CoordinationMessage): unknown[] {
  switch (m.kind) {
    case 'call':
      return [1, m.callId, m.action, m.timeoutMs, m.args, m.fireAt];
    case 'result':
      return [
        2,
        m.callId,
        m.outcome.ok,
        m.outcome.ok ? m.outcome.value : [m.outcome.error.code, m.outcome.error.message],
        m.firedAt,
      ];
    case 'time-request':
      return [3, m.t1];
    case 'time-reply':
      return [4, m.t1, m.t2, m.t3];
    case 'lease':
      return [5, m.requestId, m.op === 'acquire' ? 0 : 1, m.resource, m.ttlMs];
    case 'lease-reply':
      return [6, m.requestId, m.granted, m.holder === null ? null : fromHex(m.holder), m.remainingMs];
    case 'sensor-read':
      return [7, m.requestId, m.sensor];
    case 'sensor-value':
      return [
        8,
        m.requestId,
        m.sensor,
        m.reading.ok
          ? [true, m.reading.value, m.reading.unit, m.reading.readAt]
          : [false, m.reading.error.code, m.reading.error.message],
      ];
    case 'sensor-watch':
      return [9, m.sensor, m.intervalMs, m.ttlMs];
  }
}

/** cborg's deterministic encoding (RFC 8949 §4.2.1) of a value. */
function cborgEncode(value: unknown): Uint8Array {
  return cborg.encode(value, cborg.rfc8949EncodeOptions);
}

/** cborg's reading of bytes we produce or accept: maps as plain objects (args, values are JSON objects). */
function cborgDecode(bytes: Uint8Array, strict: boolean): unknown {
  return cborg.decode(bytes, {
    strict,
    useMaps: false,
    rejectDuplicateMapKeys: true,
    allowIndefinite: false,
    allowUndefined: false,
  });
}

// ---------------------------------------------------------------------------------------------------------
// Vectors

test('docs/PROTOCOL.md §14.9 and the fixture list the same vectors', () => {
  const inDoc = docVectorHexes('Coordination');
  expect(new Set(inDoc).size).toBe(inDoc.length);
  expect([...inDoc].sort()).toEqual(vectors.map((v) => v.hex).sort());
  expect(new Set(vectors.map((v) => v.name)).size).toBe(vectors.length);
});

test('the fixture covers every coordination kind, capabilities and the system flag', () => {
  const kinds = new Set(encodable.map((v) => v.coordination?.kind));
  expect([...kinds].sort()).toEqual([
    'call',
    'lease',
    'lease-reply',
    'result',
    'sensor-read',
    'sensor-value',
    'sensor-watch',
    'time-reply',
    'time-request',
  ]);
  expect(envelopeVectors.some((v) => v.message?.type === 'announce')).toBe(true);
  expect(envelopeVectors.filter((v) => v.message?.type === 'data').length).toBeGreaterThanOrEqual(2);
});

describe.each(encodable)('coordination vector: $name', (vector) => {
  const message = coordinationFromJson(vector.coordination as JsonCoordination);

  test('encodeCoordination gives exactly the vector bytes', () => {
    expect(toHex(encodeCoordination(message))).toBe(vector.hex);
  });

  test('decodeCoordination gives the message', () => {
    expect(decodeCoordination(fromHex(vector.hex))).toEqual(message);
  });

  test('cborg (strict: shortest integers) reads the same array', () => {
    expect(cborgDecode(fromHex(vector.hex), true)).toEqual(expectedFields(message));
  });

  test('cborg writes exactly the vector bytes for that array (RFC 8949 deterministic encoding)', () => {
    expect(toHex(cborgEncode(expectedFields(message)))).toBe(vector.hex);
  });
});

describe.each(coordinationVectors.filter((v) => v.decodeOnly === true))('decode only: $name', (vector) => {
  const message = coordinationFromJson(vector.coordination as JsonCoordination);

  test('decodeCoordination gives the message; it re-encodes to other (deterministic) bytes', () => {
    expect(decodeCoordination(fromHex(vector.hex))).toEqual(message);
    const canonical = toHex(encodeCoordination(message));
    expect(canonical).not.toBe(vector.hex);
    expect(encodable.map((v) => v.hex)).toContain(canonical);
  });

  test('cborg reads the same fields', () => {
    const fields = cborgDecode(fromHex(vector.hex), false) as unknown[];
    const expected = expectedFields(message);
    expect(fields.slice(0, expected.length)).toEqual(expected);
  });
});

describe.each(rejected)('rejected: $name', (vector) => {
  test(`decodeCoordination returns a DecodeError with reason ${vector.error}`, () => {
    const result = decodeCoordination(fromHex(vector.hex));
    expect(result).toBeInstanceOf(DecodeError);
    expect((result as DecodeError).reason).toBe(vector.error);
  });
});

/** hdr of a v2 message: (version − 1) × 32 + type (§2). */
const hdr = (type: number): number => 32 + type;

describe.each(envelopeVectors)('envelope vector: $name', (vector) => {
  const json = vector.message as JsonMessage;
  const message = messageFromJson(json);

  test('encodeMessage gives exactly the vector bytes', () => {
    expect(toHex(encodeMessage(message))).toBe(vector.hex);
  });

  test('decodeMessage gives the message', () => {
    expect(decodeMessage(fromHex(vector.hex))).toEqual({ kind: 'message', message, ignoredFields: 0 });
  });

  test('cborg reads the same envelope and body', () => {
    // Built from the fixture's JSON, not from our encoder's output (an ANNOUNCE message carries its body
    // as our encoder wrote it).
    const fields = cborgDecode(fromHex(vector.hex), true) as unknown[];
    if (json.type === 'data') {
      const flags =
        (json.ackRequested ? 1 : 0) | (json.flood === true ? 2 : 0) | (json.system === true ? 4 : 0);
      expect(fields.slice(0, 4)).toEqual([hdr(MessageType.data), flags, json.id, fromHex(json.payload)]);
      // A system DATA carries one coordination message.
      expect(decodeCoordination(fromHex(json.payload))).not.toBeInstanceOf(DecodeError);
    } else if (json.type === 'announce') {
      expect(fields.slice(0, 3)).toEqual([hdr(MessageType.announce), json.relays ? 1 : 0, json.id]);
      // §13.2: the body is a byte string holding this array; capabilities, keyEpoch and the revocation
      // digest are all required.
      const { initialTtl, name, groups, neighbours, capabilities, keyEpoch, revocationDigest } =
        json.announcement;
      expect(cborgDecode(fields[3] as Uint8Array, true)).toEqual([
        initialTtl,
        name,
        groups,
        neighbours.map(fromHex),
        [capabilities.actions, capabilities.sensors.map((s) => [s.name, s.unit])],
        keyEpoch,
        fromHex(revocationDigest),
      ]);
    } else {
      throw new Error(`no envelope vector of type ${json.type} expected`);
    }
    if ('route' in json && json.route !== undefined) {
      // The routed form: ttl, src, dst, then the origin's auth (a 16-byte tag or 96-byte key and signature).
      const { ttlHops, source, destination } = json.route;
      expect(json.auth, 'a routed vector carries its auth').toBeDefined();
      const auth = fromHex(json.auth as string);
      expect([16, 96]).toContain(auth.length);
      expect(fields.slice(4)).toEqual([ttlHops, fromHex(source), fromHex(destination), auth]);
    } else {
      expect(fields).toHaveLength(4);
    }
  });

  test('cborg writes exactly the vector bytes for what it read (RFC 8949 deterministic encoding)', () => {
    expect(toHex(cborgEncode(cborgDecode(fromHex(vector.hex), true)))).toBe(vector.hex);
  });
});

describeDeterministicUnderCbor2('coordination-vectors.json', () =>
  [...encodable, ...envelopeVectors].map((v) => v.hex),
);

// ---------------------------------------------------------------------------------------------------------
// Properties

/** A name as §14.1 defines it: 1..63 code points, no lone surrogates. */
const nameArb = fc.string({ unit: 'binary', minLength: 1, maxLength: 63 });
const requestIdArb = fc.oneof(fc.constantFrom(0, 23, 24, 255, 65_536, 0xffff_ffff), fc.nat(0xffff_ffff));
/** Times: whole (uint) or fractional (float32 or float64), never −0 (it would come back as 0). */
const timeArb = fc.oneof(
  fc.maxSafeNat(),
  fc.constantFrom(0, 1_767_225_600_000, 1_767_225_600_000.25, 0.5, 2 ** 60),
  fc.double({ min: 0, max: 1e13, noNaN: true }).map((t) => t + 0),
);
const bytesArb = (length: number) => fc.uint8Array({ minLength: length, maxLength: length });
const peerIdArb = bytesArb(8).map(toHex);
/** JSON values, normalised through JSON (no −0: CBOR has no negative zero integer). */
const jsonArb: fc.Arbitrary<JsonValue> = fc
  .jsonValue({ maxDepth: 4, stringUnit: 'binary' })
  .map((value) => JSON.parse(JSON.stringify(value)) as JsonValue);
const argsArb: fc.Arbitrary<JsonObject> = fc
  .dictionary(fc.string({ unit: 'binary', maxLength: 12 }), jsonArb, { maxKeys: 6 })
  .map((value) => JSON.parse(JSON.stringify(value)) as JsonObject);
const errorArb = fc.record({
  code: fc.string({ unit: 'grapheme-ascii', maxLength: 63 }),
  message: fc.string({ unit: 'grapheme-ascii', maxLength: 1024 }),
});

const messageArb: fc.Arbitrary<CoordinationMessage> = fc.oneof(
  fc.record({
    kind: fc.constant('call' as const),
    callId: bytesArb(CALL_ID_BYTES),
    action: nameArb,
    args: argsArb,
    fireAt: fc.option(timeArb, { nil: null }),
    timeoutMs: fc.integer({ min: 1, max: MAX_CALL_TIMEOUT_MS }),
  }),
  fc.record({
    kind: fc.constant('result' as const),
    callId: bytesArb(CALL_ID_BYTES),
    outcome: fc.oneof(
      jsonArb.map((value) => ({ ok: true as const, value })),
      errorArb.map((error) => ({ ok: false as const, error })),
    ),
    firedAt: fc.option(timeArb, { nil: null }),
  }),
  fc.record({ kind: fc.constant('time-request' as const), t1: timeArb }),
  fc.record({ kind: fc.constant('time-reply' as const), t1: timeArb, t2: timeArb, t3: timeArb }),
  fc.record({
    kind: fc.constant('lease' as const),
    requestId: requestIdArb,
    op: fc.constantFrom('acquire' as const, 'release' as const),
    resource: nameArb,
    ttlMs: fc.integer({ min: 0, max: MAX_LEASE_MS }),
  }),
  fc.record({
    kind: fc.constant('lease-reply' as const),
    requestId: requestIdArb,
    granted: fc.boolean(),
    holder: fc.option(peerIdArb, { nil: null }),
    remainingMs: fc.integer({ min: 0, max: MAX_LEASE_MS }),
  }),
  fc.record({ kind: fc.constant('sensor-read' as const), requestId: requestIdArb, sensor: nameArb }),
  fc.record({
    kind: fc.constant('sensor-value' as const),
    requestId: requestIdArb,
    sensor: nameArb,
    reading: fc.oneof(
      fc.record({
        ok: fc.constant(true as const),
        value: fc.oneof(
          fc.integer(),
          fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => v + 0),
          fc.string(),
          fc.boolean(),
        ),
        unit: fc.option(nameArb, { nil: null }),
        readAt: timeArb,
      }),
      fc.record({ ok: fc.constant(false as const), error: errorArb }),
    ),
  }),
  fc.record({
    kind: fc.constant('sensor-watch' as const),
    sensor: nameArb,
    intervalMs: fc.integer({ min: MIN_WATCH_INTERVAL_MS, max: MAX_WATCH_INTERVAL_MS }),
    ttlMs: fc.integer({ min: 0, max: MAX_WATCH_MS }),
  }),
);

/** decodeCoordination must return a message or a DecodeError; an exception fails the property. */
function decodeSafely(bytes: Uint8Array): CoordinationMessage | DecodeError {
  const result = decodeCoordination(bytes);
  if (result instanceof DecodeError) {
    expect(typeof result.reason).toBe('string');
  } else {
    expect(typeof result.kind).toBe('string');
  }
  return result;
}

// Overwrites with heads of interesting items: floats (incl. NaN, infinities), maps, negative ints, tags,
// simple values.
const mutationArb = mutationsOverwriting([
  0x1b, 0x20, 0x3b, 0x40, 0x60, 0x80, 0xa1, 0xc1, 0xf4, 0xf6, 0xf7, 0xf9, 0xfa, 0xfb,
]);

/** A decoded SENSOR-VALUE with NaN or ±Infinity: accepted by the decoder but not encodable (see below). */
function hasNonFiniteReading(message: CoordinationMessage): boolean {
  return (
    message.kind === 'sensor-value' &&
    message.reading.ok &&
    typeof message.reading.value === 'number' &&
    !Number.isFinite(message.reading.value)
  );
}

const vectorBytesArb = fc.constantFrom(...vectors.map((v) => fromHex(v.hex)));

describe('decodeCoordination never throws', () => {
  test('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        decodeSafely(bytes);
      }),
      { numRuns: 5000 },
    );
  });

  test('random bytes after the head of a coordination array', () => {
    const prefixArb = fc.constantFrom([0x86, 0x01], [0x85, 0x02], [0x82, 0x03], [0x84, 0x08], [0x85, 0x05]);
    fc.assert(
      fc.property(prefixArb, fc.uint8Array({ maxLength: 60 }), (prefix, rest) => {
        decodeSafely(Uint8Array.from([...prefix, ...rest]));
      }),
      { numRuns: 5000 },
    );
  });

  test('vectors and valid messages, mutated and truncated; whatever decodes re-encodes to the same message', () => {
    fc.assert(
      fc.property(
        fc.oneof(vectorBytesArb, messageArb.map(encodeCoordination)),
        fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
        (bytes, mutations) => {
          const result = decodeSafely(mutations.reduce(mutate, bytes));
          if (result instanceof DecodeError || hasNonFiniteReading(result)) return;
          expect(decodeCoordination(encodeCoordination(result))).toEqual(result);
        },
      ),
      { numRuns: 5000 },
    );
  });

  test('every proper prefix of a well-formed vector is rejected (a CBOR item has no complete prefix)', () => {
    for (const vector of vectors.filter((v) => v.error === undefined)) {
      const bytes = fromHex(vector.hex);
      for (let end = 0; end < bytes.length; end++) {
        expect(decodeSafely(bytes.subarray(0, end)), `${vector.name} cut at ${end}`).toBeInstanceOf(
          DecodeError,
        );
      }
    }
  });
});

describe('round trips', () => {
  test('encode → decode gives the message, and re-encoding gives the same bytes', () => {
    fc.assert(
      fc.property(messageArb, (message) => {
        const bytes = encodeCoordination(message);
        const decoded = decodeSafely(bytes);
        expect(decoded).toEqual(message);
        expect(toHex(encodeCoordination(decoded as CoordinationMessage))).toBe(toHex(bytes));
      }),
      { numRuns: 2000 },
    );
  });

  test('cborg reads every encoded message as the documented array, and writes that array as we do', () => {
    fc.assert(
      fc.property(messageArb, (message) => {
        const bytes = encodeCoordination(message);
        expect(cborgDecode(bytes, true)).toEqual(expectedFields(message));
        expect(toHex(cborgEncode(expectedFields(message)))).toBe(toHex(bytes));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('values a reading cannot hold', () => {
  test('a SENSOR-VALUE reading of NaN or Infinity is rejected', () => {
    for (const float of ['f97e00', 'f97c00', 'f9fc00']) {
      const hex = `8408182a6b74656d706572617475726584f5${float}f600`;
      expect(decodeCoordination(fromHex(hex)), float).toBeInstanceOf(DecodeError);
    }
  });
});
