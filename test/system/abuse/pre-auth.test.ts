// An attacker without the mesh key holds pre-auth slots open (silent TCP connections, reopened as they
// close, from one address and from 300): a new peer still links within seconds, and the agent answers
// throughout. Loopback only: 127.0.0.0/8 gives the attacker as many source addresses as it wants.
import { connect, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import type { AgentStatus, PeerInfo } from '../../../agent/api.js';
import { generateMeshKey } from '../../../agent/config/mesh-key.js';
import { expectResponsive } from '../../support/abuse.js';
import { freePorts, startAgent, stopAllAgents } from '../../support/agent-process.js';
import { rssMb } from '../../support/proc-status.js';
import { until } from '../../support/until.js';

/** Silent connections to `port`, each reopened as soon as the agent closes it, until stop(). */
function holdSlots(port: number, sources: readonly string[]): { stop: () => void; opened: () => number } {
  let stopped = false;
  let opened = 0;
  const sockets = new Set<Socket>();
  const open = (source: string): void => {
    if (stopped) return;
    const socket = connect({ host: '127.0.0.1', port, localAddress: source });
    opened++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      setImmediate(() => open(source));
    });
  };
  for (const source of sources) open(source);
  return {
    opened: () => opened,
    stop: () => {
      stopped = true;
      for (const socket of sockets) socket.destroy();
    },
  };
}

afterAll(async () => {
  await stopAllAgents();
});

describe('abuse: pre-auth slots', () => {
  it('a new peer links within 5 s while strangers hold slots from one address and from 300', async () => {
    const meshKey = generateMeshKey();
    const [portA, portB] = (await freePorts(2)) as [number, number];
    const alpha = await startAgent({ name: 'alpha', meshKey, port: portA });
    const idleMb = rssMb(alpha.child.pid as number);
    // 8 from one address (only 4 may hold a slot) and one from each of 300 more: more than the 256 slots.
    const manySources = Array.from(
      { length: 300 },
      (_, i) => `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`,
    );
    const attacker = holdSlots(portA, [...Array(8).fill('127.0.0.2'), ...manySources]);
    try {
      await until('the attacker to hold its connections', () => attacker.opened() >= 308);
      // Every slot is taken and the attacker reopens whatever is closed, as fast as it can.
      await until('the agent to start taking slots back', async () => {
        const status = await alpha.json<AgentStatus>(['status']);
        return (status.counters['links.handshakes_evicted'] ?? 0) > 0;
      });
      const startedAt = Date.now();
      const bravo = await startAgent({ name: 'bravo', meshKey, port: portB, peers: [`127.0.0.1:${portA}`] });
      await until(
        'bravo to link with alpha during the attack',
        async () =>
          (await alpha.json<PeerInfo[]>(['peers'])).some(
            (peer) => peer.name === 'bravo' && peer.state === 'connected',
          ),
        { timeoutMs: 5_000 },
      );
      const linkedAfterMs = Date.now() - startedAt;
      expect(linkedAfterMs).toBeLessThan(5_000);
      const status = await expectResponsive(alpha);
      expect(status.counters['links.handshakes_evicted']).toBeGreaterThan(0);
      expect(rssMb(alpha.child.pid as number)).toBeLessThan(idleMb + 64);
      expect((await bravo.json<AgentStatus>(['status'])).peers.connected).toBe(1);
    } finally {
      attacker.stop();
    }
  });
});
