// Runs the Noise_XXpsk3 handshake over a fresh FrameLink and turns it into a SecureLink to a proven peer.
// Only devices holding the same mesh key (the PSK) finish; every failure ends as a typed HandshakeError.

import type { FrameLink } from '../../transports/transport.js';
import { NearmeshError } from '../errors.js';
import type { Identity } from '../identity/identity.js';
import { HandshakeError, NoiseDecryptError } from './errors.js';
import { encodeHandshakePayload, type ProvenPeer, verifyHandshakePayload } from './handshake-payload.js';
import { generateKeyPair, HandshakeState, type KeyPair, type TransportCiphers } from './noise.js';
import { SecureLink } from './secure-link.js';

// Re-exported so callers of establishSecureLink need only this module.
export { HandshakeError, type HandshakeFailureReason } from './errors.js';
export { SecureLink, type SecureLinkEvents } from './secure-link.js';

export const SECURE_CHANNEL_PATTERN = 'XXpsk3';
/** Binds the transcript to this protocol so a handshake for anything else cannot be spliced in. */
export const SECURE_CHANNEL_PROLOGUE = new TextEncoder().encode('nearmesh/1');
export const MESH_KEY_BYTES = 32;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

export interface SecureLinkOptions {
  identity: Identity;
  /** The mesh key, used as the Noise PSK: 32 bytes. */
  meshKey: Uint8Array;
  /** Our human-readable name, sent to the peer inside the encrypted handshake. */
  name: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Noise static key; a fresh one per call is generated when omitted (the Ed25519 identity is what persists). */
  staticKeyPair?: KeyPair;
}

/*
 * Wire sequence (each line is one FrameLink frame; no extra framing or type bytes):
 *   1. initiator -> responder  Noise msg 1 (e), empty payload
 *   2. responder -> initiator  Noise msg 2 (e, ee, s, es), payload = responder identity
 *   3. initiator -> responder  Noise msg 3 (s, se, psk), payload = initiator identity
 *   4. responder -> initiator  confirm: the first transport message (nonce 0), empty plaintext
 * The PSK only enters at msg 3, so the initiator learns that the mesh keys match only from the confirm.
 */
type Stage = 'await-msg1' | 'await-msg2' | 'await-msg3' | 'await-confirm';

const EMPTY = new Uint8Array(0);

/**
 * Authenticates `link` (which must be fresh: no frames sent yet) and resolves with a SecureLink.
 * On failure it rejects with a HandshakeError and closes the link, which is unusable after a failed handshake.
 */
