// The test vectors of system payloads (bulk transfer, streams, coordination) and their place in
// docs/PROTOCOL.md: the hex of a section's "Test vectors" tables, and the checks every fixture of
// [kind, ...] messages gets (the doc and the fixture list the same vectors; our encoder writes exactly
// those bytes and our decoder reads them back; cborg, an independent CBOR implementation, reads the
// documented array and writes the same bytes for it deterministically, and so does python3-cbor2; what
// must be rejected is, with the reason given).
import { readFileSync } from 'node:fs';
import * as cborg from 'cborg';
import { describe, expect, test } from 'vitest';
import { DecodeError, type DecodeErrorReason } from '../../../agent/protocol/errors.js';
import { cbor2Missing, cbor2Recoded } from '../../support/cbor2.js';
import { describeWhenAvailable } from '../../support/requirements.js';
import { fromHex, toHex } from './vector-json.js';

/**
 * The hex vectors listed in the "Test vectors" subsection of the section titled `title` ("## N. title"):
 * the last code span of each table row that ends with one.
 */
export function docVectorHexes(title: string): string[] {
  const doc = readFileSync(new URL('../../../docs/PROTOCOL.md', import.meta.url), 'utf8');
  const heading = new RegExp(`^## (\\d+)\\. ${title}$`, 'm').exec(doc);
  expect(heading, `a section "## N. ${title}"`).not.toBeNull();
  const number = heading?.[1] as string;
  const start = doc.search(new RegExp(`^### ${number}\\.\\d+ Test vectors$`, 'm'));
  expect(start, `a subsection "### ${number}.M Test vectors"`).toBeGreaterThan(0);
  const next = doc.indexOf('\n## ', start);
  const hexes: string[] = [];
  for (const line of doc.slice(start, next < 0 ? undefined : next).split('\n')) {
    if (!line.startsWith('|')) continue;
    const last = [...line.matchAll(/`([0-9a-f]+)`/g)].at(-1);
    if (last !== undefined && /`[0-9a-f]+` \|\s*$/.test(line)) hexes.push(last[1] as string);
  }
  return hexes;
}

/** A fixture entry: a message as JSON under `key` (byte fields as hex), or a rejection. */
export type SystemVector = { name: string; hex: string; decodeOnly?: boolean; error?: DecodeErrorReason } & {
  [key: string]: unknown;
};

export function loadSystemVectors(file: string): SystemVector[] {
  return JSON.parse(
    readFileSync(new URL(`../../fixtures/${file}`, import.meta.url), 'utf8'),
  ) as SystemVector[];
}

/** The message of a fixture's JSON: the named top-level fields from hex to bytes. */
export function messageFromJson<T>(json: Record<string, unknown>, byteFields: readonly string[]): T {
  const entries = Object.entries(json).map(([key, value]) => [
    key,
    byteFields.includes(key) ? fromHex(value as string) : structuredClone(value),
  ]);
  return Object.fromEntries(entries) as T;
}

export interface SystemCodec<M> {
  /** The fixture in test/fixtures. */
  file: string;
  /** The title of its section in docs/PROTOCOL.md. */
  section: string;
  /** The fixture field holding the message. */
  key: string;
  byteFields: readonly string[];
  /** Builds the message from its JSON when byte fields are nested (default: the top-level byteFields from hex). */
  fromJson?: (json: Record<string, unknown>) => M;
  encode: (message: M) => Uint8Array;
  decode: (bytes: Uint8Array) => M | DecodeError;
  /** The array the message must be, per docs/PROTOCOL.md, built without our encoder. */
  expectedFields: (message: M) => unknown[];
}

/** Registers the vector tests of one codec; returns the vectors (for the codec's own property tests). */
export function describeSystemVectors<M>(codec: SystemCodec<M>): SystemVector[] {
  const vectors = loadSystemVectors(codec.file);
  const messages = vectors.filter((v) => v[codec.key] !== undefined);
  const message = (v: SystemVector) => {
    const json = v[codec.key] as Record<string, unknown>;
    return codec.fromJson?.(json) ?? messageFromJson<M>(json, codec.byteFields);
  };
  const encodable = messages.filter((v) => v.decodeOnly !== true);

  test(`docs/PROTOCOL.md "${codec.section}" and ${codec.file} list the same vectors`, () => {
    const inDoc = docVectorHexes(codec.section);
    expect(new Set(inDoc).size).toBe(inDoc.length);
    expect([...inDoc].sort()).toEqual(vectors.map((v) => v.hex).sort());
    expect(new Set(vectors.map((v) => v.name)).size).toBe(vectors.length);
  });

  describe.each(encodable)('vector: $name', (vector) => {
    test('the encoder writes exactly the vector bytes, and the decoder reads them back', () => {
      expect(toHex(codec.encode(message(vector)))).toBe(vector.hex);
      expect(codec.decode(fromHex(vector.hex))).toEqual(message(vector));
    });

    test('cborg (strict: shortest forms) reads the documented array, and writes it as these bytes', () => {
      const expected = codec.expectedFields(message(vector));
      expect(cborg.decode(fromHex(vector.hex), { strict: true })).toEqual(expected);
      expect(toHex(cborg.encode(expected, cborg.rfc8949EncodeOptions))).toBe(vector.hex);
    });
  });

  describeDeterministicUnderCbor2(codec.file, () => encodable.map((v) => v.hex));

  describe.each(messages.filter((v) => v.decodeOnly === true))('decode only: $name', (vector) => {
    test('decodes to the message, which re-encodes to other (canonical) bytes of the fixture', () => {
      expect(codec.decode(fromHex(vector.hex))).toEqual(message(vector));
      const canonical = toHex(codec.encode(message(vector)));
      expect(canonical).not.toBe(vector.hex);
      expect(encodable.map((v) => v.hex)).toContain(canonical);
      expect(cborg.decode(fromHex(vector.hex))).toEqual(codec.expectedFields(message(vector)));
    });
  });

  describe.each(vectors.filter((v) => v.error !== undefined))('rejected: $name', (vector) => {
    test(`decodes to a DecodeError with reason ${vector.error}`, () => {
      const result = codec.decode(fromHex(vector.hex));
      expect(result).toBeInstanceOf(DecodeError);
      expect((result as DecodeError).reason).toBe(vector.error);
    });
  });

  test('every proper prefix of a vector that decodes is rejected', () => {
    for (const vector of messages) {
      const bytes = fromHex(vector.hex);
      for (let end = 0; end < bytes.length; end++) {
        expect(codec.decode(bytes.subarray(0, end)), `${vector.name} cut at ${end}`).toBeInstanceOf(
          DecodeError,
        );
      }
    }
  });

  return vectors;
}

/**
 * python3-cbor2 re-encodes each vector an encoder writes (`hexes`) to the same bytes in its canonical mode:
 * they are deterministic CBOR (RFC 8949 §4.2.1) to a second independent implementation.
 */
export function describeDeterministicUnderCbor2(what: string, hexes: () => string[]): void {
  describeWhenAvailable(`${what} against python3-cbor2 (canonical)`, cbor2Missing(), () => {
    test('cbor2 re-encodes every vector an encoder writes to the same bytes', () => {
      expect(cbor2Recoded(hexes())).toEqual(hexes());
    });
  });
}
