// The last line of every test run, which tools read: a file that failed without a failed test (it did not
// load, or its beforeAll threw and vitest marked its tests skipped) counts as a failure, never as "0 failed".
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { TestModule } from 'vitest/node';
import SummaryReporter from '../../support/summary-reporter.js';

type State = 'passed' | 'failed' | 'skipped';

/** The parts of a TestModule the reporter reads. */
function moduleOf(state: State, tests: State[]): TestModule {
  const children = { allTests: () => tests.map((test) => ({ result: () => ({ state: test }) })) };
  return { state: () => state, children } as unknown as TestModule;
}

function summaryOf(modules: TestModule[], unhandled: unknown[] = []): string {
  const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  new SummaryReporter().onTestRunEnd(modules, unhandled);
  const line = String(write.mock.calls.at(-1)?.[0]);
  write.mockRestore();
  return line.trim();
}

afterEach(() => vi.restoreAllMocks());

describe('the summary line', () => {
  it('counts tests by state', () => {
    expect(
      summaryOf([moduleOf('passed', ['passed', 'passed', 'skipped']), moduleOf('failed', ['failed'])]),
    ).toBe('tests: 2 passed, 1 failed, 1 skipped');
  });

  it('counts a file whose beforeAll threw (its tests skipped) and a file that did not load as failures', () => {
    expect(summaryOf([moduleOf('failed', ['skipped', 'skipped']), moduleOf('failed', [])])).toBe(
      'tests: 0 passed, 2 failed, 2 skipped',
    );
  });

  it('counts unhandled errors as failures', () => {
    expect(summaryOf([moduleOf('passed', ['passed'])], [new Error('late')])).toBe(
      'tests: 1 passed, 1 failed, 0 skipped',
    );
  });
});
