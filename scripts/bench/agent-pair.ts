// Rows 14-17: a pair of real agents (in two namespaces or on loopback), the commands a user runs against
// them (`nearmesh push`, `nearmesh send --lines`) and the bare TCP processes of the baselines, each timed
// from its spawn to the JSON line that says it is done. Everything a row starts is deferred to its Scope,
// which stops it (by pid) and removes it in reverse order, every step bounded.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import { Lab } from '../lab/lab.js';
import type { Topology } from '../lab/topology.js';
import { type BenchAgent, clientOf, type Polling, writeAgentConfig } from './bench-agents.js';
import {
  type BenchChild,
  forgetOnExit,
  isRunning,
  removeOnExit,
  STOP_GRACE_MS,
  startChild,
  stopChild,
} from './bench-child.js';
import type { ResultRow } from './table.js';
import { sleep, withTimeout } from './timing.js';

export const CLI_PATH = fileURLToPath(new URL('../../agent/cli/main.js', import.meta.url));
const RAW_TCP_CHILD = fileURLToPath(new URL('./raw-tcp-child.js', import.meta.url));
/** Inside its own namespace each agent (and each bare server) has the ports to itself. */
export const NETNS_AGENT_PORT = 7450;
export const NETNS_RAW_PORT = 7451;
/** Until an agent's control socket answers. */
export const AGENT_READY: Polling = { timeoutMs: 20_000, pollMs: 50 };
/** How long a finished command may take to exit by itself before it is stopped. */
const EXIT_GRACE_MS = 2_000;

export type JsonRecord = Readonly<Record<string, unknown>>;

/** A JSON line a child printed, with when it arrived here. */
export interface JsonLine {
  readonly record: JsonRecord;
  readonly atNs: bigint;
}

/** Clean-ups run last-in first-out, each bounded; a failing one is reported and the rest still run. */
export class Scope {
  readonly #cleanups: (() => unknown)[] = [];

  defer(cleanup: () => unknown): void {
    this.#cleanups.push(cleanup);
  }

  temporaryDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    removeOnExit(dir);
    this.defer(() => {
      rmSync(dir, { recursive: true, force: true });
      forgetOnExit(dir);
    });
    return dir;
  }

  async close(): Promise<void> {
    for (const cleanup of this.#cleanups.splice(0).reverse()) {
      try {
        await withTimeout(
          Promise.resolve().then(cleanup),
          STOP_GRACE_MS * 2,
          'a bench clean-up (stopping a process)',
        );
      } catch (error) {
        process.stderr.write(`[clean-up: ${error instanceof Error ? error.message : String(error)}] `);
      }
    }
  }
}

/** The JSON lines of a child's stdout ("<N>" journald prefixes dropped), as they arrive. */
export class JsonLines {
  readonly lines: JsonLine[] = [];
  readonly #wakers = new Set<() => void>();
  #ended = false;

  constructor(readonly started: BenchChild) {
    let pending = '';
    const stdout = started.child.stdout;
    stdout?.on('data', (chunk: Buffer) => {
      const atNs = process.hrtime.bigint();
      pending += chunk.toString();
      for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n')) {
        const record = parseRecord(pending.slice(0, end).replace(/^<\d>/, ''));
        pending = pending.slice(end + 1);
        if (record !== undefined) this.lines.push({ record, atNs });
      }
      this.#wake();
    });
    // 'end', not the exit: by then every line the child printed has been read.
    stdout?.on('end', () => {
      this.#ended = true;
      this.#wake();
    });
  }

  /** The first line `match` accepts (already printed or yet to come), within `timeoutMs`. */
  async waitFor(what: string, match: (record: JsonRecord) => boolean, timeoutMs: number): Promise<JsonLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find((line) => match(line.record));
      if (found !== undefined) return found;
      if (this.#ended) throw new Error(`${what}: the process ended first: ${tail(this.started)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: not within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.#wakers.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.#wakers.add(wake);
      });
    }
  }

  #wake(): void {
    for (const wake of [...this.#wakers]) wake();
  }
}

function parseRecord(line: string): JsonRecord | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line) as JsonRecord;
  } catch {
    return undefined;
  }
}

function tail(started: BenchChild): string {
  return started.output.trim().slice(-300);
}

