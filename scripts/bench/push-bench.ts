// Rows 15-16: `nearmesh push --json` between two real agents (static peers, BLE off) against baselines moving
// the same file over the same path, runs interleaved. 15: two namespaces joined by a veth shaped with tc tbf at
// 40 Mbit/s on both ends, against a bare Node TCP process; 16: both agents on 127.0.0.1, against OpenSSH's scp
// (scp-baseline.ts) and the bare TCP process. Each run is timed by this process from the command's spawn to its
// end (push: the 'sent' event, once the receiver verified the SHA-256; raw: the sink's one-byte confirmation;
// scp: its exit), with the machine's busy CPU time over it from /proc/stat.

import { randomBytes } from 'node:crypto';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import { Lab } from '../lab/lab.js';
import { chain } from '../lab/topology.js';
import {
  AGENT_READY,
  cliArgs,
  cliFloorMs,
  type JsonRecord,
  listeningPort,
  NETNS_AGENT_PORT,
  NETNS_RAW_PORT,
  type PairAgent,
  Scope,
  skippedRows,
  startPairAgent,
  startRawServer,
  timedRawRun,
  timedRun,
} from './agent-pair.js';
import { connectControl, type Polling, waitForLinks } from './bench-agents.js';
import {
  busyShare,
  type MachineTicks,
  machineTicks,
  ownTreeTicks,
  processCpuMs,
  reapedChildrenCpuMs,
  treeCpuSeconds,
} from './cpu-usage.js';
import { measurePushFloor } from './push-floor.js';
import { type ScpServer, sshdCpuMs, startScpServer, timedScp } from './scp-baseline.js';
import { median } from './stats.js';
import { formatMegabytes, formatPercent, formatTimes, passMark, type ResultRow } from './table.js';
import { sleep } from './timing.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
export const SHAPED_FILE_MIB = 32;
export const SHAPED_RUNS = 2;
export const LOOPBACK_FILE_MIB = 128;
export const LOOPBACK_RUNS = 3;
/** A 128 MiB round of all three is a few seconds: one is dropped first (page cache, JIT, CPU clocks). */
export const LOOPBACK_WARMUPS = 1;
/** The shaping asked for, on both ends of the veth: `tc qdisc add dev <veth> root tbf <this>`. */
export const TBF = ['rate', '40mbit', 'burst', '32kbit', 'latency', '50ms'] as const;
const SHAPED_MIN_RATIO = 0.9;
const SCP_MIN_SPEEDUP = 1.5;
const SCP_MAX_CPU_RATIO = 0.8;
/** 32 MiB at 40 Mbit/s is about 7 s; a run this slow is broken. */
const SHAPED_RUN_TIMEOUT_MS = 40_000;
const LOOPBACK_RUN_TIMEOUT_MS = 60_000;
/** A dial, then its redial backoff (from 500 ms), then the handshake. */
const LINKED: Polling = { timeoutMs: 20_000, pollMs: 100 };
const RECEIVED_LOG_TIMEOUT_MS = 5_000;
/** sshd waits for a session's processes just after scp exits; their CPU counts once it has. */
const SSHD_REAP_MS = 200;

const SHAPED_NAME = `15 push ${SHAPED_FILE_MIB} MiB, 40 Mbit/s tbf veth`;
const VERSUS_SCP_NAME = `16 push ${LOOPBACK_FILE_MIB} MiB on loopback vs scp`;
const CPU_NAME = '16b machine CPU-seconds per GiB, push vs scp';
const VERSUS_RAW_NAME = '16c push vs raw TCP (info)';

/** One transfer of the file: bytes per second from spawn to done, and the machine's busy CPU-seconds meanwhile. */
interface Sample {
  readonly rate: number;
  readonly cpuSeconds: number;
}

type Contender = 'push' | 'raw' | 'scp';
type Runner = readonly [Contender, () => Promise<Sample>];

/** Where the bytes go: the receiving agent, and a raw sink on the same host. */
interface PushPath {
  readonly sender: PairAgent;
  readonly receiver: PairAgent;
  /** Where the raw source runs (the sender's namespace). */
  readonly netns: string | undefined;
  readonly sinkHost: string;
  readonly sinkPort: number;
  readonly file: string;
  readonly bytes: number;
  readonly timeoutMs: number;
}

