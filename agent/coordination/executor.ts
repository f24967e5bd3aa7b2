// The receiving side of a remote call: checks whether the caller (the mesh source, which the envelope
// authenticates) may, runs each call id once (a retry gets the first run's result), sleeps until shortly
// before the agreed instant in mesh time (a bounded number of calls may wait so), waits for a free run slot
// (run-slots.ts), has the handler prepare the run and starts it at the instant. Every refusal and failure
// is a result.

import { setBounded } from '../core/bounded-map.js';
import type { Counters } from '../core/counters.js';
import type { CallMessage, ResultMessage } from '../protocol/coordination.js';
import {
  type CoordinationLimits,
  DEFAULT_ACTION_CONCURRENCY,
  DEFAULT_ACTION_QUEUE,
  DEFAULT_COORDINATION_LIMITS,
} from './config.js';
import type { CallContext, CallResult, StartRun } from './handler.js';
import type { LeaseTable } from './leases.js';
import type { CapabilityRegistry, LocalAction } from './registry.js';
import { RunSlots } from './run-slots.js';
import { ScheduledCalls } from './scheduled-calls.js';
import type { TimeSync } from './time-sync.js';
import { blockUntil, sleepUntil } from './wait-until.js';

/** Furthest ahead a synchronised call may fire: a day, well within what a timer holds. */
export const MAX_FIRE_AHEAD_MS = 86_400_000;
/** Results remembered for retried calls; a retry comes within the call's timeout, far below this. */
const REMEMBERED_CALLS = 4096;
const REMEMBER_MS = 10 * 60_000;

export interface ExecutorOptions {
  selfId: string;
  registry: CapabilityRegistry;
  timeSync: TimeSync;
  /** Leases on this agent's actions: while one is held, other callers get "busy". */
  leases: LeaseTable;
  /** A peer's announced name and groups, for `allow` lists. */
  describe(peerId: string): { name?: string; groups: readonly string[] };
  counters: Counters;
  /** The `[coordination]` table; default DEFAULT_COORDINATION_LIMITS. */
  limits?: CoordinationLimits;
}

interface CallError {
  code: string;
  message: string;
}

interface Remembered {
  readonly result: Promise<ResultMessage>;
  readonly atMs: number;
}

export class Executor {
  readonly #options: ExecutorOptions;
  readonly #remembered = new Map<string, Remembered>();
  readonly #slots: RunSlots;
  readonly #scheduled: ScheduledCalls;

