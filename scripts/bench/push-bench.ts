// Rows 15-16: goodput of `nearmesh push --json` between two real agents (static peers, BLE off) against a
// bare Node TCP process moving the same file over the same path, runs interleaved. 15: two namespaces
// joined by a veth shaped with tc tbf at 40 Mbit/s on both ends; 16: both agents on 127.0.0.1.
// Both sides are timed by this process from the command's spawn to the line saying it is done (push: the
// 'sent' event, once the receiver verified the SHA-256; raw: after the sink's one-byte confirmation).

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
import { busyShare, type MachineTicks, machineTicks, processCpuMs } from './cpu-usage.js';
import { measurePushFloor } from './push-floor.js';
import { median } from './stats.js';
import { formatMegabytes, formatPercent, passMark, type ResultRow } from './table.js';

const MiB = 1024 * 1024;
export const SHAPED_FILE_MIB = 32;
export const SHAPED_RUNS = 2;
export const LOOPBACK_FILE_MIB = 128;
export const LOOPBACK_RUNS = 3;
/** The shaping asked for, on both ends of the veth: `tc qdisc add dev <veth> root tbf <this>`. */
export const TBF = ['rate', '40mbit', 'burst', '32kbit', 'latency', '50ms'] as const;
const SHAPED_MIN_RATIO = 0.9;
const LOOPBACK_MIN_RATIO = 0.5;
/** 32 MiB at 40 Mbit/s is about 7 s; a run this slow is broken. */
const SHAPED_RUN_TIMEOUT_MS = 40_000;
const LOOPBACK_RUN_TIMEOUT_MS = 60_000;
/** A dial, then its redial backoff (from 500 ms), then the handshake. */
const LINKED: Polling = { timeoutMs: 20_000, pollMs: 100 };
const RECEIVED_LOG_TIMEOUT_MS = 5_000;

const SHAPED_NAME = `15 push ${SHAPED_FILE_MIB} MiB, 40 Mbit/s tbf veth`;
const LOOPBACK_NAME = `16 push ${LOOPBACK_FILE_MIB} MiB on loopback`;

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

/** One push; its rate from spawn to 'sent', and the push's own rateBps on its last progress event. */
async function pushOnce(path: PushPath): Promise<{ rate: number; ownRate: number }> {
  const agentsCpu = (): number[] => [path.sender, path.receiver].map(agentCpuMs);
  const [cpuBefore, ticksBefore] = [agentsCpu(), machineTicks()];
  const { ms, record, lines } = await timedRun({
    what: 'nearmesh push',
    command: process.execPath,
    args: cliArgs(path.sender, ['push', path.receiver.name, path.file, '--json']),
    timeoutMs: path.timeoutMs,
    done: (event) => event.type === 'sent' || event.type === 'failed',
  });
  const [cpuAfter, ticksAfter] = [agentsCpu(), machineTicks()];
  if (record.type === 'failed') throw new Error(`push failed: ${String(record.message)}`);
  const [tx, rx] = cpuAfter.map((after, index) => after - (cpuBefore[index] ?? 0));
  process.stderr.write(`[agents' cpu ms: tx ${tx}, rx ${rx}; ${busyText(ticksBefore, ticksAfter)}] `);
  if (record.size !== path.bytes || record.resumedFrom !== 0)
    throw new Error(`push sent ${String(record.size)} bytes from ${String(record.resumedFrom)}`);
  const waits = lines.filter((line) => line.record.type === 'waiting').length;
  if (waits > 0) process.stderr.write(`[push waited ${waits} times] `);
  const last = lines.findLast((line) => line.record.type === 'progress')?.record;
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
  return { rate: (path.bytes / ms) * 1000, ownRate: Number(last?.rateBps ?? 0) };
}

async function rawOnce(path: PushPath): Promise<number> {
  const ticksBefore = machineTicks();
  const { ms, record } = await timedRawRun(
    path.netns,
    'source',
    [path.sinkHost, path.sinkPort, path.file],
    path.timeoutMs,
    'ms',
  );
  if (record.bytes !== path.bytes) throw new Error(`raw source sent ${String(record.bytes)} bytes`);
  process.stderr.write(`[raw: ${busyText(ticksBefore, machineTicks())}] `);
  return (path.bytes / ms) * 1000;
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
  const { senderHashMs, receiverMs } = measurePushFloor(path.file);
  const floorMs = cli + senderHashMs + receiverMs;
  const rawMs = (path.bytes / rawRate) * 1000;
  process.stderr.write(
    `[floor: \`nearmesh id\` ${cli.toFixed(0)} ms + sender's SHA-256 ${senderHashMs.toFixed(0)} ms + receiver's ` +
      `ChaCha20-Poly1305 open and SHA-256 ${receiverMs.toFixed(0)} ms = ${floorMs.toFixed(0)} ms against raw ` +
      `${rawMs.toFixed(0)} ms: no push here can pass ${formatPercent(rawMs / floorMs)}] `,
  );
}

