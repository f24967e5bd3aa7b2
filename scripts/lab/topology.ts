// Topologies for the network-namespace lab, as plain data: node names and the undirected links between
// them. Pure functions, so tests and the CLI agree on what "a chain of 3" is without touching the kernel.
import { NearmeshError } from '../../agent/core/errors.js';

export interface Topology {
  readonly nodes: string[];
  readonly edges: [string, string][];
}

export const TOPOLOGY_KINDS = ['chain', 'ring', 'grid', 'geometric'] as const;
export type TopologyKind = (typeof TOPOLOGY_KINDS)[number];

/** Every node is a namespace and an agent process; a 2-core machine runs out long before this. */
export const MAX_NODES = 64;

/** Node names end up in namespace names and logs; short lowercase keeps both readable. */
const NODE_NAME = /^[a-z][a-z0-9]{0,7}$/;

/** A topology that cannot be built: a size out of range, an unknown node, a repeated link. */
export class TopologyError extends NearmeshError {
  constructor(message: string) {
    super('lab-topology', message);
  }
}

function checkCount(what: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new TopologyError(`${what} must be an integer from ${min} to ${max}, got ${value}`);
}

function checkedCount(what: string, value: number, min: number, max: number): number {
  checkCount(what, value, min, max);
  return value;
}

/** n1 - n2 - ... - nN. */
export function chain(n: number): Topology {
  checkCount('chain length', n, 2, MAX_NODES);
  const nodes = Array.from({ length: n }, (_, index) => `n${index + 1}`);
  const edges = nodes.slice(1).map((node, index): [string, string] => [nodes[index] as string, node]);
  return { nodes, edges };
}

/** A chain whose ends are linked too (3 nodes at least, or the closing link would repeat one). */
export function ring(n: number): Topology {
  checkCount('ring size', n, 3, MAX_NODES);
  const { nodes, edges } = chain(n);
  edges.push([nodes[n - 1] as string, nodes[0] as string]);
  return { nodes, edges };
}

/** rows × cols nodes named r<row>c<col>, each linked to its right and lower neighbour. */
export function grid(rows: number, cols: number): Topology {
  checkCount('grid rows', rows, 1, MAX_NODES);
  checkCount('grid columns', cols, 1, MAX_NODES);
  checkCount('grid size (rows × columns)', rows * cols, 2, MAX_NODES);
  const name = (row: number, col: number) => `r${row}c${col}`;
  const nodes: string[] = [];
  const edges: [string, string][] = [];
  for (let row = 1; row <= rows; row++) {
    for (let col = 1; col <= cols; col++) {
      nodes.push(name(row, col));
      if (col < cols) edges.push([name(row, col), name(row, col + 1)]);
      if (row < rows) edges.push([name(row, col), name(row + 1, col)]);
    }
  }
  return { nodes, edges };
}

/** xorshift32 from `seed`: the same sequence on every run and machine. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

/** Hops from `from` to every node it reaches over the topology's links (a breadth-first walk). */
export function hopsFrom(topology: Topology, from: string): Map<string, number> {
  const neighbours = new Map<string, string[]>(topology.nodes.map((node) => [node, []]));
  for (const [a, b] of topology.edges) {
    neighbours.get(a)?.push(b);
    neighbours.get(b)?.push(a);
  }
  const hops = new Map([[from, 0]]);
  for (const queue = [from]; queue.length > 0; ) {
    const at = queue.shift() as string;
    for (const next of neighbours.get(at) ?? [])
      if (!hops.has(next)) {
        hops.set(next, (hops.get(at) as number) + 1);
        queue.push(next);
      }
  }
  return hops;
}

/** Whether every node reaches every other over the edges. */
export function isConnected(topology: Topology): boolean {
  const first = topology.nodes[0];
  return first === undefined || hopsFrom(topology, first).size === topology.nodes.length;
}

/**
 * n1..nN dropped at random on a square and linked when within radio range (a random geometric graph, what
 * Wi-Fi and BLE give), the range chosen for about `meanDegree` links each; seeded, so the same `seed` gives
 * the same graph everywhere, and drawn again with the next seed until it is connected.
 */
export function geometric(n: number, meanDegree = 8, seed = 1): Topology {
  if (!Number.isInteger(n) || n < 2)
    throw new TopologyError(`geometric size must be an integer ≥ 2, got ${n}`);
  const radius = Math.sqrt(meanDegree / (Math.PI * n));
  const nodes = Array.from({ length: n }, (_, index) => `n${index + 1}`);
  for (let attempt = seed; ; attempt++) {
    const next = seededRandom(attempt * 2654435761);
    const points = nodes.map(() => [next(), next()] as const);
    const edges: [string, string][] = [];
    for (let i = 0; i < n; i++)
      for (let j = i + 1; j < n; j++) {
        const [a, b] = [points[i] as readonly [number, number], points[j] as readonly [number, number]];
        if (Math.hypot(a[0] - b[0], a[1] - b[1]) <= radius)
          edges.push([nodes[i] as string, nodes[j] as string]);
      }
    const topology = { nodes, edges };
    if (isConnected(topology)) return topology;
  }
}

/**
 * Builds a topology from the CLI's words: `chain 4`, `ring 5`, `grid 3` (3×3) or `grid 2x4`.
 * Throws TopologyError naming what is wrong.
 */
export function topologyFromSpec(kind: string, size: string): Topology {
  const count = (text: string): number => (/^\d+$/.test(text) ? Number(text) : Number.NaN);
  switch (kind) {
    case 'chain':
      return chain(count(size));
    case 'ring':
      return ring(count(size));
    case 'grid': {
      const match = /^(\d+)(?:x(\d+))?$/.exec(size);
      if (match === null)
        throw new TopologyError(`grid size must be N or RxC (like 3 or 2x4), got "${size}"`);
      const rows = Number(match[1]);
      return grid(rows, match[2] === undefined ? rows : Number(match[2]));
    }
    case 'geometric':
      return geometric(checkedCount('geometric size', count(size), 2, MAX_NODES));
    default:
      throw new TopologyError(`unknown topology "${kind}": expected one of ${TOPOLOGY_KINDS.join(', ')}`);
  }
}

/** Checks a hand-written topology: valid unique names, links between known nodes, no loops or repeats. */
export function validateTopology(topology: Topology): void {
  checkCount('node count', topology.nodes.length, 2, MAX_NODES);
  const known = new Set<string>();
  for (const node of topology.nodes) {
    if (!NODE_NAME.test(node))
      throw new TopologyError(
        `node name "${node}" must be a lowercase letter then up to 7 letters or digits`,
      );
    if (known.has(node)) throw new TopologyError(`node "${node}" appears twice`);
    known.add(node);
  }
  const links = new Set<string>();
  for (const [a, b] of topology.edges) {
    for (const end of [a, b])
      if (!known.has(end)) throw new TopologyError(`link ${a}-${b}: no node "${end}"`);
    if (a === b) throw new TopologyError(`link ${a}-${b} links a node to itself`);
    const key = [a, b].sort().join('-');
    if (links.has(key)) throw new TopologyError(`link ${a}-${b} appears twice`);
    links.add(key);
  }
}
