// The wire format pinned by test/fixtures/protocol-vectors.json: our encoder writes exactly those bytes,
// our decoder reads them back, and cborg (an independent CBOR implementation) agrees on every field.
import { readFileSync } from 'node:fs';
import * as cborg from 'cborg';
import { describe, expect, test } from 'vitest';
import { decodeMessage, encodeMessage, type Message, MessageType } from '../../../agent/protocol/index.js';
import { fromHex, type JsonMessage, loadVectors, messageFromJson, toHex } from './vector-json.js';

const vectors = loadVectors();
const messageVectors = vectors.filter((v) => v.message !== undefined);
const encodableVectors = messageVectors.filter((v) => v.decodeOnly !== true);

/** hdr of a v2 message: (version − 1) × 32 + type (§2). */
const hdr = (type: number): number => 32 + type;

/** The envelope array a message must be, as plain values, per docs/PROTOCOL.md. */
function expectedFields(json: JsonMessage): unknown[] {
  const route = 'route' in json && json.route !== undefined ? json.route : undefined;
  const auth = 'auth' in json && json.auth !== undefined ? [fromHex(json.auth)] : [];
  const routeFields =
    route === undefined ? [] : [route.ttlHops, fromHex(route.source), fromHex(route.destination), ...auth];
  switch (json.type) {
    case 'data': {
      const flags =
        (json.ackRequested ? 1 : 0) | (json.flood === true ? 2 : 0) | (json.system === true ? 4 : 0);
      return [hdr(MessageType.data), flags, json.id, fromHex(json.payload), ...routeFields];
    }
    case 'ack': {
      const flags = (json.routeLost === true ? 1 : 0) | (json.flood === true ? 2 : 0);
      return [hdr(MessageType.ack), flags, json.id, null, ...routeFields];
    }
    case 'announce': {
      const { initialTtl, name, groups, neighbours, capabilities, keyEpoch, revocationDigest, about } =
        json.announcement;
      // The body is a byte string holding the CBOR item of §13.2.
      const body = cborg.encode([
        initialTtl,
        name,
        groups,
        neighbours.map(fromHex),
        [capabilities.actions, capabilities.sensors.map((sensor) => [sensor.name, sensor.unit])],
        keyEpoch,
        fromHex(revocationDigest),
        ...(about === undefined ? [] : [[about.board, about.software]]),
      ]);
      return [hdr(MessageType.announce), json.relays ? 1 : 0, json.id, body, ...routeFields];
    }
    case 'ping':
      return [hdr(MessageType.ping), 0, json.id, null];
    case 'pong':
      return [hdr(MessageType.pong), 0, json.id, null];
    case 'close':
      return [hdr(MessageType.close), 0, 0, [json.code, json.reason]];
    case 'endpoints':
      // The body is a byte string holding the CBOR item [addresses].
      return [hdr(MessageType.endpoints), 0, 0, cborg.encode([json.addresses])];
    case 'cutover':
      return [hdr(MessageType.cutover), 0, json.id, null];
    case 'sync': {
      // The body is a byte string holding the CBOR item [[digest, count, keyEpoch, revocationDigest]].
      const summary = [fromHex(json.digest), json.count, json.keyEpoch, fromHex(json.revocationDigest)];
      return [hdr(MessageType.sync), 0, 0, cborg.encode([summary])];
    }
  }
}

test('the fixture covers every message type and the special cases', () => {
  const types = new Set(messageVectors.map((v) => v.message?.type));
  expect([...types].sort()).toEqual([
    'ack',
    'announce',
    'close',
    'cutover',
    'data',
    'endpoints',
    'ping',
    'pong',
    'sync',
  ]);
  expect(messageVectors.some((v) => v.message?.type === 'data' && v.message.route !== undefined)).toBe(true);
  expect(messageVectors.some((v) => v.message?.type === 'data' && v.message.ackRequested)).toBe(true);
  expect(messageVectors.some((v) => v.message?.type === 'data' && v.message.payload === '')).toBe(true);
  expect(
    messageVectors.some((v) => v.message !== undefined && 'id' in v.message && v.message.id > 2 ** 32),
  ).toBe(true);
  expect(vectors.some((v) => v.ignoredFields === 1)).toBe(true);
  expect(vectors.some((v) => v.unknownType !== undefined)).toBe(true);
  expect(new Set(vectors.map((v) => v.name)).size).toBe(vectors.length);
});

describe.each(encodableVectors)('encode: $name', (vector) => {
  test('encodeMessage gives exactly the vector bytes', () => {
    const message = messageFromJson(vector.message as JsonMessage);
    expect(toHex(encodeMessage(message))).toBe(vector.hex);
  });

  test("cborg's encoder writes the same bytes for the same envelope array", () => {
    const fields = expectedFields(vector.message as JsonMessage);
    expect(toHex(cborg.encode(fields))).toBe(vector.hex);
  });
});

describe.each(messageVectors)('decode: $name', (vector) => {
  test('decodeMessage gives the message', () => {
    const expected: Message = messageFromJson(vector.message as JsonMessage);
    expect(decodeMessage(fromHex(vector.hex))).toEqual({
      kind: 'message',
      message: expected,
      ignoredFields: vector.ignoredFields ?? 0,
    });
  });

  test('cborg decodes the same bytes to an array with the same fields', () => {
    const decoded: unknown = cborg.decode(fromHex(vector.hex), {
      useMaps: true,
      rejectDuplicateMapKeys: true,
      allowIndefinite: false,
      allowUndefined: false,
    });
    expect(Array.isArray(decoded)).toBe(true);
    const fields = decoded as unknown[];
    const expected = expectedFields(vector.message as JsonMessage);
    // hdr, id and body exactly; of the flags only bits 0 and 2, and bit 1 on routed messages, mean something (§4).
    const isRouted = expected.length === 8;
    const meaningful = isRouted ? 7 : 5;
    expect(fields[0]).toBe(expected[0]);
    expect(Number(fields[1]) & meaningful).toBe(expected[1]);
    expect(fields[2]).toBe(expected[2]);
    expect(fields[3]).toEqual(expected[3]);
    if (isRouted) {
      expect(fields.slice(4, 8)).toEqual(expected.slice(4, 8));
    } else if (fields.length > 4) {
      expect(fields.slice(4, 8)).toEqual([null, null, null, null]);
    }
    expect(Math.max(0, fields.length - 8)).toBe(vector.ignoredFields ?? 0);
  });
});

describe.each(vectors.filter((v) => v.unknownType !== undefined))('unknown type: $name', (vector) => {
  test('decodes to unknown-type', () => {
    expect(decodeMessage(fromHex(vector.hex))).toEqual({ kind: 'unknown-type', ...vector.unknownType });
  });
});

describe.each(vectors.filter((v) => v.error !== undefined))('rejected: $name', (vector) => {
  test(`decodes to a DecodeError with reason ${vector.error}`, () => {
    const result = decodeMessage(fromHex(vector.hex));
    expect(result.kind).toBe('error');
    if (result.kind === 'error') expect(result.error.reason).toBe(vector.error);
  });
});

test('docs/PROTOCOL.md lists every vector, with the same hex', () => {
  const doc = readFileSync(new URL('../../../docs/PROTOCOL.md', import.meta.url), 'utf8');
  for (const vector of vectors) {
    expect(doc, vector.name).toContain(vector.hex);
  }
});
