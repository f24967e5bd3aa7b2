// Joining with a code (PROTOCOL.md §18): the frames a joining device and an inviting agent exchange on a
// fresh link instead of the Noise handshake, and the two payloads sealed under keys from the CPace run.
//
//   HELLO    joiner → inviter  ["nearmesh/2 join", discriminator: uint, sid: bstr 16, Ya: bstr 32]
//   REPLY    inviter → joiner  [1, Yb: bstr 32]
//   PROOF    joiner → inviter  [2, sealed joiner card]
//   GRANT    inviter → joiner  [3, sealed grant]
//   REFUSED  inviter → joiner  [4, reason: tstr, attemptsLeft: uint]
//
//   joiner card = [ed25519 public key: bstr 32, name: tstr]
//   grant       = [meshName: tstr, epoch: uint, key: bstr 32, rotation: bstr / null, admins: [bstr 8, ...],
//                  inviterKey: bstr 32, inviterName: tstr]
import { PEER_ID_BYTES, peerIdFromBytes, peerIdToBytes } from '../core/peer-id.js';
import { encodeCbor } from './cbor-write.js';
import { DecodeError } from './errors.js';
import { isBytes, isUint, textLengthProblem } from './fields.js';
import { decodeItem } from './item.js';

export const JOIN_CONTEXT = 'nearmesh/2 join';
export const JOIN_SID_BYTES = 16;
export const JOIN_SHARE_BYTES = 32;
const KEY_BYTES = 32;
/** Longest agent or mesh name a join carries, in UTF-8 bytes. */
export const MAX_JOIN_NAME_BYTES = 64;
/** Admins a grant may list (the config allows 64). */
export const MAX_JOIN_ADMINS = 64;

export const JOIN_REFUSALS = ['wrong-code', 'closed'] as const;
/** wrong-code: the proof did not open; closed: no such invitation is open (expired, used, too many tries). */
export type JoinRefusal = (typeof JOIN_REFUSALS)[number];

export interface JoinHello {
  discriminator: number;
  sid: Uint8Array;
  share: Uint8Array;
}

export type JoinReply =
  | { kind: 'reply'; share: Uint8Array }
  | { kind: 'grant'; sealed: Uint8Array }
  | { kind: 'refused'; reason: JoinRefusal; attemptsLeft: number };

export interface JoinerCard {
  publicKey: Uint8Array;
  name: string;
}

/** What a new member receives: everything it needs to link and to obey the mesh's admins. */
export interface JoinGrant {
  meshName: string;
  /** The key in use now, its epoch, and the signed rotation record that made it (null at epoch 0). */
  epoch: number;
  key: Uint8Array;
  rotation: Uint8Array | null;
  /** Peer ids allowed to revoke and rekey; empty: every member. */
  admins: string[];
  inviterKey: Uint8Array;
  inviterName: string;
}

const Kind = { reply: 1, proof: 2, grant: 3, refused: 4 } as const;

export function encodeJoinHello(hello: JoinHello): Uint8Array {
  return encodeCbor([JOIN_CONTEXT, hello.discriminator, hello.sid, hello.share]);
}

/** A HELLO, or undefined for anything else (a Noise first message, above all). Never throws. */
export function decodeJoinHello(bytes: Uint8Array): JoinHello | undefined {
  const item = decodeItem(bytes, { floats: false });
  if (!item.ok || !Array.isArray(item.value)) return undefined;
  const [context, discriminator, sid, share] = item.value as unknown[];
  if (context !== JOIN_CONTEXT || !isUint(discriminator)) return undefined;
  if (!isBytes(sid, JOIN_SID_BYTES) || !isBytes(share, JOIN_SHARE_BYTES)) return undefined;
  return { discriminator, sid, share };
}

export function encodeJoinReply(reply: JoinReply): Uint8Array {
  switch (reply.kind) {
    case 'reply':
      return encodeCbor([Kind.reply, reply.share]);
    case 'grant':
      return encodeCbor([Kind.grant, reply.sealed]);
    case 'refused':
      return encodeCbor([Kind.refused, reply.reason, reply.attemptsLeft]);
  }
}

