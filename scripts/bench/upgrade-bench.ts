// Row 14: the BLE → Wi-Fi bandwidth upgrade and the fallback, between two real agents in two network
// namespaces joined by one veth (scripts/lab), each on two emulated BLE controllers (scripts/ble-emulator),
// with no discovery and no static peers: they link over BLE, tell each other their Wi-Fi endpoints over it
// (ENDPOINTS), dial them, and move their traffic to TCP ("peer traffic moved to wifi" in the log).
// 14a: an agent logs nothing when it hears ENDPOINTS (it only counts links.endpoints_heard), but it sends its
//      own in the same turn as its "peer linked" (BLE) record: from the first of those two records to the
//      later of the two "moved to wifi" records (both agents' traffic on TCP). Baseline: a plain TCP
//      connect + one 32-byte round trip between the same namespaces, from bare Node processes.
// 14b: one end of the veth taken down (the other loses carrier) → each agent's "peer traffic fell back to ble" log record, against
//      the Wi-Fi keep-alive's configured silence limit (a bare TCP socket notices nothing for minutes).
// Fresh agents (fresh identities) per run; one emulator for all runs.
import { spawnSync } from 'node:child_process';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import { WIFI_KEEPALIVE } from '../../agent/links/peer-connection.js';
import { type BleEmulator, startEmulator, whyEmulatorUnavailable } from '../ble-emulator/emulator.js';
import { Lab } from '../lab/lab.js';
import { chain } from '../lab/topology.js';
import {
  AGENT_READY,
  type JsonRecord,
  NETNS_AGENT_PORT,
  NETNS_RAW_PORT,
  type PairAgent,
  Scope,
  skippedRows,
  startPairAgent,
  startRawServer,
  timedRawRun,
} from './agent-pair.js';
import { connectControl } from './bench-agents.js';
import { median } from './stats.js';
import { formatMilliseconds, formatTimes, passMark, type ResultRow } from './table.js';
import { sleep } from './timing.js';

export const UPGRADE_RUNS = 5;
export const TCP_SAMPLES = 20;
const TCP_WARMUPS = 3;
const MAX_UPGRADE_MS = 250;
const MAX_FALLBACK_MS = 3_000;
/** Scan, connect, GATT, handshake over the emulator, then the TCP dial. */
const UPGRADE_TIMEOUT_MS = 30_000;
/** The keep-alive's limit plus its tick, with room. */
const FALLBACK_TIMEOUT_MS = 10_000;
/** Both on TCP this long before the cut, so keep-alives run at their steady pace. */
const SETTLE_MS = 1_000;
const RAW_TIMEOUT_MS = 20_000;

const UPGRADE_NAME = '14a BLE→TCP upgrade: ENDPOINTS sent→both on TCP';
const FALLBACK_NAME = '14b TCP→BLE fallback: veth down→on BLE';

interface RunResult {
  /** The first BLE "peer linked" (ENDPOINTS sent) → the last "moved to wifi" of the two. */
  readonly upgradeMs: number;
  /** Per agent: BLE "peer linked" → moved to wifi. */
  readonly fromLinkMs: number[];
  /** Per agent: veth down → fell back to ble. */
  readonly fallbackMs: number[];
  /** How long the cut's `ip` command took: the uncertainty of the cut instant (± half of it). */
  readonly cutTookMs: number;
}

const isLog =
  (msg: string, extra: (record: JsonRecord) => boolean = () => true) =>
  (record: JsonRecord): boolean =>
    record.msg === msg && extra(record);

function logTime(record: JsonRecord): number {
  if (typeof record.time !== 'number')
    throw new Error(`log record without a time: ${JSON.stringify(record)}`);
  return record.time;
}

async function upgradeRun(lab: Lab, emulator: BleEmulator, run: number): Promise<RunResult> {
  const scope = new Scope();
  try {
    const meshKey = generateMeshKey();
    const start = (index: number): PairAgent => {
      const node = lab.topology.nodes[index] ?? '';
      return startPairAgent(scope, {
        name: `${node}r${run}`,
        meshKey,
        listen: `0.0.0.0:${NETNS_AGENT_PORT}`,
        netns: lab.namespaceOf(node),
        ble: {
          peripheral: `uart:${emulator.ptys[2 * index]}`,
          central: `uart:${emulator.ptys[2 * index + 1]}`,
        },
      });
    };
    const agents = [start(0), start(1)];
    const times = await Promise.all(
      agents.map(async (agent) => {
        await connectControl(agent, AGENT_READY);
        const linked = await agent.log.waitFor(
          `${agent.name} linked over BLE`,
          isLog('peer linked', (record) => record.medium === 'ble'),
          UPGRADE_TIMEOUT_MS,
        );
        const moved = await agent.log.waitFor(
          `${agent.name} on TCP`,
          isLog('peer traffic moved to wifi'),
          UPGRADE_TIMEOUT_MS,
        );
        return { linked: logTime(linked.record), moved: logTime(moved.record) };
      }),
    );
    // ENDPOINTS go out in the same turn as the "peer linked" record: the first one is the earliest an
    // endpoint can be known; the upgrade is done once both agents have moved.
    const upgradeMs =
      Math.max(...times.map(({ moved }) => moved)) - Math.min(...times.map(({ linked }) => linked));
    const fromLinkMs = times.map(({ moved, linked }) => moved - linked);
    await sleep(SETTLE_MS);
    const [a, b] = lab.topology.nodes;
    if (a === undefined || b === undefined) throw new Error('the lab has fewer than 2 nodes');
    const cut = cutOneEnd(lab, a, b);
    const fallbackMs = await Promise.all(
      agents.map(async (agent) => {
        const fell = await agent.log.waitFor(
          `${agent.name} back on BLE`,
          isLog('peer traffic fell back to ble', (record) => logTime(record) >= cut.atMs),
          FALLBACK_TIMEOUT_MS,
        );
        return logTime(fell.record) - cut.atMs;
      }),
    );
    return { upgradeMs, fromLinkMs, fallbackMs, cutTookMs: cut.tookMs };
  } finally {
    await scope.close();
    const [a, b] = lab.topology.nodes;
    if (a !== undefined && b !== undefined) lab.restore(a, b);
  }
}

