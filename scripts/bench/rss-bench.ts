// Row 5: resident memory of a real, idle agent process (loopback only, no mDNS, no BLE; without and with
// its MQTT endpoint) against an idle bare `node` process measured the same way, from /proc/<pid>/status
// VmRSS. Measured once settled: V8's memory reducer compacts the heap about 8 s after start-up, so a
// reading at 3 s holds start-up garbage a daemon does not keep (shown too, as 5c). 5d-5e: whether a pair
// of agents gives back what 70 MB of pushes took. Agents run as the systemd unit starts them: its node
// flags and environment (scripts/systemd/nearmesh.service), which are part of what the memory is.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import { listeningPort, timedRun } from './agent-pair.js';
import {
  type BenchAgent,
  connectControl,
  waitForLinks,
  writeAgentConfig as writePairConfig,
} from './bench-agents.js';
import { type BenchChild, isRunning, STOP_GRACE_MS, startChild, stopChild } from './bench-child.js';
import { formatMegabytes, formatTimes, passMark, type ResultRow } from './table.js';
import { sleep, withTimeout } from './timing.js';
import { startUnitAgent, type UnitLaunch, unitLaunch } from './unit-launch.js';

const CLI_PATH = fileURLToPath(new URL('../../agent/cli/main.js', import.meta.url));
const MAX_AGENT_RSS_BYTES = 55e6;
/** 5d-5e: 7 files of 10 MB, pushed one after the other; then the pair is left alone this long. */
const PUSH_FILES = 7;
const PUSH_FILE_BYTES = 10e6;
const AFTER_PUSH_MS = 15_000;
const MAX_RSS_GROWTH_BYTES = 20e6;
const PUSH_TIMEOUT_MS = 60_000;
const LINKED = { timeoutMs: 20_000, pollMs: 100 };
/** Start-up reading, and the settled one (after V8's memory reducer has run). */
const STARTUP_MS = 3_000;
const SETTLED_MS = 15_000;
const READY_TIMEOUT_MS = 20_000;
const READY_POLL_MS = 150;
const CLI_TIMEOUT_MS = 10_000;

export function writeAgentConfig(dir: string, mqtt: boolean): string {
  const lines = [
    'name = "bench-idle"',
    `data_dir = ${JSON.stringify(dir)}`,
    `mesh_key = ${JSON.stringify(generateMeshKey())}`,
    '[wifi]',
    'listen = "127.0.0.1:0"',
    // No mDNS: nothing may leave 127.0.0.1.
    'discovery = []',
    '[ble]',
    'enabled = false',
    '[mqtt]',
    mqtt ? 'listen = "127.0.0.1:0"' : 'listen = false',
  ];
  const path = join(dir, 'nearmesh.toml');
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

function controlAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI_PATH, 'id', '--json', '--socket', socketPath],
      { timeout: CLI_TIMEOUT_MS },
      (error) => resolve(error === null),
    );
  });
}

export async function waitUntilReady(agent: BenchChild, socketPath: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (!isRunning(agent)) throw new Error(`agent exited early: ${agent.output.trim()}`);
    if (await controlAnswers(socketPath)) return;
    if (Date.now() > deadline) throw new Error(`agent control socket silent: ${agent.output.trim()}`);
    await sleep(READY_POLL_MS);
  }
}