/** Interleaved runs, median bytes per second of each; the row. */
async function goodputRow(name: string, path: PushPath, runs: number, minRatio: number): Promise<ResultRow> {
  const nearmesh: number[] = [];
  const own: number[] = [];
  const raw: number[] = [];
  for (let run = 0; run < runs; run++) {
    for (const kind of run % 2 === 0 ? ['raw', 'nearmesh'] : ['nearmesh', 'raw']) {
      if (kind === 'raw') raw.push(await rawOnce(path));
      else {
        const { rate, ownRate } = await pushOnce(path);
        nearmesh.push(rate);
        own.push(ownRate);
      }
    }
  }
  const list = (rates: number[]): string => rates.map((rate) => (rate / 1e6).toFixed(1)).join('/');
  process.stderr.write(
    `[runs MB/s: raw ${list(raw)}, push ${list(nearmesh)}, push's own rateBps at its last progress ${list(own)}] `,
  );
  const ratio = median(nearmesh) / median(raw);
  if (path.netns === undefined) await reportFloor(path, median(raw));
  return {
    benchmark: name,
    nearmesh: formatMegabytes(median(nearmesh), 'MB/s'),
    baseline: `raw ${formatMegabytes(median(raw), 'MB/s')}`,
    ratio: formatPercent(ratio),
    goal: `≥ ${formatPercent(minRatio)}`,
    pass: passMark(ratio >= minRatio),
  };
}

/** Where a row's pushes go: everything of PushPath but the file. */
type PushEnds = Omit<PushPath, 'file' | 'bytes' | 'timeoutMs'>;

interface PushRowSpec {
  readonly name: string;
  readonly bytes: number;
  readonly runs: number;
  readonly minRatio: number;
  readonly timeoutMs: number;
}

/** Sets up the ends (agents linked, sink listening), writes the file, runs the row; stops it all. */
async function pushRow(spec: PushRowSpec, setUp: (scope: Scope) => Promise<PushEnds>): Promise<ResultRow[]> {
  const scope = new Scope();
  try {
    const ends = await setUp(scope);
    const file = writeTestFile(scope.temporaryDir('nearmesh-bench-push-'), spec.bytes);
    const path: PushPath = { ...ends, file, bytes: spec.bytes, timeoutMs: spec.timeoutMs };
    return [await goodputRow(spec.name, path, spec.runs, spec.minRatio)];
  } finally {
    await scope.close();
  }
}

/** Row 15: n1 pushes to n2 across the shaped veth; the raw source in n1 sends to a sink in n2. */
export async function shapedPushRows(): Promise<ResultRow[]> {
  if (process.getuid?.() !== 0) return skippedRows([SHAPED_NAME], 'needs root (network namespaces, tc)');
  const spec: PushRowSpec = {
    name: SHAPED_NAME,
    bytes: SHAPED_FILE_MIB * MiB,
    runs: SHAPED_RUNS,
    minRatio: SHAPED_MIN_RATIO,
    timeoutMs: SHAPED_RUN_TIMEOUT_MS,
  };
  return pushRow(spec, async (scope) => {
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
    const sinkArgs = ['0.0.0.0', NETNS_RAW_PORT, spec.bytes];
    const sinkPort = await startRawServer(scope, receiverNs, 'sink', sinkArgs);
    await linkPair(sender, receiver);
    return { sender, receiver, netns: senderNs, sinkHost, sinkPort };
  });
}

/** Row 16: both agents on 127.0.0.1 (ports the kernel picks), the raw pair on loopback too. */
export async function loopbackPushRows(): Promise<ResultRow[]> {
  const spec: PushRowSpec = {
    name: LOOPBACK_NAME,
    bytes: LOOPBACK_FILE_MIB * MiB,
    runs: LOOPBACK_RUNS,
    minRatio: LOOPBACK_MIN_RATIO,
    timeoutMs: LOOPBACK_RUN_TIMEOUT_MS,
  };
  return pushRow(spec, async (scope) => {
    const pair = await loopbackPair(scope);
    const sinkArgs = ['127.0.0.1', 0, spec.bytes];
    const sinkPort = await startRawServer(scope, undefined, 'sink', sinkArgs);
    return { ...pair, netns: undefined, sinkHost: '127.0.0.1', sinkPort };
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
