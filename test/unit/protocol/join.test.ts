// The join exchange's vector (docs/PROTOCOL.md §18, test/fixtures/join-vector.json) both ways: our code
// writes exactly those bytes from the inputs, reads the bytes back to the inputs, and a second
// implementation (libsodium's ristretto255 and ChaCha20-Poly1305, cbor2) computes the same keys and PROOF
// and opens the GRANT. Then the codec's refusals: what is not a HELLO, malformed replies, odd grants.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../agent/protocol/errors.js';
import {
  decodeJoinerCard,
  decodeJoinGrant,
  decodeJoinHello,
  decodeJoinProof,
  decodeJoinReply,
  encodeJoinerCard,
  encodeJoinGrant,
  encodeJoinHello,
  encodeJoinProof,
  encodeJoinReply,
  type JoinGrant,
} from '../../../agent/protocol/join.js';
import { cpaceParty } from '../../../agent/security/cpace.js';
import { parseInviteCode } from '../../../agent/security/join-code.js';
import { INVITER_AD, JOIN_CHANNEL_ID, JOINER_AD, joinKeys } from '../../../agent/security/join-exchange.js';
import { aeadDecrypt, aeadEncrypt } from '../../../agent/security/noise-crypto.js';
import { identityFromSeed } from '../../../scripts/bench/mesh-sim.js';
import { libsodiumSecondMissing, runLibsodiumSecond } from '../../support/libsodium-second.js';
import { describeWhenAvailable } from '../../support/requirements.js';

type VectorKey =
  | 'code'
  | 'sid'
  | 'ya'
  | 'yb'
  | 'joiner_seed'
  | 'joiner_name'
  | 'joiner_public_key'
  | 'joiner_peer_id'
  | 'inviter_seed'
  | 'inviter_name'
  | 'inviter_public_key'
  | 'inviter_peer_id'
  | 'mesh_name'
  | 'mesh_key'
  | 'Ya'
  | 'Yb'
  | 'ISK'
  | 'k_joiner'
  | 'k_inviter'
  | 'hello'
  | 'reply'
  | 'card'
  | 'proof'
  | 'grant_plaintext'
  | 'grant'
  | 'refused';
const vector = JSON.parse(
  readFileSync(new URL('../../fixtures/join-vector.json', import.meta.url), 'utf8'),
) as Record<VectorKey, string> & { discriminator: number };
const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'hex'));
const toHex = (bytes: Uint8Array | undefined): string => Buffer.from(bytes ?? []).toString('hex');
const EMPTY = new Uint8Array(0);
const prs = new TextEncoder().encode(vector.code);
const sid = hex(vector.sid);
const joiner = identityFromSeed(hex(vector.joiner_seed));
const inviter = identityFromSeed(hex(vector.inviter_seed));
const grant: JoinGrant = {
  meshName: vector.mesh_name,
  epoch: 0,
  key: hex(vector.mesh_key),
  rotation: null,
  admins: [vector.inviter_peer_id],
  inviterKey: inviter.publicKey,
  inviterName: vector.inviter_name,
};

describe('join vector, written', () => {
  const a = cpaceParty({
    prs,
    ci: JOIN_CHANNEL_ID,
    sid,
    ad: JOINER_AD,
    isInitiator: true,
    scalar: hex(vector.ya),
  });
  const b = cpaceParty({
    prs,
    ci: JOIN_CHANNEL_ID,
    sid,
    ad: INVITER_AD,
    isInitiator: false,
    scalar: hex(vector.yb),
  });
  const isk = a.finish(b.share, INVITER_AD) as Uint8Array;
  const keys = joinKeys(isk, sid);

  it('is a well-formed code whose first two digits are the discriminator', () => {
    expect(parseInviteCode(vector.code)).toEqual({
      digits: vector.code,
      discriminator: vector.discriminator,
    });
    expect(joiner.peerId).toBe(vector.joiner_peer_id);
    expect(inviter.peerId).toBe(vector.inviter_peer_id);
  });

  it('gives the documented shares, ISK (on both sides) and keys', () => {
    expect([toHex(a.share), toHex(b.share)]).toEqual([vector.Ya, vector.Yb]);
    expect(toHex(isk)).toBe(vector.ISK);
    expect(toHex(b.finish(a.share, JOINER_AD))).toBe(vector.ISK);
    expect([toHex(keys.joiner), toHex(keys.inviter)]).toEqual([vector.k_joiner, vector.k_inviter]);
  });

  it('writes the documented HELLO, REPLY, PROOF, GRANT and REFUSED', () => {
    expect(toHex(encodeJoinHello({ discriminator: vector.discriminator, sid, share: a.share }))).toBe(
      vector.hello,
    );
    expect(toHex(encodeJoinReply({ kind: 'reply', share: b.share }))).toBe(vector.reply);
    const card = encodeJoinerCard({ publicKey: joiner.publicKey, name: vector.joiner_name });
    expect(toHex(card)).toBe(vector.card);
    expect(toHex(encodeJoinProof(aeadEncrypt(keys.joiner, 0n, EMPTY, card)))).toBe(vector.proof);
    expect(toHex(encodeJoinGrant(grant))).toBe(vector.grant_plaintext);
    const sealed = aeadEncrypt(keys.inviter, 0n, EMPTY, encodeJoinGrant(grant));
    expect(toHex(encodeJoinReply({ kind: 'grant', sealed }))).toBe(vector.grant);
    expect(toHex(encodeJoinReply({ kind: 'refused', reason: 'wrong-code', attemptsLeft: 2 }))).toBe(
      vector.refused,
    );
  });
});

