// Runs the Noise_XXpsk0 handshake over a fresh FrameLink and turns it into a SecureLink to a proven peer.
// The mesh key is mixed in before anything is sent, so a device without it learns nothing from an agent:
// the responder answers only a first message sealed under a key it holds, and says nothing otherwise.
// Every failure ends as a typed HandshakeError.

import type { FrameLink } from '../../transports/transport.js';
import { NearmeshError } from '../core/errors.js';
import type { Identity } from '../identity/identity.js';
import { HandshakeError, NoiseDecryptError } from './errors.js';
import { encodeHandshakePayload, type ProvenPeer, verifyHandshakePayload } from './handshake-payload.js';
import { generateKeyPair, HandshakeState, type KeyPair, type NoisePattern } from './noise.js';
import { SecureLink } from './secure-link.js';

// Re-exported so callers of establishSecureLink need only this module.
export { HandshakeError, type HandshakeFailureReason } from './errors.js';
export { SecureLink, type SecureLinkEvents } from './secure-link.js';

export const SECURE_CHANNEL_PATTERN: NoisePattern = 'XXpsk0';
/** Binds the transcript to this protocol so a handshake for anything else cannot be spliced in. */
export const SECURE_CHANNEL_PROLOGUE = new TextEncoder().encode('nearmesh/2');
/** Protocol version 1's handshake, recognised only so that a v1 agent gets a clear log line. */
const V1_PATTERN: NoisePattern = 'XXpsk3';
const V1_PROLOGUE = new TextEncoder().encode('nearmesh/1');
export const MESH_KEY_BYTES = 32;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

export interface SecureLinkOptions {
  identity: Identity;
  /**
   * Mesh keys, used as the Noise PSK (32 bytes each). An initiator seals with the first; a responder
   * accepts any of them (the current key first, then older ones still accepted during a key rotation).
   */
  meshKeys: readonly Uint8Array[];
  /** Our human-readable name, sent to the peer inside the encrypted handshake. */
  name: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Noise static key; a fresh one per call is generated when omitted (the Ed25519 identity is what persists). */
  staticKeyPair?: KeyPair;
}

/*
 * Wire sequence (each line is one FrameLink frame; no extra framing or type bytes):
 *   1. initiator -> responder  Noise msg 1 (psk, e), empty payload: a wrong mesh key fails its tag
 *   2. responder -> initiator  Noise msg 2 (e, ee, s, es), payload = responder identity
 *   3. initiator -> responder  Noise msg 3 (s, se), payload = initiator identity
 * A responder that cannot open msg 1 closes the link without a word.
 */
type Stage = 'await-msg1' | 'await-msg2' | 'await-msg3';

const EMPTY = new Uint8Array(0);
/** Any key for probing a v1 first message: v1 mixes its PSK in only at message 3. */
const V1_PROBE_KEY = new Uint8Array(MESH_KEY_BYTES);

/**
 * Authenticates `link` (which must be fresh: no frames sent yet) and resolves with a SecureLink.
 * On failure it rejects with a HandshakeError and closes the link, which is unusable after a failed handshake.
 */
