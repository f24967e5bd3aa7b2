// Whoever holds the serial line (a socat pty pair here) sends what a terminal must never act on: Ctrl-Z,
// Ctrl-D, Ctrl-\ alone and in lines, a flood of random binary, one endless line, and guessed passwords.
// The agent is never stopped (/proc/PID/stat never says T), answers `nearmesh status` and its console
// throughout, stays within idle + 64 MB, and counts what it refused.
import { spawnSync } from 'node:child_process';
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateMeshKey } from '../../../agent/config/mesh-key.js';
import { MAX_LINE_CHARS } from '../../../agent/console/line-editor.js';
import { countersOf, expectResponsive } from '../../support/abuse.js';
import {
  type AgentProcess,
  freePorts,
  startAgent,
  stopAllAgents,
  temporaryDir,
} from '../../support/agent-process.js';
import { processState, rssMb } from '../../support/proc-status.js';
import { describeWhenAvailable } from '../../support/requirements.js';
import { SerialLine, Terminal } from '../../support/serial-line.js';
import { until } from '../../support/until.js';

const PASSWORD = 'not guessable';
const socatMissing = spawnSync('socat', ['-V']).error === undefined ? undefined : 'socat is not installed';

function passwordHash(password: string): string {
  const salt = randomBytes(12);
  const hash = pbkdf2Sync(password, salt, 1000, 64, 'sha512');
  return `$7$1000$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Samples the agent's scheduler state and memory until stop(): what a one-off check between steps would miss. */
function watchProcess(pid: number) {
  const states = new Set<string>();
  let peakMb = 0;
  const sample = (): void => {
    states.add(processState(pid));
    peakMb = Math.max(peakMb, rssMb(pid));
  };
  sample();
  const timer = setInterval(sample, 20);
  return {
    states,
    peakMb: () => peakMb,
    stop: () => clearInterval(timer),
  };
}

describeWhenAvailable('abuse: the serial console', socatMissing, () => {
  const line = new SerialLine(temporaryDir('nearmesh-serial-abuse-'));
  let terminal: Terminal;
  let alpha: AgentProcess;
  let pid: number;
  let idleMb: number;

  /** Types `status` (again, while earlier lines may still hold the queue) until the console answers it. */
  async function consoleAnswersStatus(): Promise<void> {
    const mark = terminal.mark();
    await until('the serial console to answer status', async () => {
      if (/name {6}alpha/.test(terminal.since(mark))) return true;
      await terminal.type('\x03status\r');
      return false;
    });
  }

  beforeAll(async () => {
    await line.open();
    terminal = new Terminal(line.testEnd);
    const [port] = (await freePorts(1)) as [number];
    alpha = await startAgent({
      name: 'alpha',
      meshKey: generateMeshKey(),
      port,
      consoleSerial: line.agentEnd,
      consoleLines: [`password = ${JSON.stringify(passwordHash(PASSWORD))}`],
    });
    pid = alpha.child.pid ?? 0;
    await terminal.waitFor('the banner', 0, (text) => text.includes('nearmesh console: alpha'));
    await consoleAnswersStatus();
    idleMb = rssMb(pid);
  }, 30_000);

  afterAll(async () => {
    terminal?.close();
    await line.close();
    await stopAllAgents();
  });

  it('Ctrl-Z, Ctrl-D and Ctrl-\\, alone and inside lines, never stop the agent or end the console', async () => {
    const watch = watchProcess(pid);
    try {
      for (const byte of ['\x1a', '\x04', '\x1c']) {
        await terminal.send(Buffer.from(byte.repeat(3)));
        await terminal.send(Buffer.from(`sta${byte}tus${byte}\r`));
        await consoleAnswersStatus();
        expect(processState(pid)).not.toBe('T');
      }
      await expectResponsive(alpha);
    } finally {
      watch.stop();
    }
    expect([...watch.states]).not.toContain('T');
  }, 30_000);

  it('a flood of random binary and an endless line: bounded, counted, and the console answers after', async () => {
    const watch = watchProcess(pid);
    try {
      for (let round = 0; round < 64; round++) await terminal.send(randomBytes(32 * 1024));
      await terminal.send(Buffer.from(`\x03${'x'.repeat(MAX_LINE_CHARS * 16)}\r`));
      await expectResponsive(alpha);
      await consoleAnswersStatus();
    } finally {
      watch.stop();
    }
    expect([...watch.states]).not.toContain('T');
    expect(watch.peakMb()).toBeLessThanOrEqual(idleMb + 64);
    expect((await countersOf(alpha))['console.lines_too_long']).toBeGreaterThan(0);
    expect(alpha.child.exitCode).toBeNull();
  }, 60_000);

  it('guessed passwords are counted and slowed down; the console stays read-only', async () => {
    const levelBefore = (await alpha.cli(['console', '-e', 'log level'])).stdout;
    expect(levelBefore).not.toBe('log level error\n');
    await terminal.send(Buffer.from('\x03'));
    for (let attempt = 0; attempt < 3; attempt++) {
      const mark = terminal.mark();
      await terminal.type('login\r');
      await terminal.waitFor('the password prompt', mark, (out) => out.includes('password: '));
      await terminal.send(Buffer.from(`guess ${attempt}\r`));
      await terminal.waitFor('the refusal', mark, (out) => out.includes('nearmesh: wrong password'));
    }
    const mark = terminal.mark();
    await terminal.type('login\r');
    await terminal.waitFor('the wait', mark, (out) => out.includes('too many failed logins; try again in'));
    await terminal.type('log level error\r');
    await terminal.waitFor('the refusal', mark, (out) => out.includes('nearmesh: log in first'));
    expect((await countersOf(alpha))['console.login_failures']).toBe(3);
    expect((await alpha.cli(['console', '-e', 'log level'])).stdout).toBe(levelBefore);
  }, 30_000);
});
