// Routes to agents beyond the direct links, learned from traffic: a message from S that arrived through
// neighbour N says "S is reachable through N in h hops" (reverse path). Shorter routes win, a route is
// refreshed by its own next hop, and a route goes with the link it uses or when nothing renews it.

/** Announcements refresh routes every 30 s: a route not heard of for three periods is stale. */
export const DEFAULT_ROUTE_EXPIRY_MS = 95_000;

/** Routes kept at most (the oldest update goes first): bounded memory whatever the traffic claims. */
export const MAX_ROUTES = 1_024;

export interface Route {
  destination: string;
  nextHop: string;
  hops: number;
  updatedAtMs: number;
}

export class RouteTable {
  readonly #routes = new Map<string, Route>();

  constructor(readonly expiryMs: number = DEFAULT_ROUTE_EXPIRY_MS) {}

  /** Takes a route heard now if it is new, shorter, from the current next hop, or the old one went stale. */
  learn(destination: string, nextHop: string, hops: number, nowMs: number): boolean {
    const current = this.get(destination, nowMs);
    // An equally long route through another neighbour is no reason to move: routes stay stable.
    if (current !== undefined && hops >= current.hops && nextHop !== current.nextHop) return false;
    const changed = current?.nextHop !== nextHop || current.hops !== hops;
    this.#set({ destination, nextHop, hops, updatedAtMs: nowMs });
    return changed;
  }

  /**
   * Takes a route whatever it replaces: the first copy of a flooded message (or an announcement) came the
   * fastest way that works right now, which is better evidence than an older, shorter route.
   */
  replace(destination: string, nextHop: string, hops: number, nowMs: number): boolean {
    const current = this.get(destination, nowMs);
    this.#set({ destination, nextHop, hops, updatedAtMs: nowMs });
    return current?.nextHop !== nextHop || current.hops !== hops;
  }

  get(destination: string, nowMs: number): Route | undefined {
    const route = this.#routes.get(destination);
    if (route === undefined) return undefined;
    if (nowMs - route.updatedAtMs >= this.expiryMs) {
      this.#routes.delete(destination);
      return undefined;
    }
    return route;
  }

  /** Drops every route through a link that went down; returns the destinations that lost their route. */
  dropVia(nextHop: string): string[] {
    const dropped: string[] = [];
    for (const [destination, route] of this.#routes) {
      if (route.nextHop !== nextHop) continue;
      this.#routes.delete(destination);
      dropped.push(destination);
    }
    return dropped;
  }

  /** Stores a route as the most recent, dropping the least recently updated one when full. */
  #set(route: Route): void {
    this.#routes.delete(route.destination);
    if (this.#routes.size >= MAX_ROUTES) {
      const oldest = this.#routes.keys().next().value;
      if (oldest !== undefined) this.#routes.delete(oldest);
    }
    this.#routes.set(route.destination, route);
  }

  delete(destination: string): void {
    this.#routes.delete(destination);
  }

  list(nowMs: number): Route[] {
    return [...this.#routes.keys()]
      .map((destination) => this.get(destination, nowMs))
      .filter((route): route is Route => route !== undefined);
  }
}
