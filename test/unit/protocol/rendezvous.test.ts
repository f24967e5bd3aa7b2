// Rendezvous records (docs/PROTOCOL.md §19, test/fixtures/rendezvous-vector.json) both ways: our code seals
// exactly those bytes from the inputs and opens them back to the inputs; a second implementation (libsodium's
// Ed25519 and ChaCha20-Poly1305, cbor2) computes the same bytes and opens ours. Then what must not open: a
// record of another mesh, altered, moved to another slot, or signed by a member for another.
import { hkdfSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { encodeCbor } from '../../../agent/protocol/cbor-write.js';
import { DecodeError, EncodeError } from '../../../agent/protocol/errors.js';
import {
  decodeRendezvousRecord,
  encodeRendezvousRecord,
  encodeRendezvousSigned,
  type RendezvousClaims,
} from '../../../agent/protocol/rendezvous.js';
import { aeadEncrypt } from '../../../agent/security/noise-crypto.js';
import {
  openRendezvousRecord,
  rendezvousKeys,
  rendezvousSlot,
  sealRendezvousRecord,
} from '../../../agent/security/rendezvous-seal.js';
import { identityFromSeed } from '../../../scripts/bench/mesh-sim.js';
import { libsodiumSecondMissing, runLibsodiumSecond } from '../../support/libsodium-second.js';
import { describeWhenAvailable } from '../../support/requirements.js';

const vector = JSON.parse(
  readFileSync(new URL('../../fixtures/rendezvous-vector.json', import.meta.url), 'utf8'),
) as {
  mesh_key: string;
  seed: string;
  public_key: string;
  peer_id: string;
  name: string;
  endpoints: string[];
  issued_at_ms: number;
  ttl_s: number;
  salt: string;
  tag: string;
  slot_key: string;
  slot: string;
  topic: string;
  signed: string;
  signature: string;
  record: string;
  payload: string;
};
const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'hex'));
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const keys = rendezvousKeys(hex(vector.mesh_key));
const identity = identityFromSeed(hex(vector.seed));
const claims = {
  name: vector.name,
  endpoints: vector.endpoints,
  issuedAtMs: vector.issued_at_ms,
  ttlS: vector.ttl_s,
};

describe('rendezvous vector, written', () => {
  it('derives the documented tag, slot key and slot from the mesh key and the identity', () => {
    expect(toHex(identity.publicKey)).toBe(vector.public_key);
    expect(identity.peerId).toBe(vector.peer_id);
    expect(keys.tagHex).toBe(vector.tag);
    expect(toHex(keys.slotKey)).toBe(vector.slot_key);
    expect(rendezvousSlot(keys, identity.publicKey)).toBe(vector.slot);
    expect(vector.topic).toBe(`nearmesh/rendezvous/${vector.tag}/${vector.slot}`);
  });

  it('signs, encodes and seals to the documented bytes', () => {
    const full: RendezvousClaims = { ...claims, publicKey: identity.publicKey };
    expect(toHex(encodeRendezvousSigned(keys.tag, full))).toBe(vector.signed);
    expect(toHex(identity.sign(hex(vector.signed)))).toBe(vector.signature);
    expect(toHex(encodeRendezvousRecord({ ...full, signature: hex(vector.signature) }))).toBe(vector.record);
    const sealed = sealRendezvousRecord(keys, identity, claims, hex(vector.salt));
    expect(sealed.slot).toBe(vector.slot);
    expect(toHex(sealed.payload)).toBe(vector.payload);
  });
});

