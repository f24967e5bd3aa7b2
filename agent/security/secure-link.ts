// An authenticated, encrypted link to one proven peer, layered on a FrameLink after the handshake.
// One frame carries one message sealed under an implicit counter, so any replay, reorder or tamper kills the link.

import { type FrameLink, frameLength, type Medium } from '../../transports/transport.js';
import { FrameTooLargeError } from '../core/errors.js';
import { TypedEmitter } from '../core/events.js';
import type { ProvenPeer } from './handshake-payload.js';
import type { TransportCiphers } from './noise.js';
import { TAG_LEN } from './noise-crypto.js';

export interface SecureLinkEvents {
  /** One whole plaintext message from the peer, in the order it was sent. */
  message: (plaintext: Uint8Array) => void;
  /** Emitted exactly once. `error` is undefined for an orderly close; a NoiseDecryptError for a bad frame. */
  close: (error: Error | undefined) => void;
}

const EMPTY = new Uint8Array(0);

export class SecureLink extends TypedEmitter<SecureLinkEvents> {
  readonly peerId: string;
  readonly peerName: string;
  readonly peerPublicKey: Uint8Array;
  readonly medium: Medium;
  readonly remoteAddress: string;
  readonly isInitiator: boolean;
  readonly handshakeHash: Uint8Array;
  /** Which of the mesh keys offered to the handshake it completed under (0: the first). */
  readonly meshKeyIndex: number;
  /** The largest plaintext send() accepts: the link's frame limit minus the AEAD tag. */
  readonly maxMessageBytes: number;
  readonly #link: FrameLink;
  readonly #ciphers: TransportCiphers;
  // Messages that arrived before anyone listened. The handshake can complete and further frames can
  // arrive (one TCP read may hold several) before the caller's `await` resumes, so frames are held
  // here until the first 'message' listener is attached, then replayed in order on a microtask so
  // that on() never calls back into the caller before it returns.
  readonly #pending: Uint8Array[] = [];
  #flushScheduled = false;
  #open = true;
  #closeError: Error | undefined;
  #closeEmitted = false;

  /** Built by establishSecureLink once the handshake has completed; not meant to be constructed elsewhere. */
  constructor(
    link: FrameLink,
    ciphers: TransportCiphers,
    peer: ProvenPeer,
    handshakeHash: Uint8Array,
    meshKeyIndex = 0,
  ) {
    super();
    this.#link = link;
    this.#ciphers = ciphers;
    this.peerId = peer.peerId;
    this.peerName = peer.name;
    this.peerPublicKey = peer.publicKey;
    this.medium = link.medium;
    this.remoteAddress = link.remoteAddress;
    this.isInitiator = link.isInitiator;
    this.handshakeHash = handshakeHash;
    this.meshKeyIndex = meshKeyIndex;
    this.maxMessageBytes = link.maxFrameBytes - TAG_LEN;
    link.on('frame', (frame) => this.#onFrame(frame));
    link.on('close', (error) => this.#onLinkClose(error));
    // A link that died between the last handshake frame and now would never emit 'close' to us.
    if (!link.isOpen) queueMicrotask(() => this.#onLinkClose(undefined));
  }

  get isOpen(): boolean {
    return this.#open && this.#link.isOpen;
  }

  /** When the link last received bytes, those of a message still arriving included (FrameLink's). */
  get lastReceivedAtMs(): number {
    return this.#link.lastReceivedAtMs;
  }

  override on<K extends keyof SecureLinkEvents & string>(event: K, listener: SecureLinkEvents[K]): this {
    super.on(event, listener);
    if (event === 'message') this.#scheduleFlush();
    return this;
  }

  override once<K extends keyof SecureLinkEvents & string>(event: K, listener: SecureLinkEvents[K]): this {
    super.once(event, listener);
    if (event === 'message') this.#scheduleFlush();
    return this;
  }

  /**
   * Seals and sends one message. Returns the link's back-pressure signal (false: wait for drained()).
   * Returns false on a closed link; throws FrameTooLargeError when plaintext exceeds maxMessageBytes.
   */
  send(plaintext: Uint8Array | readonly Uint8Array[]): boolean {
    if (!this.isOpen) return false;
    const length = frameLength(plaintext);
    if (length > this.maxMessageBytes) throw new FrameTooLargeError(length, this.maxMessageBytes);
    let frame: Uint8Array | Uint8Array[];
    try {
      frame =
        plaintext instanceof Uint8Array
          ? this.#ciphers.send.encryptWithAd(EMPTY, plaintext)
          : this.#ciphers.send.encryptPartsWithAd(EMPTY, plaintext);
    } catch (error) {
      // Only nonce exhaustion lands here; the session cannot continue without a new handshake.
      this.close(error as Error);
      return false;
    }
    return this.#link.send(frame);
  }

  drained(): Promise<void> {
    return this.#link.drained();
  }

  /** Sealed bytes the transport has not handed to the medium yet. */
  get bufferedBytes(): number {
    return this.#link.bufferedBytes;
  }

  close(error?: Error): void {
    if (!this.#open) return;
    this.#open = false;
    // Remembered so the reason we closed for is what 'close' reports, whatever the transport echoes.
    this.#closeError = error;
    this.#link.close(error);
  }

  #onFrame(frame: Uint8Array): void {
    if (!this.#open) return;
    let plaintext: Uint8Array;
    try {
      plaintext = this.#ciphers.receive.decryptWithAd(EMPTY, frame);
    } catch (error) {
      // The receive counter no longer matches the sender's: nothing after this frame can be trusted.
      this.close(error as Error);
      return;
    }
    if (this.#pending.length === 0 && this.listenerCount('message') > 0) {
      this.emit('message', plaintext);
    } else {
      this.#pending.push(plaintext);
      this.#scheduleFlush();
    }
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#pending.length === 0 || this.listenerCount('message') === 0) return;
    this.#flushScheduled = true;
    queueMicrotask(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    while (this.#pending.length > 0 && this.listenerCount('message') > 0 && !this.#closeEmitted) {
      this.emit('message', this.#pending.shift() as Uint8Array);
    }
  }

  #onLinkClose(error: Error | undefined): void {
    if (this.#closeEmitted) return;
    this.#open = false;
    // Messages authenticated before the close are still delivered first, so 'close' is always last;
    // without a listener they are dropped, because nothing may be emitted after 'close'.
    this.#flush();
    this.#pending.length = 0;
    this.#closeEmitted = true;
    this.emit('close', this.#closeError ?? error);
  }
}
