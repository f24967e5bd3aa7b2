// The executor's checks on a remote call, in their documented order (docs/PROTOCOL.md §14.4): the action
// exists, its allow list names the caller (the mesh source, which the envelope authenticates), no other
// agent holds a lease on it, and a timed call can agree on the time; a call id from one caller runs once.
import { describe, expect, it } from 'vitest';
import { Executor } from '../../../agent/coordination/executor.js';
import type { ActionHandler } from '../../../agent/coordination/handler.js';
import { LeaseTable } from '../../../agent/coordination/leases.js';
import { CapabilityRegistry } from '../../../agent/coordination/registry.js';
import { TimeSync } from '../../../agent/coordination/time-sync.js';
import { Counters } from '../../../agent/core/counters.js';
import type { CallMessage } from '../../../agent/protocol/coordination.js';

const SELF = '1111111111111111';
const CALLER = '2222222222222222';
const OTHER = '3333333333333333';

function setUp(allow?: readonly string[], prepared?: ActionHandler['prepare']) {
  let runs = 0;
  let timeRequests = 0;
  const handler: ActionHandler = {
    kind: 'test',
    invoke: async (args) => {
      runs++;
      return { ok: true, value: args };
    },
    ...(prepared !== undefined && { prepare: prepared }),
  };
  const registry = new CapabilityRegistry();
  const leases = new LeaseTable();
  const counters = new Counters();
  registry.addAction({ name: 'light.set', handler, timeoutMs: 1000, allow });
  const executor = new Executor({
    selfId: SELF,
    registry,
    // No peer ever answers a TIME-REQUEST: a timed call cannot agree on the time.
    timeSync: new TimeSync({
      clock: () => Date.now(),
      send: async () => {
        timeRequests++;
        throw new Error('unreachable');
      },
    }),
    leases,
    describe: (peerId) => (peerId === CALLER ? { name: 'hall-pi', groups: ['hall'] } : { groups: [] }),
    counters,
  });
  return { executor, leases, counters, runs: () => runs, timeRequests: () => timeRequests };
}

function call(overrides: Partial<Omit<CallMessage, 'kind'>> = {}): CallMessage {
  return {
    kind: 'call',
    callId: new Uint8Array(16).fill(7),
    action: 'light.set',
    args: { on: true },
    fireAt: null,
    timeoutMs: 1000,
    ...overrides,
  };
}

