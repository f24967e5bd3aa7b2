// Debian's Chromium driven by playwright-core through its executable path (no browser download), for tests of
// the web view. As root (CI), Chromium needs --no-sandbox; the other flags keep it off the network it must not
// reach. `netns` starts it inside a network namespace, where the lab's agents are.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { temporaryDir } from './agent-process.js';
import { writeShScript } from './sh-script.js';

export const CHROMIUM = '/usr/bin/chromium';

const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function chromiumMissing(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium)`;
}

/** A headless Chromium; inside network namespace `netns` when given. */
export async function launchChromium(netns?: string): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  const executablePath =
    netns === undefined
      ? CHROMIUM
      : writeShScript(
          join(temporaryDir('nearmesh-chromium-'), 'chromium'),
          `exec ip netns exec ${netns} ${CHROMIUM} "$@"`,
        );
  return chromium.launch({ executablePath, args: FLAGS, headless: true });
}

/** Where a test keeps what it saw (screenshots): test-results/<name>/, or $NEARMESH_TEST_RESULTS/<name>/. */
export function resultsDir(name: string): string {
  const dir = join(process.env.NEARMESH_TEST_RESULTS ?? 'test-results', name);
  mkdirSync(dir, { recursive: true });
  return dir;
}
