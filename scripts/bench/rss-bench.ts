// Row 5: resident memory of a real, idle agent process (loopback only, no mDNS, no BLE; without and with
// its MQTT endpoint) against an idle bare `node` process measured the same way, from /proc/<pid>/status
// VmRSS. Measured once settled: V8's memory reducer compacts the heap about 8 s after start-up, so a
// reading at 3 s holds start-up garbage a daemon does not keep (shown too, as 5c).
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import { type BenchChild, isRunning, STOP_GRACE_MS, startChild, stopChild } from './bench-child.js';
import { formatMegabytes, formatTimes, passMark, type ResultRow } from './table.js';
import { sleep, withTimeout } from './timing.js';

const CLI_PATH = fileURLToPath(new URL('../../agent/cli/main.js', import.meta.url));
const MAX_AGENT_RSS_BYTES = 60e6;
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
  try {
    const agents = [false, true].map((mqtt) => {
      const dir = join(root, mqtt ? 'mqtt' : 'plain');
      mkdirSync(dir);
      const agent = startChild(process.execPath, [
        CLI_PATH,
        'agent',
        '--config',
        writeAgentConfig(dir, mqtt),
      ]);
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
    return [
      row('5a idle RSS, agent vs bare node', vmRssBytes(plain), true),
      row('5b idle RSS, agent with MQTT endpoint', vmRssBytes(withMqtt), true),
      row('5c RSS 3 s after start-up (5a agent)', startup, false),
    ];
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
