// The site tunnel vector of docs/PROTOCOL.md §20 (test/fixtures/tunnel-vector.json) both ways: our code seals
// the documented routed DATA into exactly the documented frame and opens the frame back to it, the message
// inside is the origin's, signed, for the destination, and a second implementation (Python, libsodium) agrees.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KeyDirectory } from '../../../agent/identity/key-directory.js';
import { decodeMessage } from '../../../agent/protocol/index.js';
import { OriginAuth } from '../../../agent/security/origin-auth.js';
import { openTunnelFrame, sealTunnelFrame } from '../../../agent/security/tunnel-seal.js';
import { identityFromSeed } from '../../../scripts/bench/mesh-sim.js';
import { libsodiumSecondMissing, runLibsodiumSecond } from '../../support/libsodium-second.js';
import { describeWhenAvailable } from '../../support/requirements.js';

const vector = JSON.parse(
  readFileSync(new URL('../../fixtures/tunnel-vector.json', import.meta.url), 'utf8'),
) as Record<
  | 'mesh_key'
  | 'origin_seed'
  | 'origin_id'
  | 'destination_seed'
  | 'destination_id'
  | 'payload'
  | 'message'
  | 'salt'
  | 'frame',
  string
> & { id: number };
const hex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'hex'));
const meshKey = hex(vector.mesh_key);

describe('the site tunnel vector (PROTOCOL.md §20)', () => {
  it('seals the message into the documented frame, and opens it back', () => {
    const frame = sealTunnelFrame(meshKey, vector.destination_id, hex(vector.message), hex(vector.salt));
    expect(Buffer.from(frame).toString('hex')).toBe(vector.frame);
    const opened = openTunnelFrame([meshKey], vector.destination_id, hex(vector.frame));
    expect(Buffer.from(opened ?? []).toString('hex')).toBe(vector.message);
  });

  it('holds a routed DATA from the origin to the destination, signed by the origin', () => {
    const origin = identityFromSeed(hex(vector.origin_seed));
    const destination = identityFromSeed(hex(vector.destination_seed));
    expect([origin.peerId, destination.peerId]).toEqual([vector.origin_id, vector.destination_id]);
    const decoded = decodeMessage(hex(vector.message));
    if (decoded.kind !== 'message' || decoded.message.type !== 'data') throw new Error('not a DATA');
    const message = decoded.message;
    expect(message.route).toEqual({
      ttlHops: 1,
      source: vector.origin_id,
      destination: vector.destination_id,
    });
    expect(message.id).toBe(vector.id);
    expect(Buffer.from(message.payload).toString('hex')).toBe(vector.payload);
    // The destination has never met the origin: the signature form proves it anyway.
    expect(new OriginAuth(destination, new KeyDirectory()).verify(message, false)).toBe('ok');
  });

  it('does not open under another mesh key or for another destination', () => {
    expect(openTunnelFrame([new Uint8Array(32)], vector.destination_id, hex(vector.frame))).toBeUndefined();
    expect(openTunnelFrame([meshKey], vector.origin_id, hex(vector.frame))).toBeUndefined();
  });

  it('is in PROTOCOL.md, every value', () => {
    const doc = readFileSync(new URL('../../../docs/PROTOCOL.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('## 20. Site tunnel')).replace(/\s+/g, '');
    for (const key of ['mesh_key', 'origin_seed', 'destination_id', 'message', 'salt', 'frame'] as const)
      expect(section, key).toContain(vector[key]);
  });
});

describeWhenAvailable(
  'the site tunnel vector in a second implementation (Python, libsodium)',
  libsodiumSecondMissing(),
  () => {
    it('seals the same frame and opens ours to the same DATA', () => {
      const child = runLibsodiumSecond('tunnel-libsodium.py', vector);
      expect(child.stderr).toBe('');
      expect(child.status).toBe(0);
      expect(JSON.parse(child.stdout)).toEqual({
        frame: vector.frame,
        opened: vector.message,
        src: vector.origin_id,
        dst: vector.destination_id,
        id: vector.id,
        payload: vector.payload,
      });
    });
  },
);