describe('join vector in PROTOCOL.md', () => {
  it('shows every value of the fixture', () => {
    const doc = readFileSync(new URL('../../../docs/PROTOCOL.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('## 18. Joining with a code')).replace(/\s+/g, '');
    const shown: VectorKey[] = ['code', 'sid', 'ya', 'yb', 'Ya', 'Yb', 'ISK', 'k_joiner', 'k_inviter'];
    const frames: VectorKey[] = ['hello', 'reply', 'card', 'proof', 'grant_plaintext', 'grant', 'refused'];
    for (const key of [
      ...shown,
      ...frames,
      'inviter_public_key',
      'inviter_peer_id',
      'joiner_peer_id',
    ] as VectorKey[]) {
      expect(section, key).toContain(vector[key]);
    }
  });
});

describe('join vector, read', () => {
  const keys = joinKeys(hex(vector.ISK), sid);

  it('reads the HELLO and REPLY back to their fields', () => {
    expect(decodeJoinHello(hex(vector.hello))).toEqual({
      discriminator: vector.discriminator,
      sid,
      share: hex(vector.Ya),
    });
    expect(decodeJoinReply(hex(vector.reply))).toEqual({ kind: 'reply', share: hex(vector.Yb) });
    expect(decodeJoinReply(hex(vector.refused))).toEqual({
      kind: 'refused',
      reason: 'wrong-code',
      attemptsLeft: 2,
    });
  });

  it('opens the PROOF to the joiner card and the GRANT to the grant, each only under its own key', () => {
    const sealedCard = decodeJoinProof(hex(vector.proof)) as Uint8Array;
    expect(decodeJoinerCard(aeadDecrypt(keys.joiner, 0n, EMPTY, sealedCard))).toEqual({
      publicKey: joiner.publicKey,
      name: vector.joiner_name,
    });
    expect(() => aeadDecrypt(keys.inviter, 0n, EMPTY, sealedCard)).toThrow();
    const reply = decodeJoinReply(hex(vector.grant));
    if (reply instanceof DecodeError || reply.kind !== 'grant') throw new Error('not a GRANT');
    expect(decodeJoinGrant(aeadDecrypt(keys.inviter, 0n, EMPTY, reply.sealed))).toEqual(grant);
    expect(() => aeadDecrypt(keys.joiner, 0n, EMPTY, reply.sealed)).toThrow();
  });
});

describeWhenAvailable(
  'join vector against libsodium and cbor2 (a second implementation)',
  libsodiumSecondMissing(),
  () => {
    it('computes the same ISK, keys and PROOF, and opens the GRANT to the same grant', () => {
      const child = runLibsodiumSecond('join-libsodium.py', vector);
      expect(child.stderr).toBe('');
      expect(child.status).toBe(0);
      expect(JSON.parse(child.stdout)).toEqual({
        ISK: vector.ISK,
        k_joiner: vector.k_joiner,
        k_inviter: vector.k_inviter,
        card: vector.card,
        proof: vector.proof,
        grant: {
          mesh_name: vector.mesh_name,
          epoch: 0,
          key: vector.mesh_key,
          rotation: null,
          admins: [vector.inviter_peer_id],
          inviter_key: vector.inviter_public_key,
          inviter_name: vector.inviter_name,
        },
      });
    });
  },
);

describe('join codec refusals', () => {
  it('takes nothing else for a HELLO: a Noise first message, another context, wrong sizes', () => {
    expect(decodeJoinHello(Uint8Array.from(randomBytes(48)))).toBeUndefined();
    const share = hex(vector.Ya);
    expect(
      decodeJoinHello(encodeJoinHello({ discriminator: 1, sid: new Uint8Array(15), share })),
    ).toBeUndefined();
    expect(
      decodeJoinHello(encodeJoinHello({ discriminator: 1, sid, share: new Uint8Array(31) })),
    ).toBeUndefined();
    expect(decodeJoinHello(encodeJoinReply({ kind: 'reply', share }))).toBeUndefined();
  });

  it('refuses malformed replies with a DecodeError', () => {
    for (const bytes of [hex('82015810'), hex('83046a6e6f742d612d636f646502'), hex('8109'), hex('ff')]) {
      expect(decodeJoinReply(bytes)).toBeInstanceOf(DecodeError);
    }
    expect(decodeJoinProof(hex(vector.reply))).toBeInstanceOf(DecodeError);
  });

  it('round-trips an unnamed mesh, and refuses a grant whose epoch and rotation disagree', () => {
    const unnamed = { ...grant, meshName: '' };
    expect(decodeJoinGrant(encodeJoinGrant(unnamed))).toEqual(unnamed);
    expect(decodeJoinGrant(encodeJoinGrant({ ...grant, epoch: 3 }))).toBeInstanceOf(DecodeError);
    expect(decodeJoinGrant(encodeJoinGrant({ ...grant, rotation: new Uint8Array(4) }))).toBeInstanceOf(
      DecodeError,
    );
  });
});
