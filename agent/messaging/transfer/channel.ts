// What bulk transfer needs from the link layer: one reliable, ordered message channel per peer (system
// messages), plus an in-memory pair of them for tests and the lab, with latency, a cut (link drop) and a
// hook that sees (and may alter or drop) every message.
import { FrameTooLargeError } from '../../core/errors.js';

export interface TransferChannel {
  /**
   * Sends one message to `peer`; resolves when the peer acknowledged it, rejects when the link failed.
   * `payload` may be read (sent again on another link) until then, never after: the sender reads its next
   * chunk into it.
   */
  send(peer: string, payload: Uint8Array): Promise<void>;
  /** Largest payload `send` takes over any link (e.g. 60 KiB for routed or BLE links, more on TCP). */
  readonly maxPayloadBytes: number;
  /** Largest payload the link to `peer` takes now (a direct Wi-Fi link more than BLE); maxPayloadBytes if absent. */
  payloadLimit?(peer: string): number;
  /** Chunks the link to `peer` carries in flight within its per-message timeout; absent: no limit. */
  windowLimit?(peer: string): number;
}

/** Receives what the other end sent; the returned promise is the peer's acknowledgement. */
export type TransferInbound = (from: string, payload: Uint8Array) => Promise<void> | void;

/** The channel is cut: `send` rejects with this, and messages in flight are lost. */
export class ChannelDownError extends Error {
  constructor(peer: string) {
    super(`link to ${peer} is down`);
    this.name = 'ChannelDownError';
  }
}

export interface MemoryChannelOptions {
  /** Peer id of each end. */
  a: string;
  b: string;
  maxPayloadBytes?: number;
  /** Delay before each message is delivered (messages stay in order). */
  latencyMs?: number;
  /**
   * Sees every message before delivery: return the payload (possibly altered) to deliver, or null to drop
   * it silently (the send still resolves, as if the peer acknowledged and then lost it).
   */
  tap?: (from: string, to: string, payload: Uint8Array) => Uint8Array | null;
}

/** One end of a MemoryChannelPair. */
export class MemoryChannel implements TransferChannel {
  /** Where messages for this end go; set before anything is sent. */
  inbound: TransferInbound = () => {};
  #tail: Promise<unknown> = Promise.resolve();

  constructor(
    readonly self: string,
    private readonly pair: MemoryChannelPair,
    readonly maxPayloadBytes: number,
  ) {}

  send(peer: string, payload: Uint8Array): Promise<void> {
    const target = this.pair.endFor(peer);
    if (target === undefined || peer === this.self) return Promise.reject(new ChannelDownError(peer));
    if (payload.length > this.maxPayloadBytes) {
      return Promise.reject(new FrameTooLargeError(payload.length, this.maxPayloadBytes));
    }
    if (this.pair.isCut) return Promise.reject(new ChannelDownError(peer));
    const generation = this.pair.generation;
    const copy = payload.slice();
    // Delivered one after another, in order; a cut in between loses what has not arrived yet.
    const delivery = this.#tail.then(async () => {
      await delay(this.pair.latencyMs);
      if (this.pair.generation !== generation) throw new ChannelDownError(peer);
      const delivered = this.pair.tap ? this.pair.tap(this.self, peer, copy) : copy;
      if (delivered === null) return;
      await target.inbound(this.self, delivered);
    });
    this.#tail = delivery.catch(() => {});
    return delivery;
  }
}

/** Two channel ends connected to each other. */
export class MemoryChannelPair {
  readonly a: MemoryChannel;
  readonly b: MemoryChannel;
  latencyMs: number;
  tap: MemoryChannelOptions['tap'];
  #cut = false;
  #generation = 0;

  constructor(options: MemoryChannelOptions) {
    const max = options.maxPayloadBytes ?? 60 * 1024;
    this.a = new MemoryChannel(options.a, this, max);
    this.b = new MemoryChannel(options.b, this, max);
    this.latencyMs = options.latencyMs ?? 0;
    this.tap = options.tap;
  }

  get isCut(): boolean {
    return this.#cut;
  }

  get generation(): number {
    return this.#generation;
  }

  /** The end owned by `peer`. */
  endFor(peer: string): MemoryChannel | undefined {
    if (peer === this.a.self) return this.a;
    if (peer === this.b.self) return this.b;
    return undefined;
  }

  /** Drops the link: sends fail, messages in flight are lost. */
  cut(): void {
    this.#cut = true;
    this.#generation += 1;
  }

  restore(): void {
    this.#cut = false;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => (ms > 0 ? setTimeout(resolve, ms) : setImmediate(resolve)));
}
