// Real agents as child processes for integration and system tests: writes a TOML config, starts
// `nearmesh agent`, waits until its control socket answers, runs CLI commands against it, and
// always cleans up (every started process is killed in stopAllAgents()).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { CallResultRow } from '../../agent/console/format.js';
import type { ListenEvent } from '../../agent/control/wire.js';

export const CLI_PATH = resolve(import.meta.dirname, '../../dist/agent/cli/main.js');

export interface AgentSpec {
  name: string;
  meshKey: string;
  port: number;
  listenHost?: string;
  peers?: string[];
  discovery?: string[];
  /** Reuse a directory (a restart keeps identity); default a fresh temporary one. */
  dir?: string;
  /** Extra environment for the agent process (e.g. NOTIFY_SOCKET). */
  env?: Record<string, string>;
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
  /** Appended at the end of the file: tables only (top-level keys there would land in the last table). */
  extraToml?: string;
  /** Top-level `groups = [...]` (written before any table, where top-level keys must be). */
  groups?: string[];
  /** false writes `[wifi] enabled = false` (a BLE-only agent). */
  wifi?: false;
  /** BLE on, with these adapter specs ("hciN" / "uart:/path"); default `[ble] enabled = false`. */
  ble?: { peripheral: string; central: string; enabled?: true | 'auto'; maxLinks?: number };
  /** Lines of the `[mqtt]` table; default `listen = false` (no endpoint). */
  mqtt?: string[];
  /** `[console] serial = <path>`: a serial console on this device (default off). */
  consoleSerial?: string;
  /** The `[security]` table: who administers, when a forging neighbour is shunned (defaults when absent). */
  security?: { admins?: string[]; shunAfter?: number };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const started = new Set<AgentProcess>();
const directories = new Set<string>();

export class AgentProcess {
  readonly child: ChildProcess;
  output = '';
  readonly exited: Promise<number | null>;

