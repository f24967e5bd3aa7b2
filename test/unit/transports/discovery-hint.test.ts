// The private discovery hint (transports/discovery-hint.ts): the PROTOCOL.md §10.1 vectors both ways, opening
// under any accepted key, nothing opening under a foreign one, and hostile bytes.
import { createHmac, hkdfSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BLE_HINT_LAYOUT } from '../../../transports/ble/advertisement.js';
import {
  DISCOVERY_HINT_INFO,
  HINT_CHECK_BYTES,
  hintBytes,
  hintKey,
  openHint,
  sealHint,
} from '../../../transports/discovery-hint.js';
import { MDNS_HINT_LAYOUT } from '../../../transports/wifi/mdns-resolver.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const fromHex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'hex'));

/** The PROTOCOL.md §10.1 example: the mesh key 00 01 .. 1f and the §9 identity vector's peer id. */
const MESH_KEY = Uint8Array.from({ length: 32 }, (_, i) => i);
const PEER_ID = '56475aa75463474c';
const VECTORS = {
  hintKey: '68f897051a693c47b3e176ca69b0007dbd5575e92171b051728da6e0d7756d41',
  ble: { nonce: 'a0a1a2a3a4a5', hint: 'a0a1a2a3a4a5868f200deeaa97ff84c4b77f' },
  mdns: {
    nonce: 'b0b1b2b3b4b5b6b7b8b9babbbcbdbebf',
    hint: 'b0b1b2b3b4b5b6b7b8b9babbbcbdbebf953e84bd1952cf3d180955a7',
  },
};
const keys =
  (...meshKeys: Uint8Array[]) =>
  (): readonly Uint8Array[] =>
    meshKeys;
const otherKey = (seed: number): Uint8Array => new Uint8Array(32).fill(seed);

describe('test vectors (PROTOCOL.md §10.1)', () => {
  it('derives the hint key with HKDF-SHA256 (empty salt, the documented info string)', () => {
    expect(DISCOVERY_HINT_INFO).toBe('nearmesh/2 discovery hint');
    const independent = hkdfSync('sha256', MESH_KEY, Buffer.alloc(0), DISCOVERY_HINT_INFO, 32);
    expect(hex(new Uint8Array(independent))).toBe(VECTORS.hintKey);
    expect(hex(hintKey(MESH_KEY))).toBe(VECTORS.hintKey);
  });

  it('seals the documented bytes: nonce, then (peer id, four zero bytes) XOR HMAC-SHA256(key, nonce)', () => {
    for (const [layout, vector] of [
      [BLE_HINT_LAYOUT, VECTORS.ble],
      [MDNS_HINT_LAYOUT, VECTORS.mdns],
    ] as const) {
      const sealed = sealHint(keys(MESH_KEY), PEER_ID, layout, fromHex(vector.nonce));
      expect(hex(sealed)).toBe(vector.hint);
      // The same bytes computed from the description alone.
      const mask = createHmac('sha256', fromHex(VECTORS.hintKey)).update(fromHex(vector.nonce)).digest();
      const payload = Buffer.concat([Buffer.from(PEER_ID, 'hex'), Buffer.alloc(HINT_CHECK_BYTES)]);
      const masked = payload.map((byte, i) => byte ^ (mask[i] ?? 0));
      expect(vector.nonce + hex(masked)).toBe(vector.hint);
    }
  });

  it('opens the documented bytes to the peer id', () => {
    expect(openHint(keys(MESH_KEY), fromHex(VECTORS.ble.hint), BLE_HINT_LAYOUT)).toEqual({
      peerId: PEER_ID,
      keyIndex: 0,
    });
    expect(openHint(keys(MESH_KEY), fromHex(VECTORS.mdns.hint), MDNS_HINT_LAYOUT)?.peerId).toBe(PEER_ID);
  });

  it('are the ones PROTOCOL.md shows', () => {
    const protocol = readFileSync(new URL('../../../docs/PROTOCOL.md', import.meta.url), 'utf8');
    for (const text of [
      VECTORS.hintKey,
      VECTORS.ble.nonce,
      VECTORS.ble.hint,
      VECTORS.mdns.nonce,
      VECTORS.mdns.hint,
      DISCOVERY_HINT_INFO,
    ]) {
      expect(protocol).toContain(`\`${text}\``);
    }
  });
});

