// Row 24: the mesh at 50, 100 and 200 agents, in memory (real Routers, real signatures; scripts/bench/mesh-sim.ts)
// on random geometric graphs (agents dropped at random on a square, linked when within radio range: what
// Wi-Fi and BLE give), seeded so every run builds the same graphs, with the hop budget at each graph's
// diameter so every agent reaches every other.
// 24a-c: link transmissions per broadcast vs naive flooding (20 sources per graph, averaged).
// 24d-f: control traffic of an idle mesh: frames each agent sends per minute over one simulated hour (a SYNC
//        per link every 30 s, each agent's hourly renewal flooded once), against renewing every announcement
//        every 30 s (what agents did before SYNC).
// 24g-i: convergence after the agent most routes go through dies: SYNC periods until every live agent's
//        next hops lead to every other live agent again.
// Row 28 (`scale` only) is the same at 500 agents: every frame's signature is checked for real, and one round
// of announcements by 500 agents takes minutes here (200: 14 s).
import { BROADCAST_ID } from '../../agent/mesh/address.js';
import { MAX_TTL_HOPS } from '../../agent/protocol/envelope.js';
import { geometric } from '../lab/topology.js';
import { type Graph, naiveFloodTransmissions } from './mesh-flood-bench.js';
import { buildSim, MeshSim } from './mesh-sim.js';
import { formatPercent, formatTimes, passMark, type ResultRow } from './table.js';

const SIZES = [50, 100, 200] as const;
export const LARGE_MESH = 500;
/** Radio range as a fraction of the square's side, so that each agent has about this many neighbours. */
const MEAN_DEGREE = 8;
const BROADCAST_SOURCES = 20;
const MAX_BROADCAST_RATIO = 0.4;
const MAX_CONVERGENCE_PERIODS = 2;
/** SYNC periods in the simulated idle hour (one every 30 s), and the renewals in it (one per agent). */
const SYNC_PERIODS_PER_HOUR = 120;
/** Periods simulated before giving up on convergence (then reported as more than this). */
const MAX_PERIODS_TRIED = 4;
const PAYLOAD = new TextEncoder().encode('{"t":21.5}');

/** A connected random geometric graph of `n` agents (scripts/lab/topology.ts), named by MeshSim ids. */
export function geometricGraph(n: number): Graph {
  const ids = Array.from({ length: n }, (_, index) => MeshSim.idOf(index));
  const idOf = (node: string): string => ids[Number(node.slice(1)) - 1] as string;
  const topology = geometric(n, MEAN_DEGREE);
  return { ids, links: topology.edges.map(([a, b]) => [idOf(a), idOf(b)]) };
}

/** Each agent's longest shortest path (Infinity where the graph is not connected). */
function eccentricities(graph: Graph): number[] {
  const neighbours = new Map<string, string[]>(graph.ids.map((id) => [id, []]));
  for (const [a, b] of graph.links) {
    neighbours.get(a)?.push(b);
    neighbours.get(b)?.push(a);
  }
  return graph.ids.map((source) => {
    const distance = new Map([[source, 0]]);
    const queue = [source];
    for (let node = queue.shift(); node !== undefined; node = queue.shift())
      for (const next of neighbours.get(node) ?? [])
        if (!distance.has(next)) {
          distance.set(next, (distance.get(node) ?? 0) + 1);
          queue.push(next);
        }
    return distance.size === graph.ids.length ? Math.max(...distance.values()) : Number.POSITIVE_INFINITY;
  });
}

interface SizeResult {
  n: number;
  ttl: number;
  meanDegree: number;
  meshPerBroadcast: number;
  naivePerBroadcast: number;
  /** Frames sent per agent per minute over an idle hour: SYNCs and the hourly renewals. */
  idleFramesPerMinute: number;
  /** The same, were every agent to renew its announcement every 30 s instead (no SYNC). */
  renewingFramesPerMinute: number;
  /** The largest route table an agent holds. */
  maxRoutes: number;
  /** SYNC periods until routes avoid a dead agent. */
  convergencePeriods: number;
}

