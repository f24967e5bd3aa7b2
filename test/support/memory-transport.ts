// An in-process Transport over MemoryLink pairs: a shared MemoryNetwork maps addresses to listening
// transports, so link-manager tests run real handshakes and protocol without sockets.
import { TypedEmitter } from '../../agent/core/events.js';
import { DialError } from '../../transports/errors.js';
import type { Resolver, ResolverEvents } from '../../transports/resolver.js';
import type { FrameLink, Medium, Transport, TransportEvents } from '../../transports/transport.js';
import { MemoryLink } from './memory-link.js';

export class MemoryNetwork {
  readonly listeners = new Map<string, MemoryTransport>();
  /** Every link pair ever made, for tests that cut cables. */
  readonly pairs: Array<[MemoryLink, MemoryLink]> = [];

  /** Stops delivery in both directions without closing anything: a peer that went silent. */
  silence(address: string): void {
    for (const [initiator, responder] of this.pairs) {
      if (initiator.remoteAddress === address || responder.remoteAddress === address) {
        initiator.peer = undefined;
        responder.peer = undefined;
      }
    }
  }
}

export class MemoryTransport extends TypedEmitter<TransportEvents> implements Transport {
  dialCount = 0;

  constructor(
    private readonly network: MemoryNetwork,
    readonly address: string,
    /** What it pretends to be, for tests of agents linked over several media. */
    readonly medium: Medium = 'memory',
    /** Per-frame latency of the links it makes (see MemoryLink). */
    readonly latencyMs = 0,
    /** Bandwidth of the links it makes (see MemoryLink). */
    readonly bytesPerSecond = Number.POSITIVE_INFINITY,
  ) {
    super();
  }

  async start(): Promise<void> {
    this.network.listeners.set(this.address, this);
  }

  /** A dial from now on is refused, and one not yet taken is closed, as by a TCP listener that closed. */
  async stopAccepting(): Promise<void> {
    if (this.network.listeners.get(this.address) === this) this.network.listeners.delete(this.address);
  }

  /** Stops accepting; the links it made are the test's to close. */
  async stop(): Promise<void> {
    await this.stopAccepting();
  }

  async dial(address: string): Promise<FrameLink> {
    this.dialCount++;
    const target = this.network.listeners.get(address);
    if (target === undefined) throw new DialError(address, 'refused', 'nobody listens there');
    // Each end names the other's address, as a TCP link does.
    const link = (remote: string, isInitiator: boolean): MemoryLink =>
      new MemoryLink(remote, isInitiator, 1 << 20, this.medium, this.latencyMs, this.bytesPerSecond);
    const initiator = link(address, true);
    const responder = link(this.address, false);
    initiator.peer = responder;
    responder.peer = initiator;
    this.network.pairs.push([initiator, responder]);
    setImmediate(() => {
      if (this.network.listeners.get(address) === target) target.emit('link', responder);
      else responder.close();
    });
    return initiator;
  }
}

/** A resolver that "finds" whatever the test tells it to. */
export class ListResolver extends TypedEmitter<ResolverEvents> implements Resolver {
  readonly name: string;

  constructor(
    private readonly addresses: string[],
    private readonly medium: Medium = 'memory',
  ) {
    super();
    this.name = `test-${medium}`;
  }

  async start(): Promise<void> {
    for (const address of this.addresses)
      this.emit('found', { medium: this.medium, address, source: this.name });
  }

  async stop(): Promise<void> {}
}