/** `command args`, inside `netns` when given (`ip netns exec` execs in place: the pid is the command's). */
export function startIn(
  netns: string | undefined,
  command: string,
  args: readonly string[],
  stdin: 'ignore' | 'pipe' = 'ignore',
): BenchChild {
  if (netns === undefined) return startChild(command, args, stdin);
  return startChild('ip', ['netns', 'exec', netns, command, ...args], stdin);
}

export interface PairAgentSpec {
  readonly name: string;
  readonly meshKey: string;
  readonly listen: string;
  readonly peers?: readonly string[];
  readonly netns?: string;
  /** BLE on these adapters ("uart:<pty>"), else BLE off. */
  readonly ble?: { readonly peripheral: string; readonly central: string };
  /** The `nearmesh` to run (another build's, such as the v1 baseline's); this build's by default. */
  readonly cli?: string;
  /** Further config tables, after the peers. */
  readonly tables?: readonly string[];
}

/** Why namespaces cannot be made here, or undefined when they can (a probe namespace, removed at once). */
export function whyNetnsUnavailable(): string | undefined {
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

/** An agent with its log records (pino JSON on stdout). */
export interface PairAgent extends BenchAgent {
  readonly log: JsonLines;
  /** The `nearmesh` it runs: its commands (cliArgs) run the same build. */
  readonly cli: string;
}

const BLE_OFF = '[ble]\nenabled = false\n';

/** Turns on BLE in a config writeAgentConfig wrote (which always says BLE off). */
function enableBle(configPath: string, ble: NonNullable<PairAgentSpec['ble']>): void {
  const text = readFileSync(configPath, 'utf8');
  if (!text.includes(BLE_OFF)) throw new Error(`no "${BLE_OFF.trim()}" in ${configPath} to turn BLE on`);
  const on = `[ble]\nenabled = true\nperipheral = ${JSON.stringify(ble.peripheral)}\ncentral = ${JSON.stringify(ble.central)}\n`;
  writeFileSync(configPath, text.replace(BLE_OFF, on));
}

/** Starts `nearmesh agent` (no discovery, only the static peers given); the caller awaits connectControl. */
export function startPairAgent(scope: Scope, spec: PairAgentSpec): PairAgent {
  const dir = scope.temporaryDir(`nearmesh-bench-${spec.name}-`);
  const config = writeAgentConfig({
    name: spec.name,
    dir,
    meshKey: spec.meshKey,
    listen: spec.listen,
    peers: spec.peers ?? [],
    ...(spec.tables !== undefined && { tables: spec.tables }),
    ...(spec.cli !== undefined && { olderBuild: true }),
  });
  if (spec.ble !== undefined) enableBle(config, spec.ble);
  const cli = spec.cli ?? CLI_PATH;
  const started = startIn(spec.netns, process.execPath, [cli, 'agent', '--config', config]);
  const agent: PairAgent = Object.assign(started, { name: spec.name, dir, cli, log: new JsonLines(started) });
  scope.defer(async () => {
    agent.client?.close();
    await stopChild(agent);
  });
  return agent;
}

/** The port the agent's Wi-Fi listener got (configured as port 0). */
export async function listeningPort(agent: BenchAgent): Promise<number> {
  const status = (await clientOf(agent).request({ cmd: 'status' })) as { wifi: { listen: string | null } };
  const port = Number(/:(\d+)$/.exec(status.wifi.listen ?? '')?.[1]);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`${agent.name} has no Wi-Fi listener`);
  return port;
}

/**
 * Empties the agent's app inbox, whoever waits for what is there: for benches that send an agent many
 * reliable messages with no app taking them (a full inbox would refuse the next run's).
 */
export async function clearInbox(agent: BenchAgent): Promise<void> {
  await clientOf(agent).request({ cmd: 'inbox-clear' });
}

/** `nearmesh <args> --socket <agent's socket>`, with the agent's own build of nearmesh. */
export function cliArgs(agent: PairAgent, args: readonly string[]): string[] {
  return [agent.cli, ...args, '--socket', join(agent.dir, 'control.sock')];
}

