// The static resolver: the `[[peers]] address = "host:port"` entries of the config (and the addresses learnt
// when this device joined its mesh), reported on start.
// Useful where multicast is blocked (many Wi-Fi access points) or a peer sits on another subnet.

import { TypedEmitter } from '../../agent/core/events.js';
import { AddressError, checkHostPort } from '../../agent/core/host-port.js';
import type { PeerCandidate, Resolver, ResolverEvents } from '../resolver.js';

export const STATIC_SOURCE = 'static';

export class StaticResolver extends TypedEmitter<ResolverEvents> implements Resolver {
  readonly #candidates: readonly PeerCandidate[];
  #isStarted = false;

  /** Throws AddressError naming the first address that is not "host:port" / "[v6]:port". */
  constructor(
    addresses: readonly string[],
    readonly name = STATIC_SOURCE,
  ) {
    super();
    this.#candidates = addresses.map((address) => {
      const parsed = checkHostPort(address);
      if (!parsed.ok) throw new AddressError(address, parsed.expected);
      return { medium: 'wifi', address, source: name };
    });
  }

  /** Emits 'found' for every configured address, synchronously, before resolving. */
  async start(): Promise<void> {
    if (this.#isStarted) return;
    this.#isStarted = true;
    // Each listener gets its own copy, so one that annotates a candidate cannot affect another.
    for (const candidate of this.#candidates) this.emit('found', { ...candidate });
  }

  async stop(): Promise<void> {
    this.#isStarted = false;
  }
}
