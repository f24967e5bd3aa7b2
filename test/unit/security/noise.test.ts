// Checks the Noise objects against the cacophony vectors (XX and XXpsk3) byte for byte, and the
// failure rules the secure channel relies on: typed decrypt errors, dead handshakes, the nonce limit.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  NoiseDecryptError,
  NoiseNonceExhaustedError,
  NoiseProtocolError,
} from '../../../agent/security/errors.js';
import {
  CipherState,
  generateKeyPair,
  type HandshakeOptions,
  HandshakeState,
  keyPairFromPrivateKey,
  MAX_HANDSHAKE_MESSAGE_BYTES,
  type NoisePattern,
} from '../../../agent/security/noise.js';

interface Vector {
  protocol_name: string;
  init_prologue: string;
  init_psks?: string[];
  init_static: string;
  init_ephemeral: string;
  resp_prologue: string;
  resp_psks?: string[];
  resp_static: string;
  resp_ephemeral: string;
  handshake_hash: string;
  messages: { payload: string; ciphertext: string }[];
}

const fixture = JSON.parse(
  readFileSync(new URL('../../fixtures/noise-vectors.json', import.meta.url), 'utf8'),
) as { vectors: Vector[] };

const fromHex = (hex: string): Uint8Array => Uint8Array.from(Buffer.from(hex, 'hex'));
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const EMPTY = new Uint8Array(0);
const HANDSHAKE_MESSAGES = 3;

function sideFromVector(vector: Vector, side: 'init' | 'resp'): HandshakeState {
  const pattern = vector.protocol_name.split('_')[1] as NoisePattern;
  const psk = vector[`${side}_psks`]?.[0];
  return new HandshakeState({
    pattern,
    initiator: side === 'init',
    prologue: fromHex(vector[`${side}_prologue`]),
    psk: psk === undefined ? undefined : fromHex(psk),
    staticKeyPair: keyPairFromPrivateKey(fromHex(vector[`${side}_static`])),
    ephemeralKeyPair: keyPairFromPrivateKey(fromHex(vector[`${side}_ephemeral`])),
  });
}

describe('Noise vectors (cacophony)', () => {
  it('covers both patterns the secure channel needs', () => {
    expect(fixture.vectors.map((v) => v.protocol_name).sort()).toEqual([
      'Noise_XX_25519_ChaChaPoly_SHA256',
      'Noise_XXpsk3_25519_ChaChaPoly_SHA256',
    ]);
  });

  for (const vector of fixture.vectors) {
    it(`${vector.protocol_name}: every message, the handshake hash, and transport messages`, () => {
      const initiator = sideFromVector(vector, 'init');
      const responder = sideFromVector(vector, 'resp');
      expect(vector.messages.length).toBeGreaterThan(HANDSHAKE_MESSAGES);

      vector.messages.forEach((message, index) => {
        // Cacophony alternates strictly over the whole list (i, r, i, r, ...), handshake and
        // transport alike, so with XX's three handshake messages the first transport one is the responder's.
        const [sender, receiver] = index % 2 === 0 ? [initiator, responder] : [responder, initiator];
        const payload = fromHex(message.payload);
        if (index < HANDSHAKE_MESSAGES) {
          const ciphertext = sender.writeMessage(payload);
          expect(toHex(ciphertext), `message ${index}`).toBe(message.ciphertext);
          expect(toHex(receiver.readMessage(ciphertext)), `message ${index}`).toBe(message.payload);
        } else {
          const ciphertext = sender.transportCiphers().send.encryptWithAd(EMPTY, payload);
          expect(toHex(ciphertext), `message ${index}`).toBe(message.ciphertext);
          expect(toHex(receiver.transportCiphers().receive.decryptWithAd(EMPTY, ciphertext))).toBe(
            message.payload,
          );
        }
        if (index === HANDSHAKE_MESSAGES - 1) {
          expect(initiator.isComplete && responder.isComplete).toBe(true);
          expect(toHex(initiator.handshakeHash)).toBe(vector.handshake_hash);
          expect(toHex(responder.handshakeHash)).toBe(vector.handshake_hash);
        }
      });
    });
  }

  it('learns the remote static keys from the handshake', () => {
    const vector = fixture.vectors[0] as Vector;
    const initiator = sideFromVector(vector, 'init');
    const responder = sideFromVector(vector, 'resp');
    responder.readMessage(initiator.writeMessage(EMPTY));
    initiator.readMessage(responder.writeMessage(EMPTY));
    responder.readMessage(initiator.writeMessage(EMPTY));
    expect(initiator.remoteStaticPublicKey).toEqual(responder.localStaticPublicKey);
    expect(responder.remoteStaticPublicKey).toEqual(initiator.localStaticPublicKey);
  });
});

