// Drives establishSecureLink over in-memory links: proven identities, mesh-key refusal in silence, keys
// retired by a rotation, protocol v1 recognised, tamper/replay detection, timeouts, and (property-based)
// that garbage in the handshake only ever yields HandshakeError.
import { encode as cborEncode, decode as strictCborDecode } from 'cborg';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameTooLargeError, type NearmeshError } from '../../../agent/core/errors.js';
import { generateIdentity, type Identity, verifySignature } from '../../../agent/identity/identity.js';
import { HandshakeError, NoiseDecryptError } from '../../../agent/security/errors.js';
import {
  encodeHandshakePayload,
  staticKeySignatureInput,
} from '../../../agent/security/handshake-payload.js';
import { generateKeyPair, HandshakeState } from '../../../agent/security/noise.js';
import {
  establishSecureLink,
  SECURE_CHANNEL_PROLOGUE,
  type SecureLink,
  type SecureLinkOptions,
} from '../../../agent/security/secure-channel.js';
import { MemoryLink, memoryLinkPair } from '../../support/memory-link.js';
import { until } from '../../support/until.js';

const EMPTY = new Uint8Array(0);
const meshKey = (fill: number): Uint8Array => new Uint8Array(32).fill(fill);
const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };
function outcome<T>(promise: Promise<T>): Promise<Outcome<T>> {
  return promise.then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  );
}

async function handshakeError(promise: Promise<unknown>): Promise<HandshakeError> {
  const result = await outcome(promise);
  if (result.ok) throw new Error('expected the handshake to fail');
  expect(result.error).toBeInstanceOf(HandshakeError);
  return result.error as HandshakeError;
}

function options(
  identity: Identity,
  name: string,
  overrides: Partial<SecureLinkOptions> = {},
): SecureLinkOptions {
  return { identity, meshKeys: [meshKey(7)], name, timeoutMs: 2000, ...overrides };
}

/** Records what a secure link delivers and how it ends. */
function observe(link: SecureLink): { messages: Uint8Array[]; closed: Promise<Error | undefined> } {
  const messages: Uint8Array[] = [];
  link.on('message', (plaintext) => messages.push(plaintext));
  const closed = new Promise<Error | undefined>((resolve) => link.once('close', resolve));
  return { messages, closed };
}

// A receiving link that keeps emitting frames even after close, so tests see the SecureLink's own
// "nothing after a failure" guard rather than MemoryLink's.
class LeakyLink extends MemoryLink {
  override deliver(frame: Uint8Array): void {
    this.emit('frame', frame);
  }
}

