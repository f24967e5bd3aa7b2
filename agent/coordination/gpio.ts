// GPIO through libgpiod's command-line tools rather than a native module: nothing to compile on the
// Pi, and the tools ship with Raspberry Pi OS (package "gpiod"). Their syntax changed in libgpiod 2.x,
// so the version is detected once by running `gpioget --version`:
//   v1: gpioget <chip> <line>                  gpioset <chip> <line>=<value>
//   v2: gpioget --numeric --chip <chip> <line>  gpioset --chip <chip> -t0 <line>=<value>
// (v2 gpioset holds the line until killed unless given -t0, "toggle period 0": set, then exit.)
import {
  type ActionHandler,
  type CallContext,
  type CallResult,
  errorResult,
  type JsonObject,
  type SensorHandler,
  SensorReadError,
  type SensorReading,
  type StartRun,
  settledStart,
} from './handler.js';
import { outcomeError, runProcess } from './run-process.js';

export const DEFAULT_GPIO_TIMEOUT_MS = 2000;

export type GpioBias = 'pull-up' | 'pull-down' | 'disabled';
export type GpioToolsVersion = 1 | 2;

export interface GpioToolsOptions {
  /** The gpioget binary: a path, or a name looked up on $PATH. Default "gpioget". */
  readonly gpioget?: string;
  /** The gpioset binary. Default "gpioset". */
  readonly gpioset?: string;
  /** Skip detection (tests, or a system whose --version output we do not recognise). */
  readonly version?: GpioToolsVersion;
  /** How long one tool run may take. Default 2 s. */
  readonly timeoutMs?: number;
}

/** The libgpiod tools on this machine, with their major version found once and remembered. */
export class GpioTools {
  readonly gpioget: string;
  readonly gpioset: string;
  readonly timeoutMs: number;
  #version: Promise<GpioToolsVersion> | undefined;

  constructor(options: GpioToolsOptions = {}) {
    this.gpioget = options.gpioget ?? 'gpioget';
    this.gpioset = options.gpioset ?? 'gpioset';
    this.timeoutMs = options.timeoutMs ?? DEFAULT_GPIO_TIMEOUT_MS;
    if (options.version !== undefined) this.#version = Promise.resolve(options.version);
  }

  /** Rejects with GpioUnavailableError; a failure is not remembered, so installing gpiod later works. */
  version(): Promise<GpioToolsVersion> {
    if (this.#version === undefined) {
      this.#version = this.#detect();
      this.#version.catch(() => {
        this.#version = undefined;
      });
    }
    return this.#version;
  }

  async #detect(): Promise<GpioToolsVersion> {
    const outcome = await runProcess({ argv: [this.gpioget, '--version'], timeoutMs: this.timeoutMs });
    const error = outcomeError(outcome, `${this.gpioget} --version`, this.timeoutMs);
    if (error !== null) {
      throw new GpioUnavailableError(
        `libgpiod tools are not usable (install package "gpiod"): ${error.message}`,
      );
    }
    const version = parseGpiodVersion(outcome.kind === 'exited' ? outcome.stdout : '');
    if (version === null) throw new GpioUnavailableError(`${this.gpioget} --version: unrecognised output`);
    return version;
  }
}

/** The libgpiod tools are missing or unrecognised; code 'gpio-unavailable'. */
export class GpioUnavailableError extends SensorReadError {
  constructor(message: string) {
    super('gpio-unavailable', message);
  }
}

/** "gpioget (libgpiod) v1.6.3" → 1, "gpioget (libgpiod) v2.1" → 2; null for anything else. */
export function parseGpiodVersion(output: string): GpioToolsVersion | null {
  const match = /\bv?(\d+)\.\d+/.exec(output.split('\n')[0] ?? '');
  if (match?.[1] === '1') return 1;
  if (match?.[1] === '2') return 2;
  return null;
}

export interface GpioLineOptions {
  readonly tools: GpioTools;
  /** The chip: number, name or path ("0", "gpiochip0", "/dev/gpiochip0"). */
  readonly chip: string;
  /** The line offset on the chip (v2 also accepts a line name). */
  readonly line: number | string;
  readonly activeLow?: boolean;
}

export function gpiosetArgv(version: GpioToolsVersion, options: GpioLineOptions, value: 0 | 1): string[] {
  const flags = options.activeLow === true ? ['--active-low'] : [];
  const assignment = `${options.line}=${value}`;
  return version === 1
    ? [options.tools.gpioset, ...flags, options.chip, assignment]
    : [options.tools.gpioset, ...flags, '--chip', options.chip, '-t0', assignment];
}

