// Three real agents on 127.0.0.1 with static peers: they link, prove their mesh, exchange messages
// every way through the CLI, refuse an agent of another mesh, and notice a killed peer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MeshAgentInfo } from '../../agent/api.js';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import type { PeerInfo } from '../../agent/links/peer-directory.js';
import {
  type AgentProcess,
  freePorts,
  listenTo,
  runCli,
  startAgent,
  stopAllAgents,
} from '../support/agent-process.js';
import { until } from '../support/until.js';

const meshKey = generateMeshKey();
let ports: number[] = [];
const agents: AgentProcess[] = [];
const ids: string[] = [];

async function connectedPeers(agent: AgentProcess): Promise<PeerInfo[]> {
  const peers = await agent.json<PeerInfo[]>(['peers']);
  return peers.filter((peer) => peer.state === 'connected');
}

describe('three agents on one IP network', () => {
  beforeAll(async () => {
    ports = await freePorts(4);
    const names = ['alpha', 'bravo', 'charlie'];
    for (const [index, name] of names.entries()) {
      const peers = ports
        .slice(0, 3)
        .filter((_, other) => other !== index)
        .map((port) => `127.0.0.1:${port}`);
      agents.push(await startAgent({ name, meshKey, port: ports[index] as number, peers }));
    }
    for (const agent of agents) ids.push((await agent.json<{ id: string }>(['id'])).id);
    for (const agent of agents) {
      await until(
        `${agent.spec.name} linked to both others`,
        async () => (await connectedPeers(agent)).length === 2,
      );
    }
  }, 60_000);

  afterAll(stopAllAgents);

  it('reports proven peer ids, names and the wifi medium in peers --json', async () => {
    const peers = await agents[0]!.json<PeerInfo[]>(['peers']);
    expect(peers.map((peer) => peer.id).sort()).toEqual([ids[1], ids[2]].sort());
    expect(peers.map((peer) => peer.name).sort()).toEqual(['bravo', 'charlie']);
    for (const peer of peers) {
      expect(peer.id).toMatch(/^[0-9a-f]{16}$/);
      expect(peer.medium).toBe('wifi');
      expect(peer.state).toBe('connected');
    }
  });

  it('shows the whole mesh in topology --json: every agent with its board, version and links', async () => {
    const version = (await agents[0]!.json<{ version: string }>(['status'])).version;
    await until('every agent heard announcing its links', async () => {
      const mesh = await agents[0]!.json<MeshAgentInfo[]>(['topology']);
      return mesh.length === 3 && mesh.every((agent) => agent.neighbours.length === 2);
    });
    const mesh = await agents[0]!.json<MeshAgentInfo[]>(['topology']);
    expect(mesh.map((agent) => agent.name).sort()).toEqual(['alpha', 'bravo', 'charlie']);
    expect(mesh[0]).toMatchObject({ id: ids[0], name: 'alpha', heard_s: 0 });
    for (const agent of mesh) {
      expect(agent.software).toBe(version);
      expect(typeof agent.board).toBe('string');
      const others = ids.filter((id) => id !== agent.id).sort();
      expect([...agent.neighbours].sort()).toEqual(others);
    }
    const table = await agents[0]!.cli(['topology']);
    expect(table.stdout).toMatch(/^ID\s+NAME\s+BOARD\s+VERSION\s+GROUPS\s+LINKS TO\s+HEARD/);
    expect(table.stdout).toContain('bravo,charlie');
  });

  it('delivers an acknowledged message every way, by id and by name', async () => {
    const listeners = await Promise.all(agents.map((agent) => listenTo(agent)));
    try {
      for (const [from, sender] of agents.entries()) {
        for (const [to, receiver] of agents.entries()) {
          if (from === to) continue;
          const reference = from % 2 === 0 ? ids[to]! : receiver.spec.name;
          const result = await sender.cli(['send', reference, `hello ${from}->${to}`, '--json']);
          expect(result.stderr).toBe('');
          expect(result.code).toBe(0);
          expect(JSON.parse(result.stdout)).toMatchObject({ peer: ids[to], acknowledged: true, count: 1 });
        }
      }
      // A last message to each, sent after the others: once it is at the app, the others have arrived too,
      // and any extra copy of them would have.
      for (const [to, receiver] of agents.entries()) {
        const from = (to + 1) % agents.length;
        expect((await agents[from]!.cli(['send', ids[to]!, 'last'])).code).toBe(0);
        await until(`the last message at ${receiver.spec.name}`, () =>
          listeners[to]!.messages.some((message) => message.payload === 'last'),
        );
      }
      for (const [to, listener] of listeners.entries()) {
        const got = listener.messages
          .filter((message) => message.payload !== 'last')
          .map((message) => `${message.from}:${message.payload}`)
          .sort();
        const expected = agents
          .map((_, from) => from)
          .filter((from) => from !== to)
          .map((from) => `${ids[from]}:hello ${from}->${to}`)
          .sort();
        expect(got).toEqual(expected);
        for (const message of listener.messages) {
          expect(Number.isNaN(Date.parse(message.received_at))).toBe(false);
          expect(message.from_name).toBe(agents[ids.indexOf(message.from)]!.spec.name);
        }
      }
    } finally {
      for (const listener of listeners) listener.stop();
    }
  });

  it('sends binary data from standard input with send -', async () => {
    const listener = await listenTo(agents[1]!);
    try {
      const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff]);
      const result = await agents[0]!.cli(['send', ids[1]!, '-'], 20_000, bytes);
      expect(result.code).toBe(0);
      await until('the binary message', () => listener.messages.length > 0, { timeoutMs: 5_000 });
      expect(Buffer.from(listener.messages[0]!.payload_base64, 'base64')).toEqual(bytes);
    } finally {
      listener.stop();
    }
  });

  it('sends in unreliable mode: one attempt, no acknowledgement, and says whether a link took it', async () => {
    const listener = await listenTo(agents[2]!);
    try {
      const result = await agents[0]!.cli(['send', '--unreliable', ids[2]!, 'best effort', '--json']);
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout)).toEqual({ peer: ids[2], sent: true });
      await until('the unreliable message', () => listener.messages.length > 0, { timeoutMs: 5_000 });
      expect(listener.messages[0]?.payload).toBe('best effort');
    } finally {
      listener.stop();
    }
  });

  it('fails a send, a call and a read to an unknown peer with the same one-line reason', async () => {
    for (const command of [
      ['send', 'nobody', 'hi'],
      ['call', 'nobody', 'light.on'],
      ['read', 'nobody', 'cpu.load'],
    ]) {
      const result = await agents[0]!.cli(command);
      expect(result.code).not.toBe(0);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toContain(
        'no peer "nobody" is known: `nearmesh peers` lists the agents this one knows',
      );
    }
  });

  it('refuses an agent with another mesh key, both ways, and logs it rarely', async () => {
    const outsider = await startAgent({
      name: 'mallory',
      meshKey: generateMeshKey(),
      port: ports[3] as number,
      peers: [`127.0.0.1:${ports[0]}`],
    });
    // A prober of our mesh dials the outsider too, so both handshake roles meet the wrong key.
    const prober = await startAgent({ name: 'probe', meshKey, port: 0, peers: [`127.0.0.1:${ports[3]}`] });
    const refusals = async (agent: AgentProcess): Promise<number> =>
      (await agent.json<{ counters: Record<string, number> }>(['status'])).counters['handshake.refused'] ?? 0;
    // Both re-dial with backoff: several refusals each, yet a single log line each.
    await until(
      'repeated refusals',
      async () => (await refusals(outsider)) >= 3 && (await refusals(prober)) >= 2,
    );
    expect(await outsider.json<PeerInfo[]>(['peers'])).toEqual([]);
    expect(await prober.json<PeerInfo[]>(['peers'])).toEqual([]);
    const alphaPeers = await agents[0]!.json<PeerInfo[]>(['peers']);
    expect(alphaPeers.map((peer) => peer.name)).not.toContain('mallory');
    expect(await refusals(agents[0]!)).toBeGreaterThanOrEqual(2);
    expect(agents[0]!.output.match(/refused link/g)?.length ?? 0).toBe(1);
    expect(outsider.output.match(/refused link/g)?.length ?? 0).toBe(1);
    expect(prober.output.match(/refused link/g)?.length ?? 0).toBe(1);
    await outsider.stop();
    await prober.stop();
  }, 30_000);

  it('notices a killed agent within 10 s and relinks it when it restarts', async () => {
    const victim = agents[2]!;
    await victim.stop('SIGKILL');
    const killedAt = Date.now();
    for (const agent of agents.slice(0, 2)) {
      await until(
        'the killed peer marked disconnected',
        async () => {
          const peers = await agent.json<PeerInfo[]>(['peers']);
          return peers.find((peer) => peer.id === ids[2])?.state === 'disconnected';
        },
        { timeoutMs: 10_000 },
      );
    }
    expect(Date.now() - killedAt).toBeLessThan(10_000);
    // Reliable messages wait in the durable queue: the send fails to be confirmed, the message stays queued.
    const failed = await agents[0]!.cli(['send', ids[2]!, 'anyone?', '--timeout', '500']);
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toMatch(/queued but not yet delivered \(the peer is not reachable\)/);
    expect((await agents[0]!.json<{ queued: { messages: number } }>(['status'])).queued.messages).toBe(1);

    agents[2] = await startAgent({ ...victim.spec, dir: victim.dir });
    expect((await agents[2].json<{ id: string }>(['id'])).id).toBe(ids[2]);
    for (const agent of agents) {
      await until(`${agent.spec.name} relinked`, async () => (await connectedPeers(agent)).length === 2, {
        timeoutMs: 15_000,
      });
    }
    // The queued message went when the peer came back.
    await until('the queued message delivered', async () => {
      const status = await agents[0]!.json<{ queued: { messages: number } }>(['status']);
      return status.queued.messages === 0;
    });
    const result = await agents[0]!.cli(['send', ids[2]!, 'welcome back']);
    expect(result.code).toBe(0);
  }, 45_000);

  it('notices a frozen agent (silence, no TCP reset) within 10 s and relinks when it resumes', async () => {
    const frozen = agents[1]!;
    frozen.child.kill('SIGSTOP');
    const frozenAt = Date.now();
    try {
      await until(
        'the frozen peer marked disconnected',
        async () => {
          const peers = await agents[0]!.json<PeerInfo[]>(['peers']);
          return peers.find((peer) => peer.id === ids[1])?.state === 'disconnected';
        },
        { timeoutMs: 12_000 },
      );
      expect(Date.now() - frozenAt).toBeLessThan(10_000);
    } finally {
      frozen.child.kill('SIGCONT');
    }
    await until('relinked after resuming', async () => (await connectedPeers(frozen)).length === 2, {
      timeoutMs: 15_000,
    });
    expect((await agents[0]!.cli(['send', ids[1]!, 'awake?'])).code).toBe(0);
  }, 40_000);

  it('a neighbour that restarts is never dialled into a dropped handshake: no key refusal is counted here', async () => {
    const counter = async (agent: AgentProcess, name: string): Promise<number> =>
      (await agent.json<{ counters: Record<string, number> }>(['status'])).counters[name] ?? 0;
    const [alpha, bravo, charlie] = agents as [AgentProcess, AgentProcess, AgentProcess];
    const refusedBefore = await counter(alpha, 'handshake.refused');
    const dialFailuresBefore = await counter(alpha, 'links.dial_failures');
    // A frozen neighbour holds bravo's stop in its close grace (about a second), as a busy hub's many links
    // do: alpha, unlinked at once, dials bravo again while it is still stopping.
    charlie.child.kill('SIGSTOP');
    try {
      expect(await bravo.stop('SIGTERM')).toBe(0);
    } finally {
      charlie.child.kill('SIGCONT');
    }
    agents[1] = await startAgent({ ...bravo.spec, dir: bravo.dir });
    for (const agent of agents) {
      await until(`${agent.spec.name} relinked`, async () => (await connectedPeers(agent)).length === 2, {
        timeoutMs: 15_000,
      });
    }
    // Alpha did dial the stopping (then stopped) bravo; each dial was refused by TCP, none by its mesh key.
    expect(await counter(alpha, 'links.dial_failures')).toBeGreaterThan(dialFailuresBefore);
    expect(await counter(alpha, 'handshake.refused')).toBe(refusedBefore);
  }, 45_000);

  it('stops cleanly on SIGTERM: exit 0 and the control socket removed', async () => {
    const agent = await startAgent({ name: 'delta', meshKey, port: 0 });
    expect(await agent.stop('SIGTERM')).toBe(0);
    const result = await runCli(['status', '--socket', agent.socketPath]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/no agent is listening/);
  });
});
