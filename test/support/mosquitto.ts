// A real mosquitto broker for tests: a generated config in a temp dir, restartable on the same port with
// its persistence (SIGTERM saves it), stopped by PID.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { until } from './until.js';

export const MOSQUITTO = '/usr/sbin/mosquitto';

export function missingMosquittoTools(): string | undefined {
  if (!existsSync(MOSQUITTO)) return `${MOSQUITTO} is not installed (apt-get install mosquitto)`;
  if (spawnSync('openssl', ['version']).status !== 0) return 'openssl is not installed';
  return undefined;
}

/** Whether something accepts on host:port, seen from `netns` (a network namespace) or from here. */
async function portAccepts(port: number, host = '127.0.0.1', netns?: string): Promise<boolean> {
  if (netns !== undefined) {
    const probe = `require('net').connect(${port}, '${host}').on('connect', () => process.exit(0)).on('error', () => process.exit(1))`;
    return spawnSync('ip', ['netns', 'exec', netns, process.execPath, '-e', probe]).status === 0;
  }
  return new Promise((resolve) => {
    const socket = tcpConnect(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A mosquitto process with a generated config; restartable on the same ports with its persistence. */
export class Mosquitto {
  #process: ChildProcess | undefined;
  #stderr = '';
  constructor(
    readonly dir: string,
    readonly port: number,
    readonly tls?: { port: number; ca: string; cert: string; key: string },
    readonly extra: readonly string[] = [],
    /** Run inside this network namespace, listening on `host` there. */
    readonly place: { netns: string; host: string } | undefined = undefined,
  ) {}

  async start(): Promise<void> {
    const lines = [
      `user ${userInfo().username}`, // as root, mosquitto would switch to "mosquitto" and lose the temp dir
      'per_listener_settings false',
      'allow_anonymous true',
      'persistence true',
      `persistence_location ${this.dir}/`,
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      ...this.extra,
      `listener ${this.port} ${this.place?.host ?? '127.0.0.1'}`,
    ];
    if (this.tls !== undefined)
      lines.push(
        `listener ${this.tls.port} 127.0.0.1`,
        `cafile ${this.tls.ca}`,
        `certfile ${this.tls.cert}`,
        `keyfile ${this.tls.key}`,
      );
    const config = join(this.dir, 'mosquitto.conf');
    await writeFile(config, `${lines.join('\n')}\n`);
    const [command, args] =
      this.place === undefined
        ? [MOSQUITTO, ['-c', config]]
        : ['ip', ['netns', 'exec', this.place.netns, MOSQUITTO, '-c', config]];
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr += chunk.toString();
    });
    this.#process = child;
    const ports = [this.port, ...(this.tls === undefined ? [] : [this.tls.port])];
    await until(
      () => `mosquitto to accept on ${ports.join(' and ')}: ${this.#stderr}`,
      async () => {
        if (child.exitCode !== null)
          throw new Error(`mosquitto did not start (exit ${child.exitCode}): ${this.#stderr}`);
        for (const port of ports)
          if (!(await portAccepts(port, this.place?.host, this.place?.netns))) return false;
        return true;
      },
      { timeoutMs: 5000, intervalMs: 20 },
    );
  }

  /** SIGTERM lets mosquitto write its persistence file before it exits. */
  async stop(): Promise<void> {
    const child = this.#process;
    this.#process = undefined;
    if (child === undefined || child.exitCode !== null || child.pid === undefined) return;
    const exited = once(child, 'exit');
    process.kill(child.pid, 'SIGTERM');
    await exited;
  }
}
