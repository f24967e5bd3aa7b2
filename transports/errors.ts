// Errors the transports raise, shared by every medium (Wi-Fi TCP, BLE).
// Each is a NearmeshError with a stable code, so the link manager branches on type, not text.
import { NearmeshError } from '../agent/core/errors.js';
import { DISCOVERY_PROTOCOL_VERSION } from './resolver.js';

/** Why a dial failed; the link manager retries 'refused'/'timeout'/'unreachable', never 'invalid-address'. */
export type DialFailure = 'invalid-address' | 'refused' | 'timeout' | 'aborted' | 'stopped' | 'unreachable';

/** Connecting to a remote endpoint failed. `cause` carries the underlying error when there is one. */
export class DialError extends NearmeshError {
  constructor(
    readonly address: string,
    readonly reason: DialFailure,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('dial', `cannot dial ${address}: ${detail}`, options);
  }
}

/** The transport could not listen on its configured address (in use, not ours, no permission). */
export class ListenError extends NearmeshError {
  constructor(
    readonly address: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('listen', `cannot listen on ${address}: ${detail}`, options);
  }
}

/** An agent of an older protocol version was heard (its advertisement or record): it is ignored, never dialled. */
export class OlderAgentError extends NearmeshError {
  constructor(
    readonly address: string,
    readonly version: number,
  ) {
    super(
      'older-agent',
      `protocol v${version} agent at ${address} ignored: this agent speaks ${DISCOVERY_PROTOCOL_VERSION}`,
    );
  }
}
