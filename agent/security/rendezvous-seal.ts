// Sealing and opening rendezvous records (PROTOCOL.md §19). Under mesh key K:
//   tag      = HKDF-SHA256(IKM = K, salt = "", info = "nearmesh/2 rendezvous tag", L = 16)
//   slot     = HMAC-SHA256(HKDF-SHA256(K, "", "nearmesh/2 rendezvous slot", 32), publicKey)[0..16]
//   topic    = <prefix> hex(tag) "/" hex(slot)
//   payload  = salt(16) || ChaCha20-Poly1305(key = HKDF-SHA256(K, salt, "nearmesh/2 rendezvous record", 32),
//                                             nonce = 0, ad = hex(tag) "/" hex(slot), record)
// The broker learns the tag (which mesh) and the slot (one per agent, stable for a key), nothing else: the
// record is sealed under the mesh key and signed by the agent's identity, so a member cannot publish for
// another, and a record moved to another slot or mesh does not open.
import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { peerIdFromPublicKey } from '../core/peer-id.js';
import { type Identity, verifySignature } from '../identity/identity.js';
import { DecodeError } from '../protocol/errors.js';
import {
  decodeRendezvousRecord,
  encodeRendezvousRecord,
  encodeRendezvousSigned,
  RENDEZVOUS_TAG_BYTES,
  type RendezvousClaims,
  type RendezvousRecord,
} from '../protocol/rendezvous.js';
import { openSalted, SEAL_SALT_BYTES, sealSalted } from './salted-seal.js';

/** HKDF info of a record's sealing key (the other keys of a rendezvous come from derive()). */
const RECORD_INFO = 'nearmesh/2 rendezvous record';
const SLOT_BYTES = 16;
const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();

/** What a mesh key makes of a rendezvous: the tag its records live under, and how slots are named. */
export interface RendezvousKeys {
  readonly meshKey: Uint8Array;
  readonly tag: Uint8Array;
  readonly tagHex: string;
  readonly slotKey: Uint8Array;
}

export function rendezvousKeys(meshKey: Uint8Array): RendezvousKeys {
  const tag = derive(meshKey, EMPTY, 'tag', RENDEZVOUS_TAG_BYTES);
  return { meshKey, tag, tagHex: hex(tag), slotKey: derive(meshKey, EMPTY, 'slot', 32) };
}

/** The agent's slot under a mesh key: 32 hex characters, the last topic level of its record. */
export function rendezvousSlot(keys: RendezvousKeys, publicKey: Uint8Array): string {
  return createHmac('sha256', keys.slotKey)
    .update(publicKey)
    .digest()
    .subarray(0, SLOT_BYTES)
    .toString('hex');
}

/** Signs the claims with the agent's identity and seals the record for its slot. */
export function sealRendezvousRecord(
  keys: RendezvousKeys,
  identity: Identity,
  claims: Omit<RendezvousClaims, 'publicKey'>,
  salt: Uint8Array = randomBytes(SEAL_SALT_BYTES),
): { slot: string; payload: Uint8Array } {
  const full: RendezvousClaims = { ...claims, publicKey: identity.publicKey };
  const signature = identity.sign(encodeRendezvousSigned(keys.tag, full));
  const record = encodeRendezvousRecord({ ...full, signature });
  const slot = rendezvousSlot(keys, identity.publicKey);
  const payload = sealSalted(keys.meshKey, RECORD_INFO, slotAd(keys.tagHex, slot), record, salt);
  return { slot, payload };
}

export type OpenedRendezvous =
  | { ok: true; record: RendezvousRecord; peerId: string }
  /** `foreign`: sealed under none of our keys (another mesh on the broker); `bad`: ours but not valid. */
  | { ok: false; kind: 'foreign' | 'bad'; reason: string };

/**
 * Opens the record at `tagHex/slot` under whichever key has that tag, and checks it belongs there: its
 * signature by the key it names, its slot that key's. Never throws.
 */
export function openRendezvousRecord(
  keyring: readonly RendezvousKeys[],
  tagHex: string,
  slot: string,
  payload: Uint8Array,
): OpenedRendezvous {
  const keys = keyring.find((candidate) => candidate.tagHex === tagHex);
  if (keys === undefined) return { ok: false, kind: 'foreign', reason: 'sealed under another mesh key' };
  if (payload.length <= SEAL_SALT_BYTES) return { ok: false, kind: 'bad', reason: 'too short' };
  const plain = openSalted([keys.meshKey], RECORD_INFO, slotAd(tagHex, slot), payload);
  if (plain === undefined)
    return { ok: false, kind: 'bad', reason: 'does not open (altered, or moved from another slot)' };
  const record = decodeRendezvousRecord(plain);
  if (record instanceof DecodeError) return { ok: false, kind: 'bad', reason: record.message };
  if (rendezvousSlot(keys, record.publicKey) !== slot)
    return { ok: false, kind: 'bad', reason: "not in its signer's slot" };
  if (!verifySignature(record.publicKey, encodeRendezvousSigned(keys.tag, record), record.signature))
    return { ok: false, kind: 'bad', reason: 'signature does not verify' };
  return { ok: true, record, peerId: peerIdFromPublicKey(record.publicKey) };
}

function derive(meshKey: Uint8Array, salt: Uint8Array, label: string, length: number): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', meshKey, salt, `nearmesh/2 rendezvous ${label}`, length));
}

function slotAd(tagHex: string, slot: string): Uint8Array {
  return encoder.encode(`${tagHex}/${slot}`);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}
