// The receiving side of a remote call: checks whether the caller (the mesh source, which the envelope
// authenticates) may, runs each call id once (a retry gets the first run's result), waits for the agreed
// instant in mesh time, and runs the handler. Every refusal and failure is a result.

import { setBounded } from '../core/bounded-map.js';
import type { Counters } from '../core/counters.js';
import type { CallMessage, ResultMessage } from '../protocol/coordination.js';
import type { CallResult } from './handler.js';
import type { LeaseTable } from './leases.js';
import type { CapabilityRegistry, LocalAction } from './registry.js';
import type { TimeSync } from './time-sync.js';
import { waitUntil } from './wait-until.js';

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
}

interface Remembered {
  readonly result: Promise<ResultMessage>;
  readonly atMs: number;
}

export class Executor {
  readonly #options: ExecutorOptions;
  readonly #remembered = new Map<string, Remembered>();

  constructor(options: ExecutorOptions) {
    this.#options = options;
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
    // A call that could not agree on the time never ran: a retry may try again.
    void running.then((result) => {
      if (!result.outcome.ok && result.outcome.error.code === 'no-clock-sync') this.#remembered.delete(key);
    });
    return running;
  }

  /** Why a call may not run; undefined when it may. */
  #check(from: string, call: CallMessage): { code: string; message: string } | undefined {
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
    const isLocal = from === this.#options.selfId;
    const estimate = isLocal
      ? { offsetMs: 0 }
      : call.fireAt === null
        ? timeSync.known(from)
        : await timeSync.estimate(from);
    if (call.fireAt !== null) {
      if (estimate === undefined) {
        return this.#refuse(call, {
          code: 'no-clock-sync',
          message: 'could not agree on the time with the caller',
        });
      }
      const localFireAt = call.fireAt - estimate.offsetMs;
      if (localFireAt - timeSync.now() > MAX_FIRE_AHEAD_MS) {
        return this.#refuse(call, {
          code: 'too-far-ahead',
          message: 'a synchronised call may be at most a day ahead',
        });
      }
      await waitUntil(() => timeSync.now(), localFireAt);
    }
    const firedAt = timeSync.now();
    counters.increment('coordination.calls_run');

    const outcome: CallResult = await action.handler.invoke(call.args, {
      callId: Buffer.from(call.callId).toString('hex'),
      caller: from,
      ...(this.#options.describe(from).name !== undefined && {
        callerName: this.#options.describe(from).name,
      }),
      deadlineMs: Date.now() + Math.min(call.timeoutMs, action.timeoutMs),
      // Handlers keep to deadlineMs themselves; the signal is for cancelling a call (none does yet).
      signal: new AbortController().signal,
    });
    if (!outcome.ok) counters.increment('coordination.calls_failed');
    return result(call, outcome, firedAt + (estimate?.offsetMs ?? 0));
  }

  /** A call that did not run: counted by its code. */
  #refuse(call: CallMessage, error: { code: string; message: string }): ResultMessage {
    this.#options.counters.increment(`coordination.calls_refused_${error.code.replaceAll('-', '_')}`);
    return result(call, { ok: false, error }, null);
  }

  #remember(key: string, entry: Remembered): void {
    setBounded(this.#remembered, key, entry, REMEMBERED_CALLS);
  }
}

function result(call: CallMessage, outcome: CallResult, firedAt: number | null): ResultMessage {
  return { kind: 'result', callId: call.callId, outcome, firedAt };
}
