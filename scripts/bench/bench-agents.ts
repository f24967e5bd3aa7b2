// Real agents a benchmark drives through their control sockets (rows 8 and 11-13): the agent config,
// the control client once it answers, polling for links and routes, and the reliable-send round trip.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RouteInfo } from '../../agent/api.js';
import { ControlClient } from '../../agent/control/client.js';
import type { PeerInfo } from '../../agent/links/peer-directory.js';
import { type BenchChild, isRunning } from './bench-child.js';
import { elapsedMs, sleep, withTimeout } from './timing.js';

const PAYLOAD_BASE64 = Buffer.from('{"t":21.5}').toString('base64');

/** One agent, with its control client once it answers. */
export interface BenchAgent extends BenchChild {
  /** Its configured name (the name its peers list it under). */
  readonly name: string;
  readonly dir: string;
  client?: ControlClient;
  id?: string;
}

/** How long a wait may take and how often it asks. */
export interface Polling {
  readonly timeoutMs: number;
  readonly pollMs: number;
}

/** What an agent's nearmesh.toml says beyond its defaults. */
export interface AgentConfig {
  readonly name: string;
  readonly dir: string;
  readonly meshKey: string;
  /** host:port of its Wi-Fi listener. */
  readonly listen: string;
  /** Addresses it dials: its only links, with those that dial it. */
  readonly peers: readonly string[];
  /** Lines before [wifi] (top-level keys). */
  readonly topLevel?: readonly string[];
  /** Lines after the peers (further tables). */
  readonly tables?: readonly string[];
  /** The lines of its [mqtt] table; absent: no MQTT endpoint. */
  readonly mqtt?: readonly string[];
  /** Written for another build (the v1 baseline's), older than the web view: no [http] table. */
  readonly olderBuild?: true;
}

/** Writes `dir`/nearmesh.toml (static peers only, no BLE, MQTT as `mqtt` says) and returns its path. */
export function writeAgentConfig(config: AgentConfig): string {
  const lines = [
    `name = ${JSON.stringify(config.name)}`,
    `data_dir = ${JSON.stringify(config.dir)}`,
    `mesh_key = ${JSON.stringify(config.meshKey)}`,
    ...(config.topLevel ?? []),
    '[wifi]',
    `listen = ${JSON.stringify(config.listen)}`,
    // Static peers only: each agent dials its neighbours and nothing else, no multicast.
    'discovery = []',
    '[ble]',
    'enabled = false',
    // No web view: its default port is one for the whole machine, and no bench row reads it.
    ...(config.olderBuild === true ? [] : ['[http]', 'listen = false']),
    '[mqtt]',
    ...(config.mqtt ?? ['listen = false']),
    ...config.peers.flatMap((address) => ['[[peers]]', `address = ${JSON.stringify(address)}`]),
    ...(config.tables ?? []),
  ];
  const path = join(config.dir, 'nearmesh.toml');
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

export function clientOf(agent: BenchAgent): ControlClient {
  if (agent.client === undefined) throw new Error(`agent ${agent.name} has no control client`);
  return agent.client;
}

export function idOf(agent: BenchAgent): string {
  if (agent.id === undefined) throw new Error(`agent ${agent.name} has no id yet`);
  return agent.id;
}

/** Polls `check` until it returns true, naming `what` (and the agent's log) when it never does. */
export async function waitUntil(
  what: string,
  agent: BenchAgent,
  polling: Polling,
  check: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + polling.timeoutMs;
  for (;;) {
    if (!isRunning(agent)) throw new Error(`agent ${agent.name} exited: ${agent.output.trim().slice(-300)}`);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${polling.timeoutMs} ms`);
    await sleep(polling.pollMs);
  }
}

/** The control socket answers `id`; keeps the client for everything after. */
export async function connectControl(agent: BenchAgent, polling: Polling): Promise<void> {
  await waitUntil(`agent ${agent.name} ready`, agent, polling, async () => {
    const client = await ControlClient.connect(join(agent.dir, 'control.sock'));
    try {
      const { id } = (await client.request({ cmd: 'id' })) as { id: string };
      agent.client = client;
      agent.id = id;
      return true;
    } catch (error) {
      client.close();
      throw error;
    }
  });
}

/** `agent` is connected to exactly the peers named `neighbours`. */
export async function waitForLinks(
  agent: BenchAgent,
  neighbours: readonly string[],
  polling: Polling,
): Promise<void> {
  const expected = [...neighbours].sort().join(',');
  await waitUntil(`${agent.name} linked to ${expected}`, agent, polling, async () => {
    const peers = (await clientOf(agent).request({ cmd: 'peers' })) as PeerInfo[];
    const connected = peers.filter((peer) => peer.state === 'connected').map((peer) => peer.name);
    return connected.sort().join(',') === expected;
  });
}

/** `from` holds a route to every agent of `to`. */
export async function waitForRoutes(
  what: string,
  from: BenchAgent,
  to: readonly BenchAgent[],
  polling: Polling,
): Promise<void> {
  await waitUntil(what, from, polling, async () => {
    const routes = (await clientOf(from).request({ cmd: 'routes' })) as RouteInfo[];
    return to.every((target) => routes.some((route) => route.destination === idOf(target)));
  });
}

/** One reliable unicast: from the request to the agent until the end-to-end ACK resolved it. */
export async function sendMs(client: ControlClient, peer: string, timeoutMs: number): Promise<number> {
  const startNs = process.hrtime.bigint();
  await withTimeout(
    client.request({ cmd: 'send', peer, payload: PAYLOAD_BASE64, timeout_ms: timeoutMs }),
    timeoutMs * 2,
    `a send to ${peer}`,
  );
  return elapsedMs(startNs);
}

/** Samples of each measurement, interleaved round by round so drift hits all alike. */
export async function interleaved(
  rounds: number,
  warmups: number,
  measurements: readonly (() => Promise<number>)[],
): Promise<number[][]> {
  const samples = measurements.map((): number[] => []);
  for (let round = 0; round < warmups + rounds; round++) {
    for (const [index, measure] of measurements.entries()) {
      const ms = await measure();
      if (round >= warmups) samples[index]?.push(ms);
    }
  }
  return samples;
}
