// Trust messages (PROTOCOL.md §13.5, §13.6): revocations, which spread over the whole mesh, and mesh key
// updates, which go only over direct (Noise-encrypted) links. System payloads of kinds 30–31, clear of
// coordination (1–9), reliable messages (12–13), bulk transfer (16–23) and streams (24–29):
//
//   30 REVOCATIONS  [30, [revocation, ...]]
//   31 KEY-UPDATE   [31, rotation, key]
//
//   revocation = [revoked: bstr 8, issuerKey: bstr 32, issuedAtMs: uint, reason: tstr, signature: bstr 64]
//   rotation   = [epoch: uint, keyId: bstr 8, issuerKey: bstr 32, issuedAtMs: uint, overlapMs: uint, signature: bstr 64]
//
// Each revocation and rotation is signed by its issuer (an admin) over the deterministic CBOR of its other
// fields behind a context string, so it is checked on its own wherever it travels.
import { createHash } from 'node:crypto';
import { PEER_ID_BYTES, peerIdFromBytes, peerIdToBytes } from '../core/peer-id.js';
import { encodeCbor } from './cbor-write.js';
import { DecodeError, EncodeError } from './errors.js';
import {
  checkBytes,
  checkRange,
  checkUint,
  isBytes,
  isInRange,
  isUint,
  textLengthProblem,
} from './fields.js';
import { decodeItem } from './item.js';

export const TrustKind = { revocations: 30, keyUpdate: 31 } as const;
export const REVOKE_CONTEXT = 'nearmesh/2 revoke';
export const ROTATE_CONTEXT = 'nearmesh/2 rekey';
export const KEY_ID_CONTEXT = 'nearmesh/2 key-id';
const PUBLIC_KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;
export const KEY_ID_BYTES = 8;
export const MESH_KEY_BYTES = 32;
/** Revocations one REVOCATIONS carries (a longer list goes in several): ~45 KB, under a BLE frame. */
export const MAX_REVOCATIONS_PER_MESSAGE = 256;
/** Longest revocation reason, in UTF-8 bytes. */
export const MAX_REVOCATION_REASON_BYTES = 128;
/** Longest overlap of a key rotation: old keys are accepted at most this long after it (24 days). */
export const MAX_OVERLAP_MS = 24 * 24 * 3_600_000;

/** One identity removed from the mesh, for good, by an admin. */
export interface Revocation {
  /** The revoked peer id. */
  revoked: string;
  /** The issuer's raw Ed25519 public key (its peer id is the hash of it). */
  issuerKey: Uint8Array;
  issuedAtMs: number;
  reason: string;
  signature: Uint8Array;
}

/** A new mesh key epoch announced by an admin; the key itself travels only inside KEY-UPDATE. */
export interface KeyRotation {
  /** 1 for the first rotation: epoch 0 is the key the agents started with. */
  epoch: number;
  /** keyIdOf(key): binds the record to one key without revealing it. */
  keyId: Uint8Array;
  issuerKey: Uint8Array;
  issuedAtMs: number;
  /** How long the previous key stays accepted after an agent takes the new one. */
  overlapMs: number;
  signature: Uint8Array;
}

export type TrustMessage =
  | { kind: 'revocations'; entries: Revocation[] }
  | { kind: 'key-update'; rotation: KeyRotation; key: Uint8Array };

/** The first 8 bytes of SHA-256("nearmesh/2 key-id" ‖ key): names a mesh key without revealing it. */
export function keyIdOf(key: Uint8Array): Uint8Array {
  return Uint8Array.from(
    createHash('sha256').update(KEY_ID_CONTEXT, 'utf8').update(key).digest().subarray(0, KEY_ID_BYTES),
  );
}

/** What a revocation's issuer signs: ["nearmesh/2 revoke", revoked, issuerKey, issuedAtMs, reason]. */
export function revocationSigningBytes(revocation: Omit<Revocation, 'signature'>): Uint8Array {
  checkRevocationFields(revocation);
  const { revoked, issuerKey, issuedAtMs, reason } = revocation;
  return encodeCbor([REVOKE_CONTEXT, peerIdToBytes(revoked), issuerKey, issuedAtMs, reason]);
}