/** `bytes` of a repeated random MiB (content does not matter to TCP or SHA-256 speed). */
function writeTestFile(dir: string, bytes: number): string {
  const path = join(dir, 'payload.bin');
  const block = randomBytes(MiB);
  const fd = openSync(path, 'w');
  try {
    for (let written = 0; written < bytes; written += MiB)
      writeSync(fd, block, 0, Math.min(MiB, bytes - written));
  } finally {
    closeSync(fd);
  }
  return path;
}

async function linkPair(sender: PairAgent, receiver: PairAgent): Promise<void> {
  await Promise.all([connectControl(receiver, AGENT_READY), connectControl(sender, AGENT_READY)]);
  await waitForLinks(sender, [receiver.name], LINKED);
  await waitForLinks(receiver, [sender.name], LINKED);
}

/** One push, from spawn to 'sent'; stderr also has the push's own rateBps on its last progress event. */
async function pushOnce(path: PushPath): Promise<Sample> {
  // The CLI is this process's child: its CPU shows here once it has exited.
  const cpu = (): number[] => [...[path.sender, path.receiver].map(agentCpuMs), reapedChildrenCpuMs('self')];
  const [cpuBefore, ticksBefore, treeBefore] = [cpu(), machineTicks(), ownTreeTicks()];
  const { ms, record, lines } = await timedRun({
    what: 'nearmesh push',
    command: process.execPath,
    args: cliArgs(path.sender, ['push', path.receiver.name, path.file, '--json']),
    timeoutMs: path.timeoutMs,
    done: (event) => event.type === 'sent' || event.type === 'failed',
  });
  const [cpuAfter, ticksAfter, treeAfter] = [cpu(), machineTicks(), ownTreeTicks()];
  if (record.type === 'failed') throw new Error(`push failed: ${String(record.message)}`);
  const [tx, rx, cli] = cpuAfter.map((after, index) => after - (cpuBefore[index] ?? 0));
  process.stderr.write(
    `[cpu ms: agents tx ${tx}, rx ${rx}, push CLI ${cli}; ${busyText(ticksBefore, ticksAfter)}] `,
  );
  if (record.size !== path.bytes || record.resumedFrom !== 0)
    throw new Error(`push sent ${String(record.size)} bytes from ${String(record.resumedFrom)}`);
  const waits = lines.filter((line) => line.record.type === 'waiting').length;
  if (waits > 0) process.stderr.write(`[push waited ${waits} times] `);
  const last = lines.findLast((line) => line.record.type === 'progress')?.record;
  process.stderr.write(`[push's own rateBps ${formatMegabytes(Number(last?.rateBps ?? 0), 'MB/s')}] `);
  const first = lines.find((line) => line.record.type === 'progress');
  const doneAt = lines.at(-1)?.atNs;
  if (first !== undefined && doneAt !== undefined)
    process.stderr.write(
      `[first chunk at ${(ms - Number(doneAt - first.atNs) / 1e6).toFixed(0)} of ${ms.toFixed(0)} ms] `,
    );
  // What landed in the inbox goes at once: the disk need not hold every run.
  const received = await path.receiver.log.waitFor(
    'the receiver logging the file',
    (entry: JsonRecord) =>
      entry.msg === 'transfer: file received and verified' && entry.transfer === record.transferId,
    RECEIVED_LOG_TIMEOUT_MS,
  );
  rmSync(String(received.record.path), { force: true });
  return { rate: (path.bytes / ms) * 1000, cpuSeconds: treeCpuSeconds(treeBefore, treeAfter) };
}

/**
 * `run` (which returns its own milliseconds, spawn to done) with the CPU this bench's processes used over it
 * (both ends are its children), read after `settleMs` so that processes ending with the run are counted.
 */
