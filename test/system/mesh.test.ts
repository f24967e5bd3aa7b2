// The mesh with real agents in the network-namespace lab, where each agent links only to its neighbours
// so anything further goes through the mesh: reliable unicast down a chain, rerouting around a cut link
// in a ring, exactly-once delivery on a lossy grid (unicast, broadcast, groups), the hop budget, and a
// hostile flood of duplicates and spent frames that must leave memory bounded. Root only (skips loudly
// elsewhere, fails under CI=true). Uses the built dist/ (npm test builds first).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import { ControlClient } from '../../agent/control/client.js';
import type { ListenEvent, RouteInfo } from '../../agent/control/wire.js';
import type { PeerInfo } from '../../agent/links/peer-directory.js';
import { Lab } from '../../scripts/lab/lab.js';
import { chain, grid, ring, type Topology } from '../../scripts/lab/topology.js';
import {
  type AgentProcess,
  type AgentSpec,
  listenTo,
  sleep,
  startAgent,
  stopAllAgents,
  waitFor,
} from '../support/agent-process.js';
import { describeWithNetns } from '../support/netns.js';

const PORT = 7450;
const FLOODER = resolve(import.meta.dirname, 'children/mesh-flooder.mjs');

interface Status {
  pid: number;
  counters: Record<string, number>;
}

/** One lab with one agent per node, and in-process control clients (sockets are files in the root namespace). */
class MeshLab {
  readonly lab: Lab;
  readonly meshKey = generateMeshKey();
  readonly #agents = new Map<string, AgentProcess>();
  readonly #ids = new Map<string, string>();
  readonly #clients = new Map<string, Promise<ControlClient>>();
  readonly #children = new Set<ChildProcess>();

  constructor(topology: Topology, prefix: string, shape: { lossPercent?: number } = {}) {
    // The pid keeps parallel runs apart; the prefix keeps this file's labs apart (12 characters at most).
    this.lab = new Lab(topology, `${prefix}${process.pid}`, shape);
  }

  get nodes(): string[] {
    return this.lab.topology.nodes;
  }