  constructor(options: ExecutorOptions) {
    this.#options = options;
    const limits = options.limits ?? DEFAULT_COORDINATION_LIMITS;
    this.#slots = new RunSlots({ running: limits.maxRunning, queued: limits.maxQueued });
    this.#scheduled = new ScheduledCalls({
      total: limits.maxScheduled,
      perCaller: limits.maxScheduledPerCaller,
    });
  }

  /** The result for a call from `from` (the mesh source it arrived from; this agent's id for a local call). */
  handle(from: string, call: CallMessage): Promise<ResultMessage> {
    const { counters } = this.#options;
    const refusal = this.#check(from, call);
    if (refusal !== undefined) return Promise.resolve(this.#refuse(call, refusal));
    const key = `${from}:${Buffer.from(call.callId).toString('hex')}`;
    const now = Date.now();
    const known = this.#remembered.get(key);
    if (known !== undefined && now - known.atMs < REMEMBER_MS) {
      counters.increment('coordination.calls_repeated');
      return known.result;
    }
    const running = this.#run(from, call);
    this.#remember(key, { result: running, atMs: now });
    // A call that never ran (no time agreed, no room, its deadline passed waiting): a retry may try again.
    void running.then((result) => {
      if (result.firedAt === null && this.#remembered.get(key)?.result === running) {
        this.#remembered.delete(key);
      }
    });
    return running;
  }

  /** Why a call may not run; undefined when it may. */
  #check(from: string, call: CallMessage): CallError | undefined {
    const action = this.#options.registry.actions.get(call.action);
    if (action === undefined) return { code: 'unknown-action', message: `no action "${call.action}" here` };
    if (!this.#isAllowed(from, action)) {
      return { code: 'forbidden', message: `"${call.action}" does not accept calls from this agent` };
    }
    const holder = this.#options.leases.holderOf(call.action);
    if (holder !== undefined && holder !== from) {
      const name = this.#options.describe(holder).name ?? holder;
      return { code: 'busy', message: `busy, held by ${name}` };
    }
    return undefined;
  }

  #isAllowed(from: string, action: LocalAction): boolean {
    if (action.allow === undefined || from === this.#options.selfId) return true;
    const caller = this.#options.describe(from);
    return action.allow.some((entry) =>
      entry.startsWith('group:')
        ? caller.groups.includes(entry.slice('group:'.length))
        : entry === from || entry === caller.name,
    );
  }

  async #run(from: string, call: CallMessage): Promise<ResultMessage> {
    const { registry, timeSync, counters } = this.#options;
    const action = registry.actions.get(call.action) as LocalAction;
    // Offset to the caller's clock: the call's instant is in it, and so is the fired_at we report.
    let offsetMs: number;
    /** A timed call's instant in this agent's clock. */
    let localFireAt: number | undefined;
    if (call.fireAt === null) {
      offsetMs = from === this.#options.selfId ? 0 : (timeSync.known(from)?.offsetMs ?? 0);
    } else {
      // Taken before the time exchange, so that a flood of timed calls costs neither exchanges nor memory.
      const full = this.#scheduled.reserve(from);
      if (full !== undefined) return this.#refuse(call, { code: 'too-many-scheduled', message: full });
      try {
        const waited = await this.#sleepNearInstant(from, call.fireAt);
        if ('code' in waited) return this.#refuse(call, waited);
        ({ offsetMs, localFireAt } = waited);
      } finally {
        this.#scheduled.release(from);
      }
    }

    // A timed call's time to run counts from its instant, still a few milliseconds off.
    const leadMs = localFireAt === undefined ? 0 : Math.max(0, localFireAt - timeSync.now());
    const deadlineMs = Date.now() + leadMs + Math.min(call.timeoutMs, action.timeoutMs);
    const slot = await this.#slots.acquire(
      action.name,
      {
        running: action.concurrency ?? DEFAULT_ACTION_CONCURRENCY,
        queued: action.queue ?? DEFAULT_ACTION_QUEUE,
      },
      deadlineMs,
    );
    if (slot.kind === 'busy') {
      return this.#refuse(
        call,
        { code: 'busy', message: `busy: too many calls running and waiting for "${action.name}" here` },
        'coordination.calls_busy',
      );
    }
    if (slot.kind === 'timeout') {
      return this.#refuse(
        call,
        {
          code: 'timeout',
          message: `the call's deadline passed while it waited for "${action.name}" to be free`,
        },
        'coordination.calls_timed_out_waiting',
      );
    }
    try {
      const callerName = this.#options.describe(from).name;
      const context: CallContext = {
        callId: Buffer.from(call.callId).toString('hex'),
        caller: from,
        ...(callerName !== undefined && { callerName }),
        deadlineMs,
        // Handlers keep to deadlineMs themselves; the signal is for cancelling a call (none does yet).
        signal: new AbortController().signal,
      };
      const { handler } = action;
      const start: StartRun =
        handler.prepare === undefined
          ? () => handler.invoke(call.args, context)
          : await handler.prepare(call.args, context);
      if (localFireAt !== undefined) blockUntil(() => timeSync.now(), localFireAt);
      const firedAt = timeSync.now();
      counters.increment('coordination.calls_run');
      const outcome = await start();
      if (!outcome.ok) counters.increment('coordination.calls_failed');
      return result(call, outcome, firedAt + offsetMs);
    } finally {
      slot.release();
    }
  }

  /**
   * Sleeps until shortly before a timed call's instant (sleepUntil; the run blocks for the rest once it is
   * ready); the offset to the caller's clock and the instant in this agent's clock, or why it cannot wait.
   */
  async #sleepNearInstant(
    from: string,
    fireAt: number,
  ): Promise<{ offsetMs: number; localFireAt: number } | CallError> {
    const { timeSync } = this.#options;
    const estimate = from === this.#options.selfId ? { offsetMs: 0 } : await timeSync.estimate(from);
    if (estimate === undefined) {
      return { code: 'no-clock-sync', message: 'could not agree on the time with the caller' };
    }
    const localFireAt = fireAt - estimate.offsetMs;
    if (localFireAt - timeSync.now() > MAX_FIRE_AHEAD_MS) {
      return { code: 'too-far-ahead', message: 'a synchronised call may be at most a day ahead' };
    }
    await sleepUntil(() => timeSync.now(), localFireAt);
    return { offsetMs: estimate.offsetMs, localFireAt };
  }

  /** A call that did not run: counted by its code unless told another counter. */
  #refuse(
    call: CallMessage,
    error: CallError,
    counter = `coordination.calls_refused_${error.code.replaceAll('-', '_')}`,
  ): ResultMessage {
    this.#options.counters.increment(counter);
    return result(call, { ok: false, error }, null);
  }

  #remember(key: string, entry: Remembered): void {
    setBounded(this.#remembered, key, entry, REMEMBERED_CALLS);
  }
}

function result(call: CallMessage, outcome: CallResult, firedAt: number | null): ResultMessage {
  return { kind: 'result', callId: call.callId, outcome, firedAt };
}