describe('executor', () => {
  it('runs a call and answers with the handler value', async () => {
    const { executor, runs } = setUp();
    const result = await executor.handle(CALLER, call());
    expect(result).toMatchObject({ kind: 'result', outcome: { ok: true, value: { on: true } } });
    expect(result.callId).toEqual(call().callId);
    expect(runs()).toBe(1);
  });

  it('refuses an action it does not have, and counts the refusal by code', async () => {
    const { executor, counters, runs } = setUp();
    const result = await executor.handle(CALLER, call({ action: 'door.open' }));
    expect(result).toMatchObject({
      outcome: { ok: false, error: { code: 'unknown-action' } },
      firedAt: null,
    });
    expect(counters.get('coordination.calls_refused_unknown_action')).toBe(1);
    expect(runs()).toBe(0);
  });

  it('checks the allow list against the mesh source: its peer id, its announced name or groups', async () => {
    for (const entry of [CALLER, 'hall-pi', 'group:hall']) {
      const { executor } = setUp([entry]);
      expect((await executor.handle(CALLER, call())).outcome.ok, entry).toBe(true);
    }
    const { executor, counters, runs } = setUp(['hall-pi']);
    const refused = await executor.handle(OTHER, call());
    expect(refused.outcome).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    expect(counters.get('coordination.calls_refused_forbidden')).toBe(1);
    expect(runs()).toBe(0);
  });

  it('is forbidden before busy: a caller the allow list does not name learns nothing of leases', async () => {
    const { executor, leases } = setUp(['hall-pi']);
    leases.acquire(CALLER, 'light.set', 60_000);
    const result = await executor.handle(OTHER, call());
    expect(result.outcome).toMatchObject({ ok: false, error: { code: 'forbidden' } });
  });

  it("answers busy while another agent holds a lease on the action, and runs the holder's own calls", async () => {
    const { executor, leases, runs } = setUp();
    expect(leases.acquire(OTHER, 'light.set', 60_000).granted).toBe(true);
    const refused = await executor.handle(CALLER, call());
    expect(refused.outcome).toMatchObject({ ok: false, error: { code: 'busy' } });
    expect(runs()).toBe(0);
    leases.release(OTHER, 'light.set');
    expect(leases.acquire(CALLER, 'light.set', 60_000).granted).toBe(true);
    const allowed = await executor.handle(CALLER, call({ callId: new Uint8Array(16).fill(9) }));
    expect(allowed.outcome.ok).toBe(true);
  });

  it('is busy before no-clock-sync: a timed call to a leased action is refused without a time exchange', async () => {
    const { executor, leases } = setUp();
    leases.acquire(OTHER, 'light.set', 60_000);
    const result = await executor.handle(CALLER, call({ fireAt: Date.now() + 1000 }));
    expect(result.outcome).toMatchObject({ ok: false, error: { code: 'busy' } });
  });

  it('answers no-clock-sync for a timed call when the caller answers no time exchange; a retry tries again', async () => {
    const { executor, counters, runs, timeRequests } = setUp();
    const first = await executor.handle(CALLER, call({ fireAt: Date.now() + 1000 }));
    expect(first).toMatchObject({ outcome: { ok: false, error: { code: 'no-clock-sync' } }, firedAt: null });
    const triedFirst = timeRequests();
    expect(triedFirst).toBeGreaterThan(0);
    const retry = await executor.handle(CALLER, call({ fireAt: Date.now() + 1000 }));
    expect(retry.outcome).toMatchObject({ ok: false, error: { code: 'no-clock-sync' } });
    expect(timeRequests()).toBe(2 * triedFirst);
    expect(runs()).toBe(0);
    expect(counters.get('coordination.calls_refused_no_clock_sync')).toBe(2);
  });

  it('has the handler prepare a timed call, then starts the prepared run no earlier than its instant', async () => {
    let preparedAt: number | undefined;
    let startedAt: number | undefined;
    const { executor, runs } = setUp(undefined, async (args) => {
      preparedAt = Date.now();
      return async () => {
        startedAt = Date.now();
        return { ok: true, value: args };
      };
    });
    // A call from this agent itself needs no time exchange; the instant is far enough ahead for the sleep.
    const fireAt = Date.now() + 200;
    const result = await executor.handle(SELF, call({ fireAt }));
    expect(result.outcome).toEqual({ ok: true, value: { on: true } });
    expect(runs()).toBe(0); // started through prepare, not invoke
    // Prepared in the last stretch before the instant (on a loaded machine the sleep may end late: only the
    // order is certain), started at it.
    expect(preparedAt).toBeLessThanOrEqual(startedAt as number);
    expect(preparedAt).toBeGreaterThanOrEqual(fireAt - 100);
    expect(startedAt).toBeGreaterThanOrEqual(fireAt);
    expect(result.firedAt).toBeGreaterThanOrEqual(fireAt);
  });

  it('runs a repeated call id from one caller once and answers the repeat with the same result', async () => {
    const { executor, counters, runs } = setUp();
    const first = await executor.handle(CALLER, call());
    const second = await executor.handle(CALLER, call({ args: { on: false } }));
    expect(second).toEqual(first);
    expect(runs()).toBe(1);
    expect(counters.get('coordination.calls_repeated')).toBe(1);
  });

  it('keeps call ids apart per caller: the same id from another agent is another call', async () => {
    const { executor, runs } = setUp();
    await executor.handle(CALLER, call());
    const fromOther = await executor.handle(OTHER, call({ args: { on: false } }));
    expect(fromOther.outcome).toEqual({ ok: true, value: { on: false } });
    expect(runs()).toBe(2);
  });
});

describe('lease table', () => {
  it('grants a free resource, refuses others while held, renews for the holder, and frees it at expiry', () => {
    let now = 1_000;
    const leases = new LeaseTable(() => now);
    expect(leases.acquire('a', 'fan.set', 10_000)).toEqual({
      granted: true,
      holder: 'a',
      remainingMs: 10_000,
    });
    expect(leases.acquire('b', 'fan.set', 10_000)).toEqual({
      granted: false,
      holder: 'a',
      remainingMs: 10_000,
    });
    now += 6_000;
    expect(leases.acquire('a', 'fan.set', 10_000)).toMatchObject({ granted: true, remainingMs: 10_000 });
    expect(leases.release('b', 'fan.set').granted).toBe(false);
    now += 10_001;
    expect(leases.holderOf('fan.set')).toBeUndefined();
    expect(leases.acquire('b', 'fan.set', 5_000)).toMatchObject({ granted: true, holder: 'b' });
  });
});
