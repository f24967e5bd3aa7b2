// The app inbox between real agents: reliable messages that arrive while no app listens wait for one;
// a listen takes each once, even across a kill -9 of the listen; several consumers each get their own
// copy; a full inbox leaves the messages queued at their senders until room is made.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentStatus, InboxReport } from '../../agent/api.js';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import type { ListenEvent } from '../../agent/control/wire.js';
import type { PeerInfo } from '../../agent/links/peer-directory.js';
import {
  type AgentProcess,
  type AgentSpec,
  freePorts,
  type Listener,
  listenDirectly,
  listenTo,
  startAgent,
  stopAllAgents,
} from '../support/agent-process.js';
import { ANONYMOUS_MAY_DO_ANYTHING, MqttClients, mqttPort } from '../support/mqtt-clients.js';
import { until } from '../support/until.js';

const meshKey = generateMeshKey();

function lines(prefix: string, count: number): Uint8Array {
  return Buffer.from(`${Array.from({ length: count }, (_, i) => `${prefix}-${i}`).join('\n')}\n`);
}

function payloads(messages: readonly ListenEvent[], prefix: string): string[] {
  return messages.map((message) => message.payload).filter((payload) => payload.startsWith(`${prefix}-`));
}

describe('the app inbox', () => {
  let ports: [number, number];
  let alpha: AgentProcess;
  let bravo: AgentProcess;
  let bravoSpec: AgentSpec;
  let bravoId: string;

  const linked = async (agent: AgentProcess, peer: string): Promise<void> => {
    await until(`${agent.spec.name} linked to ${peer}`, async () => {
      const peers = await agent.json<PeerInfo[]>(['peers']);
      return peers.some((row) => row.id === peer && row.state === 'connected');
    });
  };
  const queuedAt = async (agent: AgentProcess): Promise<number> =>
    (await agent.json<AgentStatus>(['status'])).queued.messages;
  const inboxOf = (agent: AgentProcess): Promise<InboxReport> => agent.json<InboxReport>(['inbox']);
  /** Waits until `consumer` has taken everything (its last take is answered after the message is printed). */
  const drained = (consumer: string): Promise<unknown> =>
    until(`${consumer} to have taken everything`, async () => {
      const row = (await inboxOf(bravo)).consumer_list.find((entry) => entry.name === consumer);
      return row !== undefined && row.waiting === 0;
    });
  /** Forgets a consumer once its last listen is gone (the agent may not have seen it close yet). */
  const forget = (consumer: string): Promise<unknown> =>
    until(`${consumer} forgotten`, async () => (await bravo.cli(['inbox', 'forget', consumer])).code === 0);
  /** A listen of a consumer whose last listen just went: the agent may not have seen that one close yet. */
  const listenAs = (args: string[]): Promise<Listener> =>
    until(`a listen with ${args.join(' ')}`, () => listenTo(bravo, args).catch(() => undefined));
  const send = async (text: string, count: number): Promise<void> => {
    const sent = await alpha.cli(
      ['send', bravoId, '-', '--lines', '--no-wait', '--json'],
      20_000,
      lines(text, count),
    );
    expect(sent.stderr).toBe('');
  };

  beforeAll(async () => {
    ports = (await freePorts(2)) as [number, number];
    alpha = await startAgent({ name: 'alpha', meshKey, port: ports[0], peers: [`127.0.0.1:${ports[1]}`] });
    bravoSpec = {
      name: 'bravo',
      meshKey,
      port: ports[1],
      peers: [`127.0.0.1:${ports[0]}`],
      extraToml: '[inbox]\nmax_messages = 1200\n',
    };
    bravo = await startAgent(bravoSpec);
    bravoId = (await bravo.json<{ id: string }>(['id'])).id;
    await linked(alpha, bravoId);
  }, 30_000);

  afterAll(stopAllAgents);

  it('keeps what arrives while no app listens: a later listen gets each once, a second one none of them', async () => {
    await bravo.stop('SIGTERM');
    await send('early', 3);
    bravo = await startAgent({ ...bravoSpec, dir: bravo.dir });
    await until("alpha's queue to empty", async () => (await queuedAt(alpha)) === 0);
    expect((await inboxOf(bravo)).messages).toBe(3);

    const first = await listenTo(bravo);
    await until('the three waiting messages', () => payloads(first.messages, 'early').length === 3);
    expect(payloads(first.messages, 'early')).toEqual(['early-0', 'early-1', 'early-2']);
    await until('the inbox to empty', async () => (await inboxOf(bravo)).messages === 0);
    first.stop();
    await first.exited;

    // The next listen of the same consumer starts after them: the first thing it gets is a new message.
    const second = await listenAs([]);
    await send('late', 1);
    await until('the new message', () => second.messages.length > 0);
    expect(second.messages.map((message) => message.payload)).toEqual(['late-0']);
    await drained('listen');
    second.stop();
    await second.exited;
  });

  it('a listen killed -9 half way through 1,000 waiting messages: the next gets exactly the rest', async () => {
    const consumer = ['--consumer', 'half'];
    // Registered first, so the messages wait for it.
    const registering = await listenTo(bravo, consumer);
    registering.stop();
    await registering.exited;
    await forget('listen');
    await send('bulk', 1000);
    await until("alpha's queue to empty", async () => (await queuedAt(alpha)) === 0);

    // Straight on the agent's socket: what the killed listen said it took reaches the agent as it would.
    const first = listenDirectly(bravo, consumer);
    await until('half of them', () => payloads(first.messages, 'bulk').length >= 500);
    first.stop();
    await first.exited;
    const before = payloads(first.messages, 'bulk');

    const second = await listenAs(consumer);
    await until('the rest', () => new Set([...before, ...payloads(second.messages, 'bulk')]).size === 1000);
    const after = payloads(second.messages, 'bulk');
    await drained('half');
    second.stop();
    await second.exited;
    const all = Array.from({ length: 1000 }, (_, i) => `bulk-${i}`);
    expect([...new Set([...before, ...after])]).toEqual(all); // none lost, in order
    // At most the message written when the first was killed comes again.
    expect(before.length + after.length - 1000).toBeLessThanOrEqual(1);
    expect(after).toEqual(all.slice(1000 - after.length));
  }, 60_000);

  it('gives each consumer its own copy, and a message leaves once both have it', async () => {
    const one = await listenTo(bravo, ['--consumer', 'one']);
    const two = await listenTo(bravo, ['--consumer', 'two']);
    await forget('half');
    await send('both', 20);
    await until(
      'both copies',
      () => payloads(one.messages, 'both').length === 20 && payloads(two.messages, 'both').length === 20,
    );
    expect(payloads(two.messages, 'both')).toEqual(payloads(one.messages, 'both'));
    let seen: InboxReport | undefined;
    await until(
      () => `the inbox to empty: ${JSON.stringify(seen)}`,
      async () => {
        seen = await inboxOf(bravo);
        return seen.messages === 0;
      },
    );
    one.stop();
    // With `one` away, messages wait for it (and `two` still gets them at once).
    await one.exited;
    await send('away', 5);
    await until('two got them', () => payloads(two.messages, 'away').length === 5);
    await drained('two');
    const report = await inboxOf(bravo);
    expect(report.messages).toBe(5);
    expect(report.consumer_list.find((row) => row.name === 'one')?.waiting).toBe(5);
    two.stop();
    await two.exited;
    await forget('one');
    expect((await inboxOf(bravo)).messages).toBe(0);
  });

  it('when full, leaves messages queued at the sender, and takes them once room is made', async () => {
    await forget('two');
    // No consumer: messages wait for the first; 1,200 fit.
    await send('fill', 1300);
    await until('the inbox full and 100 left queued at alpha', async () => {
      const report = await inboxOf(bravo);
      return report.messages === 1200 && (await queuedAt(alpha)) === 100;
    });
    const refused = (await bravo.json<AgentStatus>(['status'])).counters['inbox.refused_full'] ?? 0;
    expect(refused).toBeGreaterThan(0);
    const reader = await listenTo(bravo, ['--consumer', 'reader']);
    await until('all 1,300, once and in order', () => payloads(reader.messages, 'fill').length === 1300, {
      timeoutMs: 30_000,
    });
    expect(payloads(reader.messages, 'fill')).toEqual(Array.from({ length: 1300 }, (_, i) => `fill-${i}`));
    expect(await queuedAt(alpha)).toBe(0);
    await drained('reader');
    reader.stop();
    await reader.exited;
  }, 60_000);

  it('peeks without taking, and lists and clears what waits', async () => {
    await send('kept', 2);
    await until('two waiting for the reader', async () => (await inboxOf(bravo)).messages === 2);
    const peek = await listenTo(bravo, ['--peek']);
    await until('the peek to show them', () => payloads(peek.messages, 'kept').length === 2);
    peek.stop();
    await peek.exited;
    const listed = await bravo.json<ListenEvent[]>(['inbox', 'list']);
    expect(listed.map((message) => message.payload)).toEqual(['kept-0', 'kept-1']);
    const cleared = await bravo.json<{ removed: number }>(['inbox', 'clear']);
    expect(cleared.removed).toBe(2);
    expect((await inboxOf(bravo)).messages).toBe(0);
  });
});