  constructor(
    readonly spec: AgentSpec,
    readonly dir: string,
    readonly configPath: string,
  ) {
    const command = spec.netns === undefined ? process.execPath : 'ip';
    const args = [CLI_PATH, 'agent', '--config', configPath];
    this.child = spawn(
      command,
      spec.netns === undefined ? args : ['netns', 'exec', spec.netns, process.execPath, ...args],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          NEARMESH_LOG_LEVEL: 'debug',
          NEARMESH_CONFIG: undefined,
          NEARMESH_SOCKET: undefined,
          ...spec.env,
        },
      },
    );
    this.child.stdout?.on('data', (chunk: Buffer) => {
      this.output += chunk.toString();
    });
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.output += chunk.toString();
    });
    this.exited = new Promise((resolveExit) => this.child.once('exit', (code) => resolveExit(code)));
    started.add(this);
    void this.exited.then(() => started.delete(this));
  }

  get socketPath(): string {
    return join(this.dir, 'control.sock');
  }

  /** Runs `nearmesh <args> --socket <this agent's socket>`. */
  cli(args: string[], timeoutMs = 20_000, stdin?: Uint8Array): Promise<CliResult> {
    return runCli([...args, '--socket', this.socketPath], timeoutMs, this.spec.netns, stdin);
  }

  async json<T>(args: string[]): Promise<T> {
    const result = await this.cli([...args, '--json']);
    if (result.code !== 0)
      throw new Error(`nearmesh ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
    return JSON.parse(result.stdout) as T;
  }

  async waitReady(timeoutMs = 15_000): Promise<{ id: string; name: string }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.child.exitCode !== null)
        throw new Error(`agent ${this.spec.name} exited early:\n${this.output}`);
      const result = await this.cli(['id', '--json']);
      if (result.code === 0) return JSON.parse(result.stdout) as { id: string; name: string };
      if (Date.now() > deadline) throw new Error(`agent ${this.spec.name} not ready:\n${this.output}`);
      await sleep(100);
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

export function writeConfig(spec: AgentSpec, dir: string): string {
  const lines = [
    `name = ${JSON.stringify(spec.name)}`,
    `data_dir = ${JSON.stringify(dir)}`,
    `mesh_key = ${JSON.stringify(spec.meshKey)}`,
    ...(spec.groups === undefined ? [] : [`groups = ${JSON.stringify(spec.groups)}`]),
    '[wifi]',
    ...(spec.wifi === false ? ['enabled = false'] : []),
    `listen = "${spec.listenHost ?? '127.0.0.1'}:${spec.port}"`,
    `discovery = ${JSON.stringify(spec.discovery ?? [])}`,
    '[ble]',
    ...(spec.ble === undefined
      ? ['enabled = false']
      : [
          `enabled = ${JSON.stringify(spec.ble.enabled ?? true)}`,
          `peripheral = ${JSON.stringify(spec.ble.peripheral)}`,
          `central = ${JSON.stringify(spec.ble.central)}`,
          ...(spec.ble.maxLinks === undefined ? [] : [`max_links = ${spec.ble.maxLinks}`]),
        ]),
    '[mqtt]',
    ...(spec.mqtt ?? ['listen = false']),
    ...(spec.consoleSerial === undefined
      ? []
      : ['[console]', `serial = ${JSON.stringify(spec.consoleSerial)}`]),
    ...(spec.security === undefined ? [] : securityTable(spec.security)),
    ...(spec.peers ?? []).flatMap((address) => ['[[peers]]', `address = ${JSON.stringify(address)}`]),
    spec.extraToml ?? '',
  ];
  const path = join(dir, 'nearmesh.toml');
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

function securityTable(security: NonNullable<AgentSpec['security']>): string[] {
  const entries = [
    ['admins', security.admins],
    ['shun_after', security.shunAfter],
  ] as const;
  return [
    '[security]',
    ...entries.flatMap(([key, value]) => (value === undefined ? [] : [`${key} = ${JSON.stringify(value)}`])),
  ];
}

export function temporaryDir(prefix = 'nearmesh-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  directories.add(dir);
  return dir;
}

export async function startAgent(spec: AgentSpec): Promise<AgentProcess> {
  const dir = spec.dir ?? temporaryDir();
  const agent = new AgentProcess(spec, dir, writeConfig(spec, dir));
  await agent.waitReady();
  return agent;
}

/** Kills every agent still running and removes temporary directories; call from afterAll/afterEach. */
export async function stopAllAgents(): Promise<void> {
  await Promise.all([...started].map((agent) => agent.stop('SIGKILL')));
  for (const dir of directories) rmSync(dir, { recursive: true, force: true });
  directories.clear();
}

export function runCli(
  args: string[],
  timeoutMs = 20_000,
  netns?: string,
  stdin?: Uint8Array,
): Promise<CliResult> {
  const [command, fullArgs] =
    netns === undefined
      ? [process.execPath, [CLI_PATH, ...args]]
      : ['ip', ['netns', 'exec', netns, process.execPath, CLI_PATH, ...args]];
  return new Promise((resolveResult) => {
    const child = execFile(
      command,
      fullArgs,
      { timeout: timeoutMs, env: { ...process.env, NEARMESH_CONFIG: undefined, NEARMESH_SOCKET: undefined } },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolveResult({ code, stdout, stderr });
      },
    );
    // A command that fails early stops reading its input: EPIPE here is its business, its exit code tells.
    child.stdin?.on('error', () => {});
    child.stdin?.end(stdin);
  });
}

/** `nearmesh call <args> --json` on `agent`: the result rows (fails with stderr when it printed none). */
export async function cliCall(agent: AgentProcess, args: string[]): Promise<CallResultRow[]> {
  const result = await agent.cli(['call', ...args, '--json'], 30_000);
  if (result.stdout === '') throw new Error(`call failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as CallResultRow[];
}

/** Ports that were free a moment ago (the agents bind them right after). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<import('node:net').Server>((resolveServer) => {
          const server = createServer();
          server.listen(0, '127.0.0.1', () => resolveServer(server));
        }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise((resolveClose) => server.close(resolveClose))));
  return ports;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}

/** Polls `check` until it returns a value other than undefined, or fails with `what`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 15_000,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export interface Listener {
  readonly messages: ListenEvent[];
  stop(): void;
}

/** Runs `nearmesh listen --json` against an agent and collects what it prints. */
export async function listenTo(agent: AgentProcess): Promise<Listener> {
  const args = [CLI_PATH, 'listen', '--json', '--socket', agent.socketPath];
  const child =
    agent.spec.netns === undefined
      ? spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('ip', ['netns', 'exec', agent.spec.netns, process.execPath, ...args], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
  const messages: Listener['messages'] = [];
  let buffered = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines)
      if (line !== '') messages.push(JSON.parse(line) as Listener['messages'][number]);
  });
  // The subscription is live once the agent counts the client; give the process a moment to connect.
  await sleep(700);
  return { messages, stop: () => child.kill('SIGKILL') };
}
