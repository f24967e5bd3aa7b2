// GPIO handlers against fake libgpiod tools: shell scripts that print a v1 or v2 `--version` and record
// the exact argv they were run with, so the command syntax for each libgpiod generation is pinned down.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  GpioAction,
  GpioSensor,
  GpioTools,
  GpioUnavailableError,
  parseGpiodVersion,
  parseGpioValue,
} from '../../../agent/coordination/gpio.js';
import type { CallContext, CallResult, JsonObject } from '../../../agent/coordination/handler.js';
import { SensorReadError } from '../../../agent/coordination/handler.js';

const root = mkdtempSync(join(tmpdir(), 'nearmesh-gpio-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const V1 = 'gpioget (libgpiod) v1.6.3\nCopyright (C) 2017-2018 Bartosz Golaszewski';
const V2 = 'gpioget (libgpiod) v2.1.2\nCopyright (C) 2017-2023 Bartosz Golaszewski';

interface FakeTools {
  dir: string;
  tools: { gpioget: string; gpioset: string };
  /** The argv (one array per run) each tool was called with, --version runs included. */
  calls(tool: 'gpioget' | 'gpioset'): string[][];
}

let fakeCount = 0;
function fakeTools(version: string, options: { getOutput?: string; setScript?: string } = {}): FakeTools {
  fakeCount += 1;
  const dir = join(root, `bin-${fakeCount}`);
  mkdirSync(dir);
  const write = (tool: string, body: string): string => {
    const path = join(dir, tool);
    // Each run appends its arguments, NUL-free and one per line, then a separator line.
    writeFileSync(
      path,
      `#!/bin/sh\nfor a in "$@"; do echo "$a"; done >> ${dir}/${tool}.log\necho --- >> ${dir}/${tool}.log\n${body}\n`,
    );
    chmodSync(path, 0o755);
    return path;
  };
  const versionBranch = `if [ "$1" = "--version" ]; then printf '%s\\n' '${version}'; exit 0; fi`;
  const gpioget = write('gpioget', `${versionBranch}\necho '${options.getOutput ?? '1'}'`);
  const gpioset = write('gpioset', `${versionBranch}\n${options.setScript ?? ''}`);
  return {
    dir,
    tools: { gpioget, gpioset },
    calls(tool) {
      let text: string;
      try {
        text = readFileSync(join(dir, `${tool}.log`), 'utf8');
      } catch {
        return [];
      }
      return text
        .split('---\n')
        .slice(0, -1)
        .map((run) => (run === '' ? [] : run.slice(0, -1).split('\n')));
    },
  };
}

function context(): CallContext {
  return {
    callId: 'c1',
    caller: 'peer',
    deadlineMs: Date.now() + 5000,
    signal: new AbortController().signal,
  };
}

function errorOf(result: CallResult): { code: string; message: string } {
  if (result.ok) throw new Error(`expected an error result, got ${JSON.stringify(result.value)}`);
  return result.error;
}

const signal = new AbortController().signal;

describe('libgpiod v1 syntax', () => {
  it('sets and reads with <chip> <line>', async () => {
    const fake = fakeTools(V1);
    const tools = new GpioTools(fake.tools);
    const action = new GpioAction({ tools, chip: 'gpiochip0', line: 17 });
    expect(await action.invoke({ value: true }, context())).toEqual({ ok: true, value: 1 });
    expect(await action.invoke({ value: 0 }, context())).toEqual({ ok: true, value: 0 });
    const sensor = new GpioSensor({ tools, chip: 'gpiochip0', line: 4, activeLow: true, bias: 'disabled' });
    expect(await sensor.read(signal)).toEqual({ value: 1, readAtMs: expect.any(Number) });
    expect(fake.calls('gpioset')).toEqual([
      ['gpiochip0', '17=1'],
      ['gpiochip0', '17=0'],
    ]);
    // --version ran once, for all three uses.
    expect(fake.calls('gpioget')).toEqual([
      ['--version'],
      ['--active-low', '--bias=disable', 'gpiochip0', '4'],
    ]);
  });
});

describe('libgpiod v2 syntax', () => {
  it('sets with --chip and -t0, reads with --numeric --chip', async () => {
    const fake = fakeTools(V2, { getOutput: '0' });
    const tools = new GpioTools(fake.tools);
    const action = new GpioAction({ tools, chip: 'gpiochip4', line: 18 });
    expect(await action.invoke({ value: 1 }, context())).toEqual({ ok: true, value: 1 });
    const low = new GpioAction({ tools, chip: '0', line: 'GPIO23', activeLow: true });
    expect(await low.invoke({ value: false }, context())).toEqual({ ok: true, value: 0 });
    const sensor = new GpioSensor({ tools, chip: 'gpiochip4', line: 27, bias: 'pull-up' });
    expect(await sensor.read(signal)).toEqual({ value: 0, readAtMs: expect.any(Number) });
    expect(fake.calls('gpioset')).toEqual([
      ['--chip', 'gpiochip4', '-t0', '18=1'],
      ['--active-low', '--chip', '0', '-t0', 'GPIO23=0'],
    ]);
    expect(fake.calls('gpioget')).toEqual([
      ['--version'],
      ['--numeric', '--bias', 'pull-up', '--chip', 'gpiochip4', '27'],
    ]);
  });

  it('finds the tools on PATH by default', async () => {
    const fake = fakeTools(V2);
    const previous = process.env.PATH;
    process.env.PATH = `${fake.dir}${delimiter}${previous ?? ''}`;
    try {
      const action = new GpioAction({ tools: new GpioTools(), chip: 'gpiochip0', line: 5 });
      expect(await action.invoke({ value: 1 }, context())).toEqual({ ok: true, value: 1 });
    } finally {
      process.env.PATH = previous;
    }
    expect(fake.calls('gpioset')).toEqual([['--chip', 'gpiochip0', '-t0', '5=1']]);
  });

  it('parses tool output', () => {
    expect(parseGpiodVersion(V1)).toBe(1);
    expect(parseGpiodVersion(V2)).toBe(2);
    expect(parseGpiodVersion('gpioget (libgpiod) v2.0-devel')).toBe(2);
    expect(parseGpiodVersion('something else')).toBeNull();
    expect(parseGpioValue('1\n')).toBe(1);
    expect(parseGpioValue('"17"=active\n')).toBe(1);
    expect(parseGpioValue('"GPIO4"=inactive')).toBe(0);
    expect(parseGpioValue('maybe')).toBeNull();
  });
});

describe('GPIO failures', () => {
  it('refuses bad arguments', async () => {
    const action = new GpioAction({ tools: new GpioTools({ version: 2 }), chip: '0', line: 1 });
    const invalid: JsonObject[] = [{}, { value: 2 }, { value: '1' }, { value: null }];
    for (const args of invalid) {
      expect(errorOf(await action.invoke(args, context())).code).toBe('invalid-args');
    }
  });

  it('reports missing tools as gpio-unavailable, for actions and sensors', async () => {
    const missing = { gpioget: join(root, 'nope', 'gpioget'), gpioset: join(root, 'nope', 'gpioset') };
    const action = new GpioAction({ tools: new GpioTools(missing), chip: '0', line: 1 });
    const error = errorOf(await action.invoke({ value: 1 }, context()));
    expect(error.code).toBe('gpio-unavailable');
    expect(error.message).toContain('gpiod');
    // With the version known, a missing gpioset is still gpio-unavailable.
    const known = new GpioAction({ tools: new GpioTools({ ...missing, version: 1 }), chip: '0', line: 1 });
    expect(errorOf(await known.invoke({ value: 1 }, context())).code).toBe('gpio-unavailable');
    const sensor = new GpioSensor({ tools: new GpioTools(missing), chip: '0', line: 1 });
    await expect(sensor.read(signal)).rejects.toBeInstanceOf(GpioUnavailableError);
    await expect(sensor.read(signal)).rejects.toMatchObject({ code: 'gpio-unavailable' });
  });

  it('reports unrecognised --version output as gpio-unavailable', async () => {
    const fake = fakeTools('gpioget 9.9 from elsewhere?');
    const tools = new GpioTools(fake.tools);
    const action = new GpioAction({ tools, chip: '0', line: 1 });
    expect(errorOf(await action.invoke({ value: 1 }, context())).code).toBe('gpio-unavailable');
  });

  it('passes a tool error through with its stderr', async () => {
    const fake = fakeTools(V2, {
      setScript: 'echo "unable to request lines: Device or resource busy" >&2; exit 1',
    });
    const action = new GpioAction({ tools: new GpioTools(fake.tools), chip: '0', line: 1 });
    const error = errorOf(await action.invoke({ value: 1 }, context()));
    expect(error.code).toBe('exit');
    expect(error.message).toContain('resource busy');
  });

  it('rejects unreadable gpioget output with SensorReadError', async () => {
    const fake = fakeTools(V1, { getOutput: 'what' });
    const sensor = new GpioSensor({ tools: new GpioTools(fake.tools), chip: '0', line: 1 });
    await expect(sensor.read(signal)).rejects.toSatisfy(
      (error) => error instanceof SensorReadError && error.code === 'bad-output',
    );
  });
});
