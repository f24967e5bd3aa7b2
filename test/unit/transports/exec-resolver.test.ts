// The exec resolver with real programs: the line format, garbage counted and reported at most once per
// interval, a program that exits (its candidates lost, restarted with back-off), stderr to the log, a program
// that cannot run, the bound on candidates, and stop() ending the program's whole process group.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ExecResolver,
  type ExecResolverOptions,
  readResolverLine,
} from '../../../transports/exec-resolver.js';
import type { PeerCandidate } from '../../../transports/resolver.js';
import { until } from '../../support/until.js';

let dir: string;
const running: ExecResolver[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nearmesh-exec-'));
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((resolver) => resolver.stop()));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

let scripts = 0;
async function script(body: string): Promise<string> {
  const path = join(dir, `resolver-${++scripts}.sh`);
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

function start(argv: string[], options: Partial<ExecResolverOptions> = {}) {
  const events: string[] = [];
  const found: PeerCandidate[] = [];
  const warnings: string[] = [];
  const stderr: string[] = [];
  const resolver = new ExecResolver({
    name: 'test-exec',
    argv,
    maxCandidates: 16,
    restart: { initialMs: 50, maxMs: 200 },
    stderr: (line) => stderr.push(line),
    ...options,
  });
  resolver.on('found', (candidate) => {
    found.push(candidate);
    events.push(`found ${candidate.address}`);
  });
  resolver.on('lost', (candidate) => events.push(`lost ${candidate.address}`));
  resolver.on('warning', (error) => warnings.push(error.message));
  running.push(resolver);
  return { resolver, events, found, warnings, stderr, started: resolver.start() };
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('readResolverLine', () => {
  it('reads found and lost lines, with the optional peer id and name', () => {
    expect(
      readResolverLine(
        '{"found": {"address": "10.0.0.7:7450", "peer": "0123456789abcdef", "name": "pump"}}',
        'x',
      ),
    ).toEqual({
      ok: true,
      event: 'found',
      candidate: {
        medium: 'wifi',
        address: '10.0.0.7:7450',
        peerId: '0123456789abcdef',
        name: 'pump',
        source: 'x',
      },
    });
    expect(readResolverLine('{"lost": {"address": "[fd00::7]:7450"}}', 'x')).toMatchObject({
      ok: true,
      event: 'lost',
      candidate: { address: '[fd00::7]:7450' },
    });
  });

  it.each([
    ['found 10.0.0.7:7450', 'not JSON'],
    ['[1]', 'not a JSON object'],
    ['{"found": {"address": "10.0.0.7:7450"}, "lost": {}}', 'one key'],
    ['{"seen": {"address": "10.0.0.7:7450"}}', 'one key'],
    ['{"found": "10.0.0.7:7450"}', 'not an object'],
    ['{"found": {}}', '"address" is missing'],
    ['{"found": {"address": "10.0.0.7"}}', '"address"'],
    ['{"found": {"address": "10.0.0.7:7450", "peer": "PUMP"}}', '"peer" is not a peer id'],
    ['{"found": {"address": "10.0.0.7:7450", "name": ""}}', '"name"'],
    ['{"found": {"address": "10.0.0.7:7450", "port": 1}}', 'unknown key "port"'],
  ])('refuses %s (%s)', (line, reason) => {
    const verdict = readResolverLine(line, 'x');
    expect(verdict.ok).toBe(false);
    expect(verdict.ok ? '' : verdict.reason).toContain(reason);
  });
});

describe('ExecResolver', () => {
  it('counts garbage, reports it once per interval with the last reason, and takes the good lines', async () => {
    const long = 'x'.repeat(5000);
    const program = await script(
      `echo 'hello'\necho '${long}'\necho '{"found": {"address": "10.0.0.2:7450"}}'\necho '{"found": {"address": "nope"}}'\nsleep 30`,
    );
    const { resolver, found, warnings } = start([program]);
    await until('the good line', () => found.length === 1 && resolver.badLines === 3);
    expect(found[0]).toEqual({ medium: 'wifi', address: '10.0.0.2:7450', source: 'test-exec' });
    // The first bad line is said at once; the next two fall in the same minute and are only counted.
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('1 bad line');
    expect(warnings[0]).toContain('not JSON');
  });

  it('says how many bad lines came since the last report once the interval has passed', async () => {
    const program = await script(`echo a\necho b\nsleep 0.3\necho c\nsleep 30`);
    const { resolver, warnings } = start([program], { reportIntervalMs: 200 });
    await until('the second report', () => warnings.length === 2);
    expect(resolver.badLines).toBe(3);
    expect(warnings[0]).toMatch(/^1 bad line from /);
    expect(warnings[1]).toMatch(/^2 bad lines from .*\(3 in all\)/);
  });

  it('restarts a program that exits, with back-off, losing what it found until it says so again', async () => {
    const program = await script(`echo '{"found": {"address": "10.0.0.2:7450"}}'\nexit 3`);
    const { resolver, events, warnings } = start([program]);
    await until('three runs', () => resolver.runs >= 3 && events.length >= 5);
    expect(events.slice(0, 5)).toEqual([
      'found 10.0.0.2:7450',
      'lost 10.0.0.2:7450',
      'found 10.0.0.2:7450',
      'lost 10.0.0.2:7450',
      'found 10.0.0.2:7450',
    ]);
    expect(warnings[0]).toMatch(/exited with code 3; restarting in \d+\.\d s/);
  });

  it('sends its stderr to the log, line by line', async () => {
    const program = await script(
      `echo 'looking at /var/lib/misc/dnsmasq.leases' >&2\necho 'two' >&2\nsleep 30`,
    );
    const { stderr } = start([program]);
    await until('both lines', () => stderr.length === 2);
    expect(stderr).toEqual(['looking at /var/lib/misc/dnsmasq.leases', 'two']);
  });

  it('keeps running when the program cannot run, says why, and tries again', async () => {
    const { resolver, warnings, started } = start([join(dir, 'missing-program')]);
    await started;
    await until('a warning', () => warnings.length > 0);
    expect(warnings[0]).toMatch(/could not run: spawn .*ENOENT/);
    expect(resolver.health().state).toBe('restarting');
    await until('a second try', () => resolver.runs >= 2);
  });

  it('holds at most maxCandidates and counts the rest as dropped', async () => {
    const lines = [1, 2, 3, 4, 5].map((n) => `echo '{"found": {"address": "10.0.0.${n}:7450"}}'`).join('\n');
    const program = await script(
      `${lines}\necho '{"lost": {"address": "10.0.0.1:7450"}}'\necho '{"found": {"address": "10.0.0.9:7450"}}'\nsleep 30`,
    );
    const { resolver, events } = start([program], { maxCandidates: 3 });
    await until('the last found', () => events.includes('found 10.0.0.9:7450'));
    expect(resolver.dropped).toBe(2);
    expect(resolver.candidates().map((c) => c.address)).toEqual([
      '10.0.0.2:7450',
      '10.0.0.3:7450',
      '10.0.0.9:7450',
    ]);
  });

  it('runs the example of docs/examples: devices in a DHCP lease file found, and lost when their lease goes', async () => {
    const leases = join(dir, 'dnsmasq.leases');
    await writeFile(
      leases,
      '1700000000 aa:bb:cc:00:00:01 10.2.0.7 pump 01:aa\n1700000000 aa:bb:cc:00:00:02 10.3.0.9 * 01:bb\n',
    );
    const example = join(import.meta.dirname, '../../../docs/examples/dhcp-leases-resolver.sh');
    const { events, found } = start([example, leases], {
      env: { ...process.env, NEARMESH_RESOLVER_EVERY: '0.1', NEARMESH_PORT: '7450' },
    });
    await until('both devices', () => found.length === 2);
    expect(found).toEqual([
      { medium: 'wifi', address: '10.2.0.7:7450', name: 'pump', source: 'test-exec' },
      { medium: 'wifi', address: '10.3.0.9:7450', source: 'test-exec' },
    ]);
    await writeFile(leases, '1700000000 aa:bb:cc:00:00:01 10.2.0.7 pump 01:aa\n');
    await until('the expired lease lost', () => events.includes('lost 10.3.0.9:7450'));
  });

  it('stop() ends the program and what it started, even one that ignores SIGTERM', async () => {
    const program = await script(
      `trap '' TERM\nsleep 1000 &\necho "{\\"found\\": {\\"address\\": \\"10.0.0.2:7450\\"}}"\nwait`,
    );
    const { resolver, found } = start([program]);
    await until('running', () => found.length === 1);
    const pid = resolver.pid as number;
    expect(isAlive(pid)).toBe(true);
    await resolver.stop();
    expect(isAlive(pid)).toBe(false);
    // The whole group goes: its `sleep` too, once init has reaped it.
    await until('no process left in its group', () => !isAlive(-pid), { timeoutMs: 2_000 });
    expect(resolver.health().state).toBe('stopped');
  });
});
