import { describe, expect, it } from 'vitest';
import { TurnBudget } from '../../../agent/core/turn-budget.js';
import { countTurns } from '../../support/turns.js';

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A source doing `steps` steps of work, one per available() check, waiting its turn when refused. */
function source(budget: TurnBudget, name: string, steps: number, log: string[]): Promise<void> {
  return new Promise((resolve) => {
    let left = steps;
    const work = (): void => {
      while (left > 0) {
        if (!budget.available()) {
          budget.wait(work);
          return;
        }
        log.push(name);
        left--;
      }
      resolve();
    };
    work();
  });
}

describe('TurnBudget', () => {
  it('lets work run until the budget is spent, then resumes the waiting sources in order, turn by turn', async () => {
    const budget = new TurnBudget(0); // one step per turn: every source waits after each step
    const log: string[] = [];
    const turns = countTurns();
    const done = Promise.all([source(budget, 'a', 3, log), source(budget, 'b', 2, log)]);
    expect(log).toEqual(['a']); // b found the turn spent
    expect(budget.waiting).toBe(2);
    await done;
    expect(turns.stop()).toBeGreaterThanOrEqual(4);
    expect(log).toEqual(['a', 'a', 'b', 'a', 'b']);
    expect(budget.waiting).toBe(0);
  });

  it('gives a whole budget back with each turn', async () => {
    const budget = new TurnBudget(60_000);
    const log: string[] = [];
    await source(budget, 'a', 1000, log);
    expect(log).toHaveLength(1000);
    expect(budget.waiting).toBe(0);
  });

  it('forgets waiting sources when cleared', async () => {
    const budget = new TurnBudget(0);
    const log: string[] = [];
    void source(budget, 'a', 5, log);
    budget.clear();
    await nextTurn();
    await nextTurn();
    expect(log).toEqual(['a']);
    expect(budget.waiting).toBe(0);
  });
});