function measure(n: number): SizeResult {
  const graph = geometricGraph(n);
  const ttl = Math.min(MAX_TTL_HOPS, Math.max(4, ...eccentricities(graph)));
  const sim = buildSim({ ids: [...graph.ids], links: graph.links.map(([a, b]) => [a, b]) }, { ttl });
  sim.announceAll(2);
  // One more round, counted: what a round of renewals costs the mesh.
  let before = sim.frames;
  sim.announceAll(1);
  const renewalFramesPerAgent = (sim.frames - before) / n;
  // An idle hour: a SYNC on every link every 30 s, every agent renewing once.
  before = sim.frames;
  for (let period = 0; period < SYNC_PERIODS_PER_HOUR; period++) sim.syncAll();
  sim.announceAll(1);
  const idleFramesPerMinute = (sim.frames - before) / n / 60;
  let meshTotal = 0;
  let naiveTotal = 0;
  const step = Math.max(1, Math.floor(n / BROADCAST_SOURCES));
  for (let index = 0; index < n; index += step) {
    const source = graph.ids[index] as string;
    const router = sim.node(source).router;
    router.sendData(BROADCAST_ID, PAYLOAD, { id: router.nextId(), ackRequested: false });
    meshTotal += sim.run();
    naiveTotal += naiveFloodTransmissions(graph, source, ttl).transmissions;
  }
  const sources = Math.ceil(n / step);
  const maxRoutes = Math.max(...[...sim.nodes.values()].map((node) => node.router.routes().length));
  return {
    n,
    ttl,
    meanDegree: (2 * graph.links.length) / n,
    meshPerBroadcast: meshTotal / sources,
    naivePerBroadcast: naiveTotal / sources,
    idleFramesPerMinute,
    renewingFramesPerMinute: 2 * renewalFramesPerAgent,
    maxRoutes,
    convergencePeriods: convergencePeriods(sim, graph, ttl),
  };
}

/** SYNC periods after an agent dies (its neighbours notice and announce) until routes avoid it. */
function convergencePeriods(sim: MeshSim, graph: Graph, ttl: number): number {
  // The agent most routes go through: the worst one to lose.
  const through = new Map<string, number>();
  for (const node of sim.nodes.values())
    for (const route of node.router.routes())
      through.set(route.nextHop, (through.get(route.nextHop) ?? 0) + 1);
  const dead = [...through].sort((a, b) => b[1] - a[1])[0]?.[0] as string;
  for (const [a, b] of graph.links) if (a === dead || b === dead) sim.cut(a, b);
  const alive = graph.ids.filter((id) => id !== dead);
  // Converged: from every agent, following next hops reaches every other live agent it has a route to, never
  // through the dead one (and never round in a loop).
  const linked = new Set(
    graph.links.filter(([a, b]) => a !== dead && b !== dead).flatMap(([a, b]) => [`${a} ${b}`, `${b} ${a}`]),
  );
  // Pairs the dead agent's loss cut apart (it may have been a bridge), or put beyond the hop budget, are
  // not the routing's to mend: only pairs still within `ttl` of each other count.
  const reachable = new Map(alive.map((from) => [from, withinHops(from, alive, linked, ttl)]));
  const broken = (): number => {
    const nextHops = new Map(
      alive.map((id) => [
        id,
        new Map(
          sim
            .node(id)
            .router.routes()
            .map((r) => [r.destination, r.nextHop]),
        ),
      ]),
    );
    let count = 0;
    for (const from of alive)
      for (const to of alive) {
        if (from === to || !(reachable.get(from)?.has(to) ?? false)) continue;
        let at = from;
        // A neighbour is reached over its link; anyone else through the route's next hop.
        for (let hop = 0; hop <= ttl && at !== to; hop++)
          at = linked.has(`${at} ${to}`) ? to : (nextHops.get(at)?.get(to) ?? dead);
        if (at !== to) count++;
      }
    return count;
  };
  let periods = 0;
  while (broken() > 0 && periods < MAX_PERIODS_TRIED) {
    sim.syncAll();
    periods++;
  }
  return broken() > 0 ? Number.POSITIVE_INFINITY : periods;
}