export function establishSecureLink(link: FrameLink, options: SecureLinkOptions): Promise<SecureLink> {
  const badKey = options.meshKeys.find((key) => key.length !== MESH_KEY_BYTES);
  if (badKey !== undefined || options.meshKeys.length === 0) {
    return Promise.reject(
      new NearmeshError('invalid-mesh-key', `mesh keys must be ${MESH_KEY_BYTES} bytes, at least one`),
    );
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  const staticKeyPair = options.staticKeyPair ?? generateKeyPair();
  const stateFor = (psk: Uint8Array): HandshakeState =>
    new HandshakeState({
      pattern: SECURE_CHANNEL_PATTERN,
      initiator: link.isInitiator,
      staticKeyPair,
      prologue: SECURE_CHANNEL_PROLOGUE,
      psk,
    });
  const ourPayload = (): Uint8Array =>
    encodeHandshakePayload(options.identity, options.name, staticKeyPair.publicKey);

  return new Promise<SecureLink>((resolve, reject) => {
    let stage: Stage = link.isInitiator ? 'await-msg2' : 'await-msg1';
    // The initiator's state is made now; the responder's once msg 1 tells which key it was sealed under.
    let handshake: HandshakeState | undefined = link.isInitiator
      ? stateFor(options.meshKeys[0] as Uint8Array)
      : undefined;
    let meshKeyIndex = 0;
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
    // emit the next frame, or a message sent right after the handshake would be lost.
    const succeed = (state: HandshakeState, provenPeer: ProvenPeer): void => {
      cleanup();
      const ciphers = state.transportCiphers();
      resolve(new SecureLink(link, ciphers, provenPeer, state.handshakeHash, meshKeyIndex));
    };

    const step = (frame: Uint8Array): void => {
      switch (stage) {
        case 'await-msg1': {
          const opened = openFirstMessage(frame, stateFor, options.meshKeys);
          handshake = opened.state;
          meshKeyIndex = opened.index;
          link.send(handshake.writeMessage(ourPayload()));
          stage = 'await-msg3';
          return;
        }
        case 'await-msg2': {
          const state = handshake as HandshakeState;
          const payload = readOrFail(
            state,
            frame,
            "could not authenticate the responder's handshake message",
          );
          const peer = verifyHandshakePayload(payload, remoteStatic(state));
          link.send(state.writeMessage(ourPayload()));
          succeed(state, peer);
          return;
        }
        case 'await-msg3': {
          const state = handshake as HandshakeState;
          const payload = readOrFail(
            state,
            frame,
            "could not authenticate the initiator's final handshake message",
          );
          succeed(state, verifyHandshakePayload(payload, remoteStatic(state)));
          return;
        }
      }
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
      if (stage === 'await-msg2') {
        fail(
          new HandshakeError(
            'rejected',
            'peer closed the link without answering: another mesh key, or an agent older than protocol 2',
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
    } else if (handshake !== undefined) {
      try {
        link.send(handshake.writeMessage(EMPTY));
      } catch (error) {
        fail(toHandshakeError(error));
      }
    }
  });
}

/**
 * The responder's state for the first key that opens msg 1, and that key's index. Otherwise a
 * HandshakeError: 'old-protocol' when msg 1 is protocol v1's, 'auth-failed' for any other key.
 */
function openFirstMessage(
  frame: Uint8Array,
  stateFor: (psk: Uint8Array) => HandshakeState,
  meshKeys: readonly Uint8Array[],
): { state: HandshakeState; index: number } {
  for (const [index, key] of meshKeys.entries()) {
    const state = stateFor(key);
    try {
      state.readMessage(frame);
      return { state, index };
    } catch (error) {
      if (!(error instanceof NoiseDecryptError)) throw error;
    }
  }
  if (isVersion1FirstMessage(frame)) {
    throw new HandshakeError('old-protocol', 'the peer speaks protocol version 1; this agent speaks 2');
  }
  throw new HandshakeError('auth-failed', 'first handshake message not sealed under our mesh key');
}

/** The probe's static key: message 1 of XX never uses it, so one, made on first need, serves every probe. */
let v1ProbeStaticKey: ReturnType<typeof generateKeyPair> | undefined;

/** Whether a first message authenticates as protocol v1's (Noise_XXpsk3, prologue nearmesh/1). */
function isVersion1FirstMessage(frame: Uint8Array): boolean {
  v1ProbeStaticKey ??= generateKeyPair();
  const probe = new HandshakeState({
    pattern: V1_PATTERN,
    initiator: false,
    staticKeyPair: v1ProbeStaticKey,
    prologue: V1_PROLOGUE,
    psk: V1_PROBE_KEY,
  });
  try {
    probe.readMessage(frame);
    return true;
  } catch {
    return false;
  }
}

function readOrFail(state: HandshakeState, frame: Uint8Array, authMessage: string): Uint8Array {
  try {
    return state.readMessage(frame);
  } catch (error) {
    if (error instanceof NoiseDecryptError)
      throw new HandshakeError('auth-failed', authMessage, { cause: error });
    throw error;
  }
}

function remoteStatic(state: HandshakeState): Uint8Array {
  const key = state.remoteStaticPublicKey;
  if (key === undefined) throw new HandshakeError('protocol', 'handshake did not reveal the peer static key');
  return key;
}

function toHandshakeError(error: unknown): HandshakeError {
  if (error instanceof HandshakeError) return error;
  if (error instanceof NoiseDecryptError) {
    return new HandshakeError('auth-failed', 'a handshake message failed authentication', { cause: error });
  }
  const detail = error instanceof Error ? error.message : String(error);
  return new HandshakeError('protocol', `malformed handshake: ${detail}`, { cause: error });
}