/** What a rotation's issuer signs: ["nearmesh/2 rekey", epoch, keyId, issuerKey, issuedAtMs, overlapMs]. */
export function rotationSigningBytes(rotation: Omit<KeyRotation, 'signature'>): Uint8Array {
  checkRotationFields(rotation);
  const { epoch, keyId, issuerKey, issuedAtMs, overlapMs } = rotation;
  return encodeCbor([ROTATE_CONTEXT, epoch, keyId, issuerKey, issuedAtMs, overlapMs]);
}

export function encodeTrust(message: TrustMessage): Uint8Array {
  if (message.kind === 'revocations') {
    if (message.entries.length > MAX_REVOCATIONS_PER_MESSAGE) {
      throw new EncodeError(`more than ${MAX_REVOCATIONS_PER_MESSAGE} revocations in one message`);
    }
    return encodeCbor([TrustKind.revocations, message.entries.map(revocationFields)]);
  }
  checkBytes(message.key, MESH_KEY_BYTES, 'KEY-UPDATE key');
  return encodeCbor([TrustKind.keyUpdate, rotationFields(message.rotation), message.key]);
}

/** One rotation record alone (as an agent keeps it with its key). */
export function encodeKeyRotation(rotation: KeyRotation): Uint8Array {
  return encodeCbor(rotationFields(rotation));
}

export function decodeKeyRotation(bytes: Uint8Array): KeyRotation | DecodeError {
  const item = decodeItem(bytes, { floats: false });
  return item.ok ? rotationFrom(item.value) : item.error;
}

/** One revocation alone (as the trust store keeps it). */
export function encodeRevocation(revocation: Revocation): Uint8Array {
  return encodeCbor(revocationFields(revocation));
}

export function decodeRevocation(bytes: Uint8Array): Revocation | DecodeError {
  const item = decodeItem(bytes, { floats: false });
  return item.ok ? revocationFrom(item.value) : item.error;
}

function revocationFields(revocation: Revocation) {
  checkRevocationFields(revocation);
  checkBytes(revocation.signature, SIGNATURE_BYTES, 'revocation signature');
  const { revoked, issuerKey, issuedAtMs, reason, signature } = revocation;
  return [peerIdToBytes(revoked), issuerKey, issuedAtMs, reason, signature];
}

function rotationFields(rotation: KeyRotation) {
  checkRotationFields(rotation);
  checkBytes(rotation.signature, SIGNATURE_BYTES, 'rotation signature');
  const { epoch, keyId, issuerKey, issuedAtMs, overlapMs, signature } = rotation;
  return [epoch, keyId, issuerKey, issuedAtMs, overlapMs, signature];
}

function checkRevocationFields(revocation: Omit<Revocation, 'signature'>): void {
  checkBytes(revocation.issuerKey, PUBLIC_KEY_BYTES, 'revocation issuer key');
  checkUint(revocation.issuedAtMs, 'revocation issuedAtMs');
  const problem = reasonProblem(revocation.reason);
  if (problem !== null) throw new EncodeError(`revocation reason ${problem}`);
}

function checkRotationFields(rotation: Omit<KeyRotation, 'signature'>): void {
  checkRange(rotation.epoch, 1, Number.MAX_SAFE_INTEGER, 'rotation epoch');
  checkBytes(rotation.keyId, KEY_ID_BYTES, 'rotation keyId');
  checkBytes(rotation.issuerKey, PUBLIC_KEY_BYTES, 'rotation issuer key');
  checkUint(rotation.issuedAtMs, 'rotation issuedAtMs');
  checkRange(rotation.overlapMs, 0, MAX_OVERLAP_MS, 'rotation overlapMs');
}