function pair(
  overrides: { initiator?: Partial<HandshakeOptions>; responder?: Partial<HandshakeOptions> } = {},
) {
  const psk = new Uint8Array(32).fill(9);
  const initiator = new HandshakeState({
    pattern: 'XXpsk3',
    initiator: true,
    staticKeyPair: generateKeyPair(),
    psk,
    ...overrides.initiator,
  });
  const responder = new HandshakeState({
    pattern: 'XXpsk3',
    initiator: false,
    staticKeyPair: generateKeyPair(),
    psk,
    ...overrides.responder,
  });
  return { initiator, responder };
}

describe('HandshakeState failure rules', () => {
  it('rejects a different psk at message 3 with NoiseDecryptError, then is dead', () => {
    const { initiator, responder } = pair({ responder: { psk: new Uint8Array(32).fill(1) } });
    responder.readMessage(initiator.writeMessage(EMPTY));
    initiator.readMessage(responder.writeMessage(EMPTY));
    const message3 = initiator.writeMessage(EMPTY);
    expect(() => responder.readMessage(message3)).toThrow(NoiseDecryptError);
    expect(() => responder.readMessage(message3)).toThrow(NoiseProtocolError);
    expect(responder.isComplete).toBe(false);
  });

  it('rejects a different prologue at the first encrypted payload', () => {
    // In psk patterns "e" feeds MixKey, so even message 1's (empty) payload is sealed under h.
    const { initiator, responder } = pair({ responder: { prologue: Uint8Array.of(1) } });
    expect(() => responder.readMessage(initiator.writeMessage(EMPTY))).toThrow(NoiseDecryptError);
  });

  it('refuses a truncated message, a low-order ephemeral key, and out-of-turn calls', () => {
    const { initiator, responder } = pair();
    expect(() => responder.writeMessage(EMPTY)).toThrow(NoiseProtocolError);
    expect(() => initiator.readMessage(EMPTY)).toThrow(NoiseProtocolError);
    expect(() => responder.readMessage(new Uint8Array(31))).toThrow(NoiseProtocolError);

    const xx = { pattern: 'XX', psk: undefined } as const;
    const fresh = pair({ initiator: xx, responder: xx });
    fresh.responder.readMessage(new Uint8Array(32)); // all-zero e: readable, but unusable for DH
    expect(() => fresh.responder.writeMessage(EMPTY)).toThrow(NoiseProtocolError);
  });

  it('refuses a handshake message above the spec limit of 65535 bytes', () => {
    const { initiator, responder } = pair();
    expect(() => initiator.writeMessage(new Uint8Array(MAX_HANDSHAKE_MESSAGE_BYTES))).toThrow(
      NoiseProtocolError,
    );
    expect(() => responder.readMessage(new Uint8Array(MAX_HANDSHAKE_MESSAGE_BYTES + 1))).toThrow(
      NoiseProtocolError,
    );
  });

  it('insists on a 32-byte psk for psk patterns and none for XX', () => {
    const staticKeyPair = generateKeyPair();
    expect(() => new HandshakeState({ pattern: 'XXpsk3', initiator: true, staticKeyPair })).toThrow(
      NoiseProtocolError,
    );
    expect(
      () =>
        new HandshakeState({ pattern: 'XXpsk3', initiator: true, staticKeyPair, psk: new Uint8Array(16) }),
    ).toThrow(NoiseProtocolError);
    expect(
      () => new HandshakeState({ pattern: 'XX', initiator: true, staticKeyPair, psk: new Uint8Array(32) }),
    ).toThrow(NoiseProtocolError);
  });
});

