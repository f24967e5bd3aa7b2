// Rules: hysteresis margins in the evaluator, the `then` parser, and the engine's fire / re-arm / debounce
// cycle against a fake host (the real coordinator is exercised by test/integration/coordination-state).
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CallRequest } from '../../../agent/coordination/caller.js';
import type { RuleConfig } from '../../../agent/coordination/config.js';
import type { SensorReadingEvent } from '../../../agent/coordination/coordinator.js';
import { parseRuleAction, RuleActionError } from '../../../agent/coordination/rule-action.js';
import { RuleEngine } from '../../../agent/coordination/rule-engine.js';
import { evaluate, parseRuleExpression } from '../../../agent/coordination/rule-expression.js';
import { Counters } from '../../../agent/core/counters.js';
import { silentLogger } from '../../../agent/core/logger.js';

describe('hysteresis margin', () => {
  const hot = parseRuleExpression('p/t > 30');
  const cold = parseRuleExpression('p/t <= 10');
  const notHot = parseRuleExpression('not p/t > 30');
  const at = (t: number) => () => t;

  it('loosens each comparison in the direction that keeps the expression true', () => {
    expect(evaluate(hot, at(29), { margin: 2 })).toBe(true);
    expect(evaluate(hot, at(28), { margin: 2 })).toBe(false);
    expect(evaluate(cold, at(11.5), { margin: 2 })).toBe(true);
    expect(evaluate(cold, at(12.5), { margin: 2 })).toBe(false);
  });

  it('turns the other way under not', () => {
    expect(evaluate(notHot, at(31), { margin: 2 })).toBe(true);
    expect(evaluate(notHot, at(33), { margin: 2 })).toBe(false);
  });
});

describe('rule actions', () => {
  it('parses a call with and without arguments', () => {
    expect(parseRuleAction('call group:fans fan.set {"on":true}')).toEqual({
      kind: 'call',
      target: 'group:fans',
      action: 'fan.set',
      args: { on: true },
    });
    expect(parseRuleAction('  call hall-pi light.toggle ')).toMatchObject({ target: 'hall-pi', args: {} });
  });

  it.each(['send x hi', 'call onlytarget', 'call a b [1]', 'call a b {nope', 'call a "b c"'])(
    'refuses %j',
    (text) => {
      expect(() => parseRuleAction(text)).toThrow(RuleActionError);
    },
  );
});

describe('rule engine', () => {
  afterEach(() => vi.useRealTimers());

  function setUp(rule: Partial<RuleConfig> = {}) {
    const values = new Map<string, number>();
    const listeners: ((reading: SensorReadingEvent) => void)[] = [];
    const calls: CallRequest[] = [];
    const config: RuleConfig = {
      name: 'hot',
      when: parseRuleExpression('sensor-pi/temp > 30'),
      action: { kind: 'call', target: 'fan-pi', action: 'fan.set', args: { on: true } },
      debounceMs: 0,
      hysteresis: 2,
      everyMs: 1000,
      ...rule,
    };
    const engine = new RuleEngine(
      [config],
      {
        tryResolve: (reference) =>
          reference === 'sensor-pi' ? { id: 'aaaaaaaaaaaaaaaa', name: 'sensor-pi' } : undefined,
        watch: () => () => {},
        latestValue: (peerId, sensor) => {
          const value = values.get(sensor);
          return value === undefined
            ? undefined
            : { peer: peerId, name: 'sensor-pi', sensor, value, unit: null, readAtMs: Date.now() };
        },
        call: async (request) => {
          calls.push(request);
          return [];
        },
        onReading: (listener) => {
          listeners.push(listener);
          return () => {};
        },
      },
      silentLogger(),
      new Counters(),
    );
    engine.start();
    const reading = (value: number): void => {
      values.set('temp', value);
      for (const listener of listeners) {
        listener({
          peer: 'aaaaaaaaaaaaaaaa',
          name: 'sensor-pi',
          sensor: 'temp',
          value,
          unit: null,
          readAtMs: Date.now(),
        });
      }
    };
    return { engine, reading, calls };
  }

  it('fires once on the crossing and re-arms only past the hysteresis', () => {
    const { engine, reading, calls } = setUp();
    reading(25);
    reading(31);
    reading(35);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ target: 'fan-pi', action: 'fan.set', args: { on: true } });
    reading(29); // within the margin
    reading(31);
    expect(calls).toHaveLength(1);
    reading(27.5); // clearly back
    reading(31);
    expect(calls).toHaveLength(2);
    engine.stop();
  });

  it('with a debounce, fires only when the condition held for it', () => {
    vi.useFakeTimers();
    const { engine, reading, calls } = setUp({ debounceMs: 2000 });
    reading(31);
    vi.advanceTimersByTime(1000);
    reading(25); // dropped back before the debounce ended
    vi.advanceTimersByTime(2000);
    expect(calls).toHaveLength(0);
    reading(31);
    vi.advanceTimersByTime(2100);
    expect(calls).toHaveLength(1);
    engine.stop();
  });

  it('treats a value older than three intervals as unknown', () => {
    vi.useFakeTimers();
    const { engine, reading, calls } = setUp();
    reading(25);
    vi.advanceTimersByTime(10_000);
    // The listener fires with a fresh reading, but a stale one would not count; fresh here, so it fires.
    reading(31);
    expect(calls).toHaveLength(1);
    engine.stop();
  });
});