/** What the CLI costs before it sends anything: node start-up, the CLI's imports, one control request. */
export async function cliFloorMs(agent: PairAgent, timeoutMs: number): Promise<number> {
  const { ms } = await timedRun({
    what: 'nearmesh id',
    command: process.execPath,
    args: cliArgs(agent, ['id', '--json']),
    timeoutMs,
    done: (result) => 'id' in result,
  });
  return ms;
}

export interface TimedRun {
  readonly what: string;
  readonly netns?: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly stdin?: string;
  readonly timeoutMs: number;
  /** The line that ends the run (a failure line too: the caller looks at it). */
  readonly done: (record: JsonRecord) => boolean;
}

export interface Timed {
  /** From the spawn to the line `done` accepted. */
  readonly ms: number;
  readonly record: JsonRecord;
  /** Every JSON line printed up to then. */
  readonly lines: readonly JsonLine[];
}

/** Runs a command to the line `done` accepts. */
export async function timedRun(run: TimedRun): Promise<Timed> {
  const startNs = process.hrtime.bigint();
  const started = startIn(run.netns, run.command, run.args, run.stdin === undefined ? 'ignore' : 'pipe');
  const lines = new JsonLines(started);
  started.child.stdin?.end(run.stdin);
  try {
    const line = await lines.waitFor(
      run.what,
      (record) => run.done(record) || 'error' in record,
      run.timeoutMs,
    );
    if ('error' in line.record) throw new Error(`${run.what}: ${String(line.record.error)}`);
    return { ms: Number(line.atNs - startNs) / 1e6, record: line.record, lines: lines.lines };
  } finally {
    if (isRunning(started)) await Promise.race([started.exited, sleep(EXIT_GRACE_MS)]);
    await stopChild(started);
  }
}

/** A bare TCP process (raw-tcp-child.ts) run to its result line. */
export function timedRawRun(
  netns: string | undefined,
  mode: string,
  args: readonly (string | number)[],
  timeoutMs: number,
  resultKey: string,
): Promise<Timed> {
  return timedRun({
    what: `raw TCP ${mode}`,
    ...(netns !== undefined && { netns }),
    command: process.execPath,
    args: [RAW_TCP_CHILD, mode, ...args.map(String)],
    timeoutMs,
    done: (record) => resultKey in record,
  });
}

/** Starts a bare TCP server (echo, sink) and returns the port it listens on; the scope stops it. */
export async function startRawServer(
  scope: Scope,
  netns: string | undefined,
  mode: 'echo' | 'sink',
  args: readonly (string | number)[],
): Promise<number> {
  const started = startIn(netns, process.execPath, [RAW_TCP_CHILD, mode, ...args.map(String)]);
  scope.defer(() => stopChild(started));
  const lines = new JsonLines(started);
  const { record } = await lines.waitFor(
    `raw TCP ${mode} server`,
    (r) => 'listening' in r,
    AGENT_READY.timeoutMs,
  );
  return Number(record.listening);
}

/** Rows that could not run here, with the reason as their goal cell. */
export function skippedRows(names: readonly string[], reason: string): ResultRow[] {
  return names.map((benchmark) => ({
    benchmark,
    nearmesh: 'skipped',
    baseline: '—',
    ratio: '—',
    goal: `skipped: ${reason}`.slice(0, 80),
    pass: 'ERROR' as const,
  }));
}

/**
 * A lab of `topology` with one agent per node, each dialling its lab neighbours only (of the build `cli`, this
 * one's by default; `tables` added to every config); the scope stops the agents, then removes the lab.
 */
export function startLab(
  scope: Scope,
  topology: Topology,
  label: string,
  options: { cli?: string; tables?: readonly string[] } = {},
): { lab: Lab; agents: PairAgent[] } {
  const lab = new Lab(topology, label);
  lab.create();
  // Deferred first, so it runs last: a namespace with a process inside outlives `ip netns del`.
  scope.defer(() => lab.destroy());
  const meshKey = generateMeshKey();
  const agents = topology.nodes.map((node) =>
    startPairAgent(scope, {
      name: node,
      meshKey,
      listen: `0.0.0.0:${NETNS_AGENT_PORT}`,
      peers: lab.peerAddresses(node, NETNS_AGENT_PORT),
      netns: lab.namespaceOf(node),
      ...(options.cli !== undefined && { cli: options.cli }),
      ...(options.tables !== undefined && { tables: options.tables }),
    }),
  );
  return { lab, agents };
}
