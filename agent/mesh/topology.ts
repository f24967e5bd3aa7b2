// What the announcements say about the mesh: each agent's name, groups, relay flag and neighbours. Used to
// show remote agents, to route unicast along a shortest path (link state: a link counts only when both of
// its ends announce it, and announcements are signed by their origins, so no agent can invent a link to an
// honest one), and to forward a broadcast along one shortest-path tree per source (every agent computes
// the same tree from the same announcements), instead of over every link.

import { setBounded } from '../core/bounded-map.js';
import type { AgentAbout, Announcement, Capabilities } from '../protocol/index.js';
import { groupId } from './address.js';

/**
 * An agent no announced path leads to for this long is forgotten, with what it announced: it left, or the
 * mesh split (its neighbours announced their links to it gone). Routes never use it meanwhile.
 */
export const UNREACHABLE_EXPIRY_MS = 95_000;
/**
 * An agent re-announces itself hourly even when nothing changed (router.ts): one whose announcement was not
 * renewed for three hours is forgotten even if a path still shows (a safety net; paths are what count).
 */
export const MAX_ANNOUNCEMENT_AGE_MS = 3 * 3_600_000 + 300_000;

/** Agents remembered at most: memory stays bounded even when a peer announces made-up agents. */
export const MAX_KNOWN_AGENTS = 1_024;

/** How often the routing paths look for agents out of reach. */
const SWEEP_INTERVAL_MS = 1_000;

/** A unicast route: the neighbour to hand a message to and how far the destination is. */
export interface TopologyRoute {
  readonly nextHop: string;
  readonly hops: number;
}

export interface KnownAgent {
  readonly id: string;
  readonly name: string;
  readonly groups: readonly string[];
  readonly groupIds: ReadonlySet<string>;
  readonly relays: boolean;
  readonly neighbours: ReadonlySet<string>;
  readonly initialTtl: number;
  readonly heardAtMs: number;
  readonly capabilities: Capabilities;
  /** Its board and software version, when it announced them. */
  readonly about?: AgentAbout | undefined;
}

interface AvoidingRoute {
  readonly avoid: ReadonlySet<string>;
  readonly route: TopologyRoute | undefined;
}

export class Topology {
  readonly #agents = new Map<string, KnownAgent>();
  /** This agent's own links, kept live by the router (not from an announcement). */
  #ownNeighbours = new Set<string>();
  #ownRelays = true;
  /** Children of this agent in each source's tree, valid until the topology changes. */
  #children = new Map<string, ReadonlySet<string> | undefined>();
  /** Hops from an agent to every agent it reaches (asked for this agent and its neighbours), until a change. */
  readonly #distances = new Map<string, ReadonlyMap<string, number>>();
  /** Every announced group id, valid until the topology changes (asked for each routed message). */
  #groupIds: ReadonlySet<string> | undefined;
  /** This agent's shortest routes to every agent it can reach, valid until the topology changes. */
  #routes: ReadonlyMap<string, TopologyRoute> | undefined;
  /**
   * Routes around avoided next hops, per destination, with the set they avoid: valid until the topology
   * changes or another set is asked for (the penalties hand out the same set for as long as it holds).
   */
  readonly #avoidingRoutes = new Map<string, AvoidingRoute>();
  /** Since when each agent out of reach has been (see UNREACHABLE_EXPIRY_MS). */
  readonly #unreachableSinceMs = new Map<string, number>();
  /** When the routing paths next sweep out agents out of reach (not on every message: see #sweep). */
  #nextSweepMs = 0;
  /** Grows whenever what the announcements show changes (an agent learnt, changed or forgotten). */
  #version = 0;

  constructor(
    readonly selfId: string,
    readonly expiry: { unreachableMs: number; maxAgeMs: number } = {
      unreachableMs: UNREACHABLE_EXPIRY_MS,
      maxAgeMs: MAX_ANNOUNCEMENT_AGE_MS,
    },
  ) {}

  /** Changes whenever an agent is learnt, changes, or is forgotten: what is held is the same while it stays. */
  get version(): number {
    return this.#version;
  }

  setOwn(neighbours: Iterable<string>, relays: boolean): void {
    this.#ownNeighbours = new Set(neighbours);
    this.#ownRelays = relays;
    this.#changed();
  }