export function vmRssBytes(started: BenchChild): number {
  const pid = started.child.pid;
  if (pid === undefined || !isRunning(started)) throw new Error(`process is not running: ${started.output}`);
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (match?.[1] === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

export async function idleRssRows(): Promise<ResultRow[]> {
  const root = mkdtempSync(join(tmpdir(), 'nearmesh-bench-'));
  const children: BenchChild[] = [];
  const launch = unitLaunch();
  try {
    const agents = [false, true].map((mqtt) => {
      const dir = join(root, mqtt ? 'mqtt' : 'plain');
      mkdirSync(dir);
      const agent = startUnitAgent(launch, writeAgentConfig(dir, mqtt));
      children.push(agent);
      return { agent, socket: join(dir, 'control.sock') };
    });
    const baseline = startChild(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    children.push(baseline);
    await Promise.all(agents.map(({ agent, socket }) => waitUntilReady(agent, socket)));
    const [plain, withMqtt] = agents.map(({ agent }) => agent) as [BenchChild, BenchChild];
    await sleep(STARTUP_MS);
    const startup = vmRssBytes(plain);
    await sleep(SETTLED_MS - STARTUP_MS);
    const baselineBytes = vmRssBytes(baseline);
    const row = (benchmark: string, bytes: number, goal: boolean): ResultRow => ({
      benchmark,
      nearmesh: formatMegabytes(bytes),
      baseline: formatMegabytes(baselineBytes),
      ratio: formatTimes(bytes / baselineBytes),
      goal: goal ? `≤ ${MAX_AGENT_RSS_BYTES / 1e6} MB (abs)` : '— (info)',
      pass: goal ? passMark(bytes <= MAX_AGENT_RSS_BYTES) : '—',
    });
    const idleRows = [
      row('5a idle RSS, agent vs bare node', vmRssBytes(plain), true),
      row('5b idle RSS, agent with MQTT endpoint', vmRssBytes(withMqtt), true),
      row('5c RSS 3 s after start-up (5a agent)', startup, false),
    ];
    await withTimeout(Promise.all(children.splice(0).map(stopChild)), STOP_GRACE_MS * 2, 'stopping agents');
    return [...idleRows, ...(await afterPushRows(launch, root, children))];
  } finally {
    try {
      await withTimeout(
        Promise.all(children.map(stopChild)),
        STOP_GRACE_MS * 2,
        'stopping benchmark children',
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
}

/** 5d-5e: rx and tx idle, then after tx pushed PUSH_FILES files to rx and both were left alone. */
async function afterPushRows(launch: UnitLaunch, root: string, children: BenchChild[]): Promise<ResultRow[]> {
  const meshKey = generateMeshKey();
  const start = (name: string, peers: readonly string[]): BenchAgent => {
    const dir = join(root, name);
    mkdirSync(dir);
    const config = writePairConfig({ name, dir, meshKey, listen: '127.0.0.1:0', peers });
    const agent = Object.assign(startUnitAgent(launch, config), { name, dir });
    children.push(agent);
    return agent;
  };
  const receiver = start('rx', []);
  await connectControl(receiver, { timeoutMs: READY_TIMEOUT_MS, pollMs: READY_POLL_MS });
  const sender = start('tx', [`127.0.0.1:${await listeningPort(receiver)}`]);
  await connectControl(sender, { timeoutMs: READY_TIMEOUT_MS, pollMs: READY_POLL_MS });
  await waitForLinks(sender, ['rx'], LINKED);
  await sleep(SETTLED_MS);
  const idle = [receiver, sender].map(vmRssBytes);
  const files = join(root, 'files');
  mkdirSync(files);
  for (let index = 0; index < PUSH_FILES; index++) {
    const file = join(files, `${index}.bin`);
    writeFileSync(file, randomBytes(PUSH_FILE_BYTES));
    const { record } = await timedRun({
      what: 'nearmesh push',
      command: process.execPath,
      args: [CLI_PATH, 'push', 'rx', file, '--json', '--socket', join(sender.dir, 'control.sock')],
      timeoutMs: PUSH_TIMEOUT_MS,
      done: (event) => event.type === 'sent' || event.type === 'failed',
    });
    if (record.type !== 'sent') throw new Error(`push failed: ${String(record.message)}`);
  }
  await sleep(AFTER_PUSH_MS);
  const after = [receiver, sender].map(vmRssBytes);
  for (const agent of [receiver, sender]) agent.client?.close();
  const total = formatMegabytes(PUSH_FILES * PUSH_FILE_BYTES);
  return ['5d RSS 15 s after receiving', '5e RSS 15 s after sending'].map((name, index) => {
    const [before, now] = [idle[index] ?? 0, after[index] ?? 0];
    return {
      benchmark: `${name} ${total}`,
      nearmesh: formatMegabytes(now),
      baseline: `idle ${formatMegabytes(before)}`,
      ratio: `${now >= before ? '+' : '−'}${formatMegabytes(Math.abs(now - before))}`,
      goal: `≤ idle + ${MAX_RSS_GROWTH_BYTES / 1e6} MB`,
      pass: passMark(now - before <= MAX_RSS_GROWTH_BYTES),
    };
  });
}
