// An in-memory mesh of real Routers for the router tests and the mesh benchmarks: links that carry real
// encoded frames through a FIFO queue (no sockets, no timers), and counters per node. Lives under
// scripts/bench because bench code must not import from test/; test/support/mesh-sim.ts re-exports it.
import { type MeshDelivery, Router, type RouterOptions } from '../../agent/mesh/router.js';
import { Counters } from '../../agent/ops/counters.js';
import { decodeMessage, encodeMessage } from '../../agent/protocol/index.js';

export interface SimNode {
  id: string;
  router: Router;
  counters: Counters;
  delivered: MeshDelivery[];
  acks: { source: string; id: number }[];
}

export class MeshSim {
  readonly nodes = new Map<string, SimNode>();
  readonly #queue: { from: string; to: string; frame: Uint8Array }[] = [];
  readonly #links = new Set<string>();
  nowMs = 0;
  frames = 0;

  constructor(readonly defaults: Partial<RouterOptions> = {}) {}

  /** Node ids are peer ids: 16 hex characters (index-based, so runs are repeatable). */
  static idOf(index: number): string {
    return (0x1000 + index).toString(16).padStart(16, '0');
  }

  add(id: string, options: Partial<RouterOptions> = {}): SimNode {
    const counters = new Counters();
    const router = new Router({
      selfId: id,
      name: `n-${id.slice(-4)}`,
      groups: [],
      ttl: 4,
      relay: true,
      counters,
      announceOnChange: false,
      now: () => this.nowMs,
      ...this.defaults,
      ...options,
    });
    const node: SimNode = { id, router, counters, delivered: [], acks: [] };
    router.on('deliver', (delivery) => node.delivered.push(delivery));
    router.on('ack', (source, ackId) => node.acks.push({ source, id: ackId }));
    this.nodes.set(id, node);
    return node;
  }

  link(a: string, b: string): void {
    this.#links.add(linkKey(a, b));
    for (const [self, other] of [
      [a, b],
      [b, a],
    ] as const) {
      this.node(self).router.addNeighbour({
        peerId: other,
        send: (message) => {
          if (!this.#links.has(linkKey(self, other))) return false;
          this.#queue.push({ from: self, to: other, frame: encodeMessage(message) });
          return true;
        },
      });
    }
  }

  cut(a: string, b: string): void {
    this.#links.delete(linkKey(a, b));
    this.node(a).router.removeNeighbour(b);
    this.node(b).router.removeNeighbour(a);
  }

  node(id: string): SimNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /** Delivers queued frames until none are left; returns how many were carried. */
  run(): number {
    let carried = 0;
    for (let next = this.#queue.shift(); next !== undefined; next = this.#queue.shift()) {
      carried++;
      const result = decodeMessage(next.frame);
      if (result.kind !== 'message') throw new Error(`undecodable frame from ${next.from}`);
      const message = result.message;
      if (message.type === 'data' || message.type === 'ack' || message.type === 'announce') {
        this.node(next.to).router.receive(next.from, message);
      }
    }
    this.frames += carried;
    return carried;
  }

  /** Every node announces (as its periodic timer would) and the announcements settle. */
  announceAll(rounds = 2): void {
    for (let round = 0; round < rounds; round++) {
      for (const node of this.nodes.values()) node.router.announceNow();
      this.run();
    }
  }
}

function linkKey(a: string, b: string): string {
  return a < b ? `${a}-${b}` : `${b}-${a}`;
}

/** Node ids of a rows × cols grid, row by row, and its links. */
export function gridTopology(rows: number, cols: number): { ids: string[]; links: [string, string][] } {
  const ids = Array.from({ length: rows * cols }, (_, index) => MeshSim.idOf(index));
  const links: [string, string][] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const here = ids[r * cols + c] as string;
      if (c + 1 < cols) links.push([here, ids[r * cols + c + 1] as string]);
      if (r + 1 < rows) links.push([here, ids[(r + 1) * cols + c] as string]);
    }
  }
  return { ids, links };
}

export function chainTopology(length: number): { ids: string[]; links: [string, string][] } {
  const ids = Array.from({ length }, (_, index) => MeshSim.idOf(index));
  return { ids, links: ids.slice(1).map((id, index) => [ids[index] as string, id]) };
}

export function buildSim(
  topology: { ids: string[]; links: [string, string][] },
  defaults: Partial<RouterOptions> = {},
): MeshSim {
  const sim = new MeshSim(defaults);
  for (const id of topology.ids) sim.add(id);
  for (const [a, b] of topology.links) sim.link(a, b);
  return sim;
}
