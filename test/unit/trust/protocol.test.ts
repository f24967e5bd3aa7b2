// The trust messages (PROTOCOL.md §13.5, §13.6), pinned by test/fixtures/trust-vectors.json: the doc and the
// fixture list the same vectors, our encoder writes exactly those bytes and our decoder reads them back,
// cborg and python3-cbor2 agree they are deterministic CBOR, and every signature in them verifies with a
// second implementation (@noble/curves) over the documented signed bytes, which cborg rebuilds too.
import { ed25519 } from '@noble/curves/ed25519.js';
import * as cborg from 'cborg';
import fc from 'fast-check';
import { expect, test } from 'vitest';
import { peerIdToBytes } from '../../../agent/core/peer-id.js';
import { DecodeError } from '../../../agent/protocol/errors.js';
import {
  decodeTrust,
  encodeTrust,
  type KeyRotation,
  keyIdOf,
  REVOKE_CONTEXT,
  type Revocation,
  ROTATE_CONTEXT,
  type TrustMessage,
} from '../../../agent/protocol/trust.js';
import { describeSystemVectors } from '../protocol/system-vectors.js';
import { fromHex, toHex } from '../protocol/vector-json.js';

type JsonRecord = Record<string, unknown>;

function revocationFromJson(json: JsonRecord): Revocation {
  return {
    revoked: json.revoked as string,
    issuerKey: fromHex(json.issuerKey as string),
    issuedAtMs: json.issuedAtMs as number,
    reason: json.reason as string,
    signature: fromHex(json.signature as string),
  };
}

function rotationFromJson(json: JsonRecord): KeyRotation {
  return {
    epoch: json.epoch as number,
    keyId: fromHex(json.keyId as string),
    issuerKey: fromHex(json.issuerKey as string),
    issuedAtMs: json.issuedAtMs as number,
    overlapMs: json.overlapMs as number,
    signature: fromHex(json.signature as string),
  };
}

const revocationFields = (r: Revocation) => [
  peerIdToBytes(r.revoked),
  r.issuerKey,
  r.issuedAtMs,
  r.reason,
  r.signature,
];
const rotationFields = (r: KeyRotation) => [
  r.epoch,
  r.keyId,
  r.issuerKey,
  r.issuedAtMs,
  r.overlapMs,
  r.signature,
];

const vectors = describeSystemVectors<TrustMessage>({
  file: 'trust-vectors.json',
  section: 'Mesh',
  key: 'trust',
  byteFields: [],
  fromJson: (json) => messageOf(json),
  encode: encodeTrust,
  decode: decodeTrust,
  expectedFields: (message) =>
    message.kind === 'revocations'
      ? [30, message.entries.map(revocationFields)]
      : [31, rotationFields(message.rotation), message.key],
});

// describeSystemVectors converts only top-level byte fields; trust messages nest theirs, so build them here.
function messageOf(json: JsonRecord): TrustMessage {
  if (json.kind === 'revocations') {
    return { kind: 'revocations', entries: (json.entries as JsonRecord[]).map(revocationFromJson) };
  }
  return {
    kind: 'key-update',
    rotation: rotationFromJson(json.rotation as JsonRecord),
    key: fromHex(json.key as string),
  };
}

test('every signature in the vectors verifies (@noble) over the documented signed bytes', () => {
  let checked = 0;
  for (const vector of vectors.filter((v) => v.trust !== undefined)) {
    const message = messageOf(vector.trust as JsonRecord);
    const signed = vector.signing as string[];
    const records =
      message.kind === 'revocations'
        ? message.entries.map((r) => ({
            fields: [REVOKE_CONTEXT, peerIdToBytes(r.revoked), r.issuerKey, r.issuedAtMs, r.reason],
            issuerKey: r.issuerKey,
            signature: r.signature,
          }))
        : [
            {
              fields: [ROTATE_CONTEXT, ...rotationFields(message.rotation).slice(0, 5)],
              issuerKey: message.rotation.issuerKey,
              signature: message.rotation.signature,
            },
          ];
    records.forEach((record, index) => {
      expect(toHex(cborg.encode(record.fields, cborg.rfc8949EncodeOptions))).toBe(signed[index]);
      expect(ed25519.verify(record.signature, fromHex(signed[index] as string), record.issuerKey)).toBe(true);
      checked++;
    });
    if (message.kind === 'key-update')
      expect(toHex(keyIdOf(message.key))).toBe(toHex(message.rotation.keyId));
    // The decoder gives exactly what the fixture says.
    expect(decodeTrust(fromHex(vector.hex))).toEqual(message);
  }
  expect(checked).toBe(4);
});

test('decodeTrust never throws, whatever the bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      let result: ReturnType<typeof decodeTrust> | undefined;
      expect(() => {
        result = decodeTrust(bytes);
      }).not.toThrow();
      if (result instanceof DecodeError) return;
      // Whatever it accepts is a trust message, and reads back the same once encoded.
      expect(['revocations', 'key-update']).toContain(result?.kind);
      expect(decodeTrust(encodeTrust(result as TrustMessage))).toEqual(result);
    }),
    { numRuns: 2_000 },
  );
});
