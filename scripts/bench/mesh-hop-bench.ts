// Row 8: what a relaying agent adds to a message's latency. Five real agents in a network-namespace chain
// (scripts/lab: n1 - n2 - n3 - n4 - n5, each linked to its neighbours only), and the round trip of a
// reliable unicast from n1 (control-socket `send`, which resolves on the end-to-end ACK) to n2 (1 hop,
// the direct link), n3 (2 hops) and n5 (4 hops, through three relays). Three more relays each way are
// the whole difference between the 4-hop and the 1-hop round trip: (rtt4 − rtt1) / (2·3) per hop.
// Root and namespaces only: skipped with a reason elsewhere.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import { ControlClient } from '../../agent/control/client.js';
import type { RouteInfo } from '../../agent/control/wire.js';
import type { PeerInfo } from '../../agent/links/peer-directory.js';
import { Lab } from '../lab/lab.js';
import { chain } from '../lab/topology.js';
import { type BenchChild, isRunning, STOP_GRACE_MS, startChild, stopChild } from './bench-child.js';
import { median, quantile } from './stats.js';
import { formatMilliseconds, formatTimes, passMark, type ResultRow } from './table.js';
import { elapsedMs, sleep, withTimeout } from './timing.js';

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
const PAYLOAD_BASE64 = Buffer.from('{"t":21.5}').toString('base64');

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

/** One agent in its namespace, with its control client once it answers. */
interface LabAgent extends BenchChild {
  readonly node: string;
  readonly dir: string;
  client?: ControlClient;
  id?: string;
}

function writeConfig(node: string, dir: string, meshKey: string, peers: readonly string[]): string {
  const lines = [
    `name = ${JSON.stringify(node)}`,
    `data_dir = ${JSON.stringify(dir)}`,
    `mesh_key = ${JSON.stringify(meshKey)}`,
    '[wifi]',
    `listen = "0.0.0.0:${AGENT_PORT}"`,
    // Static peers only: each agent dials its neighbours and nothing else, no multicast.
    'discovery = []',
    '[ble]',
    'enabled = false',
    '[mqtt]',
    'listen = false',
    ...peers.flatMap((address) => ['[[peers]]', `address = ${JSON.stringify(address)}`]),
  ];
  const path = join(dir, 'nearmesh.toml');
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

function startAgent(lab: Lab, node: string, meshKey: string): LabAgent {
  const dir = mkdtempSync(join(tmpdir(), `nearmesh-bench-${node}-`));
  const config = writeConfig(node, dir, meshKey, lab.peerAddresses(node, AGENT_PORT));
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
  return Object.assign(started, { node, dir });
}

async function stopAgent(agent: LabAgent): Promise<void> {
  agent.client?.close();
  await stopChild(agent);
  rmSync(agent.dir, { recursive: true, force: true });
}

function clientOf(agent: LabAgent): ControlClient {
  if (agent.client === undefined) throw new Error(`agent ${agent.node} has no control client`);
  return agent.client;
}

function idOf(agent: LabAgent): string {
  if (agent.id === undefined) throw new Error(`agent ${agent.node} has no id yet`);
  return agent.id;
}

/** Polls `check` until it returns true, naming `what` (and the agent's log) when it never does. */
async function waitUntil(
  what: string,
  agent: LabAgent,
  timeoutMs: number,
  check: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isRunning(agent)) throw new Error(`agent ${agent.node} exited: ${agent.output.trim().slice(-300)}`);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(POLL_MS);
  }
}

/** The control socket answers `id`; keeps the client for everything after. */
async function connectControl(agent: LabAgent): Promise<void> {
  const socketPath = join(agent.dir, 'control.sock');
  await waitUntil(`agent ${agent.node} ready`, agent, READY_TIMEOUT_MS, async () => {
    const client = await ControlClient.connect(socketPath);
    try {
      const { id } = (await client.request({ cmd: 'id' })) as { id: string };
      agent.client = client;
      agent.id = id;
      return true;
    } catch (error) {
      client.close();
      throw error;
    }
  });
}

/** Every agent linked to exactly its chain neighbours, and n1 and the far end holding routes both ways. */
async function waitForMesh(lab: Lab, agents: readonly LabAgent[]): Promise<void> {
  for (const agent of agents) {
    const expected = lab
      .neighbours(agent.node)
      .map((neighbour) => neighbour.node)
      .sort()
      .join(',');
    await waitUntil(`${agent.node} linked to ${expected}`, agent, MESH_TIMEOUT_MS, async () => {
      const peers = (await clientOf(agent).request({ cmd: 'peers' })) as PeerInfo[];
      const connected = peers.filter((peer) => peer.state === 'connected').map((peer) => peer.name);
      return connected.sort().join(',') === expected;
    });
  }
  const first = agents[0];
  const last = agents.at(-1);
  if (first === undefined || last === undefined) throw new Error('an empty chain');
  const hasRouteTo = (from: LabAgent, to: readonly LabAgent[]) => async () => {
    const routes = (await clientOf(from).request({ cmd: 'routes' })) as RouteInfo[];
    return to.every((target) => routes.some((route) => route.destination === idOf(target)));
  };
  const beyond = agents.slice(2);
  await waitUntil(`routes from ${first.node}`, first, MESH_TIMEOUT_MS, hasRouteTo(first, beyond));
  for (const target of beyond) {
    await waitUntil(`route from ${target.node} back`, target, MESH_TIMEOUT_MS, hasRouteTo(target, [first]));
  }
}

/** One reliable unicast: from the request to the agent until the end-to-end ACK resolved it. */
async function roundTripMs(client: ControlClient, peer: string): Promise<number> {
  const startNs = process.hrtime.bigint();
  await withTimeout(
    client.request({ cmd: 'send', peer, payload: PAYLOAD_BASE64, timeout_ms: SEND_TIMEOUT_MS }),
    SEND_TIMEOUT_MS * 2,
    `a send to ${peer}`,
  );
  return elapsedMs(startNs);
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
async function measure(agents: readonly LabAgent[], targets: readonly LabAgent[]): Promise<number[][]> {
  const first = agents[0];
  if (first === undefined) throw new Error('an empty chain');
  const client = clientOf(first);
  const samples = targets.map((): number[] => []);
  for (let round = 0; round < HOP_WARMUPS + HOP_SAMPLES; round++) {
    for (const [index, target] of targets.entries()) {
      const ms = await roundTripMs(client, idOf(target));
      if (round >= HOP_WARMUPS) samples[index]?.push(ms);
    }
  }
  return samples;
}

export async function meshHopRows(): Promise<ResultRow[]> {
  const reason = whyNetnsUnavailable();
  if (reason !== undefined) return skippedRows(reason);
  const lab = new Lab(chain(HOP_CHAIN_LENGTH), `b${process.pid}`);
  const agents: LabAgent[] = [];
  lab.create();
  try {
    const meshKey = generateMeshKey();
    for (const node of lab.topology.nodes) agents.push(startAgent(lab, node, meshKey));
    await Promise.all(agents.map(connectControl));
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
