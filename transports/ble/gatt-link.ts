// A FrameLink over one GATT pipe (central writes to RX, peripheral notifies on TX): frames are cut and
// rejoined by fragmentation.ts; peripheral.ts and central.ts supply the pipes, so this file knows no library.
import { NearmeshError } from '../../agent/core/errors.js';
import { TypedEmitter } from '../../agent/core/events.js';
import type { FrameLink, FrameLinkEvents, Medium } from '../transport.js';
import {
  DEFAULT_BLE_MAX_FRAME_BYTES,
  DEFAULT_REASSEMBLY_TIMEOUT_MS,
  FragmentReassembler,
  FrameFragmenter,
} from './fragmentation.js';

/**
 * One direction-pair of GATT traffic to one remote, as the link sees it. Fragments are opaque ATT values of
 * at most maxFragmentBytes (ATT MTU − 3), delivered in order or not at all (the pipe then closes).
 */
export interface GattPipe {
  readonly maxFragmentBytes: number;
  /** The remote's BLE address (or the library's id for it), for logs and the peer table. */
  readonly remoteAddress: string;
  /**
   * Hands one fragment to the medium. A returned promise is the pipe's flow control: the link writes the
   * next fragment only once it settles (a rejection closes the link). Returning nothing means "take more".
   */
  write(fragment: Uint8Array): Promise<void> | undefined;
  /** Every fragment the remote sent, in order. One listener (the link). */
  onFragment(listener: (fragment: Uint8Array) => void): void;
  /** Called once when the pipe is gone, closed by either side; with an error when the medium failed. */
  onClose(listener: (error: Error | undefined) => void): void;
  /** Disconnects (idempotent); onClose follows. */
  close(): void;
}

/** A closing link whose pipe does not take its queued fragments within closeGraceMs. */
export class GattCloseTimeoutError extends NearmeshError {
  constructor(
    readonly queuedBytes: number,
    readonly graceMs: number,
  ) {
    super('ble-close-timeout', `BLE link closed with ${queuedBytes} bytes unsent after ${graceMs} ms`);
  }
}

/**
 * Bytes queued (fragment bytes, headers included) before send() asks the caller to wait. BLE moves a few
 * hundred kB/s at best, so 32 KiB is ~0.1 s of traffic: enough to keep the pipe busy, little to lose on close.
 */
export const DEFAULT_HIGH_WATER_BYTES = 32 * 1024;
export const DEFAULT_GATT_CLOSE_GRACE_MS = 2000;
/** Synchronous writes in a row before the pump yields, so a pipe that never pushes back cannot starve I/O. */
const MAX_SYNC_WRITES_IN_A_ROW = 256;

export interface GattLinkOptions {
  isInitiator: boolean;
  maxFrameBytes?: number;
  highWaterBytes?: number;
  reassemblyTimeoutMs?: number;
  closeGraceMs?: number;
}

/** The fragments of one frame, written from `next` on. */
interface QueuedFrame {
  readonly fragments: Uint8Array[];
  next: number;
}

export class GattLink extends TypedEmitter<FrameLinkEvents> implements FrameLink {
  readonly medium: Medium = 'ble';
  readonly remoteAddress: string;
  readonly isInitiator: boolean;
  readonly maxFrameBytes: number;
  readonly highWaterBytes: number;
  readonly #pipe: GattPipe;
  readonly #fragmenter: FrameFragmenter;
  readonly #reassembler: FragmentReassembler;
  readonly #closeGraceMs: number;
  readonly #queue: QueuedFrame[] = [];
  #queuedBytes = 0;
  #isPumping = false;
  #isOpen = true;
  #isCloseEmitted = false;
  #closeError: Error | undefined;
  #drainWaiters: Array<() => void> = [];
  #reassemblyTimer: NodeJS.Timeout | undefined;
  #graceTimer: NodeJS.Timeout | undefined;
  #lastReceivedAtMs = Date.now();

