// Origin authentication of routed messages (PROTOCOL.md §2.1), pinned by test/fixtures/origin-vectors.json
// and checked both ways: our code makes exactly the vector's input, pairwise key, tag and signature, and a
// second implementation (@noble/curves and @noble/hashes, pure JavaScript, nothing shared with node:crypto)
// computes the same from the same seeds. The input is deterministic CBOR to cborg and python3-cbor2. Then
// what a receiver makes of genuine, altered, forged and unverifiable messages.
import { readFileSync } from 'node:fs';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import * as cborg from 'cborg';
import { describe, expect, it, test } from 'vitest';
import type { Identity } from '../../../agent/identity/identity.js';
import { KeyDirectory } from '../../../agent/identity/key-directory.js';
import { decodeMessage, type RoutedMessage } from '../../../agent/protocol/index.js';
import { ORIGIN_AUTH_CONTEXT, originAuthInput } from '../../../agent/protocol/origin.js';
import { OriginAuth, PAIRWISE_KEY_SALT } from '../../../agent/security/origin-auth.js';
import { identityFromSeed } from '../../../scripts/bench/mesh-sim.js';
import { describeDeterministicUnderCbor2 } from '../protocol/system-vectors.js';
import { fromHex, loadVectors, toHex } from '../protocol/vector-json.js';

interface OriginVector {
  name: string;
  form: 'tag' | 'signature';
  authInput: string;
  auth: string;
  pairwiseKey?: string;
}

const fixture = JSON.parse(
  readFileSync(new URL('../../fixtures/origin-vectors.json', import.meta.url), 'utf8'),
) as { identities: Record<string, { seed: string; publicKey: string }>; vectors: OriginVector[] };

const identities = new Map(
  Object.entries(fixture.identities).map(([id, { seed }]) => [id, identityFromSeed(fromHex(seed))]),
);
const [idA, idB] = [...identities.keys()] as [string, string];

/** The routed message of the protocol vector with this name, as decoded from its bytes. */
function routedMessage(name: string): RoutedMessage {
  const vector = loadVectors().find((candidate) => candidate.name === name);
  if (vector === undefined) throw new Error(`no protocol vector "${name}"`);
  const result = decodeMessage(fromHex(vector.hex));
  const message = result.kind === 'message' ? result.message : undefined;
  if (message === undefined || !('route' in message) || message.route === undefined) {
    throw new Error(`${name} is not routed`);
  }
  return message as RoutedMessage;
}

function flipLastByte(bytes: Uint8Array): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy[copy.length - 1] = (copy[copy.length - 1] as number) ^ 1;
  return copy;
}

/** What `holder` checks with: its identity, knowing the other fixture identity's key (as after a handshake). */
function authOf(holder: string): OriginAuth {
  const keys = new KeyDirectory();
  for (const [id, identity] of identities) if (id !== holder) keys.learn(identity.publicKey);
  return new OriginAuth(identities.get(holder) as Identity, keys);
}

test('the fixture covers the tag form and the signature form, DATA, ACK and ANNOUNCE', () => {
  expect(new Set(fixture.vectors.map((v) => v.form))).toEqual(new Set(['tag', 'signature']));
  expect(new Set(fixture.vectors.map((v) => routedMessage(v.name).type))).toEqual(
    new Set(['data', 'ack', 'announce']),
  );
  // The identities are the documented ones: the §9 seed (peer id 56475aa75463474c) and a second one.
  expect(idA).toBe('56475aa75463474c');
  for (const [id, { publicKey }] of Object.entries(fixture.identities)) {
    expect(toHex(identities.get(id)?.publicKey as Uint8Array)).toBe(publicKey);
  }
});

