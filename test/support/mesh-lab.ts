// A network-namespace lab (scripts/lab) with one real agent per node, for system tests: agents link only to
// their neighbours in the topology, so anything further goes through the mesh. Identities are made before the
// agents start, so a config may name another agent's peer id ([security] admins, a rule on its sensor); a
// node may be left without an agent for a test's own process (spawnIn) to take its place.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import { ControlClient } from '../../agent/control/client.js';
import type { ListenEvent } from '../../agent/control/wire.js';
import { IDENTITY_FILE, type Identity, identityFromPrivateKey } from '../../agent/identity/identity.js';
import type { PeerInfo } from '../../agent/links/peer-directory.js';
import { Lab } from '../../scripts/lab/lab.js';
import type { Topology } from '../../scripts/lab/topology.js';
import {
  type AgentProcess,
  type AgentSpec,
  startAgent,
  stopAllAgents,
  temporaryDir,
} from './agent-process.js';
import { until } from './until.js';

export const MESH_LAB_PORT = 7450;

/** The parts of `nearmesh status` the system tests read. */
export interface LabStatus {
  pid: number;
  counters: Record<string, number>;
  security: {
    key_epoch: number;
    previous_key_until: string | null;
    revoked: number;
    admins: string[];
    neighbours_blamed: { peer: string; failures: number; shunned_until: string | null }[];
  };
}

export interface MeshLabOptions {
  lossPercent?: number;
  /** Nodes that get no agent (a test process stands there instead). */
  without?: readonly string[];
}

/** A child process running inside a node's namespace: its stdin, what it printed, how it ended. */
export interface NodeChild {
  child: ChildProcess;
  stdout: () => string;
  exitCode: () => number | undefined;
  exited: Promise<number>;
}

/** Writes a fresh identity where an agent with data_dir `dir` will load it. */
function writeIdentity(dir: string): Identity {
  const { privateKey } = generateKeyPairSync('ed25519');
  writeFileSync(join(dir, IDENTITY_FILE), privateKey.export({ format: 'pem', type: 'pkcs8' }), {
    mode: 0o600,
  });
  return identityFromPrivateKey(privateKey);
}

/** One lab with one agent per node (but `without`), and in-process control clients (sockets are files). */
export class MeshLab {
  readonly lab: Lab;
  readonly meshKey = generateMeshKey();
  readonly port = MESH_LAB_PORT;
  readonly #without: ReadonlySet<string>;
  readonly #agents = new Map<string, AgentProcess>();
  readonly #specs = new Map<string, AgentSpec>();
  readonly #identities = new Map<string, Identity>();
  readonly #ids = new Map<string, string>();
  readonly #clients = new Map<string, Promise<ControlClient>>();
  readonly #children = new Set<ChildProcess>();

  constructor(topology: Topology, prefix: string, options: MeshLabOptions = {}) {
    // The pid keeps parallel runs apart; the prefix keeps each file's labs apart (12 characters at most).
    this.lab = new Lab(
      topology,
      `${prefix}${process.pid}`,
      options.lossPercent === undefined ? {} : { lossPercent: options.lossPercent },
    );
    this.#without = new Set(options.without ?? []);
  }

  get nodes(): string[] {
    return this.lab.topology.nodes;
  }

