// An in-process FrameLink pair for tests of the layers above the transports (secure channel, links).
// Frames are delivered asynchronously, in order, like a real medium; with a bandwidth, one after another,
// each taking its size's time to arrive (bytes of it arriving meanwhile, as lastReceivedAtMs tells).
import { FrameTooLargeError } from '../../agent/core/errors.js';
import { TypedEmitter } from '../../agent/core/events.js';
import {
  type FrameLink,
  type FrameLinkEvents,
  frameLength,
  type Medium,
} from '../../transports/transport.js';

/** A frame on its way: who it goes to (as the link stood when it was sent) and when it arrives whole. */
interface InTransit {
  readonly frame: Uint8Array;
  readonly to: MemoryLink | undefined;
  readonly atMs: number;
}

export class MemoryLink extends TypedEmitter<FrameLinkEvents> implements FrameLink {
  isOpen = true;
  peer: MemoryLink | undefined;
  /** Every frame this side sent, for tests that tamper with or replay traffic. */
  readonly sent: Uint8Array[] = [];
  /** When the last frame this side sent has arrived whole (with a bandwidth). */
  #sendingUntilMs = 0;
  #lastDeliveredAtMs = Date.now();
  readonly #inTransit: InTransit[] = [];
  /** Bytes of the frames in transit: sent, not yet delivered. */
  bufferedBytes = 0;

  constructor(
    readonly remoteAddress: string,
    readonly isInitiator: boolean,
    readonly maxFrameBytes: number,
    /** What it pretends to be, for tests of agents linked over several media. */
    readonly medium: Medium = 'memory',
    /** How long each frame takes to arrive (frames stay in order): a slow medium next to a fast one. */
    readonly latencyMs = 0,
    /** Frames leave one after another at this rate (a slow Wi-Fi link); unlimited by default. */
    readonly bytesPerSecond = Number.POSITIVE_INFINITY,
  ) {
    super();
  }

  /** Bytes arrive while the other side is still sending a frame (its time on the medium). */
  get lastReceivedAtMs(): number {
    const now = Date.now();
    const peer = this.peer;
    return peer !== undefined && peer.#sendingUntilMs > now ? now : this.#lastDeliveredAtMs;
  }

  send(frame: Uint8Array | readonly Uint8Array[]): boolean {
    if (!this.isOpen) return false;
    const length = frameLength(frame);
    if (length > this.maxFrameBytes) throw new FrameTooLargeError(length, this.maxFrameBytes);
    const copy = frame instanceof Uint8Array ? Uint8Array.from(frame) : new Uint8Array(Buffer.concat(frame));
    this.sent.push(copy);
    const now = Date.now();
    this.#sendingUntilMs = Math.max(now, this.#sendingUntilMs) + (length / this.bytesPerSecond) * 1000;
    this.#inTransit.push({ frame: copy, to: this.peer, atMs: this.#sendingUntilMs + this.latencyMs });
    this.bufferedBytes += copy.length;
    if (this.#inTransit.length === 1) this.#scheduleArrival();
    return true;
  }

  /** One timer for the oldest frame in transit: frames arrive in the order they were sent, always. */
  #scheduleArrival(): void {
    const next = this.#inTransit[0];
    if (next === undefined) return;
    const waitMs = next.atMs - Date.now();
    const arrive = (): void => {
      const now = Date.now();
      for (let head = this.#inTransit[0]; head !== undefined && head.atMs <= now; head = this.#inTransit[0]) {
        this.#inTransit.shift();
        this.bufferedBytes -= head.frame.length;
        head.to?.deliver(head.frame);
      }
      this.#scheduleArrival();
    };
    if (waitMs > 0) setTimeout(arrive, waitMs);
    else setImmediate(arrive);
  }

  /** Injects a frame as if the remote side had sent it. */
  deliver(frame: Uint8Array): void {
    if (!this.isOpen) return;
    // Contract: an oversized frame from the remote closes the link (ends may have different limits).
    if (frame.length > this.maxFrameBytes) {
      this.close(new FrameTooLargeError(frame.length, this.maxFrameBytes));
      return;
    }
    this.#lastDeliveredAtMs = Date.now();
    this.emit('frame', frame);
  }

  async drained(): Promise<void> {}

  close(error?: Error): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    const peer = this.peer;
    setImmediate(() => {
      this.emit('close', error);
      peer?.close();
    });
  }
}

export function memoryLinkPair(
  maxFrameBytes = 1 << 20,
  responderMaxFrameBytes = maxFrameBytes,
): [initiator: MemoryLink, responder: MemoryLink] {
  const a = new MemoryLink('memory:b', true, maxFrameBytes);
  const b = new MemoryLink('memory:a', false, responderMaxFrameBytes);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
