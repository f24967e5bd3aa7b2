// What calls may cost the agent that runs them: runs at once per action and across the agent, a bounded
// queue that answers busy when full, a deadline that ends a wait without a run, and a bounded number of
// calls waiting for their instant, per caller and in total.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_COORDINATION_LIMITS } from '../../../agent/coordination/config.js';
import { Executor } from '../../../agent/coordination/executor.js';
import type { ActionHandler, CallResult } from '../../../agent/coordination/handler.js';
import { LeaseTable } from '../../../agent/coordination/leases.js';
import { CapabilityRegistry } from '../../../agent/coordination/registry.js';
import { TimeSync } from '../../../agent/coordination/time-sync.js';
import { Counters } from '../../../agent/core/counters.js';
import type { CallMessage, ResultMessage } from '../../../agent/protocol/coordination.js';
import { until } from '../../support/until.js';

const SELF = '1111111111111111';
const CALLER = '2222222222222222';
const OTHER = '3333333333333333';

afterEach(() => {
  vi.useRealTimers();
});

/** An action whose runs last until the test ends them, one by one. */
function setUp(
  action: { concurrency?: number; queue?: number; timeoutMs?: number } = {},
  limits: Partial<typeof DEFAULT_COORDINATION_LIMITS> = {},
  clock: () => number = () => Date.now(),
) {
  const running: Array<(result: CallResult) => void> = [];
  let runs = 0;
  const handler: ActionHandler = {
    kind: 'test',
    invoke: () => {
      runs++;
      return new Promise((resolve) => running.push(resolve));
    },
  };
  const registry = new CapabilityRegistry();
  registry.addAction({
    name: 'slow',
    handler,
    timeoutMs: action.timeoutMs ?? 10_000,
    allow: undefined,
    concurrency: action.concurrency,
    queue: action.queue,
  });
  const counters = new Counters();
  // Peers answer every time request at once, with the same clock: timed calls agree on the time.
  const timeSync: TimeSync = new TimeSync({
    clock,
    send: async (peer, message) => {
      if (message.kind !== 'time-request') return;
      const { t1 } = message;
      queueMicrotask(() => timeSync.onReply(peer, { kind: 'time-reply', t1, t2: t1, t3: t1 }));
    },
  });
  const executor = new Executor({
    selfId: SELF,
    registry,
    timeSync,
    leases: new LeaseTable(),
    describe: () => ({ groups: [] }),
    counters,
    limits: { ...DEFAULT_COORDINATION_LIMITS, ...limits },
  });
  /** Ends the oldest run still going. */
  const finishOne = (): void => {
    const finish = running.shift();
    if (finish === undefined) throw new Error('no run is going');
    finish({ ok: true, value: 'done' });
  };
  return { executor, counters, runs: () => runs, running: () => running.length, finishOne };
}

let nextId = 0;
function call(overrides: Partial<Omit<CallMessage, 'kind'>> = {}): CallMessage {
  nextId++;
  const callId = new Uint8Array(16);
  new DataView(callId.buffer).setUint32(0, nextId);
  return {
    kind: 'call',
    callId,
    action: 'slow',
    args: {},
    fireAt: null,
    timeoutMs: 10_000,
    ...overrides,
  };
}

function errorCode(result: ResultMessage | undefined): string | undefined {
  return result?.outcome.ok === false ? result.outcome.error.code : undefined;
}

