// A FrameLink over one TCP socket: length-prefixed frames (framing.ts), back-pressure from the socket.
// Created by TcpTransport for accepted and dialled sockets; knows nothing about listening or dialling.
// Frames are handed up within a turn budget shared by every TCP link of the process: a burst of many
// frames (500 calls at once from a peer) goes over several event-loop turns, the socket paused meanwhile,
// instead of holding the loop for all of them.
import type { Socket } from 'node:net';
import { FrameTooLargeError, NearmeshError } from '../../agent/core/errors.js';
import { TypedEmitter } from '../../agent/core/events.js';
import { formatHostPort } from '../../agent/core/host-port.js';
import { TurnBudget } from '../../agent/core/turn-budget.js';
import { type FrameLink, type FrameLinkEvents, frameLength, type Medium } from '../transport.js';
import { encodeFrame, encodeFrameHeader, FrameDecoder } from './framing.js';

export const DEFAULT_CLOSE_GRACE_MS = 1000;
export const KEEPALIVE_INITIAL_DELAY_MS = 5000;
/** Frames up to this size are copied behind their header into one buffer: cheaper than a writev. */
const COALESCE_MAX_BYTES = 4096;
/**
 * Small frames written by one piece of synchronous code leave together, in one write once it returns
 * (process.nextTick): a burst of messages, or their acknowledgements, costs one syscall instead of one each.
 * Past this many bytes held they go at once.
 */
const TURN_HOLD_MAX_BYTES = 64 * 1024;

/** Work handing frames up per event-loop turn, over all TCP links. */
const LINK_TURNS = new TurnBudget();

/** The remote ended the stream in the middle of a frame. */
export class TruncatedFrameError extends NearmeshError {
  constructor(readonly bufferedBytes: number) {
    super('truncated-frame', `connection ended with ${bufferedBytes} bytes of an unfinished frame`);
  }
}

export interface TcpLinkOptions {
  isInitiator: boolean;
  maxFrameBytes: number;
  /** How long close() waits for queued data to flush before destroying the socket. */
  closeGraceMs?: number;
}

export class TcpLink extends TypedEmitter<FrameLinkEvents> implements FrameLink {
  readonly medium: Medium = 'wifi';
  readonly remoteAddress: string;
  readonly isInitiator: boolean;
  readonly maxFrameBytes: number;
  readonly #socket: Socket;
  readonly #decoder: FrameDecoder;
  readonly #closeGraceMs: number;
  #isOpen = true;
  #closeError: Error | undefined;
  #isCloseEmitted = false;
  #graceTimer: NodeJS.Timeout | undefined;
  #drainWaiters: Array<() => void> = [];
  #lastReceivedAtMs = Date.now();
  /** The socket is corked until the end of this turn (small frames held back to leave together). */
  #isHeldForTurn = false;
  /** Frames received and not yet handed up (the turn's budget ran out), and what broke the stream after them. */
  #held: Uint8Array[] = [];
  #heldFrom = 0;
  #heldError: Error | undefined;
  /** Stops reading until a later turn, then hands up what is held. */
  readonly #waitForTurn: () => void;

  constructor(socket: Socket, options: TcpLinkOptions) {
    super();
    this.#socket = socket;
    this.isInitiator = options.isInitiator;
    this.maxFrameBytes = options.maxFrameBytes;
    this.#closeGraceMs = options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS;
    this.#decoder = new FrameDecoder({ maxFrameBytes: options.maxFrameBytes });
    this.#waitForTurn = LINK_TURNS.pausingWaiter(
      socket,
      () => this.#handUp(),
      () => !this.#isOpen,
    );
    this.remoteAddress =
      socket.remoteAddress !== undefined && socket.remotePort !== undefined
        ? formatHostPort({ host: socket.remoteAddress, port: socket.remotePort })
        : 'unknown';