describe('sizes', () => {
  it('is 18 bytes on BLE (6-byte nonce) and 28 on mDNS (16-byte nonce), the whole peer id in both', () => {
    expect(BLE_HINT_LAYOUT).toEqual({ nonceBytes: 6, idBytes: 8 });
    expect(hintBytes(BLE_HINT_LAYOUT)).toBe(18);
    expect(MDNS_HINT_LAYOUT).toEqual({ nonceBytes: 16, idBytes: 8 });
    expect(hintBytes(MDNS_HINT_LAYOUT)).toBe(28);
  });

  it('can carry a shorter id where room is tight', () => {
    const layout = { nonceBytes: 4, idBytes: 3 };
    const sealed = sealHint(keys(MESH_KEY), PEER_ID, layout);
    expect(sealed.length).toBe(11);
    expect(openHint(keys(MESH_KEY), sealed, layout)?.peerId).toBe('56475a');
  });
});

describe('opening', () => {
  const peerIdArb = fc.uint8Array({ minLength: 8, maxLength: 8 }).map(hex);
  const keyArb = fc.uint8Array({ minLength: 32, maxLength: 32 });

  it('opens under any accepted key, saying which, and seals under the current (first) one', () => {
    fc.assert(
      fc.property(peerIdArb, keyArb, keyArb, (peerId, current, older) => {
        fc.pre(hex(current) !== hex(older));
        const sealed = sealHint(keys(current, older), peerId, BLE_HINT_LAYOUT);
        expect(openHint(keys(current), sealed, BLE_HINT_LAYOUT)).toEqual({ peerId, keyIndex: 0 });
        // An agent still on the older key first, that accepts the new one too.
        expect(openHint(keys(older, current), sealed, BLE_HINT_LAYOUT)).toEqual({ peerId, keyIndex: 1 });
        expect(openHint(keys(older), sealed, BLE_HINT_LAYOUT)).toBeUndefined();
      }),
      { numRuns: 200 },
    );
  });

  it('gives a new hint every time (a fresh nonce), each opening to the same id', () => {
    const hints = Array.from({ length: 50 }, () => sealHint(keys(MESH_KEY), PEER_ID, MDNS_HINT_LAYOUT));
    expect(new Set(hints.map(hex)).size).toBe(50);
    for (const sealed of hints)
      expect(openHint(keys(MESH_KEY), sealed, MDNS_HINT_LAYOUT)?.peerId).toBe(PEER_ID);
  });

  it('opens nothing under a foreign key (a chance opening is 1 in 2^32 per key)', () => {
    const foreign = Array.from({ length: 64 }, (_, i) => otherKey(i + 100));
    for (let i = 0; i < 500; i++) {
      const sealed = sealHint(keys(MESH_KEY), PEER_ID, BLE_HINT_LAYOUT);
      expect(openHint(() => foreign, sealed, BLE_HINT_LAYOUT)).toBeUndefined();
    }
  });

  it('never throws on hostile bytes, and opens nothing of the wrong length or with no keys', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        expect(() => openHint(keys(MESH_KEY), bytes, BLE_HINT_LAYOUT)).not.toThrow();
      }),
      { numRuns: 1000 },
    );
    const sealed = sealHint(keys(MESH_KEY), PEER_ID, BLE_HINT_LAYOUT);
    expect(openHint(keys(MESH_KEY), sealed.subarray(1), BLE_HINT_LAYOUT)).toBeUndefined();
    expect(openHint(keys(), sealed, BLE_HINT_LAYOUT)).toBeUndefined();
    const flipped = Uint8Array.from(sealed);
    flipped[17] = (flipped[17] ?? 0) ^ 1; // a check byte
    expect(openHint(keys(MESH_KEY), flipped, BLE_HINT_LAYOUT)).toBeUndefined();
  });

  it('refuses to seal with no key, a bad peer id, nonce or layout', () => {
    expect(() => sealHint(keys(), PEER_ID, BLE_HINT_LAYOUT)).toThrow(RangeError);
    expect(() => sealHint(keys(MESH_KEY), '56475AA75463474C', BLE_HINT_LAYOUT)).toThrow(RangeError);
    expect(() => sealHint(keys(MESH_KEY), PEER_ID, BLE_HINT_LAYOUT, new Uint8Array(5))).toThrow(RangeError);
    expect(() => sealHint(keys(MESH_KEY), PEER_ID, { nonceBytes: 6, idBytes: 9 })).toThrow(RangeError);
    expect(() => sealHint(keys(MESH_KEY), PEER_ID, { nonceBytes: 0, idBytes: 8 })).toThrow(RangeError);
  });
});
