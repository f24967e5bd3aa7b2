// Rules: "when <condition on sensor values> then <call>", evaluated on this agent each time a value it
// depends on arrives. A rule fires when its condition becomes true (and stayed true for its debounce),
// then waits until the condition is clearly false again (its hysteresis) before it can fire again.
import type { Counters } from '../core/counters.js';
import type { Logger } from '../core/logger.js';
import type { CallOutcome, CallRequest } from './caller.js';
import type { RuleConfig } from './config.js';
import type { Coordinator, SensorReadingEvent } from './coordinator.js';
import { evaluate, type SensorValue } from './rule-expression.js';

/** A value older than this many of its rule's intervals counts as unknown: its sensor went quiet. */
const STALE_AFTER_INTERVALS = 3;
/** How often references to peers not yet known are tried again. */
const RESOLVE_RETRY_MS = 2_000;
const RULE_CALL_TIMEOUT_MS = 10_000;

/** What the engine needs of the coordinator. */
export interface RuleHost {
  /** A peer id or name as the peer; undefined while the mesh does not know it. */
  tryResolve(reference: string): { id: string; name: string } | undefined;
  /** Keeps a sensor's readings coming; returns the stop function. */
  watch(peerId: string, sensor: string, intervalMs: number): () => void;
  latestValue(peerId: string, sensor: string): SensorReadingEvent | undefined;
  call(request: CallRequest): Promise<CallOutcome[]>;
  onReading(listener: (reading: SensorReadingEvent) => void): () => void;
}

/** What a rule engine needs, from the agent's coordinator. */
export function ruleHostOf(coordinator: Coordinator): RuleHost {
  return {
    tryResolve: (reference) => coordinator.tryResolve(reference),
    watch: (peerId, sensor, intervalMs) => coordinator.watch(peerId, sensor, intervalMs),
    latestValue: (peerId, sensor) => coordinator.latestValue(peerId, sensor),
    call: (request) => coordinator.call(request),
    onReading: (listener) => {
      coordinator.on('reading', listener);
      return () => coordinator.off('reading', listener);
    },
  };
}

interface RuleState {
  readonly rule: RuleConfig;
  /** Peer references as written in the rule, resolved to ids once the mesh knows them. */
  readonly peerIds: Map<string, string>;
  armed: boolean;
  debounce: NodeJS.Timeout | undefined;
}

export class RuleEngine {
  readonly #states: RuleState[];
  readonly #stops: (() => void)[] = [];
  #retry: NodeJS.Timeout | undefined;

  constructor(
    rules: readonly RuleConfig[],
    private readonly host: RuleHost,
    private readonly log: Logger,
    private readonly counters: Counters,
  ) {
    this.#states = rules.map((rule) => ({ rule, peerIds: new Map(), armed: true, debounce: undefined }));
  }

  start(): void {
    if (this.#states.length === 0) return;
    this.#stops.push(this.host.onReading((reading) => this.#onReading(reading)));
    this.#resolveReferences();
  }

  stop(): void {
    clearTimeout(this.#retry);
    for (const state of this.#states) clearTimeout(state.debounce);
    for (const stop of this.#stops.splice(0)) stop();
  }

  /** Watches every sensor a rule reads once its agent is known; retries the rest. */
  #resolveReferences(): void {
    let unresolved = 0;
    for (const state of this.#states) {
      for (const { peer, sensor } of state.rule.when.references()) {
        if (state.peerIds.has(peer)) continue;
        const resolved = this.host.tryResolve(peer);
        if (resolved === undefined) {
          unresolved++;
          continue;
        }
        state.peerIds.set(peer, resolved.id);
        this.#stops.push(this.host.watch(resolved.id, sensor, state.rule.everyMs));
      }
    }
    if (unresolved > 0) {
      this.#retry = setTimeout(() => this.#resolveReferences(), RESOLVE_RETRY_MS);
      this.#retry.unref();
    }
  }

  #onReading(reading: SensorReadingEvent): void {
    for (const state of this.#states) {
      const reads = state.rule.when
        .references()
        .some(({ peer, sensor }) => sensor === reading.sensor && state.peerIds.get(peer) === reading.peer);
      if (reads) this.#evaluate(state);
    }
  }

  #evaluate(state: RuleState): void {
    const { rule } = state;
    const lookup = (peer: string, sensor: string): SensorValue | undefined => {
      const id = state.peerIds.get(peer);
      const latest = id === undefined ? undefined : this.host.latestValue(id, sensor);
      if (latest === undefined) return undefined;
      const isStale = Date.now() - latest.readAtMs > STALE_AFTER_INTERVALS * rule.everyMs;
      return isStale ? undefined : latest.value;
    };
    if (!state.armed) {
      // Fired: re-armed only once the condition is false even with the hysteresis margin in its favour.
      if (evaluate(rule.when, lookup, { margin: rule.hysteresis }) === false) state.armed = true;
      return;
    }
    if (evaluate(rule.when, lookup) !== true) {
      clearTimeout(state.debounce);
      state.debounce = undefined;
      return;
    }
    if (rule.debounceMs === 0) {
      this.#fire(state);
      return;
    }
    // Held for the debounce: checked again when it ends, with the values then current.
    state.debounce ??= setTimeout(() => {
      state.debounce = undefined;
      if (state.armed && evaluate(rule.when, lookup) === true) this.#fire(state);
    }, rule.debounceMs);
  }

  #fire(state: RuleState): void {
    const { rule } = state;
    state.armed = false;
    this.counters.increment('coordination.rules_fired');
    this.log.info({ rule: rule.name, when: rule.when.source }, `rule "${rule.name}" fired`);
    this.host
      .call({
        target: rule.action.target,
        action: rule.action.action,
        args: rule.action.args,
        timeoutMs: RULE_CALL_TIMEOUT_MS,
      })
      .then(
        (outcomes) => {
          const failed = outcomes.filter((outcome) => outcome.status !== 'ok');
          if (outcomes.length === 0 || failed.length > 0) {
            this.counters.increment('coordination.rule_calls_failed');
            this.log.warn(
              { rule: rule.name, targets: outcomes.length, failed: failed.map((outcome) => outcome.name) },
              `rule "${rule.name}": its call did not succeed everywhere`,
            );
          }
        },
        (error: unknown) => {
          this.counters.increment('coordination.rule_calls_failed');
          this.log.warn({ rule: rule.name, err: error }, `rule "${rule.name}": its call failed`);
        },
      );
  }
}
