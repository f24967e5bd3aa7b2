// Leases: exclusive use of a resource (an action name) on this agent for a while. The holder renews
// before the lease runs out; a holder that goes away stops renewing and loses it within one lease time.
// While held, everyone else's calls to that action get "busy, held by <holder>".

/** Resources leased at once on one agent. */
const MAX_LEASES = 1024;

export interface LeaseState {
  granted: boolean;
  /** Who holds it now; null when free. */
  holder: string | null;
  remainingMs: number;
}

interface Lease {
  readonly holder: string;
  expiresAtMs: number;
}

/** The leases this agent grants, by resource. */
export class LeaseTable {
  readonly #leases = new Map<string, Lease>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Takes or renews `resource` for `holder`; refused while someone else holds it. */
  acquire(holder: string, resource: string, ttlMs: number): LeaseState {
    const current = this.#current(resource);
    if (current !== undefined && current.holder !== holder) return this.#state(false, current);
    if (current === undefined && this.#leases.size >= MAX_LEASES) this.#sweep();
    if (current === undefined && this.#leases.size >= MAX_LEASES) {
      return { granted: false, holder: null, remainingMs: 0 };
    }
    const lease = { holder, expiresAtMs: this.now() + ttlMs };
    this.#leases.set(resource, lease);
    return this.#state(true, lease);
  }

  /** Gives a resource back; only its holder can. */
  release(holder: string, resource: string): LeaseState {
    const current = this.#current(resource);
    if (current !== undefined && current.holder !== holder) return this.#state(false, current);
    this.#leases.delete(resource);
    return { granted: true, holder: null, remainingMs: 0 };
  }

  /** Every lease held now, by resource. */
  entries(): { resource: string; holder: string; remainingMs: number }[] {
    this.#sweep();
    return [...this.#leases].map(([resource, lease]) => ({
      resource,
      holder: lease.holder,
      remainingMs: this.#state(true, lease).remainingMs,
    }));
  }

  /** The holder of a resource, if it is held now. */
  holderOf(resource: string): string | undefined {
    return this.#current(resource)?.holder;
  }

  #current(resource: string): Lease | undefined {
    const lease = this.#leases.get(resource);
    if (lease === undefined) return undefined;
    if (lease.expiresAtMs > this.now()) return lease;
    this.#leases.delete(resource);
    return undefined;
  }

  #sweep(): void {
    for (const resource of [...this.#leases.keys()]) this.#current(resource);
  }

  #state(granted: boolean, lease: Lease): LeaseState {
    return {
      granted,
      holder: lease.holder,
      remainingMs: Math.max(0, Math.round(lease.expiresAtMs - this.now())),
    };
  }
}
