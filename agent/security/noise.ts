// The Noise Protocol Framework (revision 34) state objects for Noise_XX and Noise_XXpsk3 with
// 25519 / ChaChaPoly / SHA256: CipherState, SymmetricState, HandshakeState, named as in the spec.
import { NoiseNonceExhaustedError, NoiseProtocolError } from './errors.js';
import {
  aeadDecrypt,
  aeadEncrypt,
  aeadEncryptParts,
  DH_LEN,
  dh,
  generateKeyPair,
  HASH_LEN,
  hash,
  hkdf2,
  hkdf3,
  KEY_LEN,
  type KeyPair,
  plain,
  TAG_LEN,
} from './noise-crypto.js';

export { generateKeyPair, type KeyPair, keyPairFromPrivateKey } from './noise-crypto.js';

/** The spec's limit for one handshake message; transport messages are bounded by the link instead. */
export const MAX_HANDSHAKE_MESSAGE_BYTES = 65535;

// 2^64-1 is reserved by the spec (rekey uses it), so a counter that reaches it is exhausted.
const MAX_NONCE = 0xffff_ffff_ffff_ffffn;
const EMPTY = new Uint8Array(0);

export class CipherState {
  #key: Uint8Array | undefined;
  #nonce = 0n;

  constructor(key?: Uint8Array) {
    this.initializeKey(key);
  }

  initializeKey(key: Uint8Array | undefined): void {
    if (key !== undefined && key.length !== KEY_LEN)
      throw new NoiseProtocolError(`cipher key must be ${KEY_LEN} bytes`);
    this.#key = key === undefined ? undefined : Uint8Array.from(key);
    this.#nonce = 0n;
  }

  hasKey(): boolean {
    return this.#key !== undefined;
  }

  get nonce(): bigint {
    return this.#nonce;
  }

  setNonce(nonce: bigint): void {
    if (nonce < 0n || nonce > MAX_NONCE) throw new NoiseProtocolError('nonce must fit in 64 bits');
    this.#nonce = nonce;
  }