async function sampled(
  what: Contender,
  bytes: number,
  run: () => Promise<number>,
  settleMs = 0,
): Promise<Sample> {
  const [ticksBefore, treeBefore] = [machineTicks(), ownTreeTicks()];
  const ms = await run();
  const ticksAfter = machineTicks();
  if (settleMs > 0) await sleep(settleMs);
  const treeAfter = ownTreeTicks();
  process.stderr.write(`[${what}: ${busyText(ticksBefore, ticksAfter)}] `);
  return { rate: (bytes / ms) * 1000, cpuSeconds: treeCpuSeconds(treeBefore, treeAfter) };
}

function rawOnce(path: PushPath): Promise<Sample> {
  return sampled('raw', path.bytes, async () => {
    const { ms, record } = await timedRawRun(
      path.netns,
      'source',
      [path.sinkHost, path.sinkPort, path.file],
      path.timeoutMs,
      'ms',
    );
    if (record.bytes !== path.bytes) throw new Error(`raw source sent ${String(record.bytes)} bytes`);
    return ms;
  });
}

/** One scp; stderr also has its own CPU (scp with its ssh, and sshd) to set against the push's. */
async function scpOnce(path: PushPath, server: ScpServer): Promise<Sample> {
  const [clientBefore, serverBefore] = [reapedChildrenCpuMs('self'), sshdCpuMs(server)];
  const sample = await sampled(
    'scp',
    path.bytes,
    () => timedScp(server, path.file, path.bytes, path.timeoutMs),
    SSHD_REAP_MS,
  );
  const [client, sshd] = [reapedChildrenCpuMs('self') - clientBefore, sshdCpuMs(server) - serverBefore];
  process.stderr.write(`[cpu ms: scp and its ssh ${client}, sshd ${sshd}] `);
  return sample;
}

/** An agent's CPU time so far (inside a namespace too: `ip netns exec` execs the agent in place). */
export function agentCpuMs(agent: PairAgent): number {
  const pid = agent.log.started.child.pid;
  if (pid === undefined) throw new Error(`agent ${agent.name} has no pid`);
  return processCpuMs(pid);
}

export function busyText(from: MachineTicks, to: MachineTicks): string {
  const { share, cores } = busyShare(from, to);
  return `machine ${formatPercent(share)} busy of ${cores} cores`;
}

/** How close any push could come to the raw rate here: CLI start-up + the per-byte work no push skips. */
async function reportFloor(path: PushPath, rawRate: number): Promise<void> {
  const cli = median([
    await cliFloorMs(path.sender, path.timeoutMs),
    await cliFloorMs(path.sender, path.timeoutMs),
  ]);
  const { senderMs, receiverMs } = measurePushFloor(path.file);
  const floorMs = cli + Math.max(senderMs, receiverMs);
  const rawMs = (path.bytes / rawRate) * 1000;
  process.stderr.write(
    `[floor: \`nearmesh id\` ${cli.toFixed(0)} ms + the slower of the sender's SHA-256 and seal ` +
      `${senderMs.toFixed(0)} ms and the receiver's open and SHA-256 ${receiverMs.toFixed(0)} ms = ` +
      `${floorMs.toFixed(0)} ms against raw ${rawMs.toFixed(0)} ms: no push here can pass ` +
      `${formatPercent(rawMs / floorMs)}] `,
  );
}

/**
 * Every contender once per round, the order rotating round by round (none always follows the same other one);
 * the first `warmups` rounds are dropped. The median rate and the median CPU-seconds of each.
 */
async function interleavedMedians(
  runners: readonly Runner[],
  runs: number,
  warmups: number,
): Promise<ReadonlyMap<Contender, Sample>> {
  const samples = new Map<Contender, Sample[]>(runners.map(([name]) => [name, []]));
  for (let round = 0; round < warmups + runs; round++) {
    const shift = round % runners.length;
    for (const [name, run] of [...runners.slice(shift), ...runners.slice(0, shift)]) {
      const sample = await run();
      if (round >= warmups) samples.get(name)?.push(sample);
    }
  }
  const list = (values: readonly number[]): string => values.map((value) => value.toFixed(1)).join('/');
  const runsText = [...samples].map(
    ([name, all]) =>
      `${name} ${list(all.map((sample) => sample.rate / 1e6))} MB/s, ${list(all.map((sample) => sample.cpuSeconds))} cpu-s`,
  );
  process.stderr.write(`[runs: ${runsText.join('; ')}] `);
  return new Map(
    [...samples].map(([name, all]) => [
      name,
      {
        rate: median(all.map((sample) => sample.rate)),
        cpuSeconds: median(all.map((sample) => sample.cpuSeconds)),
      },
    ]),
  );
}