/** An empty reason is allowed; otherwise at most MAX_REVOCATION_REASON_BYTES of UTF-8. */
function reasonProblem(reason: unknown): string | null {
  if (typeof reason !== 'string') return 'is not text';
  return reason === '' ? null : textLengthProblem(reason, MAX_REVOCATION_REASON_BYTES);
}

/** Decodes a REVOCATIONS or KEY-UPDATE (signatures are the receiver's to check). Never throws. */
export function decodeTrust(bytes: Uint8Array): TrustMessage | DecodeError {
  const item = decodeItem(bytes, { floats: false });
  if (!item.ok) return item.error;
  const value = item.value;
  if (!Array.isArray(value) || value.length < 2) return bad('is not [kind, ...]');
  const [kind, first, second] = value as unknown[];
  if (kind === TrustKind.revocations) {
    if (!Array.isArray(first) || first.length > MAX_REVOCATIONS_PER_MESSAGE) {
      return bad(`REVOCATIONS is not [30, [at most ${MAX_REVOCATIONS_PER_MESSAGE} revocations]]`);
    }
    const entries: Revocation[] = [];
    for (const entry of first as unknown[]) {
      const revocation = revocationFrom(entry);
      if (revocation instanceof DecodeError) return revocation;
      entries.push(revocation);
    }
    return { kind: 'revocations', entries };
  }
  if (kind === TrustKind.keyUpdate) {
    const rotation = rotationFrom(first);
    if (rotation instanceof DecodeError) return rotation;
    if (!isBytes(second, MESH_KEY_BYTES)) return bad(`KEY-UPDATE key is not ${MESH_KEY_BYTES} bytes`);
    return { kind: 'key-update', rotation, key: second };
  }
  return bad(`kind ${String(kind)} is unknown`);
}

function revocationFrom(value: unknown): Revocation | DecodeError {
  if (!Array.isArray(value) || value.length < 5)
    return bad('a revocation is not [revoked, issuerKey, issuedAtMs, reason, signature]');
  const [revoked, issuerKey, issuedAtMs, reason, signature] = value as unknown[];
  if (!isBytes(revoked, PEER_ID_BYTES)) return bad('revoked is not an 8-byte peer id');
  if (!isBytes(issuerKey, PUBLIC_KEY_BYTES)) return bad('revocation issuerKey is not 32 bytes');
  if (!isUint(issuedAtMs)) return bad('revocation issuedAtMs is not a uint');
  const problem = reasonProblem(reason);
  if (problem !== null) return bad(`revocation reason ${problem}`);
  if (!isBytes(signature, SIGNATURE_BYTES)) return bad('revocation signature is not 64 bytes');
  return { revoked: peerIdFromBytes(revoked), issuerKey, issuedAtMs, reason: reason as string, signature };
}

function rotationFrom(value: unknown): KeyRotation | DecodeError {
  if (!Array.isArray(value) || value.length < 6) {
    return bad('a rotation is not [epoch, keyId, issuerKey, issuedAtMs, overlapMs, signature]');
  }
  const [epoch, keyId, issuerKey, issuedAtMs, overlapMs, signature] = value as unknown[];
  if (!isInRange(epoch, 1, Number.MAX_SAFE_INTEGER)) return bad('rotation epoch is not a uint ≥ 1');
  if (!isBytes(keyId, KEY_ID_BYTES)) return bad('rotation keyId is not 8 bytes');
  if (!isBytes(issuerKey, PUBLIC_KEY_BYTES)) return bad('rotation issuerKey is not 32 bytes');
  if (!isUint(issuedAtMs)) return bad('rotation issuedAtMs is not a uint');
  if (!isInRange(overlapMs, 0, MAX_OVERLAP_MS)) return bad(`rotation overlapMs is not 0..${MAX_OVERLAP_MS}`);
  if (!isBytes(signature, SIGNATURE_BYTES)) return bad('rotation signature is not 64 bytes');
  return { epoch, keyId, issuerKey, issuedAtMs, overlapMs, signature };
}

function bad(detail: string): DecodeError {
  return new DecodeError('bad-field', `trust message: ${detail}`);
}
