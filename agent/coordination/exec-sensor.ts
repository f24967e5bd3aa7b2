// A sensor backed by a local program: it prints one reading and exits. Plain output is enough ("21.5",
// "true", "open"); a program that knows its unit prints {"value": 21.5, "unit": "Cel"}.
import { type SensorHandler, SensorReadError, type SensorReading } from './handler.js';
import { parseNumber } from './output.js';
import { outcomeError, runProcess } from './run-process.js';

export const DEFAULT_SENSOR_TIMEOUT_MS = 5000;

export interface ExecSensorOptions {
  /** The sensor's name, used in messages and passed as NEARMESH_SENSOR. */
  readonly name: string;
  /** The program and its arguments, run without a shell. */
  readonly exec: readonly string[];
  /** Default 5 s. */
  readonly timeoutMs?: number;
  readonly cwd?: string;
  /** Extra environment on top of the agent's. */
  readonly env?: Readonly<Record<string, string>>;
  /** The unit of a plain (non-JSON) reading. */
  readonly unit?: string;
  readonly killGraceMs?: number;
}

export class ExecSensor implements SensorHandler {
  readonly kind = 'exec';
  readonly #options: ExecSensorOptions;

  constructor(options: ExecSensorOptions) {
    this.#options = options;
  }

  async read(signal: AbortSignal): Promise<SensorReading> {
    const what = `sensor '${this.#options.name}'`;
    const timeoutMs = this.#options.timeoutMs ?? DEFAULT_SENSOR_TIMEOUT_MS;
    const outcome = await runProcess({
      argv: this.#options.exec,
      env: { ...process.env, ...this.#options.env, NEARMESH_SENSOR: this.#options.name },
      cwd: this.#options.cwd,
      timeoutMs,
      signal,
      killGraceMs: this.#options.killGraceMs,
    });
    const error = outcomeError(outcome, what, timeoutMs);
    if (error !== null) throw new SensorReadError(error.code, error.message);
    const stdout = outcome.kind === 'exited' ? outcome.stdout : '';
    const reading = parseReading(stdout);
    if (reading === null) throw new SensorReadError('bad-output', `${what} printed no usable value`);
    const unit = reading.unit ?? this.#options.unit;
    return unit === undefined
      ? { value: reading.value, readAtMs: Date.now() }
      : { value: reading.value, unit, readAtMs: Date.now() };
  }
}

/**
 * A number, true/false, a JSON object {"value": number|string|boolean, "unit"?: string}, or else the
 * trimmed text; null for empty output or a JSON object without a usable value.
 */
export function parseReading(stdout: string): Pick<SensorReading, 'value' | 'unit'> | null {
  const text = stdout.trim();
  if (text === '') return null;
  const number = parseNumber(text);
  if (number !== null) return { value: number };
  if (text === 'true' || text === 'false') return { value: text === 'true' };
  if (text.startsWith('{')) {
    const parsed = parseJson(text);
    if (parsed !== undefined) return readingFromObject(parsed);
  }
  return { value: text };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined; // not JSON after all: the text itself is the reading
  }
}

function readingFromObject(parsed: unknown): Pick<SensorReading, 'value' | 'unit'> | null {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
  const { value, unit } = parsed as { value?: unknown; unit?: unknown };
  const usable =
    (typeof value === 'number' && Number.isFinite(value)) ||
    typeof value === 'string' ||
    typeof value === 'boolean';
  if (!usable) return null;
  return typeof unit === 'string' && unit !== '' ? { value, unit } : { value };
}
