// Trust between real agents on 127.0.0.1, driven through the CLI as an operator would: a second device
// claiming a name another one owns makes the name ambiguous (not silently the wrong device), an admin revokes
// it and every agent refuses it within seconds while the rest carry on, a non-admin cannot revoke, and a key
// rotation reaches every member without dropping a link.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import type { PeerInfo } from '../../agent/links/peer-directory.js';
import {
  type AgentProcess,
  freePorts,
  listenTo,
  startAgent,
  stopAllAgents,
} from '../support/agent-process.js';
import { until } from '../support/until.js';

const meshKey = generateMeshKey();

interface SecurityView {
  security: { key_epoch: number; revoked: number };
  counters: Record<string, number>;
}

describe('trust between agents: names, revocation, key rotation', () => {
  let ports: number[] = [];
  let admin: AgentProcess;
  let bravo: AgentProcess;
  let door: AgentProcess;
  let impostor: AgentProcess;
  const idOf = new Map<AgentProcess, string>();
  const everyone = (): AgentProcess[] => [admin, bravo, door, impostor];

  async function start(name: string, index: number, admins: string[]): Promise<AgentProcess> {
    const peers = ports.filter((_, other) => other !== index).map((port) => `127.0.0.1:${port}`);
    const agent = await startAgent({
      name,
      meshKey,
      port: ports[index] as number,
      peers,
      ...(admins.length > 0 && { security: { admins } }),
    });
    idOf.set(agent, (await agent.json<{ id: string }>(['id'])).id);
    return agent;
  }

  const id = (agent: AgentProcess): string => idOf.get(agent) as string;
  const connected = async (agent: AgentProcess): Promise<string[]> =>
    (await agent.json<PeerInfo[]>(['peers']))
      .filter((peer) => peer.state === 'connected')
      .map((peer) => peer.id);

  beforeAll(async () => {
    ports = await freePorts(4);
    // The admin first: the others are told its id.
    admin = await start('alpha', 0, []);
    bravo = await start('bravo', 1, [id(admin)]);
    door = await start('door', 2, [id(admin)]);
    await until('bravo and door linked to alpha', async () => (await connected(admin)).length === 2);
    // Every agent has seen the first "door" before the second one appears.
    await until('alpha knows door', async () => (await admin.cli(['send', 'door', 'hi'])).code === 0);
    impostor = await start('door', 3, [id(admin)]);
    for (const agent of everyone()) {
      await until(
        `${agent.spec.name} linked to all three others`,
        async () => (await connected(agent)).length === 3,
      );
    }
  }, 60_000);

  afterAll(stopAllAgents);

  it('a second identity claiming a name makes it ambiguous: send says so, lists both, and peers marks it', async () => {
    const result = await admin.cli(['send', 'door', 'open']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('ambiguous');
    expect(result.stderr).toContain(id(door));
    expect(result.stderr).toContain(id(impostor));
    // The one that had it first is named first.
    expect(result.stderr.indexOf(id(door))).toBeLessThan(result.stderr.indexOf(id(impostor)));
    const peers = await admin.json<PeerInfo[]>(['peers']);
    expect(peers.find((peer) => peer.id === id(impostor))).toMatchObject({
      name: 'door',
      name_conflict: true,
    });
    expect(peers.find((peer) => peer.id === id(door))).toMatchObject({ name: 'door', name_conflict: false });
    expect(
      (await admin.json<SecurityView>(['status'])).counters['trust.name_conflicts'],
    ).toBeGreaterThanOrEqual(1);
    expect(admin.output).toContain('name conflict');
  });

  it('an agent that is not an admin cannot revoke', async () => {
    const result = await bravo.cli(['revoke', id(door)]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('[security] admins');
  });

  it('revoked by an admin, an identity is refused by every agent within 5 s; the rest carry on', async () => {
    const startedAtMs = Date.now();
    const result = await admin.cli(['revoke', id(impostor), '--reason', 'not ours']);
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain(`revoked ${id(impostor)}`);
    expect(result.stdout).toContain('nearmesh rekey');
    for (const agent of [admin, bravo, door]) {
      await until(
        `${agent.spec.name} to drop the revoked agent`,
        async () => {
          const status = await agent.json<SecurityView>(['status']);
          const links = await connected(agent);
          return status.security.revoked === 1 && !links.includes(id(impostor));
        },
        { timeoutMs: 5_000, intervalMs: 100 },
      );
    }
    console.log(`revocation: every agent refused the revoked one after ${Date.now() - startedAtMs} ms`);
    // It cannot link back, nor reach anyone.
    const attempt = await impostor.cli(['send', id(bravo), 'still here?', '--timeout', '2000']);
    expect(attempt.code).not.toBe(0);
    // Its name is free again: "door" is the first device, unambiguously.
    const listener = await listenTo(door);
    try {
      const send = await bravo.cli(['send', 'door', 'after the revocation']);
      expect(send.stderr).toBe('');
      expect(send.code).toBe(0);
      await until('door to get it', () =>
        listener.messages.some((message) => message.payload === 'after the revocation'),
      );
    } finally {
      listener.stop();
    }
  });

  it('a key rotation reaches every member, and the links stay up', async () => {
    const before = await connected(bravo);
    const result = await admin.cli(['rekey', '--overlap', '1h']);
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('epoch 1');
    for (const agent of [admin, bravo, door]) {
      await until(
        `${agent.spec.name} on key epoch 1`,
        async () => (await agent.json<SecurityView>(['status'])).security.key_epoch === 1,
      );
    }
    // The revoked agent never gets it.
    expect((await impostor.json<SecurityView>(['status'])).security.key_epoch).toBe(0);
    expect(await connected(bravo)).toEqual(before);
    const send = await bravo.cli(['send', id(door), 'on the new key']);
    expect(send.code).toBe(0);
  });

  it('a new device given the key `nearmesh mesh-key` prints joins the rotated mesh and takes its epoch', async () => {
    const current = (await bravo.cli(['mesh-key'])).stdout.trim();
    expect(current).not.toBe(meshKey);
    expect((await admin.cli(['mesh-key'])).stdout.trim()).toBe(current);
    const [port] = await freePorts(1);
    const newcomer = await startAgent({
      name: 'newcomer',
      meshKey: current,
      port: port as number,
      peers: [`127.0.0.1:${ports[1]}`],
      security: { admins: [id(admin)] },
    });
    await until('the newcomer linked and on epoch 1', async () => {
      const status = await newcomer.json<SecurityView>(['status']);
      return status.security.key_epoch === 1 && (await connected(newcomer)).includes(id(bravo));
    });
  });
});