describe('an MQTT send', () => {
  const clients = new MqttClients();
  afterAll(async () => {
    clients.endAll();
    await stopAllAgents();
  });

  it('is stored before its PUBACK: the sender killed -9 right after, the message still arrives once', async () => {
    const [senderPort, receiverPort] = (await freePorts(2)) as [number, number];
    const senderSpec: AgentSpec = {
      name: 'mq-sender',
      meshKey,
      port: senderPort,
      peers: [`127.0.0.1:${receiverPort}`],
      mqtt: ['listen = "127.0.0.1:0"', ANONYMOUS_MAY_DO_ANYTHING],
    };
    const receiverSpec: AgentSpec = {
      name: 'mq-receiver',
      meshKey,
      port: receiverPort,
      peers: [`127.0.0.1:${senderPort}`],
    };
    let sender = await startAgent(senderSpec);
    let receiver = await startAgent(receiverSpec);
    const receiverId = (await receiver.json<{ id: string }>(['id'])).id;
    await until('linked', async () =>
      (await sender.json<PeerInfo[]>(['peers'])).some(
        (row) => row.id === receiverId && row.state === 'connected',
      ),
    );
    await receiver.stop('SIGTERM');

    const app = await clients.connect(await mqttPort(sender), 4);
    await app.publishAsync(`nearmesh/send/${receiverId}`, 'kept through a crash', { qos: 1 });
    await sender.stop('SIGKILL');

    sender = await startAgent({ ...senderSpec, dir: sender.dir });
    receiver = await startAgent({ ...receiverSpec, dir: receiver.dir });
    const listener = await listenTo(receiver);
    await until('the message', () => listener.messages.length > 0, { timeoutMs: 20_000 });
    await until(
      "the sender's queue to empty",
      async () => (await sender.json<AgentStatus>(['status'])).queued.messages === 0,
    );
    expect(listener.messages.map((message) => message.payload)).toEqual(['kept through a crash']);
    listener.stop();
  }, 60_000);
});
