// Exec-backed action and sensor handlers against real child processes (small /bin/sh scripts in a temp
// dir): arguments on stdin and caller identity in the environment; JSON and text results; and every way
// a handler program can misbehave (non-zero exit, crash, hang, its own children, flooding, garbage,
// missing binary, ignoring stdin) ending as a typed error and never as a rejection.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ExecAction } from '../../../agent/coordination/exec-action.js';
import {
  DEFAULT_SENSOR_TIMEOUT_MS,
  ExecSensor,
  parseReading,
} from '../../../agent/coordination/exec-sensor.js';
import { type CallContext, type CallResult, SensorReadError } from '../../../agent/coordination/handler.js';
import { parseOutput } from '../../../agent/coordination/output.js';
import { Counters } from '../../../agent/core/counters.js';
import { writeShScript } from '../../support/sh-script.js';
import { until } from '../../support/until.js';

const dir = mkdtempSync(join(tmpdir(), 'nearmesh-handlers-'));
const leftovers: number[] = [];

afterAll(() => {
  for (const pid of leftovers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

let scriptCount = 0;
/** An executable /bin/sh script; its path. */
function script(body: string): string {
  scriptCount += 1;
  return writeShScript(join(dir, `handler-${scriptCount}.sh`), body);
}

function context(overrides: Partial<CallContext> = {}): CallContext {
  return {
    callId: 'call-42',
    caller: 'peer-abc',
    callerName: 'kitchen-pi',
    deadlineMs: Date.now() + 5000,
    signal: new AbortController().signal,
    ...overrides,
  };
}

function errorOf(result: CallResult): { code: string; message: string } {
  if (result.ok) throw new Error(`expected an error result, got ${JSON.stringify(result.value)}`);
  return result.error;
}

/** Alive and not a zombie (a zombie is dead; an init that does not reap would otherwise fool us). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function waitForDeath(pid: number, withinMs: number): Promise<void> {
  await until(`process ${pid} to die`, () => !isAlive(pid), { timeoutMs: withinMs, intervalMs: 20 });
}

function readPid(path: string): number {
  const pid = Number(readFileSync(path, 'utf8').trim());
  leftovers.push(pid);
  return pid;
}

describe('exec action: results', () => {
  it('passes the arguments as JSON on stdin and the caller in the environment', async () => {
    const exec = script(
      'input=$(cat)\n' +
        'printf \'{"input":%s,"caller":"%s","name":"%s","id":"%s","action":"%s"}\' "$input" ' +
        '"$NEARMESH_CALLER" "$NEARMESH_CALLER_NAME" "$NEARMESH_CALL_ID" "$NEARMESH_ACTION"',
    );
    const action = new ExecAction({ name: 'open-door', exec: [exec] });
    const args = { seconds: 3, who: 'me "quoted"', nested: { list: [1, true, null] } };
    const result = await action.invoke(args, context());
    expect(result).toEqual({
      ok: true,
      value: { input: args, caller: 'peer-abc', name: 'kitchen-pi', id: 'call-42', action: 'open-door' },
    });
    expect(action.kind).toBe('exec');
  });

  it('leaves NEARMESH_CALLER_NAME unset when the caller has no name, even if the agent has one', async () => {
    const previous = process.env.NEARMESH_CALLER_NAME;
    process.env.NEARMESH_CALLER_NAME = 'stale';
    try {
      const action = new ExecAction({
        name: 'a',
        exec: [script("env | grep -q '^NEARMESH_CALLER_NAME=' && echo set || echo unset")],
      });
      const result = await action.invoke({}, context({ callerName: undefined }));
      expect(result).toEqual({ ok: true, value: 'unset' });
    } finally {
      if (previous === undefined) delete process.env.NEARMESH_CALLER_NAME;
      else process.env.NEARMESH_CALLER_NAME = previous;
    }
  });

  it('returns text output trimmed, text that is not JSON as text, and bytes that are not text as an error', async () => {
    const text = new ExecAction({ name: 'a', exec: [script("printf '  hello world \\n\\n'")] });
    expect(await text.invoke({}, context())).toEqual({ ok: true, value: 'hello world' });
    const notJson = new ExecAction({ name: 'a', exec: [script('printf \'{"a":1\\n\\001\'')] });
    const result = await notJson.invoke({}, context());
    expect(result.ok).toBe(true);
    expect(typeof (result.ok && result.value)).toBe('string');
    const garbage = new ExecAction({ name: 'a', exec: [script('printf \'{"a":1\\n\\001\\377\'')] });
    expect(await garbage.invoke({}, context())).toMatchObject({ ok: false, error: { code: 'bad-output' } });
  });

  it('prepares without running the program: the start runs it, with the arguments and caller it was prepared with', async () => {
    const ranFile = join(dir, 'prepared.ran');
    const action = new ExecAction({
      name: 'a',
      exec: [
        script(
          `touch ${ranFile}; input=$(cat); printf '{"input":%s,"caller":"%s"}' "$input" "$NEARMESH_CALLER"`,
        ),
      ],
    });
    const start = await action.prepare({ on: true }, context());
    expect(existsSync(ranFile)).toBe(false);
    expect(await start()).toEqual({ ok: true, value: { input: { on: true }, caller: 'peer-abc' } });
    expect(existsSync(ranFile)).toBe(true);
  });

  it('passes argv without a shell', async () => {
    const action = new ExecAction({ name: 'a', exec: ['/bin/echo', '$HOME', '; rm -rf /', '*'] });
    expect(await action.invoke({}, context())).toEqual({ ok: true, value: '$HOME ; rm -rf / *' });
  });

  it('does not fail when the program never reads its (large) stdin', async () => {
    const action = new ExecAction({ name: 'a', exec: [script('echo done')] });
    const result = await action.invoke({ blob: 'x'.repeat(1024 * 1024) }, context());
    expect(result).toEqual({ ok: true, value: 'done' });
  });

  it('returns promptly when a background child keeps stdout open', async () => {
    const pidFile = join(dir, 'background.pid');
    const action = new ExecAction({ name: 'a', exec: [script(`sleep 5 & echo $! > ${pidFile}; echo 7`)] });
    const started = Date.now();
    expect(await action.invoke({}, context())).toEqual({ ok: true, value: 7 });
    expect(Date.now() - started).toBeLessThan(1500);
    readPid(pidFile); // killed in afterAll
  });

  it('parses output as JSON when it is JSON', () => {
    expect(parseOutput(' {"a": [1, 2]}\n')).toEqual({ a: [1, 2] });
    expect(parseOutput('42\n')).toBe(42);
    expect(parseOutput('"x"')).toBe('x');
    expect(parseOutput('')).toBe('');
    expect(parseOutput('not json')).toBe('not json');
  });
});

describe('exec action: failures become error results', () => {
  it('reports a non-zero exit with its code and the end of stderr', async () => {
    const action = new ExecAction({ name: 'a', exec: [script('echo boom >&2; exit 3')] });
    const error = errorOf(await action.invoke({}, context()));
    expect(error.code).toBe('exit');
    expect(error.message).toContain('code 3');
    expect(error.message).toContain('boom');
  });

  it('keeps only the last ~1 KiB of a long stderr in the message', async () => {
    const exec = script(
      'echo FIRST-LINE >&2; head -c 20000 /dev/zero | tr "\\0" x >&2; echo LAST-LINE >&2; exit 1',
    );
    const error = errorOf(await new ExecAction({ name: 'a', exec: [exec] }).invoke({}, context()));
    expect(error.message).toContain('LAST-LINE');
    expect(error.message).not.toContain('FIRST-LINE');
    expect(error.message.length).toBeLessThan(1300);
  });

  it('reports a crash (killed by a signal)', async () => {
    const action = new ExecAction({ name: 'a', exec: [script('kill -SEGV $$')] });
    const error = errorOf(await action.invoke({}, context()));
    expect(error).toEqual({ code: 'crashed', message: expect.stringContaining('SIGSEGV') });
  });

  it('reports a missing binary clearly', async () => {
    const counters = new Counters();
    for (const exec of [join(dir, 'no-such-handler'), 'nearmesh-no-such-program']) {
      const error = errorOf(
        await new ExecAction({ name: 'a', exec: [exec], counters }).invoke({}, context()),
      );
      expect(error.code).toBe('spawn-failed');
      expect(error.message).toContain('not found');
    }
    expect(counters.get('coordination.exec_spawn_failed')).toBe(2);
  });

  it('reports a file that is not executable', async () => {
    const path = join(dir, 'not-executable.sh');
    writeFileSync(path, '#!/bin/sh\necho hi\n');
    const error = errorOf(await new ExecAction({ name: 'a', exec: [path] }).invoke({}, context()));
    expect(error).toEqual({ code: 'spawn-failed', message: expect.stringContaining('permission denied') });
  });

  it('stops a flood of output', async () => {
    const started = Date.now();
    const error = errorOf(await new ExecAction({ name: 'a', exec: ['yes'] }).invoke({}, context()));
    expect(error.code).toBe('output-too-large');
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('kills a hanging handler and its child on timeout', async () => {
    const pidFile = join(dir, 'hang.pid');
    const action = new ExecAction({
      name: 'a',
      exec: [script(`sleep 30 & echo $! > ${pidFile}; wait`)],
      timeoutMs: 300,
    });
    const started = Date.now();
    const error = errorOf(await action.invoke({}, context()));
    expect(error.code).toBe('timeout');
    expect(error.message).toContain('300 ms');
    await waitForDeath(readPid(pidFile), 300);
    expect(Date.now() - started).toBeLessThan(300 + 1500);
  });

  it('SIGKILLs a handler (and child) that ignores SIGTERM after the 1 s grace', async () => {
    const pidFile = join(dir, 'stubborn.pid');
    const action = new ExecAction({
      name: 'a',
      exec: [script(`trap '' TERM; sleep 30 & echo $! > ${pidFile}; wait`)],
      timeoutMs: 200,
    });
    const started = Date.now();
    const error = errorOf(await action.invoke({}, context()));
    expect(error.code).toBe('timeout');
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(1100);
    await waitForDeath(readPid(pidFile), 200);
    expect(Date.now() - started).toBeLessThan(200 + 1500);
  });

  it('uses the call deadline when it is sooner than the timeout', async () => {
    const action = new ExecAction({ name: 'a', exec: [script('sleep 30')], timeoutMs: 10_000 });
    const started = Date.now();
    const error = errorOf(await action.invoke({}, context({ deadlineMs: Date.now() + 200 })));
    expect(error.code).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(1500);
    const late = errorOf(await action.invoke({}, context({ deadlineMs: Date.now() - 1 })));
    expect(late.code).toBe('timeout');
  });

  it('kills the handler when the call is aborted', async () => {
    const pidFile = join(dir, 'aborted.pid');
    const controller = new AbortController();
    const action = new ExecAction({ name: 'a', exec: [script(`sleep 30 & echo $! > ${pidFile}; wait`)] });
    const started = Date.now();
    const invoked = action.invoke({}, context({ signal: controller.signal }));
    // Aborted once the handler's child is running, so its death can be checked.
    await until(
      "the handler's child running",
      () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '',
    );
    controller.abort();
    const error = errorOf(await invoked);
    expect(error.code).toBe('aborted');
    expect(Date.now() - started).toBeLessThan(1500);
    await waitForDeath(readPid(pidFile), 300);
    const already = errorOf(await action.invoke({}, context({ signal: AbortSignal.abort() })));
    expect(already.code).toBe('aborted');
  });

  it('never rejects, even for an empty argv', async () => {
    const error = errorOf(await new ExecAction({ name: 'a', exec: [] }).invoke({}, context()));
    expect(error.code).toBe('spawn-failed');
    const nul = errorOf(
      await new ExecAction({ name: 'a', exec: ['/bin/echo', 'a\0b'] }).invoke({}, context()),
    );
    expect(nul.code).toBe('spawn-failed');
  });
});

describe('exec sensor', () => {
  const signal = new AbortController().signal;

  it('reads numbers, booleans, JSON with a unit, and text', async () => {
    const number = await new ExecSensor({ name: 's', exec: [script('echo 21.5')], unit: 'Cel' }).read(signal);
    expect(number).toEqual({ value: 21.5, unit: 'Cel', readAtMs: expect.any(Number) });
    expect((await new ExecSensor({ name: 's', exec: [script('echo false')] }).read(signal)).value).toBe(
      false,
    );
    const json = await new ExecSensor({
      name: 's',
      exec: [script('echo \'{"value": 3, "unit": "%"}\'')],
    }).read(signal);
    expect(json).toEqual({ value: 3, unit: '%', readAtMs: expect.any(Number) });
    const text = await new ExecSensor({ name: 's', exec: [script('echo "  door open "')] }).read(signal);
    expect(text).toEqual({ value: 'door open', readAtMs: expect.any(Number) });
    const env = await new ExecSensor({ name: 'hall.temp', exec: [script('echo "$NEARMESH_SENSOR"')] }).read(
      signal,
    );
    expect(env.value).toBe('hall.temp');
  });

  it('parses readings', () => {
    expect(parseReading('-3e2')).toEqual({ value: -300 });
    expect(parseReading('0x10')).toEqual({ value: '0x10' });
    expect(parseReading('true\n')).toEqual({ value: true });
    expect(parseReading('{"value": "on"}')).toEqual({ value: 'on' });
    expect(parseReading('{"value": {"x": 1}}')).toBeNull();
    expect(parseReading('{"unit": "Cel"}')).toBeNull();
    expect(parseReading('{broken')).toEqual({ value: '{broken' });
    expect(parseReading('  \n')).toBeNull();
  });

  async function readError(sensor: ExecSensor, abort = signal): Promise<SensorReadError> {
    try {
      await sensor.read(abort);
    } catch (error) {
      expect(error).toBeInstanceOf(SensorReadError);
      return error as SensorReadError;
    }
    throw new Error('expected the read to fail');
  }

  it('rejects with SensorReadError for every failure', async () => {
    expect(DEFAULT_SENSOR_TIMEOUT_MS).toBe(5000);
    const cases: Array<[string[], string, number?]> = [
      [[script('true')], 'bad-output'],
      [[script('echo \'{"value": null}\'')], 'bad-output'],
      [[script('echo nope >&2; exit 2')], 'exit'],
      [[script('kill -SEGV $$')], 'crashed'],
      [[join(dir, 'missing-sensor')], 'spawn-failed'],
      [[script('sleep 30')], 'timeout', 200],
      [['yes'], 'output-too-large'],
    ];
    const errors = await Promise.all(
      cases.map(([exec, , timeoutMs]) => readError(new ExecSensor({ name: 's', exec, timeoutMs }))),
    );
    expect(errors.map((error) => error.code)).toEqual(cases.map(([, code]) => code));
    expect(errors[2]?.message).toContain('nope');
    const aborted = await readError(
      new ExecSensor({ name: 's', exec: [script('sleep 30')] }),
      AbortSignal.abort(),
    );
    expect(aborted.code).toBe('aborted');
  });
});
