// A serial console session on in-memory streams, as a person or a noisy line meets it: no control byte
// ends the session, an overlong line and a binary flood are survived and counted, output nobody reads is
// bounded, and the login rules (read-only without login, acting after it, wrong passwords slowed down,
// allow_unauthenticated; the control socket needs none).
import { randomBytes } from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { type ConsoleContext, runConsoleLine } from '../../../agent/console/commands.js';
import { MAX_LINE_CHARS } from '../../../agent/console/line-editor.js';
import { ConsoleLogin } from '../../../agent/console/login.js';
import { ConsoleSession, MAX_PENDING_OUTPUT } from '../../../agent/console/session.js';
import { Counters } from '../../../agent/core/counters.js';
import { mosquittoPasswdHash } from '../../support/password.js';
import { sampleStatusReport } from '../../support/status-report.js';
import { until } from '../../support/until.js';

const A = '0123456789abcdef';
/** What the editor writes after a redrawn line. */
const ERASE_LINE = '\x1b[K';
const PASSWORD = 'correct horse';

const STATUS = sampleStatusReport({ id: A, name: 'alpha' });

function fakeContext(): ConsoleContext & { sent: string[]; levels: string[] } {
  const sent: string[] = [];
  const levels: string[] = [];
  return {
    sent,
    levels,
    id: () => ({ id: A, name: 'alpha' }),
    status: async () => STATUS,
    peers: () => [],
    resolvers: () => [],
    routes: () => [],
    send: async (peer, payloads, options) => {
      sent.push(Buffer.concat(payloads).toString());
      return { peer, seq: 1, last_seq: 1, count: payloads.length, acknowledged: options.wait };
    },
    multicast: () => ({ links: 0 }),
    logLevel: (level) => {
      if (level !== undefined) levels.push(level);
      return level ?? 'info';
    },
    call: async () => [],
    actions: () => [],
    groups: () => [],
    trace: () => {
      throw new Error('not in this test');
    },
  };
}

interface HarnessOptions {
  password?: string;
  allowUnauthenticated?: boolean;
  /** Shared by several sessions (a cable reconnected). */
  login?: ConsoleLogin;
}