function medianOf(medians: ReadonlyMap<Contender, Sample>, name: Contender): Sample {
  const sample = medians.get(name);
  if (sample === undefined) throw new Error(`no ${name} runs`);
  return sample;
}

/** Push against the bare TCP process: its share of the raw rate, judged when there is a goal. */
function versusRawRow(name: string, push: Sample, raw: Sample, minRatio?: number): ResultRow {
  const ratio = push.rate / raw.rate;
  return {
    benchmark: name,
    nearmesh: formatMegabytes(push.rate, 'MB/s'),
    baseline: `raw ${formatMegabytes(raw.rate, 'MB/s')}`,
    ratio: formatPercent(ratio),
    goal: minRatio === undefined ? '— (info)' : `≥ ${formatPercent(minRatio)}`,
    pass: passMark(minRatio === undefined ? undefined : ratio >= minRatio),
  };
}

/** Push against scp: how many times faster, and the machine's CPU per GiB moved. */
function versusScpRows(push: Sample, scp: Sample, bytes: number): ResultRow[] {
  const speedup = push.rate / scp.rate;
  const perGiB = (sample: Sample): number => sample.cpuSeconds / (bytes / GiB);
  const cpuRatio = perGiB(push) / perGiB(scp);
  return [
    {
      benchmark: VERSUS_SCP_NAME,
      nearmesh: formatMegabytes(push.rate, 'MB/s'),
      baseline: `scp ${formatMegabytes(scp.rate, 'MB/s')}`,
      ratio: formatTimes(speedup),
      goal: `≥ ${formatTimes(SCP_MIN_SPEEDUP)}`,
      pass: passMark(speedup >= SCP_MIN_SPEEDUP),
    },
    {
      benchmark: CPU_NAME,
      nearmesh: `${perGiB(push).toFixed(2)} s/GiB`,
      baseline: `scp ${perGiB(scp).toFixed(2)} s/GiB`,
      ratio: formatTimes(cpuRatio),
      goal: `≤ ${formatTimes(SCP_MAX_CPU_RATIO)}`,
      pass: passMark(cpuRatio <= SCP_MAX_CPU_RATIO),
    },
  ];
}

/** Where a row's pushes go: everything of PushPath but the file. */
type PushEnds = Omit<PushPath, 'file' | 'bytes' | 'timeoutMs'>;

/**
 * Sets up the ends (agents linked, sink listening), writes the file, measures the rows (starting anything else
 * they need in the scope); stops it all.
 */
async function pushRows(
  transfer: Pick<PushPath, 'bytes' | 'timeoutMs'>,
  setUp: (scope: Scope) => Promise<PushEnds>,
  measure: (path: PushPath, scope: Scope) => Promise<ResultRow[]>,
): Promise<ResultRow[]> {
  const scope = new Scope();
  try {
    const ends = await setUp(scope);
    const file = writeTestFile(scope.temporaryDir('nearmesh-bench-push-'), transfer.bytes);
    return await measure({ ...ends, ...transfer, file }, scope);
  } finally {
    await scope.close();
  }
}