  constructor(pipe: GattPipe, options: GattLinkOptions) {
    super();
    this.#pipe = pipe;
    this.remoteAddress = pipe.remoteAddress;
    this.isInitiator = options.isInitiator;
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_BLE_MAX_FRAME_BYTES;
    this.highWaterBytes = options.highWaterBytes ?? DEFAULT_HIGH_WATER_BYTES;
    this.#closeGraceMs = options.closeGraceMs ?? DEFAULT_GATT_CLOSE_GRACE_MS;
    this.#fragmenter = new FrameFragmenter({ maxFrameBytes: this.maxFrameBytes });
    this.#reassembler = new FragmentReassembler({
      maxFrameBytes: this.maxFrameBytes,
      timeoutMs: options.reassemblyTimeoutMs ?? DEFAULT_REASSEMBLY_TIMEOUT_MS,
    });
    pipe.onFragment((fragment) => this.#onFragment(fragment));
    pipe.onClose((error) => this.#finish(error));
  }

  get isOpen(): boolean {
    return this.#isOpen;
  }

  get lastReceivedAtMs(): number {
    return this.#lastReceivedAtMs;
  }

  /** The ATT payload each fragment fills (negotiated ATT MTU − 3). */
  get maxFragmentBytes(): number {
    return this.#pipe.maxFragmentBytes;
  }

  /** Bytes of fragments not yet handed to the pipe. */
  get bufferedBytes(): number {
    return this.#queuedBytes;
  }

  /** Fragments (copies) are queued at once, so the caller may reuse `frame` right away. */
  send(frame: Uint8Array | readonly Uint8Array[]): boolean {
    if (!this.#isOpen) return false;
    // Throws FrameTooLargeError over our limit, before anything is queued: the link stays up.
    const fragments = this.#fragmenter.fragment(frame, this.#pipe.maxFragmentBytes);
    for (const fragment of fragments) this.#queuedBytes += fragment.length;
    this.#queue.push({ fragments, next: 0 });
    void this.#pump();
    return this.#queuedBytes < this.highWaterBytes;
  }

  drained(): Promise<void> {
    if (this.#isCloseEmitted || this.#queuedBytes === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** Sends what is queued, then disconnects; a pipe that stalls is cut after closeGraceMs. */
  close(error?: Error): void {
    if (!this.#isOpen) return;
    this.#isOpen = false;
    this.#closeError ??= error;
    this.#clearReassemblyTimer();
    if (this.#queuedBytes === 0) {
      this.#pipe.close();
      return;
    }
    this.#graceTimer = setTimeout(() => {
      this.#closeError ??= new GattCloseTimeoutError(this.#queuedBytes, this.#closeGraceMs);
      this.#dropQueue();
      this.#pipe.close();
    }, this.#closeGraceMs);
    this.#graceTimer.unref();
  }

  /** Closes at once, dropping what is queued: the byte stream can no longer be trusted. */
  #fail(error: Error): void {
    this.#closeError ??= error;
    this.#isOpen = false;
    this.#clearReassemblyTimer();
    this.#dropQueue();
    this.#pipe.close();
  }

  async #pump(): Promise<void> {
    if (this.#isPumping) return;
    this.#isPumping = true;
    try {
      let syncWrites = 0;
      for (let head = this.#queue[0]; head !== undefined; head = this.#queue[0]) {
        const fragment = head.fragments[head.next];
        if (fragment === undefined) {
          this.#queue.shift();
          continue;
        }
        const pending = this.#pipe.write(fragment);
        // A fragment handed over may not be taken back: count it gone only once the pipe has it.
        if (pending !== undefined) {
          await pending;
          syncWrites = 0;
        } else if (++syncWrites >= MAX_SYNC_WRITES_IN_A_ROW) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          syncWrites = 0;
        }
        if (this.#queue[0] !== head) break; // the queue was dropped meanwhile (#fail, grace timeout)
        head.fragments[head.next] = EMPTY; // let the fragment be collected
        head.next++;
        this.#queuedBytes -= fragment.length;
      }
    } catch (error) {
      this.#fail(error instanceof Error ? error : new Error(String(error)));
    } finally {
      this.#isPumping = false;
    }
    if (this.#queuedBytes === 0) this.#onQueueEmpty();
  }

  #onQueueEmpty(): void {
    this.#releaseDrainWaiters();
    if (!this.#isOpen && !this.#isCloseEmitted) {
      clearTimeout(this.#graceTimer);
      this.#pipe.close();
    }
  }

  #dropQueue(): void {
    this.#queue.length = 0;
    this.#queuedBytes = 0;
  }

  #onFragment(fragment: Uint8Array): void {
    if (!this.#isOpen) return;
    this.#lastReceivedAtMs = Date.now();
    const { frames, error } = this.#reassembler.push(fragment, this.#lastReceivedAtMs);
    for (const frame of frames) {
      // A listener may close the link while we hand out this fragment's frame.
      if (!this.#isOpen) return;
      this.emit('frame', frame);
    }
    if (error !== undefined) {
      if (this.#isOpen) this.#fail(error);
      return;
    }
    this.#armReassemblyTimer();
  }

  /** One timer for the reassembler's deadline, re-armed only when it fires: not one per fragment. */
  #armReassemblyTimer(): void {
    if (this.#reassemblyTimer !== undefined || !this.#isOpen) return;
    const deadlineMs = this.#reassembler.deadlineMs;
    if (deadlineMs === undefined) return;
    this.#reassemblyTimer = setTimeout(
      () => {
        this.#reassemblyTimer = undefined;
        if (!this.#isOpen) return;
        const error = this.#reassembler.checkTimeout(Date.now());
        if (error !== undefined) this.#fail(error);
        else this.#armReassemblyTimer();
      },
      Math.max(1, deadlineMs - Date.now() + 1),
    );
    this.#reassemblyTimer.unref();
  }

  #clearReassemblyTimer(): void {
    clearTimeout(this.#reassemblyTimer);
    this.#reassemblyTimer = undefined;
  }

  #releaseDrainWaiters(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const resolve of waiters) resolve();
  }

  #finish(pipeError: Error | undefined): void {
    if (this.#isCloseEmitted) return;
    this.#isCloseEmitted = true;
    this.#isOpen = false;
    this.#closeError ??= pipeError;
    clearTimeout(this.#graceTimer);
    this.#clearReassemblyTimer();
    this.#dropQueue();
    this.#releaseDrainWaiters();
    this.emit('close', this.#closeError);
  }
}

const EMPTY = new Uint8Array(0);

/**
 * The receiving end of a pipe before and after the link takes it: fragments that arrive first are kept and
 * handed over one event-loop turn after onFragment(), so a dialler's `await dial()` continuation can attach its
 * 'frame' listener before the first frame surfaces. Order is kept throughout.
 */
export class PipeInbox {
  #listener: ((fragment: Uint8Array) => void) | undefined;
  #held: Uint8Array[] = [];
  #isFlushScheduled = false;

  setListener(listener: (fragment: Uint8Array) => void): void {
    this.#listener = listener;
    if (this.#held.length === 0 || this.#isFlushScheduled) return;
    this.#isFlushScheduled = true;
    setImmediate(() => {
      this.#isFlushScheduled = false;
      // One at a time: the listener may close the link, after which the pipe drops the rest.
      for (let fragment = this.#held.shift(); fragment !== undefined; fragment = this.#held.shift()) {
        listener(fragment);
      }
    });
  }

  deliver(fragment: Uint8Array): void {
    if (this.#listener === undefined || this.#isFlushScheduled) this.#held.push(Uint8Array.from(fragment));
    else this.#listener(fragment);
  }

  clear(): void {
    this.#held = [];
  }
}
