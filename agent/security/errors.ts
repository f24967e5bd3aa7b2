// Typed failures of the Noise layer and of the secure-channel handshake built on it.
// Callers branch on the class or `code`; none of these is ever allowed to escape an event handler.
import { NearmeshError } from '../core/errors.js';

/** A ciphertext failed authentication: tampered, replayed, reordered, or sealed under another key. */
export class NoiseDecryptError extends NearmeshError {
  constructor(message = 'ciphertext failed authentication (tampered, replayed, reordered or wrong key)') {
    super('noise-decrypt', message);
  }
}

/** A malformed handshake message, an invalid public key, or a handshake used out of turn or after a failure. */
export class NoiseProtocolError extends NearmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('noise-protocol', message, options);
  }
}

/** The 64-bit nonce counter reached 2^64-1, which Noise reserves; the cipher must not be used again. */
export class NoiseNonceExhaustedError extends NearmeshError {
  constructor() {
    super('noise-nonce-exhausted', 'nonce counter exhausted; the session must be re-established');
  }
}

export type HandshakeFailureReason =
  /** No complete handshake within timeoutMs. */
  | 'timeout'
  /** The link closed before the handshake could finish. */
  | 'closed'
  /** The responder closed the link instead of answering: another mesh key, or an older protocol. */
  | 'rejected'
  /** A handshake message failed authentication (on the responder: another mesh key). */
  | 'auth-failed'
  /** The initiator speaks protocol version 1 (its first message authenticates as v1's). */
  | 'old-protocol'
  /** The identity payload is malformed or its signature does not cover the peer's Noise static key. */
  | 'bad-identity'
  /** A malformed or unexpected handshake frame, or an invalid public key. */
  | 'protocol'
  /** The caller's AbortSignal fired. */
  | 'aborted';

export class HandshakeError extends NearmeshError {
  constructor(
    readonly reason: HandshakeFailureReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('handshake', message, options);
  }
}
