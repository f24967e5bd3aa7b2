// Row 5: resident memory of a real, idle agent process (loopback only, no mDNS, no BLE, no MQTT)
// against an idle bare `node` process measured the same way, from /proc/<pid>/status VmRSS.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import { formatMegabytes, formatTimes, passMark, type ResultRow } from './table.js';
import { sleep, withTimeout } from './timing.js';

const CLI_PATH = fileURLToPath(new URL('../../agent/cli/main.js', import.meta.url));
const MAX_AGENT_RSS_BYTES = 60e6;
const IDLE_MS = 3_000;
const READY_TIMEOUT_MS = 20_000;
const READY_POLL_MS = 150;
const CLI_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3_000;
const OUTPUT_TAIL_CHARS = 2_000;

/** A child we started, with the tail of its output for error messages. */
interface Started {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  output: string;
}

function start(args: readonly string[]): Started {
  const env = { ...process.env };
  // The agent must read only the config we give it.
  delete env.NEARMESH_CONFIG;
  delete env.NEARMESH_SOCKET;
  delete env.NEARMESH_LOG_LEVEL;
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  const started: Started = {
    child,
    exited: once(child, 'exit').then(
      () => undefined,
      () => undefined,
    ),
    output: '',
  };
  const keepTail = (chunk: Buffer): void => {
    started.output = (started.output + chunk.toString()).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on('data', keepTail);
  child.stderr?.on('data', keepTail);
  return started;
}

function isRunning(started: Started): boolean {
  return started.child.exitCode === null && started.child.signalCode === null;
}

/** SIGTERM to this child's pid only, SIGKILL if it has not exited after a grace period. */
async function stop(started: Started): Promise<void> {
  if (!isRunning(started)) return;
  started.child.kill('SIGTERM');
  const timer = setTimeout(() => started.child.kill('SIGKILL'), STOP_GRACE_MS);
  await started.exited;
  clearTimeout(timer);
}

function writeAgentConfig(dir: string): string {
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
    'listen = false',
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

async function waitUntilReady(agent: Started, socketPath: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (!isRunning(agent)) throw new Error(`agent exited early: ${agent.output.trim()}`);
    if (await controlAnswers(socketPath)) return;
    if (Date.now() > deadline) throw new Error(`agent control socket silent: ${agent.output.trim()}`);
    await sleep(READY_POLL_MS);
  }
}

function vmRssBytes(started: Started): number {
  const pid = started.child.pid;
  if (pid === undefined || !isRunning(started)) throw new Error(`process is not running: ${started.output}`);
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (match?.[1] === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

export async function idleRssRow(): Promise<ResultRow> {
  const dir = mkdtempSync(join(tmpdir(), 'nearmesh-bench-'));
  const children: Started[] = [];
  try {
    const configPath = writeAgentConfig(dir);
    const agent = start([CLI_PATH, 'agent', '--config', configPath]);
    children.push(agent);
    const baseline = start(['-e', 'setInterval(() => {}, 1000)']);
    children.push(baseline);
    await waitUntilReady(agent, join(dir, 'control.sock'));
    await sleep(IDLE_MS);
    const agentBytes = vmRssBytes(agent);
    const baselineBytes = vmRssBytes(baseline);
    return {
      benchmark: '5  idle RSS, agent vs bare node',
      nearmesh: formatMegabytes(agentBytes),
      baseline: formatMegabytes(baselineBytes),
      ratio: formatTimes(agentBytes / baselineBytes),
      goal: `≤ ${MAX_AGENT_RSS_BYTES / 1e6} MB (abs)`,
      pass: passMark(agentBytes <= MAX_AGENT_RSS_BYTES),
    };
  } finally {
    try {
      await withTimeout(Promise.all(children.map(stop)), STOP_GRACE_MS * 2, 'stopping benchmark children');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
