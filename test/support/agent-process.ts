// Real agents as child processes for integration and system tests: writes a TOML config, starts
// `nearmesh agent`, waits until its control socket answers, runs CLI commands against it, and
// always cleans up (every started process is killed in stopAllAgents()).
import { type ChildProcess, type ChildProcessByStdio, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import type { CallResultRow } from '../../agent/api.js';
import type { ListenEvent } from '../../agent/control/wire.js';
import { until } from './until.js';

export const CLI_PATH = resolve(import.meta.dirname, '../../dist/agent/cli/main.js');

export interface AgentSpec {
  name: string;
  /** The config's mesh_key; undefined: none (the agent uses data_dir/mesh.key, or has no mesh yet). */
  meshKey: string | undefined;
  port: number;
  listenHost?: string;
  peers?: string[];
  discovery?: string[];
  /** Reuse a directory (a restart keeps identity); default a fresh temporary one. */
  dir?: string;
  /** data_dir somewhere else than `dir` (the config and the control socket stay in `dir`). */
  dataDir?: string;
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
  /** Lines of the `[http]` table; default `listen = false` (no endpoint). */
  http?: string[];
  /** `[console] serial = <path>`: a serial console on this device (default off). */
  consoleSerial?: string;
  /** More lines of the `[console]` table, with consoleSerial (`password = "..."`). */
  consoleLines?: string[];
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

  /** Starts `nearmesh <args> --socket <this agent's socket>` and returns it running, its output piped. */
  spawnCli(args: string[], socketPath = this.socketPath): ChildProcessByStdio<null, Readable, Readable> {
    const fullArgs = [CLI_PATH, ...args, '--socket', socketPath];
    const options = { stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'] };
    return this.spec.netns === undefined
      ? spawn(process.execPath, fullArgs, options)
      : spawn('ip', ['netns', 'exec', this.spec.netns, process.execPath, ...fullArgs], options);
  }

  async json<T>(args: string[]): Promise<T> {
    const result = await this.cli([...args, '--json']);
    if (result.code !== 0)
      throw new Error(`nearmesh ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
    return JSON.parse(result.stdout) as T;
  }

  async waitReady(timeoutMs = 15_000): Promise<{ id: string; name: string }> {
    const result = await until(
      () => `agent ${this.spec.name} to answer on its control socket:\n${this.output}`,
      async () => {
        if (this.child.exitCode !== null)
          throw new Error(`agent ${this.spec.name} exited early:\n${this.output}`);
        const answer = await this.cli(['id', '--json']);
        return answer.code === 0 ? answer : undefined;
      },
      { timeoutMs, intervalMs: 100 },
    );
    return JSON.parse(result.stdout) as { id: string; name: string };
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

export function writeConfig(spec: AgentSpec, dir: string): string {
  const lines = [
    `name = ${JSON.stringify(spec.name)}`,
    `data_dir = ${JSON.stringify(spec.dataDir ?? dir)}`,
    ...(spec.meshKey === undefined ? [] : [`mesh_key = ${JSON.stringify(spec.meshKey)}`]),
    ...(spec.groups === undefined ? [] : [`groups = ${JSON.stringify(spec.groups)}`]),
    ...(spec.dataDir === undefined
      ? []
      : ['[control]', `socket = ${JSON.stringify(join(dir, 'control.sock'))}`]),
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
    '[http]',
    ...(spec.http ?? ['listen = false']),
    ...(spec.consoleSerial === undefined
      ? []
      : ['[console]', `serial = ${JSON.stringify(spec.consoleSerial)}`, ...(spec.consoleLines ?? [])]),
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

export interface Listener {
  readonly messages: ListenEvent[];
  stop(): void;
  /** Settles when the command has exited. */
  readonly exited: Promise<void>;
}

/**
 * Starts a CLI command that stays connected (`listen`, `stream --receive`) against `agent`, and resolves once
 * the agent has answered its request with a line containing `answer`: from then on the command is live. The
 * command reaches the agent through a relay on a socket of our own, which sees that answer go by.
 */
export async function startLive(
  agent: AgentProcess,
  args: string[],
  answer: string,
): Promise<ChildProcessByStdio<null, Readable, Readable>> {
  const relayPath = join(temporaryDir('nearmesh-relay-'), 'control.sock');
  let answers = '';
  const relay = createServer((commandSide) => {
    const agentSide = connect(agent.socketPath);
    agentSide.on('data', (chunk: Buffer) => {
      if (answers.length < 64 * 1024) answers += chunk.toString();
    });
    commandSide.pipe(agentSide).pipe(commandSide);
    for (const [side, other] of [
      [commandSide, agentSide],
      [agentSide, commandSide],
    ] as const) {
      side.on('error', () => other.destroy());
      side.on('close', () => other.destroy());
    }
  });
  await new Promise<void>((resolveListen) => relay.listen(relayPath, resolveListen));
  const child = agent.spawnCli(args, relayPath);
  try {
    await until(
      () =>
        `nearmesh ${args.join(' ')} live on ${agent.spec.name} (the agent answered ${JSON.stringify(answers)})`,
      () => {
        if (child.exitCode !== null) throw new Error(`nearmesh ${args.join(' ')} exited (${child.exitCode})`);
        return answers.split('\n').some((line) => line.includes(answer));
      },
    );
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  } finally {
    relay.close(); // takes no new connections; the command's stays up
  }
  return child;
}

/**
 * `nearmesh listen --json` (with `args`) on `agent`, collecting what it prints; resolves once it is live
 * (the command reaches the agent through startLive's relay).
 */
export async function listenTo(agent: AgentProcess, args: string[] = []): Promise<Listener> {
  return collectListen(await startLive(agent, ['listen', '--json', ...args], '"consumer":'));
}

/**
 * `nearmesh listen --json` (with `args`) straight on the agent's socket, collecting what it prints; not
 * known to be live when it resolves. For a listen killed mid-stream: nothing stands between it and the agent.
 */
export function listenDirectly(agent: AgentProcess, args: string[] = []): Listener {
  return collectListen(agent.spawnCli(['listen', '--json', ...args]));
}

function collectListen(child: ChildProcessByStdio<null, Readable, Readable>): Listener {
  const messages: Listener['messages'] = [];
  let buffered = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines)
      if (line !== '') messages.push(JSON.parse(line) as Listener['messages'][number]);
  });
  const exited = once(child, 'exit').then(() => undefined);
  return { messages, stop: () => child.kill('SIGKILL'), exited };
}

/** Waits until `a` and `b` each show the other connected (over `medium`, when given). */
export async function untilLinked(
  a: AgentProcess,
  b: AgentProcess,
  options: { medium?: string; timeoutMs?: number } = {},
): Promise<void> {
  const linked = async (agent: AgentProcess, name: string) =>
    (await agent.json<{ name: string; state: string; medium: string }[]>(['peers'])).find(
      (peer) =>
        peer.name === name &&
        peer.state === 'connected' &&
        (options.medium === undefined || peer.medium === options.medium),
    );
  const timeoutMs = options.timeoutMs ?? 20_000;
  await until(`${a.spec.name} linked to ${b.spec.name}`, () => linked(a, b.spec.name), { timeoutMs });
  await until(`${b.spec.name} linked to ${a.spec.name}`, () => linked(b, a.spec.name), { timeoutMs });
}

/** `from` sends `text` to `to` by name; a listen on `to` gets exactly that message, from `from`. */
export async function expectDelivered(from: AgentProcess, to: AgentProcess, text: string): Promise<void> {
  const listener = await listenTo(to);
  try {
    const sent = await from.cli(['send', to.spec.name, text]);
    if (sent.code !== 0) throw new Error(`send failed (${sent.code}): ${sent.stderr}`);
    await until(`the message at ${to.spec.name}`, () => listener.messages.length > 0, { timeoutMs: 10_000 });
    const [message] = listener.messages;
    if (listener.messages.length !== 1 || message?.payload !== text || message.from_name !== from.spec.name) {
      throw new Error(
        `expected one message "${text}" from ${from.spec.name}, got ${JSON.stringify(listener.messages)}`,
      );
    }
  } finally {
    listener.stop();
  }
}
