// Reliable messages survive a crash of either side: the sender is killed with -9 while its durable queue
// still holds messages, and restarted; and killed mid-stream, and restarted. Every message arrives exactly
// once and in order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import type { PeerInfo } from '../../agent/links/peer-directory.js';
import {
  type AgentProcess,
  freePorts,
  type Listener,
  listenTo,
  startAgent,
  stopAllAgents,
} from '../support/agent-process.js';
import { until } from '../support/until.js';

const meshKey = generateMeshKey();
const COUNT = 2_000;

interface Status {
  queued: { messages: number };
  counters: Record<string, number>;
}

function numbered(prefix: string): Uint8Array {
  const lines = Array.from({ length: COUNT }, (_, index) => `${prefix}-${index}`);
  return Buffer.from(`${lines.join('\n')}\n`);
}

/** What `listener` got from `from` with `prefix`, in arrival order. */
function received(listener: Listener, from: string, prefix: string): string[] {
  return listener.messages
    .filter((message) => message.from === from && message.payload.startsWith(`${prefix}-`))
    .map((message) => message.payload);
}

function expectOnceInOrder(payloads: string[], prefix: string): void {
  expect(new Set(payloads).size).toBe(payloads.length);
  expect(payloads).toEqual(Array.from({ length: COUNT }, (_, index) => `${prefix}-${index}`));
}

describe('reliable messages across a kill -9', () => {
  let alpha: AgentProcess;
  let bravo: AgentProcess;
  let alphaId: string;
  let bravoId: string;
  let ports: [number, number];

  const linked = async (agent: AgentProcess, peer: string): Promise<void> => {
    await until(`${agent.spec.name} linked`, async () => {
      const peers = await agent.json<PeerInfo[]>(['peers']);
      return peers.some((row) => row.id === peer && row.state === 'connected');
    });
  };

  beforeAll(async () => {
    ports = (await freePorts(2)) as [number, number];
    alpha = await startAgent({ name: 'alpha', meshKey, port: ports[0], peers: [`127.0.0.1:${ports[1]}`] });
    bravo = await startAgent({ name: 'bravo', meshKey, port: ports[1], peers: [`127.0.0.1:${ports[0]}`] });
    alphaId = (await alpha.json<{ id: string }>(['id'])).id;
    bravoId = (await bravo.json<{ id: string }>(['id'])).id;
    await linked(alpha, bravoId);
  }, 30_000);

  afterAll(stopAllAgents);

  it('loses none of the queued messages of a sender killed with -9, and delivers each once', async () => {
    const listener = await listenTo(bravo);
    try {
      // Queued while bravo is down, so all of them are still in alpha's queue when it dies.
      await bravo.stop('SIGKILL');
      const queued = await alpha.cli(
        ['send', bravoId, '-', '--lines', '--no-wait', '--json'],
        20_000,
        numbered('q'),
      );
      expect(queued.stderr).toBe('');
      expect(JSON.parse(queued.stdout)).toMatchObject({ count: COUNT, acknowledged: false });
      await alpha.stop('SIGKILL');

      // bravo (and an app listening on it) first, so the app is there when the messages come.
      bravo = await startAgent({ ...bravo.spec, dir: bravo.dir });
      const restartedListener = await listenTo(bravo);
      alpha = await startAgent({ ...alpha.spec, dir: alpha.dir });
      try {
        await until(
          'every queued message at bravo',
          () => received(restartedListener, alphaId, 'q').length >= COUNT,
          { timeoutMs: 60_000, intervalMs: 250 },
        );
        await until(
          'the queue empty',
          async () => (await alpha.json<Status>(['status'])).queued.messages === 0,
        );
        expectOnceInOrder(received(restartedListener, alphaId, 'q'), 'q');
      } finally {
        restartedListener.stop();
      }
    } finally {
      listener.stop();
    }
  }, 120_000);

  it('delivers each message once when the sender is killed mid-stream and restarted', async () => {
    await linked(alpha, bravoId);
    const listener = await listenTo(bravo);
    try {
      const queued = await alpha.cli(['send', bravoId, '-', '--lines', '--no-wait'], 20_000, numbered('m'));
      expect(queued.code).toBe(0);
      // Some are delivered by now, most are not: kill -9 in the middle of the stream.
      await until('the stream under way', () => received(listener, alphaId, 'm').length > 0);
      await alpha.stop('SIGKILL');
      const before = received(listener, alphaId, 'm').length;
      expect(before).toBeLessThan(COUNT);
      alpha = await startAgent({ ...alpha.spec, dir: alpha.dir });
      await until('every message at bravo', () => received(listener, alphaId, 'm').length >= COUNT, {
        timeoutMs: 60_000,
        intervalMs: 250,
      });
      // Nothing left to resend once the queue is empty; a last message, acknowledged and at the app, comes
      // after anything still on its way: late duplicates, if the receiver let any through, show by then.
      await until(
        'the queue empty',
        async () => (await alpha.json<Status>(['status'])).queued.messages === 0,
      );
      const last = await alpha.cli(['send', bravoId, 'last-one']);
      expect(last.code).toBe(0);
      await until('the last message at bravo', () =>
        listener.messages.some((message) => message.from === alphaId && message.payload === 'last-one'),
      );
      expectOnceInOrder(received(listener, alphaId, 'm'), 'm');
      const status = await bravo.json<Status>(['status']);
      console.log(
        `[reliable] ${before} of ${COUNT} delivered before the kill; duplicates dropped by bravo: ${status.counters['messages.duplicates_dropped'] ?? 0}`,
      );
    } finally {
      listener.stop();
    }
  }, 120_000);
});
