// The local side of coordination: what runs when a peer calls one of our actions or reads one of our
// sensors. One open interface per direction, keyed by a free-form `kind`, so built-in handlers (exec,
// gpio, system) and handlers that local apps register later (over MQTT) plug in the same way.
import { NearmeshError } from '../core/errors.js';

import type { JsonObject, JsonValue } from '../protocol/json-cbor.js';

export type { JsonObject, JsonPrimitive, JsonValue } from '../protocol/json-cbor.js';

/** Who is calling and until when; handlers stop work when `signal` aborts or the deadline passes. */
export interface CallContext {
  callId: string;
  /** The calling peer's id. */
  caller: string;
  callerName?: string;
  /** Absolute, Date.now() based. */
  deadlineMs: number;
  signal: AbortSignal;
}

/** An error travels as data (a stable code and a message) so it can cross the mesh to the caller. */
export interface CallError {
  code: string;
  message: string;
}

export type CallResult = { ok: true; value: JsonValue | string } | { ok: false; error: CallError };

/** A run made ready by ActionHandler.prepare: calling it starts the run. */
export type StartRun = () => Promise<CallResult>;

export interface ActionHandler {
  readonly kind: string;
  /** Never rejects: every failure, including the handler's own bugs, comes back as `{ ok: false }`. */
  invoke(args: JsonObject, context: CallContext): Promise<CallResult>;
  /**
   * Optional: does what a run needs before it starts (checking the args, building a program's command line
   * and environment), so that a call timed for an instant has only the start left to do there. Neither it
   * nor the start it gives rejects.
   */
  prepare?(args: JsonObject, context: CallContext): Promise<StartRun>;
}

export interface SensorReading {
  value: number | string | boolean;
  /** A UCUM-style unit ("Cel", "%"), when the value has one. */
  unit?: string;
  readAtMs: number;
}

export interface SensorHandler {
  readonly kind: string;
  /** Rejects only with SensorReadError. */
  read(signal: AbortSignal): Promise<SensorReading>;
}

/**
 * A sensor could not be read. `code` uses the same vocabulary as action error results ('timeout',
 * 'exit', 'crashed', 'spawn-failed', 'output-too-large', 'aborted', 'bad-output', 'unavailable',
 * 'gpio-unavailable'), so the protocol can forward it to the reader unchanged.
 */
export class SensorReadError extends NearmeshError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export function okResult(value: JsonValue): CallResult {
  return { ok: true, value };
}

export function errorResult(code: string, message: string): CallResult {
  return { ok: false, error: { code, message } };
}

/** A start whose result is known while preparing (bad args, a missing tool): nothing is left to run. */
export function settledStart(result: CallResult): StartRun {
  return () => Promise.resolve(result);
}
