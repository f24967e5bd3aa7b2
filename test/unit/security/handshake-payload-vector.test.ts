// The identity payload vector of docs/PROTOCOL.md §9: our encoder writes exactly those bytes, our
// verifier proves the documented peer id from them, and cborg (independent) reads the same fields.
import { readFileSync } from 'node:fs';
import { decode } from 'cborg';
import { describe, expect, it } from 'vitest';
import { encodeHandshakePayload, verifyHandshakePayload } from '../../../agent/security/handshake-payload.js';
import { identityFromSeed } from '../../../scripts/bench/mesh-sim.js';

const vector = JSON.parse(
  readFileSync(new URL('../../fixtures/handshake-payload-vector.json', import.meta.url), 'utf8'),
) as Record<
  'seed' | 'ed25519_public_key' | 'peer_id' | 'noise_static_public_key' | 'name' | 'payload',
  string
>;
const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'hex'));

describe('handshake identity payload vector', () => {
  const identity = identityFromSeed(hex(vector.seed));

  it('encodes to the documented bytes', () => {
    expect(Buffer.from(identity.publicKey).toString('hex')).toBe(vector.ed25519_public_key);
    const payload = encodeHandshakePayload(identity, vector.name, hex(vector.noise_static_public_key));
    expect(Buffer.from(payload).toString('hex')).toBe(vector.payload);
  });

  it('verifies to the documented peer id, and only for the signed static key', () => {
    const proven = verifyHandshakePayload(hex(vector.payload), hex(vector.noise_static_public_key));
    expect(proven.peerId).toBe(vector.peer_id);
    expect(proven.name).toBe(vector.name);
    const otherKey = hex(vector.noise_static_public_key);
    otherKey[0] = (otherKey[0] ?? 0) ^ 1;
    expect(() => verifyHandshakePayload(hex(vector.payload), otherKey)).toThrow(/signature/);
  });

  it('reads the same with cborg', () => {
    const [version, publicKey, signature, name] = decode(hex(vector.payload)) as [
      number,
      Uint8Array,
      Uint8Array,
      string,
    ];
    expect(version).toBe(1);
    expect(Buffer.from(publicKey).toString('hex')).toBe(vector.ed25519_public_key);
    expect(signature).toHaveLength(64);
    expect(name).toBe(vector.name);
  });

  it('appears in docs/PROTOCOL.md', () => {
    const doc = readFileSync(new URL('../../../docs/PROTOCOL.md', import.meta.url), 'utf8').replace(
      /\s+/g,
      '',
    );
    expect(doc).toContain(vector.peer_id);
    expect(doc).toContain(vector.ed25519_public_key);
    // The 64-byte signature is printed over two lines of 32 bytes.
    expect(doc).toContain(vector.payload.slice(76, 140));
    expect(doc).toContain(vector.payload.slice(140, 204));
  });
});