function leakyPair(): [MemoryLink, LeakyLink] {
  const a = new MemoryLink('memory:b', true, 1 << 20);
  const b = new LeakyLink('memory:a', false, 1 << 20);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

async function connect(pair: [MemoryLink, MemoryLink] = memoryLinkPair()) {
  const [a, b] = pair;
  const alice = generateIdentity();
  const bob = generateIdentity();
  const [left, right] = await Promise.all([
    establishSecureLink(a, options(alice, 'alice')),
    establishSecureLink(b, options(bob, 'bob')),
  ]);
  return { a, b, alice, bob, left, right };
}

/** Seals messages on `link` without delivering them, returning the frames for manual delivery. */
function captureFrames(from: MemoryLink, link: SecureLink, plaintexts: Uint8Array[]): Uint8Array[] {
  from.peer = undefined;
  const start = from.sent.length;
  for (const plaintext of plaintexts) link.send(plaintext);
  return from.sent.slice(start);
}

/** Plays the initiator by hand so tests can send payloads a real agent never would. */
function handInitiator(
  link: MemoryLink,
  payloadFor: (staticPublicKey: Uint8Array) => Uint8Array,
  key = meshKey(7),
) {
  const staticKeyPair = generateKeyPair();
  const handshake = new HandshakeState({
    pattern: 'XXpsk0',
    initiator: true,
    staticKeyPair,
    prologue: SECURE_CHANNEL_PROLOGUE,
    psk: key,
  });
  const received: { responderPayload?: Uint8Array } = {};
  link.on('frame', (frame) => {
    if (received.responderPayload !== undefined) return;
    received.responderPayload = handshake.readMessage(frame);
    link.send(handshake.writeMessage(payloadFor(staticKeyPair.publicKey)));
  });
  link.send(handshake.writeMessage(EMPTY));
  return { handshake, received };
}

/** Plays the responder by hand so tests can send payloads a real agent never would. */
function handResponder(link: MemoryLink, payloadFor: (staticPublicKey: Uint8Array) => Uint8Array) {
  const staticKeyPair = generateKeyPair();
  const handshake = new HandshakeState({
    pattern: 'XXpsk0',
    initiator: false,
    staticKeyPair,
    prologue: SECURE_CHANNEL_PROLOGUE,
    psk: meshKey(7),
  });
  link.on('frame', (frame) => {
    if (handshake.isComplete) return;
    handshake.readMessage(frame);
    if (!handshake.isComplete) link.send(handshake.writeMessage(payloadFor(staticKeyPair.publicKey)));
  });
  return handshake;
}

describe('establishSecureLink: same mesh key', () => {
  it('links two identities, each proving its peer id and name to the other', async () => {
    const { alice, bob, left, right } = await connect();
    expect(left.peerId).toBe(bob.peerId);
    expect(left.peerName).toBe('bob');
    expect(left.peerPublicKey).toEqual(bob.publicKey);
    expect(right.peerId).toBe(alice.peerId);
    expect(right.peerName).toBe('alice');
    expect(right.peerPublicKey).toEqual(alice.publicKey);
    expect(left.isInitiator).toBe(true);
    expect(right.isInitiator).toBe(false);
    expect(left.handshakeHash).toEqual(right.handshakeHash);
    expect(left.handshakeHash.length).toBe(32);
    expect(left.medium).toBe('memory');
    expect(left.remoteAddress).toBe('memory:b');
    expect(left.isOpen && right.isOpen).toBe(true);
    expect(left.maxMessageBytes).toBe((1 << 20) - 16);
  });

  it('puts exactly three frames on the wire, the three Noise messages', async () => {
    const { a, b } = await connect();
    expect(a.sent.length).toBe(2);
    expect(b.sent.length).toBe(1);
    // Message 1 is e (32 bytes) plus the empty payload's tag: psk0 seals it under the mesh key.
    expect(a.sent[0]?.length).toBe(48);
  });

  it('a responder takes a first message sealed under any key it accepts, and says which', async () => {
    const [a, b] = memoryLinkPair();
    const [left, right] = await Promise.all([
      establishSecureLink(a, options(generateIdentity(), 'alice', { meshKeys: [meshKey(3)] })),
      establishSecureLink(b, options(generateIdentity(), 'bob', { meshKeys: [meshKey(7), meshKey(3)] })),
    ]);
    expect(right.meshKeyIndex).toBe(1);
    expect(left.meshKeyIndex).toBe(0);
    const atRight = observe(right);
    left.send(bytes(5));
    await until('the message', () => atRight.messages.length >= 1);
    expect(atRight.messages).toEqual([bytes(5)]);
  });

  it('carries messages both ways, in order, including one larger than 65535 bytes', async () => {
    const { left, right } = await connect();
    const atRight = observe(right);
    const atLeft = observe(left);
    const big = new Uint8Array(100_000).map((_, i) => (i * 7) & 0xff);
    expect(left.send(bytes(1))).toBe(true);
    left.send(big);
    left.send(EMPTY);
    left.send(bytes(3));
    right.send(bytes(9, 9));
    right.send(bytes(8));
    await until('every message', () => atRight.messages.length >= 4 && atLeft.messages.length >= 2);
    expect(atRight.messages).toEqual([bytes(1), big, EMPTY, bytes(3)]);
    expect(atLeft.messages).toEqual([bytes(9, 9), bytes(8)]);
  });

  it('seals a message given as parts exactly like the joined message', async () => {
    const { left, right } = await connect();
    const atRight = observe(right);
    const big = new Uint8Array(70_000).map((_, i) => (i * 13) & 0xff);
    left.send([bytes(1, 2), big, EMPTY, bytes(3)]);
    left.send([]);
    left.send(bytes(4));
    await until('every message', () => atRight.messages.length >= 3);
    expect(atRight.messages).toEqual([
      Uint8Array.from(Buffer.concat([bytes(1, 2), big, bytes(3)])),
      EMPTY,
      bytes(4),
    ]);
  });

  it('holds messages that arrive before a listener, then replays them in order after on() returns', async () => {
    const { b, left, right } = await connect();
    let framesAtRight = 0;
    b.on('frame', () => framesAtRight++); // after the secure link's own listener: it has taken them by then
    left.send(bytes(1));
    left.send(bytes(2));
    await until('two frames at the right side', () => framesAtRight >= 2);
    const received: Uint8Array[] = [];
    right.on('message', (plaintext) => received.push(plaintext));
    expect(received).toEqual([]);
    left.send(bytes(3));
    await until('three messages', () => received.length >= 3);
    expect(received).toEqual([bytes(1), bytes(2), bytes(3)]);
  });

  it('refuses an oversized message and keeps working', async () => {
    const { left, right } = await connect(memoryLinkPair(1024));
    const atRight = observe(right);
    expect(left.maxMessageBytes).toBe(1008);
    expect(() => left.send(new Uint8Array(1009))).toThrow(FrameTooLargeError);
    expect(left.send(new Uint8Array(1008))).toBe(true);
    await until('the message', () => atRight.messages.length >= 1);
    expect(atRight.messages.map((m) => m.length)).toEqual([1008]);
  });

  it('closes both sides cleanly; send() then returns false', async () => {
    const { left, right } = await connect();
    const atLeft = observe(left);
    const atRight = observe(right);
    left.close();
    expect(left.isOpen).toBe(false);
    expect(left.send(bytes(1))).toBe(false);
    expect(await atLeft.closed).toBeUndefined();
    expect(await atRight.closed).toBeUndefined();
    expect(right.isOpen).toBe(false);
    await left.drained();
  });

  it('sends the identity payload as a plain CBOR array [1, bstr32, bstr64, name] signed over its static key', async () => {
    const [a, b] = memoryLinkPair();
    const bob = generateIdentity();
    const responder = establishSecureLink(b, options(bob, 'bob'));
    const hand = handInitiator(a, (key) => encodeHandshakePayload(generateIdentity(), 'mallory', key));
    expect((await responder).peerName).toBe('mallory');
    // cborg is strict: it refuses tags, so this also proves the keys went out as bare byte strings.
    const payload = strictCborDecode(hand.received.responderPayload ?? EMPTY) as unknown[];
    expect(payload.length).toBe(4);
    expect(payload[0]).toBe(1);
    expect(payload[1]).toEqual(bob.publicKey);
    expect(payload[3]).toBe('bob');
    const responderStatic = hand.handshake.remoteStaticPublicKey ?? EMPTY;
    const signed = Buffer.concat([Buffer.from('nearmesh-noise-static-v1', 'ascii'), responderStatic]);
    expect(verifySignature(bob.publicKey, signed, payload[2] as Uint8Array)).toBe(true);
  });

  it('ignores trailing payload elements a later version may add', async () => {
    const [a, b] = memoryLinkPair();
    const mallory = generateIdentity();
    const responder = establishSecureLink(b, options(generateIdentity(), 'bob'));
    handInitiator(a, (key) =>
      cborEncode([
        1,
        Buffer.from(mallory.publicKey),
        Buffer.from(mallory.sign(staticKeySignatureInput(key))),
        'm',
        42,
      ]),
    );
    const link = await responder;
    expect(link.peerId).toBe(mallory.peerId);
  });
});

describe('establishSecureLink: refusals', () => {
  it('different mesh keys: the responder says nothing at all, and the initiator is told only "rejected"', async () => {
    const [a, b] = memoryLinkPair();
    const [initiator, responder] = await Promise.all([
      handshakeError(
        establishSecureLink(a, options(generateIdentity(), 'alice', { meshKeys: [meshKey(1)] })),
      ),
      handshakeError(establishSecureLink(b, options(generateIdentity(), 'bob', { meshKeys: [meshKey(2)] }))),
    ]);
    expect(responder.reason).toBe('auth-failed');
    expect(responder.message).toMatch(/mesh key/);
    expect(initiator.reason).toBe('rejected');
    expect(initiator.message).toMatch(/closed the link without answering.*mesh key/);
    expect(initiator.code).toBe('handshake');
    // Only msg 1 went out: the responder sent no byte, so no name, id, key or version reached the outsider.
    expect(a.sent.length).toBe(1);
    expect(b.sent.length).toBe(0);
    expect(a.isOpen || b.isOpen).toBe(false);
  });

  it('what an outsider initiator sees of a real one: 48 bytes, no name, id or key of either side', async () => {
    const [a, b] = memoryLinkPair();
    const alice = generateIdentity();
    await Promise.all([
      handshakeError(establishSecureLink(a, options(alice, 'alice-kitchen', { meshKeys: [meshKey(1)] }))),
      handshakeError(establishSecureLink(b, options(generateIdentity(), 'bob', { meshKeys: [meshKey(2)] }))),
    ]);
    const wire = Buffer.concat(a.sent);
    expect(wire.length).toBe(48);
    for (const secret of [
      Buffer.from('alice-kitchen'),
      Buffer.from(alice.publicKey),
      Buffer.from(alice.peerId, 'hex'),
    ]) {
      expect(wire.includes(secret)).toBe(false);
    }
  });

  it('recognises a protocol v1 initiator and says so (old-protocol), still without a word on the wire', async () => {
    const [a, b] = memoryLinkPair();
    const responder = establishSecureLink(b, options(generateIdentity(), 'bob'));
    const v1 = new HandshakeState({
      pattern: 'XXpsk3',
      initiator: true,
      staticKeyPair: generateKeyPair(),
      prologue: new TextEncoder().encode('nearmesh/1'),
      psk: meshKey(7),
    });
    a.send(v1.writeMessage(EMPTY));
    const error = await handshakeError(responder);
    expect(error.reason).toBe('old-protocol');
    expect(error.message).toMatch(/protocol version 1/);
    expect(b.sent.length).toBe(0);
  });

  it('refuses an initiator whose signature covers a different static key (bad-identity)', async () => {
    const [a, b] = memoryLinkPair();
    const responder = establishSecureLink(b, options(generateIdentity(), 'bob'));
    handInitiator(a, () =>
      encodeHandshakePayload(generateIdentity(), 'mallory', generateKeyPair().publicKey),
    );
    expect((await handshakeError(responder)).reason).toBe('bad-identity');
  });

  it('refuses a responder whose signature covers a different static key (bad-identity)', async () => {
    const [a, b] = memoryLinkPair();
    const initiator = establishSecureLink(a, options(generateIdentity(), 'alice'));
    handResponder(b, () =>
      encodeHandshakePayload(generateIdentity(), 'mallory', generateKeyPair().publicKey),
    );
    expect((await handshakeError(initiator)).reason).toBe('bad-identity');
  });

  it('refuses payloads that are not the identity array (bad-identity)', async () => {
    const identity = generateIdentity();
    const malformed: ((key: Uint8Array) => Uint8Array)[] = [
      () => bytes(0xff),
      () => cborEncode({ version: 1 }),
      (key) => cborEncode([2, Buffer.from(identity.publicKey), Buffer.from(identity.sign(key)), 'x']),
      (key) => cborEncode([1, Buffer.from(identity.publicKey), Buffer.from(identity.sign(key)), 5]),
      () => cborEncode([1, Buffer.alloc(31), Buffer.alloc(64), 'x']),
      () => EMPTY,
    ];
    for (const payloadFor of malformed) {
      const [a, b] = memoryLinkPair();
      const responder = establishSecureLink(b, options(generateIdentity(), 'bob'));
      handInitiator(a, payloadFor);
      expect((await handshakeError(responder)).reason).toBe('bad-identity');
    }
  });

  it('times out against a silent peer, on either side, and closes the link', async () => {
    const [a] = memoryLinkPair();
    const asInitiator = await handshakeError(
      establishSecureLink(a, options(generateIdentity(), 'a', { timeoutMs: 40 })),
    );
    expect(asInitiator.reason).toBe('timeout');
    expect(a.isOpen).toBe(false);
    const [, d] = memoryLinkPair();
    const asResponder = await handshakeError(
      establishSecureLink(d, options(generateIdentity(), 'd', { timeoutMs: 40 })),
    );
    expect(asResponder.reason).toBe('timeout');
  });

  it('reports rejected when the peer hangs up before answering, closed after, and aborted on the signal', async () => {
    // A responder that hangs up before answering is one that refused the key: it says nothing either way.
    const [a, b] = memoryLinkPair();
    const initiator = establishSecureLink(a, options(generateIdentity(), 'a'));
    b.close();
    expect((await handshakeError(initiator)).reason).toBe('rejected');

    const [i, r] = memoryLinkPair();
    const responder = establishSecureLink(r, options(generateIdentity(), 'r'));
    const opening = new HandshakeState({
      pattern: 'XXpsk0',
      initiator: true,
      staticKeyPair: generateKeyPair(),
      prologue: SECURE_CHANNEL_PROLOGUE,
      psk: meshKey(7),
    });
    i.once('frame', () => i.close());
    i.send(opening.writeMessage(EMPTY));
    expect((await handshakeError(responder)).reason).toBe('closed');

    const [c] = memoryLinkPair();
    const controller = new AbortController();
    const aborted = establishSecureLink(c, options(generateIdentity(), 'c', { signal: controller.signal }));
    controller.abort();
    expect((await handshakeError(aborted)).reason).toBe('aborted');
    expect(c.isOpen).toBe(false);

    const [e] = memoryLinkPair();
    const early = establishSecureLink(e, options(generateIdentity(), 'e', { signal: AbortSignal.abort() }));
    expect((await handshakeError(early)).reason).toBe('aborted');
  });

  it('rejects a mesh key that is not 32 bytes before touching the link', async () => {
    const [a] = memoryLinkPair();
    const result = await outcome(
      establishSecureLink(a, options(generateIdentity(), 'a', { meshKeys: [new Uint8Array(16)] })),
    );
    expect(result.ok).toBe(false);
    expect(result.ok ? undefined : (result.error as NearmeshError).code).toBe('invalid-mesh-key');
    expect(a.sent.length).toBe(0);
  });

  it('turns a handshake frame of random bytes into a HandshakeError, never another exception', async () => {
    const [, b] = memoryLinkPair();
    const responder = establishSecureLink(b, options(generateIdentity(), 'bob'));
    b.deliver(Uint8Array.from({ length: 120 }, () => Math.floor(Math.random() * 256)));
    expect(['auth-failed', 'protocol']).toContain((await handshakeError(responder)).reason);

    const [a] = memoryLinkPair();
    const initiator = establishSecureLink(a, options(generateIdentity(), 'alice'));
    a.deliver(bytes(1, 2, 3));
    expect((await handshakeError(initiator)).reason).toBe('protocol');

    // A low-order (all-zero) ephemeral key makes X25519 fail; that too is a HandshakeError.
    const [, d] = memoryLinkPair();
    const lowOrder = establishSecureLink(d, options(generateIdentity(), 'd'));
    d.deliver(new Uint8Array(48));
    expect(['auth-failed', 'protocol']).toContain((await handshakeError(lowOrder)).reason);
  });
});

describe('SecureLink: tampering after the handshake', () => {
  it('closes on a replayed frame and delivers nothing after it', async () => {
    const { a, b, left, right } = await connect(leakyPair());
    const atRight = observe(right);
    const [f1, f2, f3] = captureFrames(a, left, [bytes(1), bytes(2), bytes(3)]) as [
      Uint8Array,
      Uint8Array,
      Uint8Array,
    ];
    for (const frame of [f1, f2, f1, f3]) b.deliver(frame);
    expect(await atRight.closed).toBeInstanceOf(NoiseDecryptError);
    expect(atRight.messages).toEqual([bytes(1), bytes(2)]);
    expect(right.isOpen).toBe(false);
  });

  it('closes on a reordered pair and delivers nothing', async () => {
    const { a, b, left, right } = await connect(leakyPair());
    const atRight = observe(right);
    const [f1, f2, f3] = captureFrames(a, left, [bytes(1), bytes(2), bytes(3)]) as [
      Uint8Array,
      Uint8Array,
      Uint8Array,
    ];
    for (const frame of [f2, f1, f3]) b.deliver(frame);
    expect(await atRight.closed).toBeInstanceOf(NoiseDecryptError);
    expect(atRight.messages).toEqual([]);
  });

  it('closes on a frame with one flipped bit, even if the genuine frame follows', async () => {
    const { a, b, left, right } = await connect(leakyPair());
    const atRight = observe(right);
    const [f1, f2] = captureFrames(a, left, [bytes(1, 2, 3), bytes(4)]) as [Uint8Array, Uint8Array];
    const flipped = Uint8Array.from(f1);
    flipped[1] = (flipped[1] ?? 0) ^ 0x10;
    for (const frame of [flipped, f1, f2]) b.deliver(frame);
    expect(await atRight.closed).toBeInstanceOf(NoiseDecryptError);
    expect(atRight.messages).toEqual([]);
  });
});

describe('establishSecureLink: property', () => {
  // Which handshake frame gets replaced: 1 = msg 1 to the responder, 2 = msg 2 to the initiator,
  // 3 = msg 3 to the responder.
  async function injectAt(position: 1 | 2 | 3, garbage: Uint8Array): Promise<unknown> {
    const [a, b] = memoryLinkPair();
    const identity = generateIdentity();
    const opts = options(identity, 'victim', { timeoutMs: 1000 });
    if (position === 1) {
      const victim = establishSecureLink(b, opts);
      b.deliver(garbage);
      return outcome(victim).then((r) => (r.ok ? r.value : r.error));
    }
    if (position === 2) {
      const victim = establishSecureLink(a, opts);
      a.deliver(garbage);
      return outcome(victim).then((r) => (r.ok ? r.value : r.error));
    }
    const victim = establishSecureLink(b, opts);
    const hand = new HandshakeState({
      pattern: 'XXpsk0',
      initiator: true,
      staticKeyPair: generateKeyPair(),
      prologue: SECURE_CHANNEL_PROLOGUE,
      psk: meshKey(7),
    });
    a.once('frame', () => b.deliver(garbage));
    a.send(hand.writeMessage(EMPTY));
    return outcome(victim).then((r) => (r.ok ? r.value : r.error));
  }

  it('random bytes as any handshake message yield only HandshakeError', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(1, 2, 3) as fc.Arbitrary<1 | 2 | 3>,
        fc.uint8Array({ maxLength: 400 }),
        async (position, garbage) => {
          const result = await injectAt(position, garbage);
          expect(result).toBeInstanceOf(HandshakeError);
          expect((result as HandshakeError).reason).not.toBe('timeout');
        },
      ),
      { numRuns: 200 },
    );
  });
});