export function gpiogetArgv(version: GpioToolsVersion, options: GpioLineOptions, bias?: GpioBias): string[] {
  const line = String(options.line);
  if (version === 1) {
    const flags = options.activeLow === true ? ['--active-low'] : [];
    // v1 spells "disabled" as "disable".
    if (bias !== undefined) flags.push(`--bias=${bias === 'disabled' ? 'disable' : bias}`);
    return [options.tools.gpioget, ...flags, options.chip, line];
  }
  const flags = ['--numeric', ...(options.activeLow === true ? ['--active-low'] : [])];
  if (bias !== undefined) flags.push('--bias', bias);
  return [options.tools.gpioget, ...flags, '--chip', options.chip, line];
}

/** gpioget's value: "1" (v1, v2 --numeric), or v2's '"17"=active' form; null for anything else. */
export function parseGpioValue(stdout: string): 0 | 1 | null {
  const text = stdout.trim();
  const word = text.includes('=') ? text.slice(text.lastIndexOf('=') + 1) : text;
  if (word === '1' || word === 'active') return 1;
  if (word === '0' || word === 'inactive') return 0;
  return null;
}

/** Sets one output line. Args: { "value": 0 | 1 | true | false }; the result is the value set. */
export class GpioAction implements ActionHandler {
  readonly kind = 'gpio';
  readonly #options: GpioLineOptions;

  constructor(options: GpioLineOptions) {
    this.#options = options;
  }

  async invoke(args: JsonObject, context: CallContext): Promise<CallResult> {
    const start = await this.prepare(args, context);
    return start();
  }

  /** The args are checked and gpioset's command line built here (asking its version once); the start runs it. */
  async prepare(args: JsonObject, context: CallContext): Promise<StartRun> {
    const internal = (error: unknown): CallResult =>
      errorResult('internal', `gpio action failed: ${String(error)}`); // a bug of ours, not a rejection
    const value = args.value;
    if (value !== 0 && value !== 1 && value !== true && value !== false) {
      return settledStart(errorResult('invalid-args', 'gpio action needs { "value": 0 | 1 | true | false }'));
    }
    const bit: 0 | 1 = value === 1 || value === true ? 1 : 0;
    let version: GpioToolsVersion;
    try {
      version = await this.#options.tools.version();
    } catch (error) {
      return settledStart(
        errorResult('gpio-unavailable', error instanceof Error ? error.message : String(error)),
      );
    }
    try {
      const argv = gpiosetArgv(version, this.#options, bit);
      return () => this.#set(argv, bit, context).catch(internal);
    } catch (error) {
      return settledStart(internal(error));
    }
  }

  async #set(argv: readonly string[], bit: 0 | 1, context: CallContext): Promise<CallResult> {
    const timeoutMs = Math.min(this.#options.tools.timeoutMs, context.deadlineMs - Date.now());
    if (timeoutMs <= 0) return errorResult('timeout', "gpio action: the call's deadline had already passed");
    const outcome = await runProcess({ argv, timeoutMs, signal: context.signal });
    const error = outcomeError(outcome, `gpioset ${this.#options.chip} ${this.#options.line}`, timeoutMs);
    if (error !== null) {
      return errorResult(error.code === 'spawn-failed' ? 'gpio-unavailable' : error.code, error.message);
    }
    return { ok: true, value: bit };
  }
}

export interface GpioSensorOptions extends GpioLineOptions {
  readonly bias?: GpioBias;
}

/** Reads one line as 0 or 1 (gpioget makes the line an input). */
export class GpioSensor implements SensorHandler {
  readonly kind = 'gpio';
  readonly #options: GpioSensorOptions;

  constructor(options: GpioSensorOptions) {
    this.#options = options;
  }

  async read(signal: AbortSignal): Promise<SensorReading> {
    const version = await this.#options.tools.version();
    const argv = gpiogetArgv(version, this.#options, this.#options.bias);
    const timeoutMs = this.#options.tools.timeoutMs;
    const outcome = await runProcess({ argv, timeoutMs, signal });
    const what = `gpioget ${this.#options.chip} ${this.#options.line}`;
    const error = outcomeError(outcome, what, timeoutMs);
    if (error !== null) {
      if (error.code === 'spawn-failed') throw new GpioUnavailableError(error.message);
      throw new SensorReadError(error.code, error.message);
    }
    const value = parseGpioValue(outcome.kind === 'exited' ? outcome.stdout : '');
    if (value === null) throw new SensorReadError('bad-output', `${what}: unrecognised output`);
    return { value, readAtMs: Date.now() };
  }
}