describe.each(fixture.vectors)('origin vector: $name', (vector) => {
  const message = routedMessage(vector.name);
  const route = message.route as NonNullable<RoutedMessage['route']>;

  test('our input is the vector input, the documented deterministic CBOR array', () => {
    expect(toHex(originAuthInput(message))).toBe(vector.authInput);
    const fields = cborg.decode(fromHex(vector.authInput), { strict: true }) as unknown[];
    expect(fields[0]).toBe(ORIGIN_AUTH_CONTEXT);
    expect(fields.slice(5)).toEqual([fromHex(route.source), fromHex(route.destination)]);
    expect(toHex(cborg.encode(fields, cborg.rfc8949EncodeOptions))).toBe(vector.authInput);
  });

  test('the origin seals it with exactly the vector auth, and the frame carries it', () => {
    const isForMany = vector.form === 'signature';
    expect(toHex(authOf(route.source).seal(message, isForMany))).toBe(vector.auth);
    expect(toHex(message.auth as Uint8Array)).toBe(vector.auth);
  });

  test('a second implementation (@noble) computes the same auth from the seeds', () => {
    const { seed, publicKey } = fixture.identities[route.source] as { seed: string; publicKey: string };
    const input = fromHex(vector.authInput);
    if (vector.form === 'signature') {
      expect(toHex(ed25519.sign(input, fromHex(seed)))).toBe(vector.auth.slice(64));
      expect(vector.auth.slice(0, 64)).toBe(publicKey);
      expect(ed25519.verify(fromHex(vector.auth.slice(64)), input, fromHex(publicKey))).toBe(true);
      return;
    }
    const peer = route.source === idA ? idB : idA;
    const peerPublicKey = fromHex(fixture.identities[peer]?.publicKey as string);
    const secret = x25519.getSharedSecret(
      ed25519.utils.toMontgomerySecret(fromHex(seed)),
      ed25519.utils.toMontgomery(peerPublicKey),
    );
    const [low, high] = [route.source, peer].sort() as [string, string];
    const info = Buffer.concat([fromHex(low), fromHex(high)]);
    const key = hkdf(sha256, secret, new TextEncoder().encode(PAIRWISE_KEY_SALT), info, 32);
    expect(toHex(key)).toBe(vector.pairwiseKey);
    expect(toHex(hmac(sha256, key, input).subarray(0, 16))).toBe(vector.auth);
  });

  test('its destination (and, signed, anyone) accepts it; every altered byte is refused', () => {
    const receiver = authOf(route.destination === idA ? idA : idB);
    expect(receiver.verify(message, vector.form === 'signature')).toBe('ok');
    const hasBody = message.type === 'data' && message.payload.length > 0;
    const altered: RoutedMessage[] = [
      { ...message, id: message.id + 1 },
      { ...message, route: { ...route, destination: route.destination === idA ? idB : idA } },
      { ...message, auth: flipLastByte(message.auth as Uint8Array) },
    ];
    if (hasBody && message.type === 'data') {
      altered.push({
        ...message,
        payload: Uint8Array.from(message.payload, (byte, i) => (i === 0 ? byte ^ 1 : byte)),
      });
    }
    for (const candidate of altered) {
      const verdict = receiver.verify(candidate, vector.form === 'signature');
      expect(['bad-tag', 'bad-signature', 'unverifiable']).toContain(verdict);
    }
  });
});

describeDeterministicUnderCbor2('origin auth inputs', () => fixture.vectors.map((v) => v.authInput));

