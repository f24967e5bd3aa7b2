// The contract between the agent and every medium (Wi-Fi TCP, BLE GATT, test media).
// A transport accepts and dials links; a link carries whole frames, nothing else.
import type { TypedEmitter } from '../agent/core/events.js';

export type Medium = 'wifi' | 'ble' | 'memory';

/** The length of a frame given whole or as parts. */
export function frameLength(frame: Uint8Array | readonly Uint8Array[]): number {
  if (frame instanceof Uint8Array) return frame.length;
  let length = 0;
  for (const part of frame) length += part.length;
  return length;
}

export interface FrameLinkEvents {
  /** One whole frame, exactly as the remote side passed it to send(). */
  frame: (frame: Uint8Array) => void;
  /** The link is gone. Emitted exactly once; `error` is undefined for an orderly close. */
  close: (error: Error | undefined) => void;
}

/**
 * A bidirectional frame pipe to one remote endpoint.
 *
 * Guarantees every implementation keeps (and test/unit/transports/transport-contract tests check):
 * - frames arrive whole, in the order they were sent, without duplicates, or the link closes;
 * - a frame larger than `maxFrameBytes` is refused by send() with a FrameTooLargeError and the link
 *   stays up; an oversized frame from the remote closes the link with a FrameTooLargeError;
 * - after 'close' no 'frame' is emitted and send() returns false;
 * - send() never throws for a closed link; it queues and returns false when the caller should
 *   wait for `drained()` before sending more (back-pressure, as in stream.write()).
 */
export interface FrameLink extends TypedEmitter<FrameLinkEvents> {
  readonly medium: Medium;
  /** Human-readable remote address for logs and the peer table ("10.0.0.2:7450"). */
  readonly remoteAddress: string;
  /** True on the side that dialled. */
  readonly isInitiator: boolean;
  readonly maxFrameBytes: number;
  readonly isOpen: boolean;
  /**
   * When bytes last came from the remote (Date.now()), those of a frame still arriving included: a large
   * frame on a slow medium takes seconds to arrive whole, and that is not a silence (keep-alives look here).
   */
  readonly lastReceivedAtMs: number;
  /**
   * Bytes send() took that the medium has not taken yet: what grows when the remote stops reading (the
   * layers above stop relaying to it, then drop it, before this costs the agent its memory).
   */
  readonly bufferedBytes: number;
  /** May keep a reference to `frame` until drained(): do not modify it before then. */
  /**
   * A frame may be given as parts whose concatenation is the frame (header, bulk payload, tag ...),
   * so callers never copy bulk data just to join it; the remote still receives one whole frame.
   */
  send(frame: Uint8Array | readonly Uint8Array[]): boolean;
  /** Resolves when queued frames have been handed to the medium (or the link closed). */
  drained(): Promise<void>;
  close(error?: Error): void;
}

export interface TransportEvents {
  /** A remote endpoint connected to us. */
  link: (link: FrameLink) => void;
  /** A non-fatal problem (listener error, adapter gone); the transport keeps trying. */
  warning: (error: Error) => void;
}

export interface DialOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface Transport extends TypedEmitter<TransportEvents> {
  readonly medium: Medium;
  start(): Promise<void>;
  /**
   * Takes no more links (a TCP listener closes, a BLE peripheral stops advertising): a remote that tries
   * from now on is refused by the medium itself, never accepted and then closed unanswered, which it could
   * not tell from a refused mesh key. Links already made stay up; dials still work; start() accepts again.
   */
  stopAccepting(): Promise<void>;
  /** Stops accepting, cancels dials in flight and closes every link. */
  stop(): Promise<void>;
  dial(address: string, options?: DialOptions): Promise<FrameLink>;
}
