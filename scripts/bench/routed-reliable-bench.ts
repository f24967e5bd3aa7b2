// Row 19: reliable messages through a relay, protocol v2 against v1 in the same run. A chain of three agents
// on 127.0.0.1 (static peers only: r2 dials r1, r3 dials r2, so r1 reaches r3 only through r2), and r1 told
// to send r3 distinct 32-byte messages with the control requests `nearmesh send --lines` makes (batches of
// 1,000, the last one waiting for r3's confirmation), from this process's control client, so that no CLI
// start-up dilutes the comparison. Every QUEUED and RECEIVED is a routed DATA (sealed with a tag in v2),
// acknowledged end to end by a routed ACK, all through r2. The same on a chain of v1 agents (the baseline
// build of v1-baseline.ts); runs alternate v2/v1, and which goes first, so drift hits both alike.
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import {
  AGENT_READY,
  clearInbox,
  listeningPort,
  type PairAgent,
  Scope,
  startPairAgent,
} from './agent-pair.js';
import { clientOf, connectControl, idOf, type Polling, waitForLinks, waitForRoutes } from './bench-agents.js';
import { machineTicks } from './cpu-usage.js';
import { agentCpuMs, busyText } from './push-bench.js';
import { distinctLines, RELIABLE_MESSAGE_BYTES } from './reliable-bench.js';
import { median } from './stats.js';
import { formatMilliseconds, formatPerSecond, formatTimes, passMark, type ResultRow } from './table.js';
import { elapsedMs, withTimeout } from './timing.js';
import { V1_COMMIT, v1Baseline } from './v1-baseline.js';

export const ROUTED_CHAIN_LENGTH = 3;
export const ROUTED_MESSAGES = 10_000;
export const ROUTED_RUNS = 5;
export const ROUTED_WARMUPS = 1;
/** What `nearmesh send --lines` puts in one control request. */
export const LINES_PER_REQUEST = 1_000;
const CONFIRM_TIMEOUT_MS = 50_000;
/** The issue's goal: v2 keeps at least 80 % of v1's routed reliable throughput. */
const MIN_RATIO_TO_V1 = 0.8;
/** Links, then signed announcements (0.3 s after a link) for the routes both ways. */
const MESH: Polling = { timeoutMs: 30_000, pollMs: 100 };

const NAME = `19 reliable via 1 relay, ${ROUTED_MESSAGES.toLocaleString('en-US')} × ${RELIABLE_MESSAGE_BYTES} B, v2 vs v1`;

interface RelayChain {
  readonly version: string;
  readonly agents: readonly PairAgent[];
}

/** r1 - r2 - r3 on loopback, each dialing the one before; linked, with routes r1 ↔ r3. */
async function startChain(scope: Scope, version: string, cli?: string): Promise<RelayChain> {
  const meshKey = generateMeshKey();
  const agents: PairAgent[] = [];
  for (let index = 1; index <= ROUTED_CHAIN_LENGTH; index++) {
    const before = agents.at(-1);
    const agent = startPairAgent(scope, {
      name: `r${index}`,
      meshKey,
      listen: '127.0.0.1:0',
      peers: before === undefined ? [] : [`127.0.0.1:${await listeningPort(before)}`],
      ...(cli !== undefined && { cli }),
    });
    await connectControl(agent, AGENT_READY);
    agents.push(agent);
  }
  for (const [index, agent] of agents.entries()) {
    const neighbours = [agents[index - 1], agents[index + 1]].flatMap((neighbour) =>
      neighbour === undefined ? [] : [neighbour.name],
    );
    await waitForLinks(agent, neighbours, MESH);
  }
  const [first, last] = [agents[0], agents.at(-1)];
  if (first === undefined || last === undefined) throw new Error('an empty chain');
  await waitForRoutes(`${version}: route r1 → r3`, first, [last], MESH);
  await waitForRoutes(`${version}: route r3 → r1`, last, [first], MESH);
  return { version, agents };
}