    // Frames are small request/response messages as often as bulk: latency beats Nagle here.
    socket.setNoDelay(true);
    // Notice a peer that walked out of Wi-Fi range without a FIN within seconds, not hours.
    socket.setKeepAlive(true, KEEPALIVE_INITIAL_DELAY_MS);

    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => this.#releaseDrainWaiters());
    socket.on('end', () => {
      // allowHalfOpen is off, so node ends our side too; nothing more can be sent usefully.
      if (this.#decoder.bufferedBytes > 0 && this.#closeError === undefined) {
        this.#closeError = new TruncatedFrameError(this.#decoder.bufferedBytes);
      }
      this.#isOpen = false;
    });
    socket.on('error', (error: Error) => {
      // ECONNRESET, ETIMEDOUT (keepalive), EPIPE...: the first error is the reason for the close.
      this.#closeError ??= error;
      this.#isOpen = false;
    });
    socket.on('close', () => this.#finish());
    if (socket.destroyed) queueMicrotask(() => this.#finish());
  }

  get isOpen(): boolean {
    return this.#isOpen;
  }

  get lastReceivedAtMs(): number {
    return this.#lastReceivedAtMs;
  }

  get bufferedBytes(): number {
    return this.#socket.writableLength;
  }

  /**
   * Writes header and frame. The frame is not copied when large: do not modify it until drained().
   * Returns socket.write()'s back-pressure answer.
   */
  send(frame: Uint8Array | readonly Uint8Array[]): boolean {
    if (!this.#isOpen) return false;
    const length = frameLength(frame);
    if (length > this.maxFrameBytes) throw new FrameTooLargeError(length, this.maxFrameBytes);
    if (length <= COALESCE_MAX_BYTES) {
      this.#holdForTurn();
      const isBelowHighWater = this.#socket.write(encodeFrame(frame));
      if (this.#socket.writableLength >= TURN_HOLD_MAX_BYTES) this.#releaseHeld();
      return isBelowHighWater;
    }
    this.#releaseHeld();
    // Corked, the writes leave as one writev: one segment for the header and the body's start.
    this.#socket.cork();
    let isBelowHighWater = this.#socket.write(encodeFrameHeader(length));
    for (const part of frame instanceof Uint8Array ? [frame] : frame) {
      if (part.length > 0) isBelowHighWater = this.#socket.write(part);
    }
    this.#socket.uncork();
    return isBelowHighWater;
  }

  #holdForTurn(): void {
    if (this.#isHeldForTurn) return;
    this.#isHeldForTurn = true;
    this.#socket.cork();
    process.nextTick(() => this.#releaseHeld());
  }

  #releaseHeld(): void {
    if (!this.#isHeldForTurn) return;
    this.#isHeldForTurn = false;
    this.#socket.uncork();
  }

  drained(): Promise<void> {
    if (this.#isCloseEmitted || !this.#socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  close(error?: Error): void {
    if (!this.#isOpen) return;
    this.#isOpen = false;
    this.#closeError ??= error;
    // A link closed for an error (a silent peer, a protocol fault) has nobody to flush to: cut it now, so
    // the layer above learns at once (a Wi-Fi loss must move traffic to BLE within 3 s).
    if (error !== undefined) {
      this.#socket.destroy();
      return;
    }
    // end() flushes what send() queued, then FINs; a peer that never answers is cut after the grace.
    this.#socket.end();
    this.#graceTimer = setTimeout(() => this.#socket.destroy(), this.#closeGraceMs);
    this.#graceTimer.unref();
  }

  #onData(chunk: Buffer): void {
    if (!this.#isOpen) return;
    this.#lastReceivedAtMs = Date.now();
    const { frames, error } = this.#decoder.push(chunk);
    for (const frame of frames) this.#held.push(frame);
    this.#heldError ??= error;
    this.#handUp();
  }

  /** Hands up held frames while the turn's budget lasts; then waits, not reading, for a later turn. */
  #handUp(): void {
    while (this.#heldFrom < this.#held.length) {
      // A listener may close the link while we are still handing out frames.
      if (!this.#isOpen) return;
      if (!LINK_TURNS.available()) {
        this.#waitForTurn();
        return;
      }
      const frame = this.#held[this.#heldFrom++] as Uint8Array;
      this.emit('frame', frame);
    }
    this.#held = [];
    this.#heldFrom = 0;
    const error = this.#heldError;
    if (error !== undefined && this.#isOpen) {
      // The stream cannot be resynchronised after a bad length: drop it now, do not drain it.
      this.#isOpen = false;
      this.#closeError ??= error;
      this.#socket.destroy();
    }
  }

  #releaseDrainWaiters(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const resolve of waiters) resolve();
  }

  #finish(): void {
    if (this.#isCloseEmitted) return;
    this.#isCloseEmitted = true;
    this.#isOpen = false;
    clearTimeout(this.#graceTimer);
    this.#releaseDrainWaiters();
    this.emit('close', this.#closeError);
  }
}