  /** Records an agent's announcement; true when it is news (a new agent, or its links or groups changed). */
  update(id: string, announcement: Announcement, relays: boolean, nowMs: number): boolean {
    const previous = this.#agents.get(id);
    const neighbours = new Set(announcement.neighbours);
    const sameGroups = previous?.groups.join('\0') === announcement.groups.join('\0');
    const isNews =
      previous === undefined ||
      previous.relays !== relays ||
      previous.name !== announcement.name ||
      !sameMembers(previous.neighbours, neighbours) ||
      !sameGroups;
    // Most recently heard last, so the one forgotten when full is the longest silent.
    const forgotten = setBounded(
      this.#agents,
      id,
      {
        id,
        name: announcement.name,
        groups: announcement.groups,
        groupIds:
          previous !== undefined && sameGroups
            ? previous.groupIds
            : new Set(announcement.groups.map(groupId)),
        relays,
        neighbours,
        initialTtl: announcement.initialTtl,
        heardAtMs: nowMs,
        capabilities: announcement.capabilities,
        about: announcement.about,
      },
      MAX_KNOWN_AGENTS,
    );
    if (forgotten !== undefined) this.#unreachableSinceMs.delete(forgotten);
    if (forgotten !== undefined || isNews) this.#changed();
    else this.#version++;
    return isNews;
  }

  /** Drops what an agent announced (it was revoked). */
  forget(id: string): void {
    this.#unreachableSinceMs.delete(id);
    if (this.#agents.delete(id)) this.#changed();
  }

  get(id: string, nowMs: number): KnownAgent | undefined {
    const agent = this.#agents.get(id);
    if (agent === undefined) return undefined;
    if (nowMs - agent.heardAtMs >= this.expiry.maxAgeMs) {
      this.forget(id);
      return undefined;
    }
    return agent;
  }

  /**
   * Whether some agent announced a group with this id (group ids are hashes: only their names tell).
   * Asked for every routed message, so it does not sweep for expired agents: other readers do that.
   */
  isGroup(id: string): boolean {
    this.#groupIds ??= new Set([...this.#agents.values()].flatMap((agent) => [...agent.groupIds]));
    return this.#groupIds.has(id);
  }

  /** Trees, routes and the group index are recomputed on their next use. */
  #changed(): void {
    this.#version++;
    this.#children.clear();
    this.#distances.clear();
    this.#groupIds = undefined;
    this.#routes = undefined;
    this.#avoidingRoutes.clear();
  }