/**
 * Takes `node`'s end of its veth to `other` down (the other end loses carrier with it); returns the middle
 * of the few milliseconds the `ip` command took, and how long it took (lab.restore brings both ends up).
 */
function cutOneEnd(lab: Lab, node: string, other: string): { atMs: number; tookMs: number } {
  const beforeMs = Date.now();
  const result = spawnSync('ip', [
    '-n',
    lab.namespaceOf(node),
    'link',
    'set',
    lab.vethOf(node, other),
    'down',
  ]);
  const afterMs = Date.now();
  if (result.status !== 0) throw new Error(`veth down in ${node}: ${String(result.stderr).trim()}`);
  return { atMs: (beforeMs + afterMs) / 2, tookMs: afterMs - beforeMs };
}

/** Connect + one round trip from n1 to a bare echo server in n2, each sample a fresh connection. */
async function tcpBaselineMs(scope: Scope, lab: Lab): Promise<number[]> {
  const port = await startRawServer(scope, lab.namespaceOf('n2'), 'echo', ['0.0.0.0', NETNS_RAW_PORT]);
  const { record } = await timedRawRun(
    lab.namespaceOf('n1'),
    'rtt',
    [lab.addressOf('n2', 'n1'), port, TCP_SAMPLES, TCP_WARMUPS],
    RAW_TIMEOUT_MS,
    'samples',
  );
  const samples = record.samples;
  if (!Array.isArray(samples) || samples.length !== TCP_SAMPLES) throw new Error('raw rtt gave no samples');
  return samples.map(Number);
}

export async function upgradeRows(): Promise<ResultRow[]> {
  const missing =
    process.getuid?.() !== 0 ? 'needs root (network namespaces, the BLE emulator)' : whyEmulatorUnavailable();
  if (missing !== undefined) return skippedRows([UPGRADE_NAME, FALLBACK_NAME], missing);
  const scope = new Scope();
  try {
    const lab = new Lab(chain(2), `up${process.pid}`);
    scope.defer(() => lab.destroy());
    lab.create();
    const emulator = await startEmulator({ controllers: 4 });
    scope.defer(() => emulator.stop());
    const results: RunResult[] = [];
    for (let run = 0; run < UPGRADE_RUNS; run++) results.push(await upgradeRun(lab, emulator, run));
    const tcp = await tcpBaselineMs(scope, lab);
    const upgrade = results.map((result) => result.upgradeMs);
    const fromLink = results.flatMap((result) => result.fromLinkMs);
    const fallback = results.flatMap((result) => result.fallbackMs);
    const list = (values: number[]): string => values.map((ms) => ms.toFixed(0)).join(' ');
    process.stderr.write(
      `[ms per run: first ENDPOINTS sent→both on TCP ${list(upgrade)}; per agent and run: its BLE link→its ` +
        `move to TCP ${list(fromLink)}; ` +
        `veth down→on BLE ${list(fallback)} (each cut's ip command took ${list(results.map((result) => result.cutTookMs))}); TCP ` +
        `connect+rtt median ${formatMilliseconds(median(tcp))}] `,
    );
    const medianMax = (values: number[]): string =>
      `${formatMilliseconds(median(values))} (max ${formatMilliseconds(Math.max(...values))})`;
    const limitMs = WIFI_KEEPALIVE.deadAfterMs;
    return [
      {
        benchmark: UPGRADE_NAME,
        nearmesh: medianMax(upgrade),
        baseline: `TCP conn+rtt ${formatMilliseconds(median(tcp))}`,
        ratio: formatTimes(median(upgrade) / median(tcp)),
        goal: `≤ ${MAX_UPGRADE_MS} ms (max)`,
        pass: passMark(Math.max(...upgrade) <= MAX_UPGRADE_MS),
      },
      {
        benchmark: FALLBACK_NAME,
        nearmesh: medianMax(fallback),
        baseline: `limit ${formatMilliseconds(limitMs)} (config)`,
        ratio: formatTimes(median(fallback) / limitMs),
        goal: `≤ ${MAX_FALLBACK_MS} ms (max)`,
        pass: passMark(Math.max(...fallback) <= MAX_FALLBACK_MS),
      },
    ];
  } finally {
    await scope.close();
  }
}