describe('CipherState', () => {
  const key = new Uint8Array(32).fill(3);

  it('seals transport messages larger than 65535 bytes', () => {
    const plaintext = new Uint8Array(200_000).map((_, i) => i & 0xff);
    const sealed = new CipherState(key).encryptWithAd(EMPTY, plaintext);
    expect(sealed.length).toBe(plaintext.length + 16);
    expect(new CipherState(key).decryptWithAd(EMPTY, sealed)).toEqual(plaintext);
  });

  it('uses 4 zero bytes + the 64-bit little-endian counter as nonce, so order matters', () => {
    const sender = new CipherState(key);
    const first = sender.encryptWithAd(EMPTY, Uint8Array.of(1));
    const second = sender.encryptWithAd(EMPTY, Uint8Array.of(2));
    const receiver = new CipherState(key);
    expect(() => receiver.decryptWithAd(EMPTY, second)).toThrow(NoiseDecryptError);
    // A failed decrypt leaves the counter alone, so the right frame still opens.
    expect(receiver.nonce).toBe(0n);
    expect(receiver.decryptWithAd(EMPTY, first)).toEqual(Uint8Array.of(1));

    const jumped = new CipherState(key);
    jumped.setNonce(0x0102030405060708n);
    const late = jumped.encryptWithAd(EMPTY, Uint8Array.of(7));
    const check = new CipherState(key);
    check.setNonce(0x0102030405060708n);
    expect(check.decryptWithAd(EMPTY, late)).toEqual(Uint8Array.of(7));
  });

  it('never uses the reserved nonce 2^64-1', () => {
    const cipher = new CipherState(key);
    cipher.setNonce(0xffff_ffff_ffff_fffen);
    cipher.encryptWithAd(EMPTY, EMPTY);
    expect(cipher.nonce).toBe(0xffff_ffff_ffff_ffffn);
    expect(() => cipher.encryptWithAd(EMPTY, EMPTY)).toThrow(NoiseNonceExhaustedError);
    expect(() => cipher.decryptWithAd(EMPTY, new Uint8Array(16))).toThrow(NoiseNonceExhaustedError);
  });

  it('reports short and tampered ciphertexts as NoiseDecryptError', () => {
    expect(() => new CipherState(key).decryptWithAd(EMPTY, new Uint8Array(15))).toThrow(NoiseDecryptError);
    const sealed = Uint8Array.from(
      new CipherState(key).encryptWithAd(Uint8Array.of(5), Uint8Array.of(1, 2, 3)),
    );
    expect(() => new CipherState(key).decryptWithAd(Uint8Array.of(6), sealed)).toThrow(NoiseDecryptError);
    sealed[0] = (sealed[0] ?? 0) ^ 1;
    expect(() => new CipherState(key).decryptWithAd(Uint8Array.of(5), sealed)).toThrow(NoiseDecryptError);
  });

  it('passes data through before a key is set, and rekeys deterministically', () => {
    expect(new CipherState().encryptWithAd(EMPTY, Uint8Array.of(4))).toEqual(Uint8Array.of(4));
    const a = new CipherState(key);
    const b = new CipherState(key);
    a.rekey();
    b.rekey();
    expect(b.decryptWithAd(EMPTY, a.encryptWithAd(EMPTY, Uint8Array.of(8)))).toEqual(Uint8Array.of(8));
    const stale = new CipherState(key);
    expect(() => stale.decryptWithAd(EMPTY, a.encryptWithAd(EMPTY, Uint8Array.of(8)))).toThrow(
      NoiseDecryptError,
    );
  });
});
