// An in-process FrameLink pair for tests of the layers above the transports (secure channel, links).
// Frames are delivered asynchronously, in order, like a real medium.
import { FrameTooLargeError } from '../../agent/errors.js';
import { TypedEmitter } from '../../agent/events.js';
import {
  type FrameLink,
  type FrameLinkEvents,
  frameLength,
  type Medium,
} from '../../transports/transport.js';

export class MemoryLink extends TypedEmitter<FrameLinkEvents> implements FrameLink {
  isOpen = true;
  peer: MemoryLink | undefined;
  /** Every frame this side sent, for tests that tamper with or replay traffic. */
  readonly sent: Uint8Array[] = [];

  constructor(
    readonly remoteAddress: string,
    readonly isInitiator: boolean,
    readonly maxFrameBytes: number,
    /** What it pretends to be, for tests of agents linked over several media. */
    readonly medium: Medium = 'memory',
    /** How long each frame takes to arrive (frames stay in order): a slow medium next to a fast one. */
    readonly latencyMs = 0,
  ) {
    super();
  }

  send(frame: Uint8Array | readonly Uint8Array[]): boolean {
    if (!this.isOpen) return false;
    const length = frameLength(frame);
    if (length > this.maxFrameBytes) throw new FrameTooLargeError(length, this.maxFrameBytes);
    const copy = frame instanceof Uint8Array ? Uint8Array.from(frame) : new Uint8Array(Buffer.concat(frame));
    this.sent.push(copy);
    const peer = this.peer;
    if (this.latencyMs > 0) setTimeout(() => peer?.deliver(copy), this.latencyMs);
    else setImmediate(() => peer?.deliver(copy));
    return true;
  }

  /** Injects a frame as if the remote side had sent it. */
  deliver(frame: Uint8Array): void {
    if (!this.isOpen) return;
    // Contract: an oversized frame from the remote closes the link (ends may have different limits).
    if (frame.length > this.maxFrameBytes) {
      this.close(new FrameTooLargeError(frame.length, this.maxFrameBytes));
      return;
    }
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
