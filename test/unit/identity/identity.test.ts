// Device identity: created once (0600, atomically), the same on every start, and the peer id is
// the first 8 bytes of SHA-256 of the raw Ed25519 public key.
import { createHash } from 'node:crypto';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  isPeerId,
  peerIdFromBytes,
  peerIdFromPublicKey,
  peerIdToBytes,
} from '../../../agent/core/peer-id.js';
import { IdentityError, loadOrCreateIdentity, verifySignature } from '../../../agent/identity/identity.js';
import { stopAllAgents, temporaryDir } from '../../support/agent-process.js';

afterAll(stopAllAgents);

describe('identity', () => {
  it('is created with mode 0600, no temporary files left, and loaded unchanged later', async () => {
    const dir = temporaryDir();
    const first = await loadOrCreateIdentity(dir);
    expect(readdirSync(dir)).toEqual(['identity.pem']);
    expect(statSync(join(dir, 'identity.pem')).mode & 0o777).toBe(0o600);
    const second = await loadOrCreateIdentity(dir);
    expect(second.peerId).toBe(first.peerId);
    expect(Buffer.from(second.publicKey)).toEqual(Buffer.from(first.publicKey));
  });

  it('derives the peer id from SHA-256 of the raw public key', async () => {
    const identity = await loadOrCreateIdentity(temporaryDir());
    const expected = createHash('sha256').update(identity.publicKey).digest('hex').slice(0, 16);
    expect(identity.peerId).toBe(expected);
    expect(peerIdFromPublicKey(identity.publicKey)).toBe(expected);
    expect(isPeerId(identity.peerId)).toBe(true);
    expect(peerIdFromBytes(peerIdToBytes(identity.peerId))).toBe(identity.peerId);
  });

  it('signs so that only its own public key verifies', async () => {
    const identity = await loadOrCreateIdentity(temporaryDir());
    const other = await loadOrCreateIdentity(temporaryDir());
    const data = Buffer.from('nearmesh');
    const signature = identity.sign(data);
    expect(verifySignature(identity.publicKey, data, signature)).toBe(true);
    expect(verifySignature(other.publicKey, data, signature)).toBe(false);
    expect(verifySignature(identity.publicKey, Buffer.from('nearmesh!'), signature)).toBe(false);
    expect(verifySignature(identity.publicKey.subarray(1), data, signature)).toBe(false);
  });

  it('refuses a damaged identity file instead of replacing it', async () => {
    const dir = temporaryDir();
    writeFileSync(join(dir, 'identity.pem'), 'garbage');
    await expect(loadOrCreateIdentity(dir)).rejects.toBeInstanceOf(IdentityError);
  });
});
