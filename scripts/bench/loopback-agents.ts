// Real agent processes on loopback for benchmarks: each listens on its own port and dials only the ports it is
// given (static peers, no discovery, no BLE), and everything a section started (processes, directories) is
// stopped and removed in its finally.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BenchAgent, writeAgentConfig } from './bench-agents.js';
import {
  type BenchChild,
  forgetOnExit,
  isRunning,
  removeOnExit,
  STOP_GRACE_MS,
  startChild,
  stopChild,
} from './bench-child.js';
import { withTimeout } from './timing.js';
import { startUnitAgent, unitLaunch } from './unit-launch.js';

const CLI_PATH = fileURLToPath(new URL('../../agent/cli/main.js', import.meta.url));

/** One agent on loopback. */
export interface LoopbackAgent extends BenchAgent {
  readonly port: number;
  readonly asUnit: boolean;
}

export interface LoopbackAgentSpec {
  readonly name: string;
  readonly port: number;
  /** Ports of the agents this one dials (its only links, with those that dial it). */
  readonly dials: readonly number[];
  /** Top-level config lines (before any table). */
  readonly topLevel?: readonly string[];
  /** Further tables, after the peers. */
  readonly tables?: readonly string[];
  /** The lines of its [mqtt] table; absent: no MQTT endpoint. */
  readonly mqtt?: readonly string[];
  /** Started as the systemd unit starts it (its node flags and environment), not as a bare `node main.js`. */
  readonly asUnit?: true;
}

/** Every process and directory a section started: all of it goes in its finally, by pid. */
export class Started {
  readonly agents: LoopbackAgent[] = [];
  readonly children: BenchChild[] = [];
  readonly dirs: string[] = [];

  async stopAll(): Promise<void> {
    for (const agent of this.agents) agent.client?.close();
    try {
      await withTimeout(
        Promise.all([...this.agents, ...this.children].map(stopChild)),
        STOP_GRACE_MS * 2,
        'stopping the benchmark processes',
      );
    } finally {
      for (const dir of this.dirs) {
        rmSync(dir, { recursive: true, force: true });
        forgetOnExit(dir);
      }
    }
  }

  temporaryDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    this.dirs.push(dir);
    removeOnExit(dir);
    return dir;
  }

  /** Starts an agent (its control client comes with connectControl). */
  agent(spec: LoopbackAgentSpec, meshKey: string): LoopbackAgent {
    const dir = this.temporaryDir(`nearmesh-bench-${spec.name}-`);
    const config = writeAgentConfig({
      name: spec.name,
      dir,
      meshKey,
      listen: `127.0.0.1:${spec.port}`,
      peers: spec.dials.map((port) => `127.0.0.1:${port}`),
      ...(spec.topLevel !== undefined && { topLevel: spec.topLevel }),
      ...(spec.tables !== undefined && { tables: spec.tables }),
      ...(spec.mqtt !== undefined && { mqtt: spec.mqtt }),
    });
    const asUnit = spec.asUnit === true;
    const agent: LoopbackAgent = Object.assign(spawnAgent(config, asUnit), {
      name: spec.name,
      dir,
      port: spec.port,
      asUnit,
    });
    this.agents.push(agent);
    return agent;
  }

  /** Starts `agent` again (it has exited) on its directory and config: the same identity, port and peers. */
  restart(agent: LoopbackAgent): LoopbackAgent {
    if (isRunning(agent)) throw new Error(`agent ${agent.name} is still running`);
    agent.client?.close();
    const config = join(agent.dir, 'nearmesh.toml');
    const restarted: LoopbackAgent = Object.assign(spawnAgent(config, agent.asUnit), {
      name: agent.name,
      dir: agent.dir,
      port: agent.port,
      asUnit: agent.asUnit,
    });
    this.agents.push(restarted);
    return restarted;
  }
}

function spawnAgent(config: string, asUnit: boolean): BenchChild {
  if (asUnit) return startUnitAgent(unitLaunch(), config);
  return startChild(process.execPath, [CLI_PATH, 'agent', '--config', config]);
}

/** Ports free right now on 127.0.0.1 (each agent then binds its own). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Server>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}