  /** The nodes that run an agent. */
  get agentNodes(): string[] {
    return this.nodes.filter((node) => !this.#without.has(node));
  }

  /**
   * Builds the lab and starts the agents. Every agent's identity exists before `specOf` is asked for its
   * spec (so id() works there); `beforeAgents` runs once the namespaces are up and no agent runs yet.
   */
  async start(
    specOf: (node: string) => Partial<AgentSpec> = () => ({}),
    beforeAgents: () => void | Promise<void> = () => {},
  ): Promise<void> {
    const dirs = new Map(this.agentNodes.map((node) => [node, temporaryDir()]));
    for (const [node, dir] of dirs) {
      const identity = writeIdentity(dir);
      this.#identities.set(node, identity);
      this.#ids.set(node, identity.peerId);
    }
    this.lab.create();
    await beforeAgents();
    await Promise.all(
      this.agentNodes.map((node) =>
        this.#startOn(node, {
          name: node,
          meshKey: this.meshKey,
          port: this.port,
          listenHost: '0.0.0.0',
          discovery: [],
          netns: this.lab.namespaceOf(node),
          peers: this.lab.peerAddresses(node, this.port),
          dir: dirs.get(node) as string,
          ...specOf(node),
        }),
      ),
    );
  }

  async #startOn(node: string, spec: AgentSpec): Promise<AgentProcess> {
    const agent = await startAgent(spec);
    const { id } = await agent.json<{ id: string }>(['id']);
    const expected = this.#identities.get(node)?.peerId;
    if (expected !== undefined && id !== expected)
      throw new Error(`agent on ${node} is ${id}, not the identity written for it (${expected})`);
    this.#agents.set(node, agent);
    this.#specs.set(node, spec);
    this.#ids.set(node, id);
    return agent;
  }

  async stop(): Promise<void> {
    for (const child of this.#children) child.kill('SIGKILL');
    for (const client of this.#clients.values()) void client.then((c) => c.close()).catch(() => {});
    // Agents first: a namespace with a process inside outlives `ip netns del`.
    await stopAllAgents();
    this.lab.destroy();
    const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    expect(left).not.toContain(`nml-${this.lab.label}-`);
  }

  /** Stops the node's agent (SIGTERM: a clean stop that saves its state); its data_dir stays. */
  async stopAgent(node: string): Promise<void> {
    const agent = this.agent(node);
    this.#dropClient(node);
    await agent.stop();
    this.#agents.delete(node);
  }

  /** Starts the node's agent again from its data_dir, as it was, or with `changes` to its spec. */
  restartAgent(node: string, changes: Partial<AgentSpec> = {}): Promise<AgentProcess> {
    const spec = this.#specs.get(node);
    if (spec === undefined) throw new Error(`no agent was started on ${node}`);
    if (this.#agents.has(node)) throw new Error(`the agent on ${node} still runs`);
    // A fresh data_dir means a fresh identity: the one written for the node no longer applies.
    if (changes.dir !== undefined && changes.dir !== spec.dir) this.#identities.delete(node);
    return this.#startOn(node, { ...spec, ...changes });
  }

  agent(node: string): AgentProcess {
    const agent = this.#agents.get(node);
    if (agent === undefined) throw new Error(`no agent on ${node}`);
    return agent;
  }

  /** The peer id of the node's agent (the latest one started there). */
  id(node: string): string {
    const id = this.#ids.get(node);
    if (id === undefined) throw new Error(`no agent id for ${node}`);
    return id;
  }

  /** The identity written for the node's agent at start (a restart with a fresh data_dir has another). */
  identity(node: string): Identity {
    const identity = this.#identities.get(node);
    if (identity === undefined) throw new Error(`no agent identity for ${node}`);
    return identity;
  }

  nodeOf(id: string): string | undefined {
    return [...this.#ids].find(([, candidate]) => candidate === id)?.[0];
  }

  /** A control connection to the node's agent (one per node, kept open until the agent stops). */
  client(node: string): Promise<ControlClient> {
    let client = this.#clients.get(node);
    if (client === undefined) {
      client = ControlClient.connect(this.agent(node).socketPath);
      this.#clients.set(node, client);
    }
    return client;
  }

  #dropClient(node: string): void {
    void this.#clients
      .get(node)
      ?.then((client) => client.close())
      .catch(() => {});
    this.#clients.delete(node);
  }

  async request<T>(node: string, body: Parameters<ControlClient['request']>[0]): Promise<T> {
    return (await (await this.client(node)).request(body)) as T;
  }

  status(node: string): Promise<LabStatus> {
    return this.request<LabStatus>(node, { cmd: 'status' });
  }

  async counter(node: string, name: string): Promise<number> {
    return (await this.status(node)).counters[name] ?? 0;
  }

  peers(node: string): Promise<PeerInfo[]> {
    return this.request<PeerInfo[]>(node, { cmd: 'peers' });
  }

  /** Peer ids the node's agent has a direct link to now. */
  async connected(node: string): Promise<string[]> {
    return (await this.peers(node)).filter((peer) => peer.state === 'connected').map((peer) => peer.id);
  }

  /**
   * The node's messages from now on, on a connection of its own, as `nearmesh listen` takes them: what
   * waited in its inbox from before is cleared first, so only what arrives while listening counts.
   */
  async listen(node: string): Promise<{ messages: ListenEvent[]; stop: () => void }> {
    const client = await ControlClient.connect(this.agent(node).socketPath);
    const messages: ListenEvent[] = [];
    await client.request({ cmd: 'inbox-clear' });
    await client.stream({ cmd: 'listen' }, (event) => {
      messages.push(event);
      if (event.inbox_id !== undefined)
        client.request({ cmd: 'inbox-take', up_to: event.inbox_id }).catch(() => {});
    });
    return { messages, stop: () => client.close() };
  }

  /**
   * Waits until every agent is linked to exactly the peers `expected` names for it (by id): by default its
   * neighbours in the lab that run an agent.
   */
  async waitLinked(
    timeoutMs = 20_000,
    expected: (node: string) => string[] = (node) =>
      this.lab
        .neighbours(node)
        .filter((neighbour) => this.#agents.has(neighbour.node))
        .map((neighbour) => this.id(neighbour.node)),
  ): Promise<void> {
    await Promise.all(
      [...this.#agents.keys()].map((node) => {
        const wanted = JSON.stringify(expected(node).sort());
        return until(
          `${node} linked to ${wanted}`,
          async () => JSON.stringify((await this.connected(node)).sort()) === wanted,
          { timeoutMs },
        );
      }),
    );
  }

  /** Runs a node script inside the node's namespace, stdin piped, collecting its stdout; killed in stop(). */
  spawnIn(node: string, args: string[]): NodeChild {
    const child = spawn('ip', ['netns', 'exec', this.lab.namespaceOf(node), process.execPath, ...args], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.#children.add(child);
    let stdout = '';
    let exitCode: number | undefined;
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    const exited = new Promise<number>((resolveExit) =>
      child.once('exit', (code) => {
        this.#children.delete(child);
        exitCode = code ?? -1;
        resolveExit(exitCode);
      }),
    );
    return { child, stdout: () => stdout, exitCode: () => exitCode, exited };
  }
}
