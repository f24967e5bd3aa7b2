// Ends every test run with one plain line, "tests: N passed, N failed, N skipped", that tools reading
// only the last lines of a CI log understand without knowing vitest's own format.
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') counts.passed++;
        else if (state === 'failed') counts.failed++;
        else counts.skipped++;
      }
      // A file that failed to load, or whose beforeAll threw (its tests then count as skipped), did fail.
      const failedTests = [...module.children.allTests()].filter((test) => test.result().state === 'failed');
      if (module.state() === 'failed' && failedTests.length === 0) counts.failed++;
    }
    counts.failed += unhandledErrors.length;
    process.stdout.write(
      `\ntests: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`,
    );
  }
}