export function decodeJoinReply(bytes: Uint8Array): JoinReply | DecodeError {
  const item = decodeItem(bytes, { floats: false });
  if (!item.ok) return item.error;
  if (!Array.isArray(item.value)) return bad('is not an array');
  const [kind, first, second] = item.value as unknown[];
  if (kind === Kind.reply) {
    return isBytes(first, JOIN_SHARE_BYTES)
      ? { kind: 'reply', share: first }
      : bad('REPLY share is not 32 bytes');
  }
  if (kind === Kind.grant)
    return first instanceof Uint8Array ? { kind: 'grant', sealed: first } : bad('GRANT is not bytes');
  if (kind === Kind.refused) {
    if (!JOIN_REFUSALS.includes(first as JoinRefusal) || !isUint(second)) return bad('REFUSED is malformed');
    return { kind: 'refused', reason: first as JoinRefusal, attemptsLeft: second };
  }
  return bad(`kind ${String(kind)} is not an inviter's`);
}

export function encodeJoinProof(sealed: Uint8Array): Uint8Array {
  return encodeCbor([Kind.proof, sealed]);
}

export function decodeJoinProof(bytes: Uint8Array): Uint8Array | DecodeError {
  const item = decodeItem(bytes, { floats: false });
  if (!item.ok) return item.error;
  const [kind, sealed] = (Array.isArray(item.value) ? item.value : []) as unknown[];
  return kind === Kind.proof && sealed instanceof Uint8Array ? sealed : bad('is not a PROOF');
}

export function encodeJoinerCard(card: JoinerCard): Uint8Array {
  return encodeCbor([card.publicKey, card.name]);
}

export function decodeJoinerCard(bytes: Uint8Array): JoinerCard | DecodeError {
  const item = decodeItem(bytes, { floats: false });
  if (!item.ok) return item.error;
  const [publicKey, name] = (Array.isArray(item.value) ? item.value : []) as unknown[];
  if (!isBytes(publicKey, KEY_BYTES)) return bad('joiner key is not 32 bytes');
  if (!isName(name)) return bad(`joiner name is not 1..${MAX_JOIN_NAME_BYTES} bytes of text`);
  return { publicKey, name };
}

export function encodeJoinGrant(grant: JoinGrant): Uint8Array {
  return encodeCbor([
    grant.meshName,
    grant.epoch,
    grant.key,
    grant.rotation,
    grant.admins.map(peerIdToBytes),
    grant.inviterKey,
    grant.inviterName,
  ]);
}

export function decodeJoinGrant(bytes: Uint8Array): JoinGrant | DecodeError {
  const item = decodeItem(bytes, { floats: false });
  if (!item.ok) return item.error;
  if (!Array.isArray(item.value) || item.value.length < 7) return bad('grant is not an array of 7');
  const [meshName, epoch, key, rotation, admins, inviterKey, inviterName] = item.value as unknown[];
  // Empty: a mesh formed by copying mesh_key, before meshes had names.
  if (
    typeof meshName !== 'string' ||
    (meshName !== '' && textLengthProblem(meshName, MAX_JOIN_NAME_BYTES) !== null)
  )
    return bad('mesh name is not text of at most 64 bytes');
  if (!isBytes(key, KEY_BYTES)) return bad('the key is not 32 bytes');
  if (!isUint(epoch)) return bad('epoch is not a uint');
  if (rotation !== null && !(rotation instanceof Uint8Array))
    return bad('rotation is neither bytes nor null');
  if ((epoch === 0) !== (rotation === null)) return bad('a rotation record goes with every epoch but 0');
  if (
    !Array.isArray(admins) ||
    admins.length > MAX_JOIN_ADMINS ||
    !admins.every((id) => isBytes(id, PEER_ID_BYTES))
  )
    return bad(`admins is not a list of at most ${MAX_JOIN_ADMINS} peer ids`);
  if (!isBytes(inviterKey, KEY_BYTES)) return bad('inviter key is not 32 bytes');
  if (!isName(inviterName)) return bad('inviter name is not text');
  return {
    meshName,
    epoch,
    key,
    rotation,
    admins: admins.map((id) => peerIdFromBytes(id as Uint8Array)),
    inviterKey,
    inviterName,
  };
}

function isName(value: unknown): value is string {
  return (
    typeof value === 'string' && value.length > 0 && textLengthProblem(value, MAX_JOIN_NAME_BYTES) === null
  );
}

function bad(detail: string): DecodeError {
  return new DecodeError('bad-field', `join: ${detail}`);
}
