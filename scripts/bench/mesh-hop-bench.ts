// Row 8: what a relaying agent adds to a message's latency. Five real agents in a network-namespace chain
// (scripts/lab: n1 - n2 - n3 - n4 - n5, each linked to its neighbours only), and the round trip of a
// reliable unicast from n1 (control-socket `send`, which resolves on the end-to-end ACK) to n2 (1 hop,
// the direct link), n3 (2 hops) and n5 (4 hops, through three relays). Three more relays each way are
// the whole difference between the 4-hop and the 1-hop round trip: (rtt4 − rtt1) / (2·3) per hop.
// Root and namespaces only: skipped with a reason elsewhere.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import { Lab } from '../lab/lab.js';
import { chain } from '../lab/topology.js';
import {
  type BenchAgent,
  clientOf,
  connectControl,
  idOf,
  interleaved,
  type Polling,
  sendMs,
  waitForLinks,
  waitForRoutes,
  writeAgentConfig,
} from './bench-agents.js';
import { STOP_GRACE_MS, startChild, stopChild } from './bench-child.js';
import { median, quantile } from './stats.js';
import { formatMilliseconds, formatTimes, passMark, type ResultRow } from './table.js';
import { withTimeout } from './timing.js';

export const HOP_CHAIN_LENGTH = 5;
export const HOP_SAMPLES = 200;
export const HOP_WARMUPS = 20;
const MAX_ADDED_MS_PER_HOP = 2;
/** Inside its own namespace every agent has the port to itself. */
const AGENT_PORT = 7480;
const READY_TIMEOUT_MS = 20_000;
/** Links come up after a dial (redial backoff starts at 1 s) and announcements follow 300 ms later. */
const MESH_TIMEOUT_MS = 30_000;
const POLL_MS = 200;
const SEND_TIMEOUT_MS = 5_000;
const READY: Polling = { timeoutMs: READY_TIMEOUT_MS, pollMs: POLL_MS };
const MESH: Polling = { timeoutMs: MESH_TIMEOUT_MS, pollMs: POLL_MS };

const CLI_PATH = fileURLToPath(new URL('../../agent/cli/main.js', import.meta.url));
const NAME = '8  added ms per relay hop (lab chain of 5)';
const ROUTED_NAME = '8b added ms per relay hop, routed 2→4 hops';

