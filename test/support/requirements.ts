// Tests that need something a developer's machine may lack (root, namespaces, the BLE emulator):
// they run where possible, skip loudly elsewhere, and fail under CI=true, which must never pass silently.
import { describe, it, type TestFunction } from 'vitest';

/** describe() that runs `body` when `missing` is undefined, and otherwise skips (or fails on CI) naming it. */
export function describeWhenAvailable(title: string, missing: string | undefined, body: () => void): void {
  if (missing === undefined) {
    describe(title, body);
    return;
  }
  if (process.env.CI === 'true') {
    describe(title, () => {
      it('can run here (required on CI)', () => {
        throw new Error(`${title}: cannot run on this CI machine: ${missing}`);
      });
    });
    return;
  }
  console.warn(`\n${'!'.repeat(72)}\n!! SKIPPING "${title}": ${missing}\n${'!'.repeat(72)}\n`);
  describe.skip(`${title} (skipped: ${missing})`, body);
}

/** it() that runs when `missing` is undefined, and otherwise skips (or fails on CI) naming it. */
export function itWhenAvailable(
  title: string,
  missing: string | undefined,
  body: TestFunction,
  timeoutMs?: number,
): void {
  if (missing === undefined) {
    it(title, body, timeoutMs);
    return;
  }
  if (process.env.CI === 'true') {
    it(title, () => {
      throw new Error(`${title}: cannot run on this CI machine: ${missing}`);
    });
    return;
  }
  console.warn(`\n${'!'.repeat(72)}\n!! SKIPPING "${title}": ${missing}\n${'!'.repeat(72)}\n`);
  it.skip(`${title} (skipped: ${missing})`, body);
}
