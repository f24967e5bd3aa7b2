// A member that keeps pinging but never reads, while messages for everyone pour through the agent (relayed
// from another member, and its own): past 1 MiB waiting for it, the agent queues nothing more for it that
// may be lost anyway, keeps answering and keeps its other link, and its memory stays within idle + 64 MB
// (before, a member like this grew an agent to 1.47 GB). The cut past 16 MiB is tested in slow-peer.test.ts.
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AgentStatus } from '../../../agent/api.js';
import { generateMeshKey } from '../../../agent/config/mesh-key.js';
import { expectResponsive } from '../../support/abuse.js';
import { freePorts, startAgent, stopAllAgents } from '../../support/agent-process.js';
import { ANONYMOUS_MAY_DO_ANYTHING, MqttClients, mqttPort } from '../../support/mqtt-clients.js';
import { rssMb } from '../../support/proc-status.js';
import { until } from '../../support/until.js';

const DEAF_MEMBER = resolve(import.meta.dirname, '../children/deaf-member.mjs');
const children: ChildProcess[] = [];
const clients = new MqttClients();

afterAll(async () => {
  clients.endAll();
  for (const child of children) child.kill('SIGKILL');
  await stopAllAgents();
});

/** The deaf member, and its output lines as they come. */
function deafMember(port: number, meshKey: string): { lines: string[] } {
  const child = spawn(process.execPath, [DEAF_MEMBER, '127.0.0.1', String(port), meshKey], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const lines: string[] = [];
  child.stdout?.on('data', (chunk: Buffer) => lines.push(...chunk.toString().trim().split('\n')));
  return { lines };
}

describe('abuse: a member that never reads', () => {
  it('gets nothing that may be lost past 1 MiB, and the agent stays small and answering', {
    timeout: 90_000,
  }, async () => {
    const meshKey = generateMeshKey();
    const [portA, portB] = (await freePorts(2)) as [number, number];
    const mqtt = ['listen = "127.0.0.1:0"', ANONYMOUS_MAY_DO_ANYTHING];
    const alpha = await startAgent({ name: 'alpha', meshKey, port: portA, mqtt });
    const bravo = await startAgent({
      name: 'bravo',
      meshKey,
      port: portB,
      peers: [`127.0.0.1:${portA}`],
      mqtt,
    });
    const pid = alpha.child.pid as number;
    const idle = rssMb(pid);
    const counters = async (): Promise<Record<string, number>> =>
      (await alpha.json<AgentStatus>(['status'])).counters;
    await until(
      'bravo linked with alpha',
      async () => (await alpha.json<AgentStatus>(['status'])).peers.connected === 1,
    );
    const deaf = deafMember(portA, meshKey);
    await until('the deaf member to link', () => deaf.lines.some((line) => line.includes('linked')));
    let peak = idle;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssMb(pid));
    }, 20);
    sampler.unref();
    try {
      // Bravo's messages for everyone: alpha relays them to the deaf member until 1 MiB waits for it.
      const fromBravo = await clients.connect(await mqttPort(bravo), 4);
      const payload = Buffer.alloc(50_000, 0x62);
      // Loopback's socket buffers take several MB before anything waits in the agent.
      const burst = (client: typeof fromBravo): Promise<unknown> =>
        Promise.all(
          Array.from({ length: 25 }, () => client.publishAsync('nearmesh/send/all', payload, { qos: 1 })),
        );
      for (let n = 0; n < 40 && ((await counters())['links.dropped_slow_peer'] ?? 0) === 0; n++)
        await burst(fromBravo);
      let seen: Record<string, number> = {};
      await until(
        () => `alpha to stop relaying to the deaf member (counters ${JSON.stringify(seen)})`,
        async () => {
          seen = await counters();
          return (seen['links.dropped_slow_peer'] ?? 0) > 0;
        },
      );
      // Alpha's own messages for everyone are best effort too: 25 MB of them, and none piles up.
      const droppedBefore = seen['links.dropped_slow_peer'] ?? 0;
      const fromAlpha = await clients.connect(await mqttPort(alpha), 4);
      for (let n = 0; n < 20; n++) await burst(fromAlpha);
      const after = await counters();
      expect((after['links.dropped_slow_peer'] ?? 0) - droppedBefore).toBeGreaterThanOrEqual(400);
    } finally {
      clearInterval(sampler);
    }
    const after = await expectResponsive(alpha);
    // Nothing it was owed an acknowledgement for piled up past 16 MiB: still linked, still pinging.
    expect(after.counters['links.slow_peers_cut'] ?? 0).toBe(0);
    expect(after.peers.connected).toBe(2);
    expect(deaf.lines.some((line) => line.includes('closed'))).toBe(false);
    expect(peak).toBeLessThan(idle + 64);
  });
});