  async start(specOf: (node: string) => Partial<AgentSpec> = () => ({})): Promise<void> {
    this.lab.create();
    await Promise.all(
      this.nodes.map(async (node) => {
        const agent = await startAgent({
          name: node,
          meshKey: this.meshKey,
          port: PORT,
          listenHost: '0.0.0.0',
          discovery: [],
          netns: this.lab.namespaceOf(node),
          peers: this.lab.peerAddresses(node, PORT),
          ...specOf(node),
        });
        this.#agents.set(node, agent);
        this.#ids.set(node, (await agent.json<{ id: string }>(['id'])).id);
      }),
    );
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

  agent(node: string): AgentProcess {
    const agent = this.#agents.get(node);
    if (agent === undefined) throw new Error(`no agent on ${node}`);
    return agent;
  }

  id(node: string): string {
    const id = this.#ids.get(node);
    if (id === undefined) throw new Error(`no agent id for ${node}`);
    return id;
  }

  nodeOf(id: string): string | undefined {
    return [...this.#ids].find(([, candidate]) => candidate === id)?.[0];
  }

  /** A control connection to the node's agent (one per node, kept open). */
  client(node: string): Promise<ControlClient> {
    let client = this.#clients.get(node);
    if (client === undefined) {
      client = ControlClient.connect(this.agent(node).socketPath);
      this.#clients.set(node, client);
    }
    return client;
  }

  async request<T>(node: string, body: Parameters<ControlClient['request']>[0]): Promise<T> {
    return (await (await this.client(node)).request(body)) as T;
  }

  status(node: string): Promise<Status> {
    return this.request<Status>(node, { cmd: 'status' });
  }

  async counter(node: string, name: string): Promise<number> {
    return (await this.status(node)).counters[name] ?? 0;
  }

  /** Subscribes to the node's received messages on a connection of its own (what `nearmesh listen` does). */
  async listen(node: string): Promise<{ messages: ListenEvent[]; stop: () => void }> {
    const client = await ControlClient.connect(this.agent(node).socketPath);
    const messages: ListenEvent[] = [];
    await client.stream({ cmd: 'listen' }, (event) => {
      messages.push(event as ListenEvent);
    });
    return { messages, stop: () => client.close() };
  }

  /** Waits until every agent is linked to exactly its neighbours in the lab. */
  async waitLinked(timeoutMs = 20_000): Promise<void> {
    await Promise.all(
      this.nodes.map((node) => {
        const expected = JSON.stringify(
          this.lab
            .neighbours(node)
            .map((neighbour) => neighbour.node)
            .sort(),
        );
        return waitFor(
          `${node} linked to its neighbours`,
          async () => {
            const peers = await this.request<PeerInfo[]>(node, { cmd: 'peers' });
            const connected = peers.filter((peer) => peer.state === 'connected').map((peer) => peer.name);
            return JSON.stringify(connected.sort()) === expected ? true : undefined;
          },
          timeoutMs,
        );
      }),
    );
  }

  /** Runs a node script inside the node's namespace, collecting its stdout; killed in stop(). */
  spawnIn(
    node: string,
    args: string[],
  ): {
    child: ChildProcess;
    stdout: () => string;
    exitCode: () => number | undefined;
    exited: Promise<number>;
  } {
    const child = spawn('ip', ['netns', 'exec', this.lab.namespaceOf(node), process.execPath, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
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

/** Resident memory of a process in bytes (VmRSS of /proc/<pid>/status). */
function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (match === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

const MB = 1024 * 1024;
const base64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

describeWithNetns('the mesh on a chain of 5 (real agents in the lab)', () => {
  const mesh = new MeshLab(chain(5), 'mc');

  beforeAll(async () => {
    await mesh.start();
    await mesh.waitLinked();
  }, 40_000);

  afterAll(() => mesh.stop(), 20_000);

  it('carries a reliable unicast from the first agent to the last, four hops, and shows it routed', async () => {
    const listener = await listenTo(mesh.agent('n5'));
    try {
      const result = await mesh.agent('n1').cli(['send', mesh.id('n5'), 'hello through four hops', '--json']);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ peer: mesh.id('n5'), acknowledged: true });
      await waitFor(
        'the message at n5',
        async () => (listener.messages.length > 0 ? true : undefined),
        5_000,
      );
      await sleep(300);
      expect(listener.messages).toHaveLength(1);
      expect(listener.messages[0]).toMatchObject({
        from: mesh.id('n1'),
        payload: 'hello through four hops',
        hops: 4,
      });
      expect(listener.messages[0]?.to).toBeUndefined();
    } finally {
      listener.stop();
    }
    // n5 learns n1 from its announcements, which may still be on their way across the chain.
    const routed = await waitFor('n1 in the peer table of n5', async () => {
      const peers = await mesh.agent('n5').json<PeerInfo[]>(['peers']);
      return peers.find((peer) => peer.id === mesh.id('n1') && peer.state === 'routed');
    });
    expect(routed).toMatchObject({
      state: 'routed',
      hops: 4,
      next_hop: mesh.id('n4'),
    });
    // The agents in between forwarded it.
    for (const node of ['n2', 'n3', 'n4'])
      expect(await mesh.counter(node, 'mesh.forwarded')).toBeGreaterThan(0);
  }, 20_000);

  it('keeps memory bounded under floods of duplicates and spent frames from a hostile member', async () => {
    const frames = 200_000;
    const watched = ['n2', 'n3', 'n4'];
    const pids = new Map<string, number>();
    for (const node of watched) {
      // `ip netns exec` execs the agent in place: the child we spawned is the agent's node process.
      const { pid } = await mesh.status(node);
      expect(pid).toBe(mesh.agent(node).child.pid);
      pids.set(node, pid);
    }
    const rssOf = () => new Map(watched.map((node) => [node, rssBytes(pids.get(node)!)]));
    const baseline = rssOf();

    /** One flooder run against n3 (from inside n3's namespace, as a member of the mesh), fully counted by n3. */
    const flood = async () => {
      const before = (await mesh.status('n3')).counters;
      const flooder = mesh.spawnIn('n3', [FLOODER, `127.0.0.1:${PORT}`, mesh.meshKey, String(frames)]);
      try {
        const line = await waitFor(
          'the flooder to finish',
          async () => {
            if (flooder.exitCode() !== undefined)
              throw new Error(`flooder exited with ${flooder.exitCode()}`);
            return flooder.stdout().includes('\n') ? flooder.stdout() : undefined;
          },
          60_000,
          100,
        );
        const summary = JSON.parse(line) as { sent: number; duplicates: number; expired: number; ms: number };
        expect(summary.sent).toBe(frames);
        const counted = (status: Status, name: string): number =>
          (status.counters[name] ?? 0) - (before[name] ?? 0);
        // n3 has taken in every frame once its counters account for all the spent ones.
        const after = await waitFor(
          'n3 to count the flood',
          async () => {
            const status = await mesh.status('n3');
            return counted(status, 'mesh.dropped_ttl') >= summary.expired ? status : undefined;
          },
          20_000,
          100,
        );
        const rss = rssOf();
        const routes = (await mesh.request<RouteInfo[]>('n3', { cmd: 'routes' })).length;
        return {
          summary,
          rss,
          routes,
          droppedDuplicate: counted(after, 'mesh.dropped_duplicate'),
          droppedTtl: counted(after, 'mesh.dropped_ttl'),
          forwarded: counted(after, 'mesh.forwarded'),
        };
      } finally {
        flooder.child.kill('SIGTERM');
        await flooder.exited;
      }
    };

    // The first flood grows the heap to its working size; the second shows whether anything keeps growing.
    const first = await flood();
    const second = await flood();
    const mb = (bytes: number) => Math.round(bytes / MB);
    console.log(
      `mesh flood: ${JSON.stringify({
        frames_each: frames,
        ms: [first.summary.ms, second.summary.ms],
        rss_mb: Object.fromEntries(
          watched.map((node) => [node, [baseline, first.rss, second.rss].map((rss) => mb(rss.get(node)!))]),
        ),
        n3: [first, second].map(({ routes, droppedDuplicate, droppedTtl, forwarded }) => ({
          routes,
          droppedDuplicate,
          droppedTtl,
          forwarded,
        })),
      })}`,
    );
    for (const node of watched) {
      expect(mesh.agent(node).child.exitCode, node).toBeNull();
      expect(first.rss.get(node), node).toBeLessThan(150 * MB);
      expect(second.rss.get(node), node).toBeLessThan(150 * MB);
      // 200,000 more frames: a retained 125 bytes each would be 25 MB.
      expect(second.rss.get(node)! - first.rss.get(node)!, node).toBeLessThan(25 * MB);
    }
    for (const round of [first, second]) {
      // All but the copies let through once per duplicate window (or after eviction) were dropped as such.
      expect(round.droppedDuplicate).toBeGreaterThanOrEqual(round.summary.duplicates * 0.9);
      expect(round.droppedTtl).toBeGreaterThanOrEqual(round.summary.expired);
      // Routes come only from signed announcements: frames from made-up sources teach none.
      expect(round.routes).toBeLessThanOrEqual(3);
    }
    // The mesh still works: the chain is intact and a unicast crosses it end to end.
    await mesh.waitLinked();
    const result = await mesh.agent('n1').cli(['send', mesh.id('n5'), 'still here', '--timeout', '5000']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  }, 90_000);
});

describeWithNetns('the mesh on a ring of 6 (real agents in the lab)', () => {
  const mesh = new MeshLab(ring(6), 'mr');

  beforeAll(async () => {
    await mesh.start();
    await mesh.waitLinked();
  }, 40_000);

  afterAll(() => mesh.stop(), 20_000);

  it('reroutes the other way round within 5 s when a link on the route is cut', async () => {
    const client = await mesh.client('n1');
    const target = mesh.id('n4');
    // One message first, so that both ends have a route, then find which way it goes.
    await client.request({ cmd: 'send', peer: target, payload: base64('warm-up'), timeout_ms: 5_000 });
    const routeTo4 = async (): Promise<RouteInfo | undefined> =>
      (await mesh.agent('n1').json<RouteInfo[]>(['routes'])).find((route) => route.destination === target);
    const before = await waitFor('a route from n1 to n4', routeTo4, 5_000);
    const via = mesh.nodeOf(before.next_hop);
    expect(before.hops).toBe(3);
    expect(['n2', 'n6']).toContain(via);
    // Cut the middle link of that path (not one of n1's own: n1 must not simply notice its link go).
    const [cutA, cutB, otherSide] = via === 'n2' ? ['n2', 'n3', 'n6'] : ['n6', 'n5', 'n2'];

    interface Attempt {
      startedAtMs: number;
      ackedAtMs?: number;
      error?: string;
    }
    const attempts: Attempt[] = [];
    const inFlight: Promise<unknown>[] = [];
    let cutAtMs = Number.POSITIVE_INFINITY;
    let sending = true;
    const sender = (async () => {
      for (let index = 0; sending; index++) {
        const attempt: Attempt = { startedAtMs: Date.now() };
        attempts.push(attempt);
        inFlight.push(
          client
            .request({ cmd: 'send', peer: target, payload: base64(`ring-${index}`), timeout_ms: 8_000 })
            .then(
              () => {
                attempt.ackedAtMs = Date.now();
              },
              (error: Error) => {
                attempt.error = error.message;
              },
            ),
        );
        await sleep(200);
      }
    })();
    try {
      await sleep(1_000);
      cutAtMs = Date.now();
      mesh.lab.cut(cutA, cutB);
      await sleep(6_000);
      sending = false;
      await sender;
      await Promise.all(inFlight);
      const afterCut = attempts.filter((attempt) => attempt.startedAtMs >= cutAtMs);
      expect(afterCut.length).toBeGreaterThan(10);
      const first = afterCut[0]!;
      const latencies = afterCut.map((attempt) => (attempt.ackedAtMs ?? Number.NaN) - attempt.startedAtMs);
      console.log(
        `mesh ring: cut ${cutA}-${cutB}; first send after the cut acknowledged ${first.ackedAtMs! - cutAtMs} ms after the cut; ` +
          `${afterCut.length} sends after the cut, slowest ${Math.max(...latencies)} ms`,
      );
      expect(first.error).toBeUndefined();
      expect(first.ackedAtMs! - cutAtMs).toBeLessThanOrEqual(5_000);
      // Nothing sent after the cut is lost: everything is acknowledged.
      expect(afterCut.filter((attempt) => attempt.error !== undefined)).toEqual([]);
      const rerouted = await waitFor(
        `n1's route to n4 through ${otherSide}`,
        async () => {
          const route = await routeTo4();
          return route !== undefined && mesh.nodeOf(route.next_hop) === otherSide ? route : undefined;
        },
        10_000,
        250,
      );
      expect(rerouted.hops).toBe(3);
    } finally {
      sending = false;
      mesh.lab.restore(cutA, cutB);
    }
  }, 40_000);
});

describeWithNetns('the mesh on a 3×3 grid with 2 % loss on every link (real agents in the lab)', () => {
  const mesh = new MeshLab(grid(3, 3), 'mg', { lossPercent: 2 });
  /** r3c1 sends with a hop budget of 2; r2c2 and r3c3 are in the group "blue". */
  const SHORT_TTL_NODE = 'r3c1';
  const BLUE = ['r2c2', 'r3c3'];

  beforeAll(async () => {
    await mesh.start((node) => ({
      ...(node === SHORT_TTL_NODE && { extraToml: '[mesh]\nttl = 2' }),
      ...(BLUE.includes(node) && { groups: ['blue'] }),
    }));
    await mesh.waitLinked();
  }, 40_000);

  afterAll(() => mesh.stop(), 20_000);

  it('delivers 1,000 reliable unicasts corner to corner, each exactly once', async () => {
    for (const [a, b] of mesh.lab.topology.edges) expect(mesh.lab.linkStatus(a, b).lossPercent).toBe(2);
    const count = 1_000;
    const maxInFlight = 50;
    const listener = await mesh.listen('r3c3');
    const client = await mesh.client('r1c1');
    const target = mesh.id('r3c3');
    const failures: string[] = [];
    const startedAtMs = Date.now();
    try {
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < count) {
          const index = next++;
          await client
            .request({ cmd: 'send', peer: target, payload: base64(`grid-${index}`), timeout_ms: 20_000 })
            .catch((error: Error) => failures.push(`grid-${index}: ${error.message}`));
        }
      };
      await Promise.all(Array.from({ length: maxInFlight }, worker));
      const sendMs = Date.now() - startedAtMs;
      expect(failures).toEqual([]);
      const fromR1c1 = () => listener.messages.filter((message) => message.from === mesh.id('r1c1'));
      await waitFor(
        'every unicast at r3c3',
        async () => (fromR1c1().length >= count ? true : undefined),
        10_000,
      );
      // Late copies (retransmissions that crossed their ACK) would show up now.
      await sleep(1_500);
      const payloads = fromR1c1().map((message) => message.payload);
      const seen = new Map<string, number>();
      for (const payload of payloads) seen.set(payload, (seen.get(payload) ?? 0) + 1);
      const duplicated = [...seen].filter(([, times]) => times > 1);
      const missing = Array.from({ length: count }, (_, index) => `grid-${index}`).filter(
        (payload) => !seen.has(payload),
      );
      expect(duplicated).toEqual([]);
      expect(missing).toEqual([]);
      expect(payloads).toHaveLength(count);
      for (const message of fromR1c1()) expect(message.hops).toBe(4);
      const counters = (await mesh.status('r1c1')).counters;
      console.log(
        `mesh grid: ${count} unicasts in ${sendMs} ms, r1c1 retransmissions ${counters['mesh.retransmissions'] ?? 0}`,
      );
    } finally {
      listener.stop();
    }
  }, 60_000);

  it('delivers a broadcast from a corner to every other agent exactly once, and a group message to its members', async () => {
    const listeners = new Map(
      await Promise.all(mesh.nodes.map(async (node) => [node, await mesh.listen(node)] as const)),
    );
    const others = mesh.nodes.filter((node) => node !== 'r1c1');
    const received = (node: string, payload: string) =>
      listeners.get(node)!.messages.filter((message) => message.payload === payload);
    try {
      const result = await mesh.agent('r1c1').cli(['broadcast', 'to everyone from r1c1', '--json']);
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ group: null });
      await waitFor(
        'the broadcast everywhere',
        async () =>
          others.every((node) => received(node, 'to everyone from r1c1').length > 0) ? true : undefined,
        10_000,
      );
      const group = await mesh.agent('r1c1').cli(['broadcast', 'to blue', '--group', 'blue', '--json']);
      expect(group.code).toBe(0);
      await waitFor(
        'the group message at its members',
        async () => (BLUE.every((node) => received(node, 'to blue').length > 0) ? true : undefined),
        10_000,
      );
      // Copies along other paths would arrive by now.
      await sleep(1_500);
      for (const node of others) {
        const copies = received(node, 'to everyone from r1c1');
        expect(copies, node).toHaveLength(1);
        expect(copies[0], node).toMatchObject({ from: mesh.id('r1c1'), to: '*' });
      }
      expect(received('r1c1', 'to everyone from r1c1')).toEqual([]);
      for (const node of mesh.nodes) {
        const copies = received(node, 'to blue');
        expect(copies, node).toHaveLength(BLUE.includes(node) ? 1 : 0);
        if (BLUE.includes(node)) expect(copies[0], node).toMatchObject({ from: mesh.id('r1c1'), to: 'blue' });
      }
    } finally {
      for (const listener of listeners.values()) listener.stop();
    }
  }, 30_000);

  it('stops a message whose hop budget is too small where it runs out', async () => {
    // r3c1 sends with ttl 2 to r1c3, four hops away: the nodes two hops out drop it.
    const twoHopsOut = ['r1c1', 'r2c2', 'r3c3'];
    const droppedBefore = await Promise.all(twoHopsOut.map((node) => mesh.counter(node, 'mesh.dropped_ttl')));
    const listener = await mesh.listen('r1c3');
    try {
      const result = await mesh
        .agent(SHORT_TTL_NODE)
        .cli(['send', mesh.id('r1c3'), 'too far for ttl 2', '--timeout', '3000']);
      expect(result.code).not.toBe(0);
      // Reliable: it stays queued on the sender (the mesh cannot carry it that far with ttl 2).
      expect(result.stderr).toMatch(/queued but not yet delivered/);
      await sleep(500);
      expect(listener.messages.filter((message) => message.payload === 'too far for ttl 2')).toEqual([]);
    } finally {
      listener.stop();
    }
    const droppedAfter = await Promise.all(twoHopsOut.map((node) => mesh.counter(node, 'mesh.dropped_ttl')));
    const dropped = droppedAfter.reduce((sum, value, index) => sum + value - droppedBefore[index]!, 0);
    expect(dropped).toBeGreaterThan(0);
  }, 20_000);
});