function harness(options: HarnessOptions = {}) {
  const input = new PassThrough();
  const output = new PassThrough();
  const counters = new Counters();
  const context = fakeContext();
  const login =
    options.login ??
    new ConsoleLogin({
      password: options.password,
      allowUnauthenticated: options.allowUnauthenticated ?? false,
      counters,
    });
  let printed = '';
  output.on('data', (chunk: Buffer) => {
    printed += chunk.toString('utf8');
  });
  const session = new ConsoleSession({ input, output, context, login, counters });
  let closed = false;
  void session.closed.then(() => {
    closed = true;
  });
  const h = {
    context,
    counters,
    gate: login,
    session,
    end: () => input.end(),
    isClosed: () => closed,
    printed: () => printed,
    type: (data: string | Buffer) => input.write(data),
    /** Types `line` and Enter, and returns what was printed up to the next prompt. */
    async run(line: string): Promise<string> {
      const mark = printed.length;
      input.write(`${line}\r`);
      return await h.waitFor(`the answer to ${JSON.stringify(line)}`, mark, (text) =>
        /\r\n[^\n]*nearmesh> $/.test(text.replaceAll(ERASE_LINE, '')),
      );
    },
    waitFor(what: string, mark: number, test: (text: string) => boolean): Promise<string> {
      return until(
        () => `${what}; printed ${JSON.stringify(printed.slice(mark))}`,
        () => (test(printed.slice(mark)) ? printed.slice(mark) : undefined),
        { timeoutMs: 5000 },
      );
    },
    /** `login`, then the password once asked, and what it printed up to the next prompt. */
    async login(password: string): Promise<string> {
      const mark = printed.length;
      input.write('login\r');
      await h.waitFor('the password prompt', mark, (text) => text.includes('password: '));
      return await h.run(password);
    },
  };
  return h;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('serial console session: what the line sends', () => {
  it.each([
    ['Ctrl-Z', '\x1a'],
    ['Ctrl-D', '\x04'],
    ['Ctrl-\\', '\x1c'],
    ['Ctrl-C', '\x03'],
    ['NUL', '\x00'],
  ])('%s on an empty line leaves the session open and answering', async (_name, byte) => {
    const h = harness();
    h.type(byte);
    h.type(byte);
    expect(await h.run('status')).toMatch(/name {6}alpha\r\n/);
    expect(h.isClosed()).toBe(false);
  });

  it('Ctrl-D and Ctrl-Z inside a line do no harm; the line still runs', async () => {
    const h = harness();
    expect(await h.run('sta\x1atus\x04')).toMatch(/name {6}alpha/);
    expect(h.isClosed()).toBe(false);
  });

  it(`refuses a line over ${MAX_LINE_CHARS} characters, counts it, and carries on`, async () => {
    const h = harness();
    const answer = await h.run(`status ${'x'.repeat(MAX_LINE_CHARS * 4)}`);
    expect(answer).toContain(`nearmesh: line longer than ${MAX_LINE_CHARS} characters; ignored`);
    expect(h.counters.get('console.lines_too_long')).toBe(1);
    expect(await h.run('status')).toMatch(/name {6}alpha/);
  });

  it('survives a flood of random binary, then answers status', async () => {
    const h = harness();
    for (let round = 0; round < 32; round++) h.type(randomBytes(32 * 1024));
    const mark = h.printed().length;
    // Ctrl-C ends any escape sequence and drops the half line the garbage left; while the lines the
    // garbage held are still waiting to run, a new one may be dropped: type it again until it runs.
    await until('status answered after the flood', () => {
      if (/name {6}alpha/.test(h.printed().slice(mark))) return true;
      h.type('\x03status\r');
      return false;
    });
    expect(
      h.counters.get('console.lines_too_long') + h.counters.get('console.lines_dropped'),
    ).toBeGreaterThan(0);
    expect(h.isClosed()).toBe(false);
  });

  it('drops output past the bound when nobody reads it, and counts the drop', async () => {
    const input = new PassThrough();
    // A terminal that never takes anything: every write stays pending.
    const output = new Writable({ highWaterMark: 1024, write: () => {} });
    const counters = new Counters();
    new ConsoleSession({
      input,
      output,
      context: fakeContext(),
      login: new ConsoleLogin({ password: undefined, allowUnauthenticated: false, counters }),
      counters,
    });
    for (let round = 0; round < 64; round++) input.write('help\r'.repeat(200));
    await until('output dropped', () => counters.get('console.output_dropped') > 0);
    expect(output.writableLength).toBeLessThan(MAX_PENDING_OUTPUT + 16 * 1024);
  });

  it('ends when its input ends (the cable went away)', async () => {
    const h = harness();
    h.end();
    await until('the session closed', () => h.isClosed());
  });
});

describe('serial console login', () => {
  it('without a password: read-only, unless allow_unauthenticated', async () => {
    const h = harness();
    expect(await h.run('peers')).not.toContain('error');
    expect(await h.run('log level')).toContain('log level info');
    expect(await h.run('send bravo hi')).toContain(
      'nearmesh: this console is read-only: set [console] password to log in (or allow_unauthenticated = true)',
    );
    expect(await h.run('log level debug')).toContain('nearmesh: this console is read-only');
    expect(await h.run('broadcast hi')).toContain('nearmesh: this console is read-only');
    expect(await h.run('call bravo greet')).toContain('nearmesh: this console is read-only');
    expect(await h.run('login')).toContain('no password is set ([console] password)');
    expect(h.context.sent).toEqual([]);
    expect(h.context.levels).toEqual([]);

    const open = harness({ allowUnauthenticated: true });
    expect(await open.run('send bravo hi')).toContain('acknowledged by bravo');
    expect(open.context.sent).toEqual(['hi']);
  });

  it('with a password: acting needs login; the password is not echoed; logout ends it', async () => {
    const h = harness({ password: mosquittoPasswdHash(PASSWORD) });
    expect(await h.run('status')).toMatch(/name {6}alpha/);
    expect(await h.run('send bravo hi')).toContain('nearmesh: log in first: type login');

    const mark = h.printed().length;
    expect(await h.login(PASSWORD)).toContain('logged in');
    expect(h.printed().slice(mark)).not.toContain(PASSWORD);
    expect(await h.run('send bravo hi')).toContain('acknowledged by bravo');
    expect(await h.run('log level debug')).toContain('log level debug');
    expect(h.context.sent).toEqual(['hi']);
    expect(h.context.levels).toEqual(['debug']);
    // The password never went into the history: up-arrow recalls the command before it.
    expect(await h.run('\x1b[A\x1b[A')).toContain('acknowledged by bravo');

    expect(await h.run('logout')).toContain('logged out');
    expect(await h.run('send bravo again')).toContain('nearmesh: log in first');
    expect(h.context.sent).toEqual(['hi', 'hi']);
  });

  it('Ctrl-C at the password prompt cancels the login', async () => {
    const h = harness({ password: mosquittoPasswdHash(PASSWORD) });
    const mark = h.printed().length;
    h.type('login\r');
    await h.waitFor('the password prompt', mark, (text) => text.includes('password: '));
    h.type('corr');
    h.type('\x03');
    await h.waitFor('the cancel', mark, (text) => text.includes('login cancelled'));
    expect(await h.run('send bravo hi')).toContain('nearmesh: log in first');
    expect(h.printed()).not.toContain('corr');
  });

  it('slows down wrong passwords: after 3 in a row, 1 s, then 2 s, 4 s ... before the next try', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.parse('2026-12-01T00:00:00Z'));
    const h = harness({ password: mosquittoPasswdHash(PASSWORD) });
    for (let attempt = 0; attempt < 3; attempt++)
      expect(await h.login('wrong')).toContain('nearmesh: wrong password');
    expect(h.counters.get('console.login_failures')).toBe(3);
    expect(await h.run('login')).toContain('nearmesh: too many failed logins; try again in 1 s');
    vi.setSystemTime(Date.now() + 1000);
    expect(await h.login('wrong again')).toContain('nearmesh: wrong password');
    expect(await h.run('login')).toContain('try again in 2 s');

    // The cable reconnected: a new session of the same serial console waits as long.
    const next = harness({ login: h.gate });
    expect(await next.run('login')).toContain('try again in 2 s');
    vi.setSystemTime(Date.now() + 2000);
    expect(await next.login(PASSWORD)).toContain('logged in');
    expect(h.counters.get('console.login_failures')).toBe(4);
    // Logged in in the new session only.
    expect(await h.run('send bravo hi')).toContain('nearmesh: log in first');
    expect(await next.run('send bravo hi')).toContain('acknowledged by bravo');
  });
});

describe('the control socket', () => {
  it('needs no login: its owner is trusted, and login says so', async () => {
    const context = fakeContext();
    expect(await runConsoleLine('send bravo hi', context)).toBe('acknowledged by bravo\n');
    expect(await runConsoleLine('login', context)).toBe(
      "no login needed here: the control socket's owner is trusted\n",
    );
    expect(context.sent).toEqual(['hi']);
  });
});