/** Row 15: n1 pushes to n2 across the shaped veth; the raw source in n1 sends to a sink in n2. */
export async function shapedPushRows(): Promise<ResultRow[]> {
  if (process.getuid?.() !== 0) return skippedRows([SHAPED_NAME], 'needs root (network namespaces, tc)');
  const bytes = SHAPED_FILE_MIB * MiB;
  const setUp = async (scope: Scope): Promise<PushEnds> => {
    const lab = new Lab(chain(2), `tx${process.pid}`);
    scope.defer(() => lab.destroy());
    lab.create();
    for (const [node, other] of [
      ['n1', 'n2'],
      ['n2', 'n1'],
    ] as const) {
      const veth = lab.vethOf(node, other);
      const shaped = lab.exec(node, 'tc', ['qdisc', 'add', 'dev', veth, 'root', 'tbf', ...TBF]);
      if (shaped.status !== 0) throw new Error(`tc tbf in ${node}: ${shaped.stderr.trim()}`);
    }
    const meshKey = generateMeshKey();
    const sinkHost = lab.addressOf('n2', 'n1');
    const [receiverNs, senderNs] = [lab.namespaceOf('n2'), lab.namespaceOf('n1')];
    const listen = `0.0.0.0:${NETNS_AGENT_PORT}`;
    const receiver = startPairAgent(scope, { name: 'rx', meshKey, listen, netns: receiverNs });
    const peers = [`${sinkHost}:${NETNS_AGENT_PORT}`];
    const sender = startPairAgent(scope, { name: 'tx', meshKey, listen, peers, netns: senderNs });
    const sinkArgs = ['0.0.0.0', NETNS_RAW_PORT, bytes];
    const sinkPort = await startRawServer(scope, receiverNs, 'sink', sinkArgs);
    await linkPair(sender, receiver);
    return { sender, receiver, netns: senderNs, sinkHost, sinkPort };
  };
  return pushRows({ bytes, timeoutMs: SHAPED_RUN_TIMEOUT_MS }, setUp, async (path) => {
    const runners: Runner[] = [
      ['raw', () => rawOnce(path)],
      ['push', () => pushOnce(path)],
    ];
    const medians = await interleavedMedians(runners, SHAPED_RUNS, 0);
    return [versusRawRow(SHAPED_NAME, medianOf(medians, 'push'), medianOf(medians, 'raw'), SHAPED_MIN_RATIO)];
  });
}

/** Row 16: both agents on 127.0.0.1 (ports the kernel picks), the raw pair and sshd on loopback too. */
export async function loopbackPushRows(): Promise<ResultRow[]> {
  const bytes = LOOPBACK_FILE_MIB * MiB;
  const setUp = async (scope: Scope): Promise<PushEnds> => {
    const pair = await loopbackPair(scope);
    const sinkPort = await startRawServer(scope, undefined, 'sink', ['127.0.0.1', 0, bytes]);
    return { ...pair, netns: undefined, sinkHost: '127.0.0.1', sinkPort };
  };
  return pushRows({ bytes, timeoutMs: LOOPBACK_RUN_TIMEOUT_MS }, setUp, async (path, scope) => {
    const scp = await startScpServer(scope);
    const runners: Runner[] = [
      ['raw', () => rawOnce(path)],
      ['push', () => pushOnce(path)],
    ];
    if (typeof scp !== 'string') runners.push(['scp', () => scpOnce(path, scp)]);
    const medians = await interleavedMedians(runners, LOOPBACK_RUNS, LOOPBACK_WARMUPS);
    const [push, raw] = [medianOf(medians, 'push'), medianOf(medians, 'raw')];
    await reportFloor(path, raw.rate);
    const versusScp =
      typeof scp === 'string'
        ? skippedRows([VERSUS_SCP_NAME, CPU_NAME], scp)
        : versusScpRows(push, medianOf(medians, 'scp'), bytes);
    return [...versusScp, versusRawRow(VERSUS_RAW_NAME, push, raw)];
  });
}

/** Two linked agents on 127.0.0.1: "rx" first (its port picked by the kernel), then "tx" dialing it. */
export async function loopbackPair(scope: Scope): Promise<{ sender: PairAgent; receiver: PairAgent }> {
  const meshKey = generateMeshKey();
  const receiver = startPairAgent(scope, { name: 'rx', meshKey, listen: '127.0.0.1:0' });
  await connectControl(receiver, AGENT_READY);
  const port = await listeningPort(receiver);
  const sender = startPairAgent(scope, {
    name: 'tx',
    meshKey,
    listen: '127.0.0.1:0',
    peers: [`127.0.0.1:${port}`],
  });
  await linkPair(sender, receiver);
  return { sender, receiver };
}
