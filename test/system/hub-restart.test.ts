// A hub with 20 direct peers (every one a real agent process with its own identity, dialling the hub over
// loopback TCP) is restarted while every peer keeps sending it reliable messages: all 20 are linked again
// within 10 s of the new hub process starting, no link on either side is dropped by a keep-alive, no peer
// takes the stopping hub for one of another mesh key, and every message sent before, during and after the
// restart reaches the hub's app exactly once. The smaller form of
// bench row 26 (`npm run bench -- scale`). Uses the built dist/ (npm test builds first).
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AgentStatus, PeerInfo } from '../../agent/api.js';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import { ControlClient } from '../../agent/control/client.js';
import {
  type AgentProcess,
  type AgentSpec,
  freePorts,
  startAgent,
  stopAllAgents,
} from '../support/agent-process.js';
import { until } from '../support/until.js';

const PEERS = 20;
const SEND_EVERY_MS = 200;
const RELINK_LIMIT_MS = 10_000;

const clientOf = (agent: AgentProcess): Promise<ControlClient> =>
  ControlClient.connect(join(agent.dir, 'control.sock'));

async function counter(client: ControlClient, name: string): Promise<number> {
  const status = (await client.request({ cmd: 'status' })) as AgentStatus;
  return status.counters[name] ?? 0;
}

const keepaliveTimeouts = (client: ControlClient): Promise<number> =>
  counter(client, 'links.keepalive_timeouts');
/** Handshakes a peer saw closed unanswered: a wrong mesh key, it must assume, and it tries its next one. */
const refusedHandshakes = (client: ControlClient): Promise<number> => counter(client, 'handshake.refused');

async function connectedTo(hub: ControlClient): Promise<number> {
  const peers = (await hub.request({ cmd: 'peers' })) as PeerInfo[];
  return peers.filter((peer) => peer.state === 'connected').length;
}

/**
 * The hub's app: a `listen` that takes what it got every 100 ms. A message given again after a restart under
 * the same inbox id (not yet taken when the hub stopped) is the same delivery; two ids would be two.
 */
async function attachApp(hub: ControlClient, inboxIds: Map<string, Set<number>>): Promise<() => void> {
  let upTo = 0;
  await hub.stream({ cmd: 'listen' }, (event) => {
    const id = event.inbox_id ?? 0;
    inboxIds.set(event.payload, (inboxIds.get(event.payload) ?? new Set()).add(id));
    upTo = Math.max(upTo, id);
  });
  const timer = setInterval(() => void hub.request({ cmd: 'inbox-take', up_to: upTo }).catch(() => {}), 100);
  return () => clearInterval(timer);
}

afterAll(stopAllAgents, 30_000);

describe(`a hub with ${PEERS} direct peers`, () => {
  it('relinks all of them within 10 s of a restart under load, no keep-alive drops, every message once', async () => {
    const meshKey = generateMeshKey();
    const [hubPort = 0, ...peerPorts] = await freePorts(PEERS + 1);
    const hubSpec: AgentSpec = { name: 'hub', meshKey, port: hubPort };
    const [firstHub, ...peers] = await Promise.all([
      startAgent(hubSpec),
      ...peerPorts.map((port, index) =>
        startAgent({ name: `p${index + 1}`, meshKey, port, peers: [`127.0.0.1:${hubPort}`] }),
      ),
    ]);
    if (firstHub === undefined) throw new Error('no hub');
    let hubClient = await clientOf(firstHub);
    const peerClients = await Promise.all(peers.map(clientOf));
    const clients = [hubClient, ...peerClients];
    try {
      const hubId = ((await hubClient.request({ cmd: 'id' })) as { id: string }).id;
      await until(
        `all ${PEERS} peers linked to the hub`,
        async () => (await connectedTo(hubClient)) === PEERS,
        {
          timeoutMs: 30_000,
          intervalMs: 250,
        },
      );
      const inboxIds = new Map<string, Set<number>>();
      let detachApp = await attachApp(hubClient, inboxIds);
      const timeoutsBefore = await Promise.all(peerClients.map(keepaliveTimeouts));
      const refusedBefore = await Promise.all(peerClients.map(refusedHandshakes));

      // Each peer queues a message every 200 ms (answered once it is durably queued), restart or not.
      const sent: string[] = [];
      const failures: unknown[] = [];
      const load = peerClients.map((client, index) =>
        setInterval(() => {
          const payload = `p${index + 1}-${sent.length}`;
          sent.push(payload);
          client
            .request({
              cmd: 'send',
              peer: hubId,
              payload: Buffer.from(payload).toString('base64'),
              wait: false,
            })
            .catch((error: unknown) => failures.push(error));
        }, SEND_EVERY_MS),
      );
      try {
        await until('messages flowing', () => inboxIds.size >= PEERS * 5, { timeoutMs: 20_000 });
        detachApp();
        hubClient.close();
        await firstHub.stop('SIGTERM');
        const spawnedAtMs = Date.now();
        const hub = await startAgent({ ...hubSpec, dir: firstHub.dir });
        hubClient = await clientOf(hub);
        clients.push(hubClient);
        detachApp = await attachApp(hubClient, inboxIds);
        await until(
          `all ${PEERS} peers linked to the restarted hub`,
          async () => (await connectedTo(hubClient)) === PEERS,
          { timeoutMs: 30_000, intervalMs: 100 },
        );
        const relinkedMs = Date.now() - spawnedAtMs;
        console.log(`[hub-restart] ${PEERS} peers linked ${relinkedMs} ms after the hub's spawn`);
        expect(relinkedMs).toBeLessThanOrEqual(RELINK_LIMIT_MS);
        const sentBefore = sent.length;
        await until('more messages after the restart', () => sent.length >= sentBefore + PEERS * 5);
      } finally {
        for (const timer of load) clearInterval(timer);
      }
      expect(failures).toEqual([]);
      await until(
        `all ${sent.length} messages at the hub's app`,
        () => sent.every((payload) => inboxIds.has(payload)),
        { timeoutMs: 30_000, intervalMs: 250 },
      );
      detachApp();
      const stored = [...inboxIds.entries()].filter(([, ids]) => ids.size > 1).map(([payload]) => payload);
      expect(stored, 'messages stored twice in the hub inbox').toEqual([]);
      expect(inboxIds.size).toBe(sent.length);
      expect(await keepaliveTimeouts(hubClient)).toBe(0);
      const timeoutsAfter = await Promise.all(peerClients.map(keepaliveTimeouts));
      expect(timeoutsAfter).toEqual(timeoutsBefore);
      // The stopping hub stopped accepting first: a peer that dialled it meanwhile was refused by TCP.
      expect(await Promise.all(peerClients.map(refusedHandshakes))).toEqual(refusedBefore);
    } finally {
      for (const client of clients) client.close();
    }
  }, 90_000);
});
