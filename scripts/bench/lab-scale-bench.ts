// Row 27: thirty real agents in network namespaces dropped at random (scripts/lab/topology.ts `geometric`: each
// linked to the agents in radio range, about five links each), every one dialling only its lab neighbours, the
// hop budget at the graph's diameter. Measured: how soon after all links are up every agent has a route to every
// agent beyond its links; a reliable send from every agent to the one farthest from it; the control frames
// (routed ones and SYNCs) an agent sends per minute once idle; memory per agent.
// Root and namespaces only: skipped with a reason elsewhere. Runs with `scale` (or 27) only: minutes.

import type { RouteInfo } from '../../agent/api.js';
import { geometric, hopsFrom, type Topology } from '../lab/topology.js';
import { type PairAgent, Scope, skippedRows, startLab, whyNetnsUnavailable } from './agent-pair.js';
import { clientOf, connectControl, idOf, type Polling, sendMs, waitForLinks } from './bench-agents.js';
import { vmRssBytes } from './rss-bench.js';
import { median } from './stats.js';
import { formatMegabytes, formatMilliseconds, formatTimes, passMark, type ResultRow } from './table.js';
import { sleep } from './timing.js';

export const LAB_AGENTS = 30;
/** Links per agent on average: sparse enough that most pairs are several hops apart. */
export const LAB_MEAN_DEGREE = 5;
/** The window over which idle control traffic is counted. */
export const IDLE_WINDOW_MS = 60_000;
const MAX_CONVERGENCE_MS = 60_000;
const READY: Polling = { timeoutMs: 60_000, pollMs: 250 };
const LINKED: Polling = { timeoutMs: 90_000, pollMs: 500 };
const SEND_TIMEOUT_MS = 15_000;
const POLL_MS = 500;

const NAMES = [
  `27a every route in place, ${LAB_AGENTS} agents (lab)`,
  '27b reliable send to the farthest agent, every agent',
  '27c control frames per agent per minute, idle',
  '27d RSS per agent, idle',
];

function diameter(topology: Topology): number {
  return Math.max(...topology.nodes.map((node) => Math.max(...hopsFrom(topology, node).values())));
}

type Routes = Map<string, RouteInfo>;

async function routesOf(agent: PairAgent): Promise<Routes> {
  const routes = (await clientOf(agent).request({ cmd: 'routes' })) as RouteInfo[];
  return new Map(routes.map((route) => [route.destination, route]));
}

/**
 * Pairs (from→to@where the walk stopped) of `agents` within `ttl` hops of each other whose next hops do not lead from `from` to
 * `to` (a neighbour is reached over its link; anyone else through the route's next hop).
 */
function brokenPairs(
  topology: Topology,
  agents: readonly string[],
  routes: ReadonlyMap<string, Routes>,
  idOfNode: (node: string) => string,
  nodeOfId: ReadonlyMap<string, string>,
  ttl: number,
): string[] {
  const broken: string[] = [];
  for (const from of agents) {
    const reach = hopsFrom(topology, from);
    for (const to of agents) {
      const distance = reach.get(to);
      if (from === to || distance === undefined || distance > ttl) continue;
      let at = from;
      for (let hop = 0; hop <= ttl && at !== to; hop++) {
        const linked = topology.edges.some(([a, b]) => (a === at && b === to) || (b === at && a === to));
        const nextId = linked ? idOfNode(to) : routes.get(at)?.get(idOfNode(to))?.next_hop;
        const next = nextId === undefined ? undefined : nodeOfId.get(nextId);
        if (next === undefined) break;
        at = next;
      }
      if (at !== to) broken.push(`${from}→${to}@${at}`);
    }
  }
  return broken;
}