  /**
   * The first hop of a shortest path from this agent to `destination` over announced links, through
   * relaying agents only; `avoid` lists first hops not to use (they lost messages). Undefined when the
   * announcements show no path. The route around `avoid` is kept for the next call with the same set
   * object, so a set passed here must not change afterwards.
   */
  routeTo(destination: string, nowMs: number, avoid?: ReadonlySet<string>): TopologyRoute | undefined {
    this.#sweep(nowMs); // a stale agent must not carry a route
    if (avoid === undefined || avoid.size === 0) {
      this.#routes ??= this.#computeRoutes(undefined);
      return this.#routes.get(destination);
    }
    const cached = this.#avoidingRoutes.get(destination);
    if (cached?.avoid === avoid) return cached.route;
    const route = this.#computeRoutes(avoid).get(destination);
    setBounded(this.#avoidingRoutes, destination, { avoid, route }, MAX_KNOWN_AGENTS);
    return route;
  }

  /** Every agent this agent has a route to, with the route. */
  routes(nowMs: number): ReadonlyMap<string, TopologyRoute> {
    this.#sweep(nowMs);
    this.#routes ??= this.#computeRoutes(undefined);
    return this.#routes;
  }

  /**
   * Hops from `from` to every agent a message it sends could reach, over links both ends announce, through
   * relaying agents: the same for `from` = any agent as seen by any agent holding the same announcements.
   */
  distancesFrom(from: string, nowMs: number): ReadonlyMap<string, number> {
    this.#sweep(nowMs);
    const cached = this.#distances.get(from);
    if (cached !== undefined) return cached;
    const distances = new Map([[from, 0]]);
    let level = [from];
    for (let hops = 1; level.length > 0; hops++) {
      const next: string[] = [];
      for (const node of level) {
        if (node !== from && !this.#relays(node)) continue;
        for (const neighbour of this.#neighboursOf(node)) {
          if (distances.has(neighbour) || !this.#isLinked(node, neighbour)) continue;
          distances.set(neighbour, hops);
          next.push(neighbour);
        }
      }
      level = next;
    }
    setBounded(this.#distances, from, distances, MAX_KNOWN_AGENTS);
    return distances;
  }

  /** Breadth first from this agent; ties go through the smallest parent id (as the broadcast trees). */
  #computeRoutes(avoid: ReadonlySet<string> | undefined): Map<string, TopologyRoute> {
    const routes = new Map<string, TopologyRoute>();
    // Own links are authenticated directly: they count without the neighbour's announcement.
    let level = [...this.#ownNeighbours].filter((id) => avoid?.has(id) !== true).sort();
    for (const neighbour of level) routes.set(neighbour, { nextHop: neighbour, hops: 1 });
    for (let hops = 2; level.length > 0; hops++) {
      const next: string[] = [];
      for (const node of level) {
        if (!this.#relays(node)) continue;
        const via = (routes.get(node) as TopologyRoute).nextHop;
        for (const neighbour of [...this.#neighboursOf(node)].sort()) {
          if (neighbour === this.selfId || routes.has(neighbour) || !this.#isLinked(node, neighbour))
            continue;
          routes.set(neighbour, { nextHop: via, hops });
          next.push(neighbour);
        }
      }
      level = next.sort();
    }
    return routes;
  }

  /**
   * Forgets the agents out of reach for UNREACHABLE_EXPIRY_MS (or announced too long ago), at most once a
   * second: routing asks on every message. An agent out of reach carries no route meanwhile (routes only
   * follow links both ends announce), so the sweep is about memory and the lists people see.
   */
  #sweep(nowMs: number): void {
    if (nowMs < this.#nextSweepMs && nowMs >= this.#nextSweepMs - SWEEP_INTERVAL_MS) return;
    this.#nextSweepMs = nowMs + SWEEP_INTERVAL_MS;
    for (const id of [...this.#agents.keys()]) this.get(id, nowMs);
    // Forgetting an agent out of reach changes no route: the map stays right through the loop.
    this.#routes ??= this.#computeRoutes(undefined);
    const routes = this.#routes;
    for (const id of [...this.#agents.keys()]) {
      if (id === this.selfId || routes.has(id)) {
        this.#unreachableSinceMs.delete(id);
        continue;
      }
      const sinceMs = this.#unreachableSinceMs.get(id);
      if (sinceMs === undefined) this.#unreachableSinceMs.set(id, nowMs);
      else if (nowMs - sinceMs >= this.expiry.unreachableMs) this.forget(id);
    }
  }

  agents(nowMs: number): KnownAgent[] {
    this.#sweep(nowMs);
    return [...this.#agents.keys()]
      .map((id) => this.get(id, nowMs))
      .filter((agent): agent is KnownAgent => agent !== undefined);
  }

  /**
   * The neighbours this agent passes a broadcast from `source` to: its children in the source's
   * shortest-path tree, plus any neighbour the announcements do not show linked to us (it may have no
   * other way to get it). Undefined when this agent is not in the tree as far as it knows: flood then.
   */
  childrenFor(source: string, nowMs: number): ReadonlySet<string> | undefined {
    this.#sweep(nowMs); // a stale agent must not shape the tree
    if (this.#children.has(source)) return this.#children.get(source);
    const children = this.#computeChildren(source);
    this.#children.set(source, children);
    return children;
  }

  #neighboursOf(id: string): ReadonlySet<string> {
    return id === this.selfId ? this.#ownNeighbours : (this.#agents.get(id)?.neighbours ?? new Set());
  }

  #relays(id: string): boolean {
    return id === this.selfId ? this.#ownRelays : (this.#agents.get(id)?.relays ?? false);
  }

  /** A link both ends announce (ours counts as announced). */
  #isLinked(a: string, b: string): boolean {
    return this.#neighboursOf(a).has(b) && this.#neighboursOf(b).has(a);
  }

  #computeChildren(source: string): ReadonlySet<string> | undefined {
    // Breadth first, level by level; a node's parent is the smallest relaying id one level up.
    const parent = new Map<string, string>();
    const reached = new Set<string>([source]);
    let level = [source];
    while (level.length > 0) {
      const next = new Set<string>();
      for (const node of [...level].sort()) {
        if (node !== source && !this.#relays(node)) continue;
        for (const neighbour of this.#neighboursOf(node)) {
          if (reached.has(neighbour) || !this.#isLinked(node, neighbour)) continue;
          if (!parent.has(neighbour)) parent.set(neighbour, node);
          next.add(neighbour);
        }
      }
      for (const node of next) reached.add(node);
      level = [...next];
    }
    if (!reached.has(this.selfId)) return undefined;
    const children = new Set<string>();
    for (const neighbour of this.#ownNeighbours) {
      if (parent.get(neighbour) === this.selfId || !this.#isLinked(this.selfId, neighbour))
        children.add(neighbour);
    }
    return children;
  }
}

function sameMembers(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((item) => b.has(item));
}