describe('OriginAuth', () => {
  const alice = identities.get(idA) as Identity;
  const bob = identities.get(idB) as Identity;
  const data = (source: string, destination: string): RoutedMessage => ({
    type: 'data',
    id: 7,
    ackRequested: true,
    payload: new TextEncoder().encode('open the door'),
    route: { ttlHops: 4, source, destination },
  });

  it('seals with a 16-byte tag for a destination whose key it knows, and signs otherwise', () => {
    const knowsBob = authOf(idA);
    expect(knowsBob.seal(data(idA, idB), false)).toHaveLength(16);
    const knowsNobody = new OriginAuth(alice, new KeyDirectory());
    expect(knowsNobody.seal(data(idA, idB), false)).toHaveLength(96);
    expect(knowsBob.seal(data(idA, idB), true)).toHaveLength(96);
  });

  it('a relay cannot check a tag for someone else: unverifiable, not ok; a signature it can', () => {
    const relay = new OriginAuth(identityFromSeed(fromHex('40'.repeat(32))), new KeyDirectory());
    const tagged = { ...data(idA, idB), auth: authOf(idA).seal(data(idA, idB), false) };
    expect(relay.verify(tagged, false)).toBe('unverifiable');
    const signed = { ...data(idA, idB), auth: authOf(idA).seal(data(idA, idB), true) };
    expect(relay.verify(signed, false)).toBe('ok');
  });

  it('a message for many (ANNOUNCE, group, everyone) must be signed: a tag on one is refused by everyone', () => {
    const broadcast = { ...data(idA, 'ffffffffffffffff'), ackRequested: false };
    const tagged = { ...broadcast, auth: new Uint8Array(16).fill(3) };
    for (const receiver of [
      authOf(idB),
      new OriginAuth(identityFromSeed(fromHex('40'.repeat(32))), new KeyDirectory()),
    ]) {
      expect(receiver.verify(tagged, true)).toBe('bad-signature');
      expect(receiver.verify({ ...broadcast, auth: authOf(idA).seal(broadcast, true) }, true)).toBe('ok');
    }
  });

  it('a member cannot speak for another: its tag or signature under the victim id is refused', () => {
    const mallory = identityFromSeed(fromHex('66'.repeat(32)));
    const malloryAuth = new OriginAuth(mallory, new KeyDirectory());
    malloryAuth.keys.learn(bob.publicKey);
    // Mallory's message claims alice as its source, sealed with what Mallory has.
    const forged = data(idA, idB);
    const tag = malloryAuth.seal(forged, false);
    expect(authOf(idB).verify({ ...forged, auth: tag }, false)).toBe('bad-tag');
    const signature = malloryAuth.seal(forged, true);
    expect(authOf(idB).verify({ ...forged, auth: signature }, false)).toBe('bad-signature');
    // Alice's own key with Mallory's signature is no better.
    const spliced = Uint8Array.from(signature);
    spliced.set(alice.publicKey, 0);
    expect(authOf(idB).verify({ ...forged, auth: spliced }, false)).toBe('bad-signature');
  });

  it('a tag from an origin whose key is unknown is unknown-origin, and a signature teaches the key', () => {
    const fresh = new OriginAuth(bob, new KeyDirectory());
    const tagged = { ...data(idA, idB), auth: authOf(idA).seal(data(idA, idB), false) };
    expect(fresh.verify(tagged, false)).toBe('unknown-origin');
    const signed = { ...data(idA, idB), auth: authOf(idA).seal(data(idA, idB), true) };
    expect(fresh.verify(signed, false)).toBe('ok');
    expect(fresh.keys.publicKeyOf(idA)).toEqual(alice.publicKey);
    expect(fresh.verify(tagged, false)).toBe('ok');
  });

  it('a bad signature teaches no key: made-up keys cannot crowd the directory', () => {
    const fresh = new OriginAuth(bob, new KeyDirectory());
    const signed = authOf(idA).seal(data(idA, idB), true);
    signed[90] = (signed[90] as number) ^ 0xff;
    expect(fresh.verify({ ...data(idA, idB), auth: signed }, false)).toBe('bad-signature');
    expect(fresh.keys.size).toBe(0);
  });

  it('an origin whose key is not a valid point gets the signature form, never a crash', () => {
    const keys = new KeyDirectory();
    // A low-order point: X25519 with it would give an all-zero secret.
    const lowOrder = fromHex('0100000000000000000000000000000000000000000000000000000000000000');
    const lowId = keys.learn(lowOrder);
    const auth = new OriginAuth(alice, keys).seal(data(idA, lowId), false);
    expect(auth).toHaveLength(96);
  });
});
