// An in-memory mesh of real Routers for the router tests and the mesh benchmarks: links that carry real
// encoded frames through a FIFO queue (no sockets, no timers), and counters per node. Every node has a real
// identity (made from its index, so ids repeat across runs) and seals and checks routed messages as an agent
// does; only the trust store is left out (replay marks and sequence reservations stay in memory). Lives
// under scripts/bench because bench code must not import from test/; test/support/mesh-sim.ts re-exports it.
import { createPrivateKey } from 'node:crypto';
import { Counters } from '../../agent/core/counters.js';
import { type Identity, identityFromPrivateKey } from '../../agent/identity/identity.js';
import { KeyDirectory } from '../../agent/identity/key-directory.js';
import { ReplayGuard } from '../../agent/mesh/replay-guard.js';
import { type MeshDelivery, Router, type RouterOptions } from '../../agent/mesh/router.js';
import { SequenceCounter } from '../../agent/mesh/sequence.js';
import {
  decodeMessage,
  encodeMessage,
  type Message,
  type RoutedMessage,
} from '../../agent/protocol/index.js';
import { OriginAuth } from '../../agent/security/origin-auth.js';

export interface SimNode {
  id: string;
  identity: Identity;
  router: Router;
  counters: Counters;
  keys: KeyDirectory;
  /** What seals and checks its routed messages. */
  origin: OriginAuth;
  /** Its replay windows: what trust.sqlite keeps across a restart. */
  replay: ReplayGuard;
  /** Identities this node refuses (as if revoked). */
  revoked: Set<string>;
  delivered: MeshDelivery[];
  acks: { source: string; id: number }[];
}

/** PKCS#8 for an Ed25519 private key is a fixed prefix and the 32-byte seed (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const identities = new Map<string, Identity>();

/** The identity whose Ed25519 private key is this 32-byte seed (the form test vectors give keys in). */
export function identityFromSeed(seed: Uint8Array): Identity {
  if (seed.length !== 32) throw new RangeError(`an Ed25519 seed is 32 bytes, got ${seed.length}`);
  return identityFromPrivateKey(
    createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' }),
  );
}

/** The identity of node `index`: its seed is the index, big-endian, in 32 bytes. */
function simIdentity(index: number): Identity {
  const seed = Buffer.alloc(32);
  seed.writeUInt32BE(index, 28);
  const identity = identityFromSeed(seed);
  identities.set(identity.peerId, identity);
  return identity;
}

export class MeshSim {
  readonly nodes = new Map<string, SimNode>();
  readonly #queue: { from: string; to: string; frame: Uint8Array }[] = [];
  /** Every frame put on a link, while a capture is running (what a relay could record). */
  #log: { from: string; frame: Uint8Array }[] | undefined;
  readonly #links = new Set<string>();
  /** While set, the frames it returns true for are lost on their link (counted in `lost`). */
  losing: ((from: string, to: string, message: Message) => boolean) | undefined;
  lost = 0;
  nowMs = 0;
  frames = 0;

  constructor(readonly defaults: Partial<RouterOptions> = {}) {}

  /** Node ids are the peer ids of the identities seeded with the index: the same on every run. */
  static idOf(index: number): string {
    return simIdentity(index).peerId;
  }

  /** Adds the node whose id MeshSim.idOf gave; `replay`: windows kept from before a restart. */
  add(id: string, options: Partial<RouterOptions> = {}, replay = new ReplayGuard(undefined)): SimNode {
    const identity = identities.get(id);
    if (identity === undefined) throw new Error(`${id} is not a MeshSim.idOf id`);
    const counters = new Counters();
    const keys = new KeyDirectory();
    const revoked = new Set<string>();
    let reserved = 0;
    const origin = new OriginAuth(identity, keys);
    const router = new Router({
      name: `n-${id.slice(-4)}`,
      groups: [],
      ttl: 4,
      relay: true,
      counters,
      announceOnChange: false,
      now: () => this.nowMs,
      trust: {
        origin,
        replay,
        sequence: new SequenceCounter({
          get reservedSequence() {
            return reserved;
          },
          reserveSequence: (limit) => {
            reserved = limit;
          },
        }),
        isRevoked: (peerId) => revoked.has(peerId),
        keyEpoch: () => 0,
        revocationDigest: () => new Uint8Array(8),
      },
      ...this.defaults,
      ...options,
    });
    const node: SimNode = {
      id,
      identity,
      router,
      counters,
      keys,
      origin,
      replay,
      revoked,
      delivered: [],
      acks: [],
    };
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
      // What the handshake would teach: the neighbour's key.
      this.node(self).keys.learn(this.node(other).identity.publicKey);
      this.node(self).router.addNeighbour({
        peerId: other,
        send: (message) => this.#carry(self, other, message),
        sendSync: (message) => this.#carry(self, other, message),
      });
    }
  }

  #carry(from: string, to: string, message: Message): boolean {
    if (!this.#links.has(linkKey(from, to))) return false;
    if (this.losing?.(from, to, message) === true) {
      this.lost++;
      return true;
    }
    this.#put(from, to, encodeMessage(message));
    return true;
  }

  /**
   * Restarts a node: its links go, its router starts empty but for the replay windows (kept on disk by an
   * agent); link it again to bring it back.
   */
  restart(id: string): SimNode {
    const old = this.node(id);
    for (const other of this.nodes.keys()) {
      if (!this.#links.delete(linkKey(id, other))) continue;
      this.node(other).router.removeNeighbour(id);
    }
    return this.add(id, {}, old.replay);
  }

  /** Cuts a link; both ends announce the change, as agents do, and the announcements settle. */
  cut(a: string, b: string): void {
    this.#links.delete(linkKey(a, b));
    this.node(a).router.removeNeighbour(b);
    this.node(b).router.removeNeighbour(a);
    this.node(a).router.announceNow();
    this.node(b).router.announceNow();
    this.run();
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
      } else if (message.type === 'sync') {
        this.node(next.to).router.receiveSync(next.from, message);
      }
    }
    this.frames += carried;
    return carried;
  }

  /** Hands `message` to `to` as if `from` (a neighbour, or a hostile member linked to it) had sent it. */
  inject(from: string, to: string, message: RoutedMessage): void {
    this.#put(from, to, encodeMessage(message));
  }

  /** Starts recording the frames `from` puts on its links; the function returns those recorded so far. */
  capture(from: string): () => Uint8Array[] {
    this.#log ??= [];
    const log = this.#log;
    const start = log.length;
    return () => log.slice(start).flatMap((entry) => (entry.from === from ? [entry.frame] : []));
  }

  #put(from: string, to: string, frame: Uint8Array): void {
    this.#queue.push({ from, to, frame });
    this.#log?.push({ from, frame });
  }

  /** Every node sends its SYNCs (as its periodic timer would) and what they set off settles. */
  syncAll(): void {
    for (const node of this.nodes.values()) node.router.syncNow();
    this.run();
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
