// A coordinator takes answers only to questions it asked (docs/PROTOCOL.md §14.3): a RESULT, LEASE-REPLY,
// SENSOR-VALUE or TIME-REPLY that answers nothing pending with the peer it comes from is dropped and
// counted (coordination.unsolicited_dropped), and a pushed reading counts only while this agent watches
// that sensor at that peer. Messages go through receive() as bytes, as they arrive from the mesh.
import { describe, expect, test } from 'vitest';
import { Coordinator, type SensorReadingEvent } from '../../../agent/coordination/coordinator.js';
import { CapabilityRegistry } from '../../../agent/coordination/registry.js';
import { Counters } from '../../../agent/core/counters.js';
import { silentLogger } from '../../../agent/core/logger.js';
import {
  type CoordinationMessage,
  decodeCoordination,
  encodeCoordination,
  type SensorValueMessage,
} from '../../../agent/protocol/coordination.js';

const SELF = '1111111111111111';
const PEER = '2222222222222222';
const OTHER = '3333333333333333';
const PEERS: Record<string, { id: string; name: string }> = {
  [PEER]: { id: PEER, name: 'peer' },
  [OTHER]: { id: OTHER, name: 'other' },
};

function setUp() {
  const sent: Array<{ peer: string; message: CoordinationMessage }> = [];
  let wake: (() => void) | undefined;
  const counters = new Counters();
  const coordinator = new Coordinator({
    selfId: SELF,
    name: 'self',
    groups: [],
    registry: new CapabilityRegistry(),
    clock: () => Date.now(),
    send: async (peer, payload) => {
      sent.push({ peer, message: decodeCoordination(payload) as CoordinationMessage });
      wake?.();
    },
    knownAgents: () => [],
    resolvePeer: (reference) => PEERS[reference],
    onCapabilitiesChanged: () => {},
    counters,
    log: silentLogger(),
  });
  const readings: SensorReadingEvent[] = [];
  coordinator.on('reading', (reading) => readings.push(reading));
  return {
    coordinator,
    readings,
    /** The next message this agent sends, once it has sent it. */
    async nextSent(): Promise<{ peer: string; message: CoordinationMessage }> {
      while (sent.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      return sent.shift() as { peer: string; message: CoordinationMessage };
    },
    receive(from: string, message: CoordinationMessage): void {
      coordinator.receive(from, encodeCoordination(message));
    },
    dropped: () => counters.get('coordination.unsolicited_dropped'),
  };
}

function push(sensor: string, value: number): SensorValueMessage {
  return {
    kind: 'sensor-value',
    requestId: 0,
    sensor,
    reading: { ok: true, value, unit: '°C', readAt: 1_767_225_600_000 },
  };
}

describe('pushed readings (SENSOR-VALUE with requestId 0)', () => {
  test('a push from a peer this agent does not watch fires no reading event, and is counted', () => {
    const { coordinator, readings, receive, dropped } = setUp();
    receive(PEER, push('temperature', 21.5));
    expect(readings).toEqual([]);
    expect(coordinator.latest()).toEqual([]);
    expect(dropped()).toBe(1);
  });

  test("a watched sensor's pushes are readings; that sensor from another peer and other sensors are not", async () => {
    const { coordinator, readings, nextSent, receive, dropped } = setUp();
    const stop = coordinator.watch(PEER, 'temperature', 1000);
    expect(await nextSent()).toMatchObject({ peer: PEER, message: { kind: 'sensor-watch', ttlMs: 60_000 } });
    receive(PEER, push('temperature', 21.5));
    receive(OTHER, push('temperature', 99));
    receive(PEER, push('humidity', 99));
    expect(readings).toMatchObject([{ peer: PEER, sensor: 'temperature', value: 21.5 }]);
    expect(dropped()).toBe(2);
    stop();
  });

  test('after the watch stops, the peer is told to stop pushing and its pushes are dropped', async () => {
    const { coordinator, readings, nextSent, receive, dropped } = setUp();
    const stop = coordinator.watch(PEER, 'temperature', 1000);
    await nextSent();
    stop();
    expect(await nextSent()).toMatchObject({ peer: PEER, message: { kind: 'sensor-watch', ttlMs: 0 } });
    receive(PEER, push('temperature', 21.5));
    expect(readings).toEqual([]);
    expect(dropped()).toBe(1);
  });

  test('the watch lasts while another watcher of the same sensor remains', async () => {
    const { coordinator, readings, nextSent, receive, dropped } = setUp();
    const stopFirst = coordinator.watch(PEER, 'temperature', 1000);
    const stopSecond = coordinator.watch(PEER, 'temperature', 1000);
    await nextSent();
    await nextSent();
    stopFirst();
    receive(PEER, push('temperature', 21.5));
    expect(readings).toHaveLength(1);
    stopSecond();
    expect(await nextSent()).toMatchObject({ message: { kind: 'sensor-watch', ttlMs: 0 } });
    receive(PEER, push('temperature', 22));
    expect(readings).toHaveLength(1);
    expect(dropped()).toBe(1);
  });
});

/** A question this agent asks PEER, and an answer to it carrying a number that the question's result shows. */
interface AnsweredKind {
  kind: string;
  ask(coordinator: Coordinator): Promise<number>;
  answer(question: CoordinationMessage, value: number): CoordinationMessage;
}

const answeredKinds: AnsweredKind[] = [
  {
    kind: 'RESULT',
    ask: async (coordinator) => {
      const [outcome] = await coordinator.call({ target: PEER, action: 'dim', args: {}, timeoutMs: 1000 });
      return outcome?.value as number;
    },
    answer: (question, value) => ({
      kind: 'result',
      callId: (question as { callId: Uint8Array }).callId,
      outcome: { ok: true, value },
      firedAt: null,
    }),
  },
  {
    kind: 'LEASE-REPLY',
    ask: async (coordinator) => (await coordinator.lease(PEER, 'pump', 'acquire', 30_000)).remaining_ms,
    answer: (question, value) => ({
      kind: 'lease-reply',
      requestId: (question as { requestId: number }).requestId,
      granted: true,
      holder: SELF,
      remainingMs: value,
    }),
  },
  {
    kind: 'SENSOR-VALUE',
    ask: async (coordinator) => (await coordinator.read(PEER, 'temperature')).value as number,
    answer: (question, value) => ({
      ...push('temperature', value),
      requestId: (question as { requestId: number }).requestId,
    }),
  },
];

describe.each(answeredKinds)('answers: $kind', ({ ask, answer }) => {
  test('from another peer than the one asked it is dropped; the asked peer settles the question, once', async () => {
    const { coordinator, nextSent, receive, dropped } = setUp();
    const asked = ask(coordinator);
    const question = await nextSent();
    expect(question.peer).toBe(PEER);
    receive(OTHER, answer(question.message, 99));
    expect(dropped()).toBe(1);
    receive(PEER, answer(question.message, 21));
    expect(await asked).toBe(21);
    expect(dropped()).toBe(1);
    // Answered already: the same answer again answers nothing pending.
    receive(PEER, answer(question.message, 21));
    expect(dropped()).toBe(2);
  });
});

test('answers: TIME-REPLY from another peer than the one asked is dropped; the asked one sets the clock', async () => {
  const { coordinator, nextSent, receive, dropped } = setUp();
  const estimate = coordinator.timeSync.estimate(PEER);
  // PEER's clock is 1 s ahead; OTHER claims an hour.
  const reply = (t1: number, aheadMs: number): CoordinationMessage => ({
    kind: 'time-reply',
    t1,
    t2: t1 + aheadMs,
    t3: t1 + aheadMs,
  });
  const first = (await nextSent()).message as { t1: number };
  receive(OTHER, reply(first.t1, 3_600_000));
  expect(dropped()).toBe(1);
  receive(PEER, reply(first.t1, 1000));
  expect(coordinator.timeSync.known(PEER)).toBeDefined();
  // The rest of the burst, answered by PEER as each exchange starts.
  for (let exchange = 1; exchange < 8; exchange++) {
    const next = await nextSent();
    receive(PEER, reply((next.message as { t1: number }).t1, 1000));
  }
  const offsetMs = (await estimate)?.offsetMs as number;
  expect(Math.abs(offsetMs - 1000)).toBeLessThan(100);
  expect(dropped()).toBe(1);
  receive(PEER, reply(first.t1, 1000));
  expect(dropped()).toBe(2);
});
