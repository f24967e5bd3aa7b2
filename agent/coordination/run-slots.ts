// How many action runs happen at once: each action has its own limit (its `concurrency`) and the agent one
// across all actions, because every exec or gpio run is a process. A call that finds no free slot waits in
// a first-in first-out queue, bounded per action and across the agent; a full queue answers "busy" at
// once, and a call whose deadline passes while it waits never runs.

export interface SlotLimits {
  /** Runs at once. */
  readonly running: number;
  /** Calls waiting for a slot; 0: none wait, a call without a free slot is busy at once. */
  readonly queued: number;
}

/** Gives the slot back; calling it again does nothing. */
export type ReleaseSlot = () => void;

export type SlotOutcome = { kind: 'run'; release: ReleaseSlot } | { kind: 'busy' } | { kind: 'timeout' };

interface Waiter {
  readonly action: string;
  readonly limits: SlotLimits;
  readonly start: (outcome: SlotOutcome) => void;
  readonly timer: NodeJS.Timeout;
}

export class RunSlots {
  readonly #agent: SlotLimits;
  #running = 0;
  /** Runs and waiting calls by action; an action with neither has no entry. */
  readonly #byAction = new Map<string, { running: number; queued: number }>();
  /** Every waiting call, oldest first: one queue keeps each action's calls in order. */
  readonly #waiting: Waiter[] = [];

  constructor(agent: SlotLimits) {
    this.#agent = agent;
  }

  /** Calls running now, across every action. */
  get running(): number {
    return this.#running;
  }

  /** Calls waiting for a slot now, across every action. */
  get queued(): number {
    return this.#waiting.length;
  }

  /**
   * A slot for a run of `action`: at once when one is free, else when a run ends; busy when the queues are
   * full; timeout when `deadlineMs` (Date.now() based) passes first.
   */
  acquire(action: string, limits: SlotLimits, deadlineMs: number): Promise<SlotOutcome> {
    // After every change the queue holds only calls that cannot start, so a call that can start now
    // overtakes nobody.
    if (this.#canStart(action, limits)) return Promise.resolve(this.#start(action));
    const queued = this.#byAction.get(action)?.queued ?? 0;
    if (queued >= limits.queued || this.#waiting.length >= this.#agent.queued) {
      return Promise.resolve({ kind: 'busy' });
    }
    return new Promise((resolve) => {
      const waiter: Waiter = {
        action,
        limits,
        start: resolve,
        timer: setTimeout(() => this.#expire(waiter), Math.max(0, deadlineMs - Date.now())).unref(),
      };
      this.#counts(action).queued++;
      this.#waiting.push(waiter);
    });
  }

  #canStart(action: string, limits: SlotLimits): boolean {
    return this.#running < this.#agent.running && (this.#byAction.get(action)?.running ?? 0) < limits.running;
  }

  #start(action: string): SlotOutcome {
    this.#running++;
    this.#counts(action).running++;
    let released = false;
    return {
      kind: 'run',
      release: () => {
        if (released) return;
        released = true;
        this.#running--;
        this.#counts(action).running--;
        this.#forgetIfIdle(action);
        this.#startWaiting();
      },
    };
  }

  /** Starts the oldest waiting calls that can start now. */
  #startWaiting(): void {
    for (let i = 0; i < this.#waiting.length && this.#running < this.#agent.running; ) {
      const waiter = this.#waiting[i] as Waiter;
      if (!this.#canStart(waiter.action, waiter.limits)) {
        i++;
        continue;
      }
      this.#dequeue(i);
      waiter.start(this.#start(waiter.action));
    }
  }

  #expire(waiter: Waiter): void {
    const index = this.#waiting.indexOf(waiter);
    if (index === -1) return;
    this.#dequeue(index);
    this.#forgetIfIdle(waiter.action);
    waiter.start({ kind: 'timeout' });
  }

  #dequeue(index: number): void {
    const [waiter] = this.#waiting.splice(index, 1) as [Waiter];
    clearTimeout(waiter.timer);
    this.#counts(waiter.action).queued--;
  }

  #counts(action: string): { running: number; queued: number } {
    let counts = this.#byAction.get(action);
    if (counts === undefined) {
      counts = { running: 0, queued: 0 };
      this.#byAction.set(action, counts);
    }
    return counts;
  }

  #forgetIfIdle(action: string): void {
    const counts = this.#byAction.get(action);
    if (counts !== undefined && counts.running === 0 && counts.queued === 0) this.#byAction.delete(action);
  }
}