/** The agents within `ttl` hops of `from` over the links in `linked` ("a b" both ways). */
function withinHops(
  from: string,
  ids: readonly string[],
  linked: ReadonlySet<string>,
  ttl: number,
): Set<string> {
  const seen = new Set([from]);
  let frontier = [from];
  for (let hop = 0; hop < ttl && frontier.length > 0; hop++) {
    const next: string[] = [];
    for (const at of frontier)
      for (const id of ids)
        if (!seen.has(id) && linked.has(`${at} ${id}`)) {
          seen.add(id);
          next.push(id);
        }
    frontier = next;
  }
  return seen;
}

/** Row 24: 50, 100 and 200 agents. */
export function meshScaleRows(): Promise<ResultRow[]> {
  return sizeRows(24, SIZES);
}

/** Row 28 (`scale` only): 500 agents, minutes of real signature checks; its figures are info. */
export function largeMeshRows(): Promise<ResultRow[]> {
  return sizeRows(28, [LARGE_MESH]);
}

async function sizeRows(row: number, sizes: readonly number[]): Promise<ResultRow[]> {
  const results = sizes.map(measure);
  // Each kind of row gets the next letters: a-c, d-f, g-i for three sizes; a, b, c for one.
  const label = (kind: number, index: number): string =>
    `${row}${String.fromCharCode(97 + kind * sizes.length + index)}`;
  const rows: ResultRow[] = results.map((result, index) => {
    const ratio = result.meshPerBroadcast / result.naivePerBroadcast;
    const judged = result.n === 200;
    return {
      benchmark: `${label(0, index)} tx per broadcast, ${result.n} agents (degree ${result.meanDegree.toFixed(1)}, ttl ${result.ttl}) vs naive`,
      nearmesh: `${result.meshPerBroadcast.toFixed(0)} tx`,
      baseline: `${result.naivePerBroadcast.toFixed(0)} tx`,
      ratio: formatPercent(ratio),
      goal: judged ? `≤ ${formatPercent(MAX_BROADCAST_RATIO)}` : '— (info)',
      pass: judged ? passMark(ratio <= MAX_BROADCAST_RATIO) : '—',
    };
  });
  const smallest = results[0] as SizeResult;
  results.forEach((result, index) => {
    // Flat in mesh size: frames per agent per minute no more than 1.5 × those of the smallest mesh.
    const growth = result.idleFramesPerMinute / smallest.idleFramesPerMinute;
    const judged = index > 0;
    const against = `the ${smallest.n}-agent figure`;
    rows.push({
      benchmark: `${label(1, index)} control frames per agent per minute, idle, ${result.n} agents (degree ${result.meanDegree.toFixed(1)}, ${result.maxRoutes} routes at most)`,
      nearmesh: `${result.idleFramesPerMinute.toFixed(1)} frames${judged ? ` (${formatTimes(growth)} ${against})` : ''}`,
      baseline: `renewing every 30 s: ${result.renewingFramesPerMinute.toFixed(0)} frames`,
      ratio: formatTimes(result.idleFramesPerMinute / result.renewingFramesPerMinute),
      goal: judged ? `≤ 1.5× ${against}` : '— (info)',
      pass: judged ? passMark(growth <= 1.5) : '—',
    });
  });
  results.forEach((result, index) => {
    const judged = result.n === 200;
    const periods = result.convergencePeriods;
    rows.push({
      benchmark: `${label(2, index)} SYNC periods until routes avoid a dead agent, ${result.n} agents`,
      nearmesh: Number.isFinite(periods) ? `${periods} periods` : `> ${MAX_PERIODS_TRIED} periods`,
      baseline: '—',
      ratio: '—',
      goal: judged ? `≤ ${MAX_CONVERGENCE_PERIODS} periods (abs)` : '— (info)',
      pass: judged ? passMark(periods <= MAX_CONVERGENCE_PERIODS) : '—',
    });
  });
  return rows;
}
