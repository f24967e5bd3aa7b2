// The executor's checks on a remote call, with a real signature from a real identity: a call runs only
// when it is signed by the agent it came from, for this agent, and a retry runs once.
import { describe, expect, it } from 'vitest';
import { Executor } from '../../agent/coordination/executor.js';
import type { ActionHandler } from '../../agent/coordination/handler.js';
import { LeaseTable } from '../../agent/coordination/leases.js';
import { CapabilityRegistry } from '../../agent/coordination/registry.js';
import { TimeSync } from '../../agent/coordination/time-sync.js';
import { generateIdentity } from '../../agent/identity/identity.js';
import { Counters } from '../../agent/ops/counters.js';
import { type CallMessage, callSigningBytes } from '../../agent/protocol/coordination.js';

const executorIdentity = generateIdentity();
const caller = generateIdentity();

function setUp() {
  let runs = 0;
  const handler: ActionHandler = {
    kind: 'test',
    invoke: async (args) => {
      runs++;
      return { ok: true, value: args };
    },
  };
  const registry = new CapabilityRegistry();
  const leases = new LeaseTable();
  registry.addAction({ name: 'light.set', handler, timeoutMs: 1000, allow: undefined });
  const executor = new Executor({
    selfId: executorIdentity.peerId,
    registry,
    timeSync: new TimeSync({ clock: () => Date.now(), send: async () => {} }),
    leases,
    describe: () => ({ groups: [] }),
    counters: new Counters(),
  });
  return { executor, leases, runs: () => runs };
}

function signedCall(overrides: Partial<Omit<CallMessage, 'kind' | 'signature'>> = {}): CallMessage {
  const unsigned = {
    callId: new Uint8Array(16).fill(7),
    action: 'light.set',
    args: { on: true },
    target: executorIdentity.peerId,
    fireAt: null,
    timeoutMs: 1000,
    callerKey: caller.publicKey,
    ...overrides,
  };
  return { kind: 'call', ...unsigned, signature: caller.sign(callSigningBytes(unsigned)) };
}

describe('executor', () => {
  it('runs a call signed by the agent it came from', async () => {
    const { executor, runs } = setUp();
    const result = await executor.handle(caller.peerId, signedCall());
    expect(result.outcome).toEqual({ ok: true, value: { on: true } });
    expect(runs()).toBe(1);
  });

  it('refuses a call whose arguments were changed after signing', async () => {
    const { executor, runs } = setUp();
    const forged = { ...signedCall(), args: { on: false } };
    const result = await executor.handle(caller.peerId, forged);
    expect(result.outcome).toMatchObject({ ok: false, error: { code: 'bad-signature' } });
    expect(runs()).toBe(0);
  });

  it('refuses a validly signed call relayed as if another agent sent it', async () => {
    const { executor, runs } = setUp();
    const result = await executor.handle(generateIdentity().peerId, signedCall());
    expect(result.outcome).toMatchObject({ ok: false, error: { code: 'bad-signature' } });
    expect(runs()).toBe(0);
  });

  it('refuses a call signed for another agent (replayed to this one)', async () => {
    const { executor, runs } = setUp();
    const result = await executor.handle(caller.peerId, signedCall({ target: generateIdentity().peerId }));
    expect(result.outcome).toMatchObject({ ok: false, error: { code: 'wrong-target' } });
    expect(runs()).toBe(0);
  });

  it('runs a repeated call id once and answers the repeat with the same result', async () => {
    const { executor, runs } = setUp();
    const first = await executor.handle(caller.peerId, signedCall());
    const second = await executor.handle(caller.peerId, signedCall());
    expect(second).toEqual(first);
    expect(runs()).toBe(1);
  });

  it("answers busy while another agent holds a lease on the action, and runs the holder's own calls", async () => {
    const { executor, leases, runs } = setUp();
    const other = generateIdentity().peerId;
    expect(leases.acquire(other, 'light.set', 60_000).granted).toBe(true);
    const refused = await executor.handle(caller.peerId, signedCall());
    expect(refused.outcome).toMatchObject({ ok: false, error: { code: 'busy' } });
    expect(runs()).toBe(0);
    leases.release(other, 'light.set');
    expect(leases.acquire(caller.peerId, 'light.set', 60_000).granted).toBe(true);
    const allowed = await executor.handle(caller.peerId, signedCall({ callId: new Uint8Array(16).fill(9) }));
    expect(allowed.outcome.ok).toBe(true);
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
