// While an invitation is open an inbound link may begin with a join HELLO instead of a Noise first
// message: the admission reads the first frame to tell, and hands a link that begins with anything else to
// the handshake as if nothing had been read.
import type { FrameLink, FrameLinkEvents } from '../../transports/transport.js';
import { TypedEmitter } from '../core/events.js';

/** The first frame of `link`, or undefined when it closed or stayed silent for `timeoutMs`. */
export function firstFrame(link: FrameLink, timeoutMs: number): Promise<Uint8Array | undefined> {
  return new Promise((resolve) => {
    const done = (frame: Uint8Array | undefined): void => {
      clearTimeout(timer);
      link.off('frame', onFrame);
      link.off('close', onClose);
      resolve(frame);
    };
    const onFrame = (frame: Uint8Array): void => done(frame);
    const onClose = (): void => done(undefined);
    const timer = setTimeout(() => done(undefined), timeoutMs);
    link.on('frame', onFrame);
    link.on('close', onClose);
  });
}

/**
 * `link` with `first` delivered again before its later frames. Listeners attached in the same turn as the
 * construction (as the handshake's are) see it; the underlying link's own events follow in order.
 */
export class ReplayedLink extends TypedEmitter<FrameLinkEvents> implements FrameLink {
  readonly #link: FrameLink;
  #held: Uint8Array[] | undefined;

  constructor(link: FrameLink, first: Uint8Array) {
    super();
    this.#link = link;
    this.#held = [first];
    link.on('frame', (frame) => {
      if (this.#held === undefined) this.emit('frame', frame);
      else this.#held.push(frame);
    });
    link.on('close', (error) => {
      this.#flush();
      this.emit('close', error);
    });
    queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    const held = this.#held;
    this.#held = undefined;
    for (const frame of held ?? []) this.emit('frame', frame);
  }

  get medium() {
    return this.#link.medium;
  }
  get remoteAddress(): string {
    return this.#link.remoteAddress;
  }
  get isInitiator(): boolean {
    return this.#link.isInitiator;
  }
  get maxFrameBytes(): number {
    return this.#link.maxFrameBytes;
  }
  get isOpen(): boolean {
    return this.#link.isOpen;
  }
  get lastReceivedAtMs(): number {
    return this.#link.lastReceivedAtMs;
  }
  get bufferedBytes(): number {
    return this.#link.bufferedBytes;
  }
  send(frame: Uint8Array | readonly Uint8Array[]): boolean {
    return this.#link.send(frame);
  }
  drained(): Promise<void> {
    return this.#link.drained();
  }
  close(error?: Error): void {
    this.#link.close(error);
  }
}