  /** Without a key this is the identity function, as the spec requires for early handshake messages. */
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    return this.#withNonce(plaintext, (key, nonce) => aeadEncrypt(key, nonce, ad, plaintext));
  }

  /** encryptWithAd for a plaintext given as parts; returns the ciphertext as parts (see aeadEncryptParts). */
  encryptPartsWithAd(ad: Uint8Array, parts: readonly Uint8Array[]): Uint8Array[] {
    return this.#withNonce([...parts], (key, nonce) => aeadEncryptParts(key, nonce, ad, parts));
  }

  /** Throws NoiseDecryptError on failure and then leaves the nonce where it was (spec section 5.1). */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    return this.#withNonce(ciphertext, (key, nonce) => aeadDecrypt(key, nonce, ad, ciphertext));
  }

  /** One AEAD operation under the current nonce, which advances only if it succeeds; `keyless` without a key. */
  #withNonce<T>(keyless: T, operation: (key: Uint8Array, nonce: bigint) => T): T {
    if (this.#key === undefined) return keyless;
    if (this.#nonce === MAX_NONCE) throw new NoiseNonceExhaustedError();
    const result = operation(this.#key, this.#nonce);
    this.#nonce += 1n;
    return result;
  }

  /** REKEY(k): the first 32 bytes of encrypting 32 zero bytes under the reserved nonce 2^64-1. */
  rekey(): void {
    if (this.#key === undefined) throw new NoiseProtocolError('cannot rekey a cipher without a key');
    this.#key = aeadEncrypt(this.#key, MAX_NONCE, EMPTY, new Uint8Array(KEY_LEN)).subarray(0, KEY_LEN);
  }
}

export class SymmetricState {
  readonly cipherState = new CipherState();
  #chainingKey: Uint8Array;
  #handshakeHash: Uint8Array;

  constructor(protocolName: string) {
    const name = new TextEncoder().encode(protocolName);
    if (name.length <= HASH_LEN) {
      this.#handshakeHash = new Uint8Array(HASH_LEN);
      this.#handshakeHash.set(name);
    } else {
      this.#handshakeHash = hash(name);
    }
    this.#chainingKey = this.#handshakeHash;
  }

  mixKey(inputKeyMaterial: Uint8Array): void {
    const [chainingKey, tempKey] = hkdf2(this.#chainingKey, inputKeyMaterial);
    this.#chainingKey = chainingKey;
    this.cipherState.initializeKey(tempKey);
  }

  mixHash(data: Uint8Array): void {
    this.#handshakeHash = hash(Buffer.concat([this.#handshakeHash, data]));
  }

  mixKeyAndHash(inputKeyMaterial: Uint8Array): void {
    const [chainingKey, tempHash, tempKey] = hkdf3(this.#chainingKey, inputKeyMaterial);
    this.#chainingKey = chainingKey;
    this.mixHash(tempHash);
    this.cipherState.initializeKey(tempKey);
  }

  getHandshakeHash(): Uint8Array {
    return Uint8Array.from(this.#handshakeHash);
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const ciphertext = this.cipherState.encryptWithAd(this.#handshakeHash, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const plaintext = this.cipherState.decryptWithAd(this.#handshakeHash, ciphertext);
    this.mixHash(ciphertext);
    return plaintext;
  }

  /** Returns [initiator-to-responder, responder-to-initiator] ciphers. */
  split(): [CipherState, CipherState] {
    const [key1, key2] = hkdf2(this.#chainingKey, EMPTY);
    return [new CipherState(key1), new CipherState(key2)];
  }
}

export type NoisePattern = 'XX' | 'XXpsk0' | 'XXpsk3';
type Token = 'e' | 's' | 'ee' | 'es' | 'se' | 'ss' | 'psk';

// Message patterns from spec sections 7.5 and 9.4; none has pre-messages.
const PATTERNS: Record<NoisePattern, readonly (readonly Token[])[]> = {
  XX: [['e'], ['e', 'ee', 's', 'es'], ['s', 'se']],
  XXpsk0: [
    ['psk', 'e'],
    ['e', 'ee', 's', 'es'],
    ['s', 'se'],
  ],
  XXpsk3: [['e'], ['e', 'ee', 's', 'es'], ['s', 'se', 'psk']],
};

export function protocolName(pattern: NoisePattern): string {
  return `Noise_${pattern}_25519_ChaChaPoly_SHA256`;
}

export interface HandshakeOptions {
  pattern: NoisePattern;
  initiator: boolean;
  staticKeyPair: KeyPair;
  prologue?: Uint8Array;
  /** Required (32 bytes) for psk patterns, refused otherwise. */
  psk?: Uint8Array;
  /** Fixed ephemeral key, only for reproducing test vectors; a fresh one is generated otherwise. */
  ephemeralKeyPair?: KeyPair;
}

/** The two transport ciphers a completed handshake yields, already oriented for this side. */
export interface TransportCiphers {
  send: CipherState;
  receive: CipherState;
}

export class HandshakeState {
  readonly initiator: boolean;
  readonly #symmetric: SymmetricState;
  readonly #messages: readonly (readonly Token[])[];
  readonly #staticKeyPair: KeyPair;
  readonly #psk: Uint8Array | undefined;
  #ephemeralKeyPair: KeyPair | undefined;
  #remoteStatic: Uint8Array | undefined;
  #remoteEphemeral: Uint8Array | undefined;
  #messageIndex = 0;
  #transport: TransportCiphers | undefined;
  // Any failure poisons the state: a half-processed message has already mixed into h and ck.
  #dead = false;

  constructor(options: HandshakeOptions) {
    this.initiator = options.initiator;
    this.#messages = PATTERNS[options.pattern];
    const usesPsk = this.#messages.some((tokens) => tokens.includes('psk'));
    if (usesPsk && options.psk?.length !== KEY_LEN)
      throw new NoiseProtocolError(`psk must be ${KEY_LEN} bytes`);
    if (!usesPsk && options.psk !== undefined)
      throw new NoiseProtocolError(`pattern ${options.pattern} takes no psk`);
    this.#psk = options.psk === undefined ? undefined : Uint8Array.from(options.psk);
    this.#staticKeyPair = options.staticKeyPair;
    this.#ephemeralKeyPair = options.ephemeralKeyPair;
    this.#symmetric = new SymmetricState(protocolName(options.pattern));
    this.#symmetric.mixHash(options.prologue ?? EMPTY);
  }

  get isComplete(): boolean {
    return this.#transport !== undefined;
  }

  /** True when the next handshake message is ours to write. */
  get isMyTurn(): boolean {
    return !this.isComplete && this.#messageIndex % 2 === (this.initiator ? 0 : 1);
  }

  /** The remote static public key, once a message carrying it has been read. */
  get remoteStaticPublicKey(): Uint8Array | undefined {
    return this.#remoteStatic;
  }

  get localStaticPublicKey(): Uint8Array {
    return this.#staticKeyPair.publicKey;
  }

  /** h: after completion, the channel-binding value both sides share. */
  get handshakeHash(): Uint8Array {
    return this.#symmetric.getHandshakeHash();
  }

  /** The transport ciphers, available once the last handshake message has been written or read. */
  transportCiphers(): TransportCiphers {
    if (this.#transport === undefined) throw new NoiseProtocolError('handshake is not complete');
    return this.#transport;
  }

  writeMessage(payload: Uint8Array): Uint8Array {
    const tokens = this.#begin(true);
    try {
      const parts: Uint8Array[] = [];
      for (const token of tokens) {
        if (token === 'e') {
          this.#ephemeralKeyPair ??= generateKeyPair();
          parts.push(this.#ephemeralKeyPair.publicKey);
          this.#mixEphemeral(this.#ephemeralKeyPair.publicKey);
        } else if (token === 's') {
          parts.push(this.#symmetric.encryptAndHash(this.#staticKeyPair.publicKey));
        } else {
          this.#mixToken(token);
        }
      }
      parts.push(this.#symmetric.encryptAndHash(payload));
      const message = plain(Buffer.concat(parts));
      if (message.length > MAX_HANDSHAKE_MESSAGE_BYTES) {
        throw new NoiseProtocolError(
          `handshake message of ${message.length} bytes exceeds ${MAX_HANDSHAKE_MESSAGE_BYTES}`,
        );
      }
      this.#finish();
      return message;
    } catch (error) {
      this.#dead = true;
      throw error;
    }
  }

  /** Returns the payload. Throws NoiseDecryptError or NoiseProtocolError, after which the state is dead. */
  readMessage(message: Uint8Array): Uint8Array {
    const tokens = this.#begin(false);
    try {
      if (message.length > MAX_HANDSHAKE_MESSAGE_BYTES) {
        throw new NoiseProtocolError(
          `handshake message of ${message.length} bytes exceeds ${MAX_HANDSHAKE_MESSAGE_BYTES}`,
        );
      }
      let offset = 0;
      const take = (length: number): Uint8Array => {
        if (message.length - offset < length) throw new NoiseProtocolError('handshake message too short');
        const part = message.subarray(offset, offset + length);
        offset += length;
        return part;
      };
      for (const token of tokens) {
        if (token === 'e') {
          this.#remoteEphemeral = Uint8Array.from(take(DH_LEN));
          this.#mixEphemeral(this.#remoteEphemeral);
        } else if (token === 's') {
          const sealed = take(this.#symmetric.cipherState.hasKey() ? DH_LEN + TAG_LEN : DH_LEN);
          this.#remoteStatic = Uint8Array.from(this.#symmetric.decryptAndHash(sealed));
        } else {
          this.#mixToken(token);
        }
      }
      const payload = this.#symmetric.decryptAndHash(message.subarray(offset));
      this.#finish();
      return payload;
    } catch (error) {
      this.#dead = true;
      throw error;
    }
  }

  #begin(writing: boolean): readonly Token[] {
    if (this.#dead) throw new NoiseProtocolError('handshake failed earlier and cannot continue');
    if (this.isComplete) throw new NoiseProtocolError('handshake is already complete');
    if (this.isMyTurn !== writing) {
      throw new NoiseProtocolError(
        writing ? 'not our turn to write a handshake message' : 'not our turn to read a handshake message',
      );
    }
    const tokens = this.#messages[this.#messageIndex];
    if (tokens === undefined) throw new NoiseProtocolError('no handshake message left');
    return tokens;
  }

  #finish(): void {
    this.#messageIndex += 1;
    if (this.#messageIndex < this.#messages.length) return;
    const [initiatorToResponder, responderToInitiator] = this.#symmetric.split();
    this.#transport = this.initiator
      ? { send: initiatorToResponder, receive: responderToInitiator }
      : { send: responderToInitiator, receive: initiatorToResponder };
  }

  // In psk handshakes an "e" also feeds MixKey (spec section 9.2), so later encryption depends on it.
  #mixEphemeral(publicKey: Uint8Array): void {
    this.#symmetric.mixHash(publicKey);
    if (this.#psk !== undefined) this.#symmetric.mixKey(publicKey);
  }

  #mixToken(token: Exclude<Token, 'e' | 's'>): void {
    if (token === 'psk') {
      if (this.#psk === undefined) throw new NoiseProtocolError('pattern needs a psk');
      this.#symmetric.mixKeyAndHash(this.#psk);
      return;
    }
    // "es" is DH(initiator e, responder s) on both sides; each side holds the private half of one of them.
    const local = token[this.initiator ? 0 : 1] === 'e' ? this.#ephemeralKeyPair : this.#staticKeyPair;
    const remote = token[this.initiator ? 1 : 0] === 'e' ? this.#remoteEphemeral : this.#remoteStatic;
    if (local === undefined || remote === undefined)
      throw new NoiseProtocolError(`token ${token} before its keys are known`);
    this.#symmetric.mixKey(dh(local, remote));
  }
}