export function establishSecureLink(link: FrameLink, options: SecureLinkOptions): Promise<SecureLink> {
  if (options.meshKey.length !== MESH_KEY_BYTES) {
    return Promise.reject(
      new NearmeshError(
        'invalid-mesh-key',
        `mesh key must be ${MESH_KEY_BYTES} bytes, got ${options.meshKey.length}`,
      ),
    );
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  const staticKeyPair = options.staticKeyPair ?? generateKeyPair();
  const handshake = new HandshakeState({
    pattern: SECURE_CHANNEL_PATTERN,
    initiator: link.isInitiator,
    staticKeyPair,
    prologue: SECURE_CHANNEL_PROLOGUE,
    psk: options.meshKey,
  });
  const ourPayload = (): Uint8Array =>
    encodeHandshakePayload(options.identity, options.name, staticKeyPair.publicKey);

  return new Promise<SecureLink>((resolve, reject) => {
    let stage: Stage = link.isInitiator ? 'await-msg2' : 'await-msg1';
    let peer: ProvenPeer | undefined;
    let settled = false;

    const cleanup = (): void => {
      settled = true;
      clearTimeout(timer);
      link.off('frame', onFrame);
      link.off('close', onClose);
      options.signal?.removeEventListener('abort', onAbort);
    };

    const fail = (error: HandshakeError): void => {
      if (settled) return;
      cleanup();
      link.close(error);
      reject(error);
    };

    // Must stay synchronous: the SecureLink has to own the 'frame' listener before the transport can
    // emit the next frame, or a message sent right after the confirm would be lost.
    const succeed = (ciphers: TransportCiphers, provenPeer: ProvenPeer): void => {
      cleanup();
      resolve(new SecureLink(link, ciphers, provenPeer, handshake.handshakeHash));
    };

    const send = (frame: Uint8Array): void => {
      // Back-pressure (false) is irrelevant for four small frames; a closed link shows up as 'close'.
      link.send(frame);
    };

    const step = (frame: Uint8Array): void => {
      switch (stage) {
        case 'await-msg1':
          // Msg 1 carries no payload in this protocol; anything there is ignored for forward compatibility.
          handshake.readMessage(frame);
          send(handshake.writeMessage(ourPayload()));
          stage = 'await-msg3';
          return;
        case 'await-msg2': {
          const payload = readOrFail(frame, "could not authenticate the responder's handshake message");
          peer = verifyHandshakePayload(payload, remoteStatic());
          send(handshake.writeMessage(ourPayload()));
          stage = 'await-confirm';
          return;
        }
        case 'await-msg3': {
          const payload = readOrFail(
            frame,
            "could not authenticate the initiator's final handshake message: most likely a different mesh key",
          );
          const provenPeer = verifyHandshakePayload(payload, remoteStatic());
          const ciphers = handshake.transportCiphers();
          send(ciphers.send.encryptWithAd(EMPTY, EMPTY));
          succeed(ciphers, provenPeer);
          return;
        }
        case 'await-confirm': {
          const ciphers = handshake.transportCiphers();
          let confirm: Uint8Array;
          try {
            confirm = ciphers.receive.decryptWithAd(EMPTY, frame);
          } catch (error) {
            throw new HandshakeError('auth-failed', 'could not authenticate the handshake confirmation', {
              cause: error,
            });
          }
          if (confirm.length !== 0)
            throw new HandshakeError('protocol', 'handshake confirmation is not empty');
          if (peer === undefined)
            throw new HandshakeError('protocol', 'handshake confirmed before the peer was known');
          succeed(ciphers, peer);
          return;
        }
      }
    };

    const readOrFail = (frame: Uint8Array, authMessage: string): Uint8Array => {
      try {
        return handshake.readMessage(frame);
      } catch (error) {
        if (error instanceof NoiseDecryptError)
          throw new HandshakeError('auth-failed', authMessage, { cause: error });
        throw error;
      }
    };

    const remoteStatic = (): Uint8Array => {
      const key = handshake.remoteStaticPublicKey;
      if (key === undefined)
        throw new HandshakeError('protocol', 'handshake did not reveal the peer static key');
      return key;
    };

    function onFrame(frame: Uint8Array): void {
      if (settled) return;
      try {
        step(frame);
      } catch (error) {
        fail(toHandshakeError(error));
      }
    }

    function onClose(error: Error | undefined): void {
      if (stage === 'await-confirm') {
        fail(
          new HandshakeError(
            'rejected',
            'peer closed the link during the handshake — most likely a different mesh key',
            { cause: error },
          ),
        );
      } else {
        fail(new HandshakeError('closed', 'link closed during the handshake', { cause: error }));
      }
    }

    function onAbort(): void {
      fail(new HandshakeError('aborted', 'handshake aborted', { cause: options.signal?.reason }));
    }

    const timer = setTimeout(
      () => fail(new HandshakeError('timeout', `handshake timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    link.on('frame', onFrame);
    link.on('close', onClose);
    options.signal?.addEventListener('abort', onAbort, { once: true });

    if (options.signal?.aborted) {
      onAbort();
    } else if (!link.isOpen) {
      fail(new HandshakeError('closed', 'link was already closed'));
    } else if (link.isInitiator) {
      try {
        send(handshake.writeMessage(EMPTY));
      } catch (error) {
        fail(toHandshakeError(error));
      }
    }
  });
}

function toHandshakeError(error: unknown): HandshakeError {
  if (error instanceof HandshakeError) return error;
  if (error instanceof NoiseDecryptError) {
    return new HandshakeError('auth-failed', 'a handshake message failed authentication', { cause: error });
  }
  const detail = error instanceof Error ? error.message : String(error);
  return new HandshakeError('protocol', `malformed handshake: ${detail}`, { cause: error });
}