describe('rendezvous vector, read', () => {
  it('opens the payload at its slot to the record, the signer proven', () => {
    const opened = openRendezvousRecord([keys], vector.tag, vector.slot, hex(vector.payload));
    expect(opened).toEqual({
      ok: true,
      peerId: vector.peer_id,
      record: { ...claims, publicKey: identity.publicKey, signature: hex(vector.signature) },
    });
  });

  it('is in PROTOCOL.md, every value', () => {
    const doc = readFileSync(new URL('../../../docs/PROTOCOL.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('## 19. Rendezvous')).replace(/\s+/g, '');
    for (const key of [
      'mesh_key',
      'seed',
      'public_key',
      'salt',
      'tag',
      'slot',
      'signed',
      'signature',
      'record',
      'payload',
    ] as const)
      expect(section, key).toContain(vector[key]);
  });
});

describe('rendezvous records that must not be believed', () => {
  const payload = hex(vector.payload);
  const other = identityFromSeed(new Uint8Array(32).fill(9));

  it('does not open under another mesh key: it is another mesh’s, counted as foreign', () => {
    const foreign = rendezvousKeys(new Uint8Array(32).fill(1));
    expect(openRendezvousRecord([foreign], vector.tag, vector.slot, payload)).toMatchObject({
      ok: false,
      kind: 'foreign',
    });
  });

  it('does not open altered, or moved to another agent’s slot', () => {
    for (const index of [3, 20, payload.length - 1]) {
      const altered = Uint8Array.from(payload);
      altered[index] = (altered[index] ?? 0) ^ 1;
      expect(openRendezvousRecord([keys], vector.tag, vector.slot, altered)).toMatchObject({
        ok: false,
        kind: 'bad',
      });
    }
    const otherSlot = rendezvousSlot(keys, other.publicKey);
    expect(openRendezvousRecord([keys], vector.tag, otherSlot, payload)).toMatchObject({
      ok: false,
      kind: 'bad',
    });
    expect(openRendezvousRecord([keys], vector.tag, vector.slot, payload.subarray(0, 16))).toMatchObject({
      ok: false,
    });
  });

  it('refuses a member speaking for another: a record naming B’s key, signed by C, in B’s slot', () => {
    // C holds the mesh key, so it can seal; it cannot sign as B.
    const full: RendezvousClaims = { ...claims, publicKey: identity.publicKey };
    const forged = encodeRendezvousRecord({
      ...full,
      signature: other.sign(encodeRendezvousSigned(keys.tag, full)),
    });
    const salt = new Uint8Array(16).fill(3);
    const key = new Uint8Array(hkdfSync('sha256', keys.meshKey, salt, 'nearmesh/2 rendezvous record', 32));
    const ad = new TextEncoder().encode(`${vector.tag}/${vector.slot}`);
    const sealed = new Uint8Array([...salt, ...aeadEncrypt(key, 0n, ad, forged)]);
    expect(openRendezvousRecord([keys], vector.tag, vector.slot, sealed)).toEqual({
      ok: false,
      kind: 'bad',
      reason: 'signature does not verify',
    });
    // Its own record, honestly signed, opens only in its own slot.
    const own = sealRendezvousRecord(keys, other, claims);
    expect(openRendezvousRecord([keys], vector.tag, own.slot, own.payload)).toMatchObject({
      ok: true,
      peerId: other.peerId,
    });
    expect(openRendezvousRecord([keys], vector.tag, vector.slot, own.payload)).toMatchObject({ ok: false });
  });

  it('decodes only well-formed records', () => {
    const record = hex(vector.record);
    expect(decodeRendezvousRecord(record)).not.toBeInstanceOf(DecodeError);
    const decoded = decodeRendezvousRecord(record) as RendezvousClaims & { signature: Uint8Array };
    const reencode = (changes: Record<number, unknown>) => {
      const fields: unknown[] = [
        'nearmesh/2 rendezvous',
        decoded.publicKey,
        decoded.name,
        decoded.endpoints,
        decoded.issuedAtMs,
        decoded.ttlS,
        decoded.signature,
      ];
      for (const [index, value] of Object.entries(changes)) fields[Number(index)] = value;
      return encodeCbor(fields as never);
    };
    const cases: [Record<number, unknown>, string][] = [
      [{ 0: 'nearmesh/2 join' }, 'context'],
      [{ 1: new Uint8Array(31) }, 'public key'],
      [{ 2: '' }, 'name'],
      [{ 3: ['10.0.0.1'] }, 'endpoints'],
      [{ 3: Array.from({ length: 9 }, (_, i) => `10.0.0.${i}:7450`) }, 'endpoints'],
      [{ 5: 5 }, 'ttlS'],
      [{ 6: new Uint8Array(63) }, 'signature'],
    ];
    for (const [changes, what] of cases) {
      const result = decodeRendezvousRecord(reencode(changes));
      expect(result, what).toBeInstanceOf(DecodeError);
      expect((result as DecodeError).message).toContain(what);
    }
    expect(() => sealRendezvousRecord(keys, identity, { ...claims, endpoints: ['nowhere'] })).toThrow(
      EncodeError,
    );
  });
});

describeWhenAvailable(
  'rendezvous vector against libsodium and cbor2 (a second implementation)',
  libsodiumSecondMissing(),
  () => {
    it('writes the same tag, slot, signature, record and payload, and opens ours to the same record', () => {
      const child = runLibsodiumSecond('rendezvous-libsodium.py', vector);
      expect(child.stderr).toBe('');
      expect(child.status).toBe(0);
      expect(JSON.parse(child.stdout)).toEqual({
        public_key: vector.public_key,
        peer_id: vector.peer_id,
        tag: vector.tag,
        slot: vector.slot,
        signed: vector.signed,
        signature: vector.signature,
        record: vector.record,
        payload: vector.payload,
        opened: {
          public_key: vector.public_key,
          name: vector.name,
          endpoints: vector.endpoints,
          issued_at_ms: vector.issued_at_ms,
          ttl_s: vector.ttl_s,
        },
      });
    });
  },
);