/** Every message queued at r1 for r3, in batches, until r3 confirmed the last one. */
async function sendAllMs(first: PairAgent, to: string, batches: readonly string[][]): Promise<number> {
  const client = clientOf(first);
  const startNs = process.hrtime.bigint();
  let count = 0;
  for (const [index, payload] of batches.entries()) {
    // As the CLI: only the last request waits, since the peer confirms in order.
    const wait = index === batches.length - 1;
    const request = client.request({ cmd: 'send', peer: to, payload, wait, timeout_ms: CONFIRM_TIMEOUT_MS });
    const result = (await withTimeout(request, CONFIRM_TIMEOUT_MS * 2, 'a queued send')) as { count: number };
    count += result.count;
  }
  if (count !== ROUTED_MESSAGES) throw new Error(`${count} of ${ROUTED_MESSAGES} messages queued`);
  return elapsedMs(startNs);
}

/** One run r1 → r3; the agents' CPU time over it goes to stderr. */
async function routedRunMs({ version, agents }: RelayChain, batches: readonly string[][]): Promise<number> {
  const [first, last] = [agents[0], agents.at(-1)];
  if (first === undefined || last === undefined) throw new Error('an empty chain');
  const cpuBefore = agents.map(agentCpuMs);
  const ticksBefore = machineTicks();
  const ms = await sendAllMs(first, idOf(last), batches);
  // v1 kept no app inbox; this build's would fill up over the runs with nobody taking from it.
  if (version === 'v2') await clearInbox(last);
  const cpu = agents.map((agent, index) => `${agent.name} ${agentCpuMs(agent) - (cpuBefore[index] ?? 0)}`);
  process.stderr.write(
    `[${version} ${ms.toFixed(0)} ms; agents' cpu ms ${cpu.join(', ')}; ${busyText(ticksBefore, machineTicks())}] `,
  );
  return ms;
}

export async function routedReliableRows(): Promise<ResultRow[]> {
  const v1 = await v1Baseline();
  const scope = new Scope();
  try {
    const chains = [await startChain(scope, 'v2'), await startChain(scope, 'v1', v1.cliPath)];
    const payloads = distinctLines(ROUTED_MESSAGES).map((line) => Buffer.from(line).toString('base64'));
    const batches: string[][] = [];
    for (let at = 0; at < payloads.length; at += LINES_PER_REQUEST)
      batches.push(payloads.slice(at, at + LINES_PER_REQUEST));
    const runs = chains.map((): number[] => []);
    for (let run = 0; run < ROUTED_WARMUPS + ROUTED_RUNS; run++) {
      // Alternating which goes first, as well as v2/v1.
      const order = run % 2 === 0 ? [0, 1] : [1, 0];
      for (const index of order) {
        const chain = chains[index];
        if (chain === undefined) continue;
        const ms = await routedRunMs(chain, batches);
        if (run >= ROUTED_WARMUPS) runs[index]?.push(ms);
      }
    }
    const [v2Ms, v1Ms] = runs.map((values) => median(values));
    if (v2Ms === undefined || v1Ms === undefined) throw new Error('no runs');
    const rate = (ms: number): number => (ROUTED_MESSAGES / ms) * 1000;
    const ratio = rate(v2Ms) / rate(v1Ms);
    return [
      {
        benchmark: NAME,
        nearmesh: `v2 ${formatPerSecond(rate(v2Ms))} (${formatMilliseconds(v2Ms)})`,
        baseline: `v1 ${formatPerSecond(rate(v1Ms))} (${formatMilliseconds(v1Ms)})`,
        ratio: formatTimes(ratio),
        goal: `≥ ${formatTimes(MIN_RATIO_TO_V1)} of v1 (${V1_COMMIT})`,
        pass: passMark(ratio >= MIN_RATIO_TO_V1),
      },
    ];
  } finally {
    await scope.close();
  }
}