describe('runs at once and the queue', () => {
  it('runs an exec action 4 at a time by default; the others wait their turn and all run', async () => {
    const { executor, runs, running, finishOne } = setUp();
    const results = Array.from({ length: 6 }, () => executor.handle(CALLER, call()));
    await until('4 runs', () => running() === 4);
    expect(runs()).toBe(4);
    finishOne();
    finishOne();
    await until('the waiting calls to run', () => running() === 4 && runs() === 6);
    for (let i = 0; i < 4; i++) finishOne();
    expect((await Promise.all(results)).every((result) => result.outcome.ok)).toBe(true);
  });

  it('never runs more than max_running across the agent', async () => {
    const { executor, runs, running, finishOne } = setUp({ concurrency: 8 }, { maxRunning: 3 });
    const results = Array.from({ length: 5 }, () => executor.handle(CALLER, call()));
    await until('3 runs', () => running() === 3);
    expect(runs()).toBe(3);
    finishOne();
    await until('a 4th run', () => runs() === 4);
    expect(running()).toBe(3);
    finishOne();
    await until('the 5th run', () => runs() === 5);
    for (let i = 0; i < 3; i++) finishOne();
    expect((await Promise.all(results)).every((result) => result.outcome.ok)).toBe(true);
  });

  it('answers busy, counted, when the queue is full; the call never ran, so a retry may run', async () => {
    const { executor, counters, runs, running, finishOne } = setUp({ concurrency: 1, queue: 1 });
    const first = executor.handle(CALLER, call());
    const second = executor.handle(CALLER, call());
    const refusedCall = call();
    const refused = await executor.handle(CALLER, refusedCall);
    expect(refused).toMatchObject({ outcome: { ok: false, error: { code: 'busy' } }, firedAt: null });
    expect(counters.get('coordination.calls_busy')).toBe(1);
    expect(runs()).toBe(1);
    finishOne();
    await until('the second call to run', () => running() === 1);
    finishOne();
    await Promise.all([first, second]);
    const retry = executor.handle(CALLER, refusedCall);
    await until('the retry to run', () => running() === 1);
    finishOne();
    expect((await retry).outcome).toEqual({ ok: true, value: 'done' });
    expect(runs()).toBe(3);
  });

  it('a waiting call whose deadline passes answers timeout and never runs late', async () => {
    vi.useFakeTimers();
    const { executor, counters, runs, finishOne } = setUp({ concurrency: 1, timeoutMs: 60_000 });
    const first = executor.handle(CALLER, call());
    const late: { result?: ResultMessage } = {};
    void executor.handle(CALLER, call({ timeoutMs: 1_000 })).then((result) => {
      late.result = result;
    });
    await vi.advanceTimersByTimeAsync(999);
    expect(late.result).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(errorCode(late.result)).toBe('timeout');
    expect(late.result?.firedAt).toBeNull();
    expect(counters.get('coordination.calls_timed_out_waiting')).toBe(1);
    finishOne();
    await first;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(runs()).toBe(1);
  });
});

describe('calls waiting for their instant', () => {
  it('takes at most max_scheduled_per_caller from one caller, and max_scheduled in all; counted', async () => {
    const { executor, counters, runs, finishOne } = setUp({}, { maxScheduled: 3, maxScheduledPerCaller: 2 });
    const fireAt = Date.now() + 200;
    const accepted = [executor.handle(CALLER, call({ fireAt })), executor.handle(CALLER, call({ fireAt }))];
    const perCaller = await executor.handle(CALLER, call({ fireAt }));
    expect(perCaller.outcome).toMatchObject({
      ok: false,
      error: {
        code: 'too-many-scheduled',
        message: 'this agent holds 2 scheduled calls from the caller already',
      },
    });
    accepted.push(executor.handle(OTHER, call({ fireAt })));
    const total = await executor.handle(OTHER, call({ fireAt }));
    expect(total.outcome).toMatchObject({
      ok: false,
      error: { code: 'too-many-scheduled', message: 'this agent holds 3 scheduled calls already' },
    });
    expect(counters.get('coordination.calls_refused_too_many_scheduled')).toBe(2);
    expect(runs()).toBe(0);
    // Once they fire, their places are free again.
    await until('the scheduled calls to run', () => runs() === 3);
    for (let i = 0; i < 3; i++) finishOne();
    await Promise.all(accepted);
    const again = executor.handle(CALLER, call({ fireAt: Date.now() + 10 }));
    await until('a new scheduled call to run', () => runs() === 4);
    finishOne();
    expect((await again).outcome).toEqual({ ok: true, value: 'done' });
  });

  it('20,000 calls a day ahead: the bound holds, the rest are refused at once', async () => {
    vi.useFakeTimers();
    // Time exchanges need a clock that moves; the faked one stands still.
    let nowMs = Date.now();
    const { executor, counters, runs } = setUp({}, {}, () => (nowMs += 0.001));
    const fireAt = Date.now() + 86_000_000;
    const refused: ResultMessage[] = [];
    const callers = Array.from({ length: 400 }, (_, i) => i.toString(16).padStart(16, '0'));
    for (const caller of callers) {
      for (let i = 0; i < 50; i++) {
        void executor.handle(caller, call({ fireAt })).then((result) => refused.push(result));
      }
    }
    await vi.advanceTimersByTimeAsync(0);
    const { maxScheduled } = DEFAULT_COORDINATION_LIMITS;
    expect(refused).toHaveLength(20_000 - maxScheduled);
    expect(refused.every((result) => errorCode(result) === 'too-many-scheduled')).toBe(true);
    expect(counters.get('coordination.calls_refused_too_many_scheduled')).toBe(20_000 - maxScheduled);
    expect(runs()).toBe(0);
  });
});