export async function labScaleRows(): Promise<ResultRow[]> {
  const reason = whyNetnsUnavailable();
  if (reason !== undefined) return skippedRows(NAMES, reason);
  const scope = new Scope();
  try {
    const topology = geometric(LAB_AGENTS, LAB_MEAN_DEGREE);
    const ttl = diameter(topology);
    const { lab, agents: started } = startLab(scope, topology, 'ls', { tables: ['[mesh]', `ttl = ${ttl}`] });
    const agents = new Map(topology.nodes.map((node, index) => [node, started[index] as PairAgent]));
    const agent = (node: string): PairAgent => agents.get(node) as PairAgent;
    await Promise.all([...agents.values()].map((each) => connectControl(each, READY)));
    for (const node of topology.nodes)
      await waitForLinks(
        agent(node),
        lab.neighbours(node).map((neighbour) => neighbour.node),
        LINKED,
      );
    const linkedAt = performance.now();
    const idOfNode = (node: string) => idOf(agent(node));
    const nodeOfId = new Map(topology.nodes.map((node) => [idOfNode(node), node]));
    const allRoutes = async (nodes: readonly string[]) =>
      new Map(await Promise.all(nodes.map(async (node) => [node, await routesOf(agent(node))] as const)));

    // 27a: every agent's route table holds every agent beyond its links.
    let converged = false;
    const progress: string[] = [];
    while (!converged && performance.now() - linkedAt < MAX_CONVERGENCE_MS) {
      const routes = await allRoutes(topology.nodes);
      const broken = brokenPairs(topology, topology.nodes, routes, idOfNode, nodeOfId, ttl);
      progress.push(`${((performance.now() - linkedAt) / 1000).toFixed(1)}s:${broken.length}`);
      if (progress.length === 10)
        process.stderr.write(`[unrouted at 5 s: ${broken.slice(0, 12).join(' ')}] `);
      converged = broken.length === 0;
      if (!converged) await sleep(POLL_MS);
    }
    const convergedMs = performance.now() - linkedAt;
    process.stderr.write(`[pairs not yet routed, by time after all linked: ${progress.join(' ')}] `);

    // 27b: from each agent to the one farthest from it, all at once.
    const farthest = topology.nodes.map((node) => {
      const [target] = [...hopsFrom(topology, node)].sort((a, b) => b[1] - a[1])[0] as [string, number];
      return { node, target };
    });
    const sends = await Promise.allSettled(
      farthest.map(({ node, target }) => sendMs(clientOf(agent(node)), idOfNode(target), SEND_TIMEOUT_MS)),
    );
    const sendMsList = sends.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));

    // 27c, 27d: idle, what agents send by themselves, and their memory.
    const transmissions = async () =>
      Promise.all(
        topology.nodes.map(async (node) => {
          const status = (await clientOf(agent(node)).request({ cmd: 'status' })) as {
            counters: Record<string, number>;
          };
          // Routed frames, SYNCs, and the announcements handed over in answer to a SYNC.
          const { counters } = status;
          return (
            (counters['mesh.transmissions'] ?? 0) +
            (counters['mesh.syncs_sent'] ?? 0) +
            (counters['mesh.announcements_synced'] ?? 0)
          );
        }),
      );
    const before = await transmissions();
    await sleep(IDLE_WINDOW_MS);
    const after = await transmissions();
    const framesPerAgentPerMinute =
      (after.reduce((sum, value, index) => sum + value - (before[index] ?? 0), 0) / LAB_AGENTS) *
      (60_000 / IDLE_WINDOW_MS);
    const rss = topology.nodes.map((node) => vmRssBytes(agent(node)));

    process.stderr.write(
      `[lab: ${LAB_AGENTS} agents, ${topology.edges.length} links, diameter ${ttl}; sends ${sendMsList.length}/${LAB_AGENTS}] `,
    );

    const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    return [
      {
        benchmark: NAMES[0] as string,
        nearmesh: converged ? seconds(convergedMs) : `> ${seconds(MAX_CONVERGENCE_MS)}`,
        baseline: `${topology.edges.length} links, diameter ${ttl}`,
        ratio: '—',
        goal: 'every pair routed',
        pass: passMark(converged),
      },
      {
        benchmark: NAMES[1] as string,
        nearmesh: `${sendMsList.length}/${LAB_AGENTS} acked`,
        baseline:
          sendMsList.length > 0
            ? `median ${formatMilliseconds(median(sendMsList))}, max ${formatMilliseconds(Math.max(...sendMsList))}`
            : '—',
        ratio: '—',
        goal: 'all acknowledged',
        pass: passMark(sendMsList.length === LAB_AGENTS),
      },
      {
        benchmark: NAMES[2] as string,
        nearmesh: `${framesPerAgentPerMinute.toFixed(0)} frames`,
        baseline: `renewing every 30 s: ≈ ${2 * LAB_AGENTS} (one frame per agent per renewal, estimated)`,
        ratio: formatTimes(framesPerAgentPerMinute / (2 * LAB_AGENTS)),
        goal: '— (info)',
        pass: '—',
      },
      {
        benchmark: NAMES[3] as string,
        nearmesh: formatMegabytes(median(rss)),
        baseline: `max ${formatMegabytes(Math.max(...rss))}`,
        ratio: '—',
        goal: '— (info)',
        pass: '—',
      },
    ];
  } finally {
    await scope.close();
  }
}