/** Why namespaces cannot be made here, or undefined when they can (a probe namespace, removed at once). */
function whyNetnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces';
  for (const tool of ['tc', 'nft']) {
    const probe = spawnSync(tool, ['-V'], { encoding: 'utf8' });
    if (probe.error !== undefined) return `the lab needs ${tool} (${probe.error.message})`;
  }
  const probe = `nmbench-${process.pid}`;
  const added = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (added.status !== 0)
    return `cannot create a network namespace: ${added.error?.message ?? added.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return undefined;
}

/** The agent of `node`, in its namespace (named as the node). */
function startAgent(lab: Lab, node: string, meshKey: string): BenchAgent {
  const dir = mkdtempSync(join(tmpdir(), `nearmesh-bench-${node}-`));
  const config = writeAgentConfig({
    name: node,
    dir,
    meshKey,
    listen: `0.0.0.0:${AGENT_PORT}`,
    peers: lab.peerAddresses(node, AGENT_PORT),
  });
  // `ip netns exec` execs node in place: the pid we hold is the agent's own.
  const started = startChild('ip', [
    'netns',
    'exec',
    lab.namespaceOf(node),
    process.execPath,
    CLI_PATH,
    'agent',
    '--config',
    config,
  ]);
  return Object.assign(started, { name: node, dir });
}

async function stopAgent(agent: BenchAgent): Promise<void> {
  agent.client?.close();
  await stopChild(agent);
  rmSync(agent.dir, { recursive: true, force: true });
}

/** Every agent linked to exactly its chain neighbours, and n1 and the far end holding routes both ways. */
async function waitForMesh(lab: Lab, agents: readonly BenchAgent[]): Promise<void> {
  for (const agent of agents) {
    const neighbours = lab.neighbours(agent.name).map((neighbour) => neighbour.node);
    await waitForLinks(agent, neighbours, MESH);
  }
  const first = agents[0];
  const last = agents.at(-1);
  if (first === undefined || last === undefined) throw new Error('an empty chain');
  const beyond = agents.slice(2);
  await waitForRoutes(`routes from ${first.name}`, first, beyond, MESH);
  for (const target of beyond) {
    await waitForRoutes(`route from ${target.name} back`, target, [first], MESH);
  }
}

function skippedRows(reason: string): ResultRow[] {
  return [NAME, ROUTED_NAME].map((benchmark) => ({
    benchmark,
    nearmesh: '—',
    baseline: '—',
    ratio: '—',
    goal: `skipped: ${reason}`.slice(0, 80),
    pass: '—' as const,
  }));
}

/** Round trips from the chain's first agent to each target, interleaved so drift hits all alike. */
async function measure(agents: readonly BenchAgent[], targets: readonly BenchAgent[]): Promise<number[][]> {
  const first = agents[0];
  if (first === undefined) throw new Error('an empty chain');
  const client = clientOf(first);
  return interleaved(
    HOP_SAMPLES,
    HOP_WARMUPS,
    targets.map((target) => () => sendMs(client, idOf(target), SEND_TIMEOUT_MS)),
  );
}

export async function meshHopRows(): Promise<ResultRow[]> {
  const reason = whyNetnsUnavailable();
  if (reason !== undefined) return skippedRows(reason);
  const lab = new Lab(chain(HOP_CHAIN_LENGTH), `b${process.pid}`);
  const agents: BenchAgent[] = [];
  lab.create();
  try {
    const meshKey = generateMeshKey();
    for (const node of lab.topology.nodes) agents.push(startAgent(lab, node, meshKey));
    await Promise.all(agents.map((agent) => connectControl(agent, READY)));
    await waitForMesh(lab, agents);
    const [oneHop, twoHops, fourHops] = [agents[1], agents[2], agents[4]];
    if (oneHop === undefined || twoHops === undefined || fourHops === undefined)
      throw new Error(`the chain has fewer than ${HOP_CHAIN_LENGTH} agents`);
    const [rtt1 = [], rtt2 = [], rtt4 = []] = await measure(agents, [oneHop, twoHops, fourHops]);
    const [median1, median2, median4] = [median(rtt1), median(rtt2), median(rtt4)];
    const p95 = (samples: number[]): string => formatMilliseconds(quantile(samples, 0.95));
    process.stderr.write(
      `[rtt median (p95): 1 hop ${formatMilliseconds(median1)} (${p95(rtt1)}), 2 hops ` +
        `${formatMilliseconds(median2)} (${p95(rtt2)}), 4 hops ${formatMilliseconds(median4)} (${p95(rtt4)})] `,
    );
    // Each relay is crossed twice per round trip: by the DATA and by its ACK.
    const perHop = (median4 - median1) / (2 * 3);
    const routedPerHop = (median4 - median2) / (2 * 2);
    return [
      {
        benchmark: NAME,
        nearmesh: `+${formatMilliseconds(perHop)} (4-hop rtt ${formatMilliseconds(median4)})`,
        baseline: `1-hop rtt ${formatMilliseconds(median1)}`,
        ratio: formatTimes(median4 / median1),
        goal: `≤ ${MAX_ADDED_MS_PER_HOP} ms/hop`,
        pass: passMark(perHop <= MAX_ADDED_MS_PER_HOP),
      },
      {
        benchmark: ROUTED_NAME,
        nearmesh: `+${formatMilliseconds(routedPerHop)} (4-hop rtt ${formatMilliseconds(median4)})`,
        baseline: `2-hop rtt ${formatMilliseconds(median2)}`,
        ratio: formatTimes(median4 / median2),
        goal: '— (info)',
        pass: '—',
      },
    ];
  } finally {
    try {
      // Agents first: a namespace with a process inside outlives `ip netns del`.
      await withTimeout(Promise.all(agents.map(stopAgent)), STOP_GRACE_MS * 2, 'stopping the lab agents');
    } finally {
      lab.destroy();
    }
  }
}
