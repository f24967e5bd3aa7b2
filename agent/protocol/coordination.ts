// Coordination messages (PROTOCOL.md §14): the payloads of system DATA. Each is one CBOR array whose first
// element says what it is; JSON parts (arguments, results, values) are CBOR maps, arrays and scalars.
// Validated here, once, where they enter. Who sent one is the envelope's business: it authenticates the
// origin of every message, so nothing here carries a key or a signature of its own.
import { PEER_ID_BYTES, peerIdFromBytes, peerIdToBytes } from '../core/peer-id.js';
import { DecodeError } from './errors.js';
import { decodeItem } from './item.js';
import { encodeJsonCbor, type JsonObject, type JsonValue, toJson } from './json-cbor.js';

export const CoordinationKind = {
  call: 1,
  result: 2,
  timeRequest: 3,
  timeReply: 4,
  lease: 5,
  leaseReply: 6,
  sensorRead: 7,
  sensorValue: 8,
  sensorWatch: 9,
} as const;

/** Whether a coordination payload of this kind acts on the device (a CALL runs an action, a LEASE takes one). */
export function actsOnDevice(kind: number | undefined): boolean {
  return kind === CoordinationKind.call || kind === CoordinationKind.lease;
}

/** Longest lease: a holder renews well before; an hour bounds what a vanished holder can block. */
export const MAX_LEASE_MS = 3_600_000;
/** Longest a watch lasts without renewal, and the fastest and slowest rates a watcher may ask for. */
export const MAX_WATCH_MS = 3_600_000;
export const MIN_WATCH_INTERVAL_MS = 100;
export const MAX_WATCH_INTERVAL_MS = 86_400_000;

export const CALL_ID_BYTES = 16;
/** Longest action or sensor name (as announced). */
const MAX_NAME_CHARS = 63;
/** Longest error message carried back; handlers' stderr is cut to fit. */
const MAX_ERROR_CHARS = 1024;
/** Longest call timeout: an hour is beyond any actuator. */
export const MAX_CALL_TIMEOUT_MS = 3_600_000;

export interface CallMessage {
  kind: 'call';
  callId: Uint8Array;
  action: string;
  args: JsonObject;
  /** When to fire, in the caller's clock (ms since the epoch); null for "now". */
  fireAt: number | null;
  timeoutMs: number;
}

export interface ResultMessage {
  kind: 'result';
  callId: Uint8Array;
  outcome: { ok: true; value: JsonValue } | { ok: false; error: { code: string; message: string } };
  /** When the handler started, in the caller's clock as the executor estimates it; null when it never ran. */
  firedAt: number | null;
}

export interface TimeRequestMessage {
  kind: 'time-request';
  t1: number;
}

export interface TimeReplyMessage {
  kind: 'time-reply';
  t1: number;
  t2: number;
  t3: number;
}

/** Take, renew or give back exclusive use of a resource (an action name) on the receiving agent. */
export interface LeaseMessage {
  kind: 'lease';
  requestId: number;
  op: 'acquire' | 'release';
  resource: string;
  /** How long the lease lasts from now unless renewed (acquire again); 0 with release. */
  ttlMs: number;
}

export interface LeaseReplyMessage {
  kind: 'lease-reply';
  requestId: number;
  granted: boolean;
  /** Who holds the resource now (the requester when granted); null when nobody does. */
  holder: string | null;
  /** How long the current lease has left; 0 when nobody holds it. */
  remainingMs: number;
}

/** Asks the receiver to push a sensor's readings (SENSOR-VALUE, requestId 0) every `intervalMs` for `ttlMs`. */
export interface SensorWatchMessage {
  kind: 'sensor-watch';
  sensor: string;
  intervalMs: number;
  /** 0 cancels the watch. */
  ttlMs: number;
}

export interface SensorReadMessage {
  kind: 'sensor-read';
  requestId: number;
  sensor: string;
}

export interface SensorValueMessage {
  kind: 'sensor-value';
  requestId: number;
  sensor: string;
  reading:
    | { ok: true; value: number | string | boolean; unit: string | null; readAt: number }
    | { ok: false; error: { code: string; message: string } };
}

export type CoordinationMessage =
  | CallMessage
  | ResultMessage
  | TimeRequestMessage
  | TimeReplyMessage
  | LeaseMessage
  | LeaseReplyMessage
  | SensorReadMessage
  | SensorValueMessage
  | SensorWatchMessage;

export function encodeCoordination(message: CoordinationMessage): Uint8Array {
  switch (message.kind) {
    case 'call':
      return encodeJsonCbor([
        CoordinationKind.call,
        message.callId,
        message.action,
        message.timeoutMs,
        message.args,
        message.fireAt,
      ]);
    case 'result': {
      const outcome = message.outcome.ok
        ? message.outcome
        : { ok: false as const, error: clipError(message.outcome.error) };
      return encodeJsonCbor([
        CoordinationKind.result,
        message.callId,
        outcome.ok,
        outcome.ok ? outcome.value : [outcome.error.code, outcome.error.message],
        message.firedAt,
      ]);
    }
    case 'time-request':
      return encodeJsonCbor([CoordinationKind.timeRequest, message.t1]);
    case 'time-reply':
      return encodeJsonCbor([CoordinationKind.timeReply, message.t1, message.t2, message.t3]);
    case 'lease':
      return encodeJsonCbor([
        CoordinationKind.lease,
        message.requestId,
        message.op === 'acquire' ? 0 : 1,
        message.resource,
        message.ttlMs,
      ]);
    case 'lease-reply':
      return encodeJsonCbor([
        CoordinationKind.leaseReply,
        message.requestId,
        message.granted,
        message.holder === null ? null : peerIdToBytes(message.holder),
        message.remainingMs,
      ]);
    case 'sensor-watch':
      return encodeJsonCbor([
        CoordinationKind.sensorWatch,
        message.sensor,
        message.intervalMs,
        message.ttlMs,
      ]);
    case 'sensor-read':
      return encodeJsonCbor([CoordinationKind.sensorRead, message.requestId, message.sensor]);
    case 'sensor-value': {
      const { reading } = message;
      const error = reading.ok ? undefined : clipError(reading.error);
      return encodeJsonCbor([
        CoordinationKind.sensorValue,
        message.requestId,
        message.sensor,
        error === undefined && reading.ok
          ? [true, reading.value, reading.unit, reading.readAt]
          : [false, error?.code ?? '', error?.message ?? ''],
      ]);
    }
  }
}

/** Decodes a system DATA payload. Never throws. */
export function decodeCoordination(bytes: Uint8Array): CoordinationMessage | DecodeError {
  const item = decodeItem(bytes);
  if (!item.ok) return item.error;
  const head = item.value;
  if (!Array.isArray(head) || typeof head[0] !== 'number') return bad('is not [kind, ...]');
  const fields = head as unknown[];
  switch (head[0]) {
    case CoordinationKind.call:
      return decodeCall(fields);
    case CoordinationKind.result:
      return decodeResult(fields);
    case CoordinationKind.timeRequest:
      return isTimestamp(fields[1])
        ? { kind: 'time-request', t1: fields[1] }
        : bad('TIME-REQUEST is not [3, t1]');
    case CoordinationKind.timeReply: {
      const [, t1, t2, t3] = fields;
      return isTimestamp(t1) && isTimestamp(t2) && isTimestamp(t3)
        ? { kind: 'time-reply', t1, t2, t3 }
        : bad('TIME-REPLY is not [4, t1, t2, t3]');
    }
    case CoordinationKind.lease: {
      const [, requestId, op, resource, ttlMs] = fields;
      if (
        !isRequestId(requestId) ||
        (op !== 0 && op !== 1) ||
        !isName(resource) ||
        !isDuration(ttlMs, MAX_LEASE_MS)
      )
        return bad('LEASE is not [5, requestId, op, resource, ttlMs]');
      return { kind: 'lease', requestId, op: op === 0 ? 'acquire' : 'release', resource, ttlMs };
    }
    case CoordinationKind.leaseReply: {
      const [, requestId, granted, holder, remainingMs] = fields;
      if (
        !isRequestId(requestId) ||
        typeof granted !== 'boolean' ||
        !(holder === null || isBytes(holder, PEER_ID_BYTES)) ||
        !isDuration(remainingMs, MAX_LEASE_MS)
      )
        return bad('LEASE-REPLY is not [6, requestId, granted, holder, remainingMs]');
      return {
        kind: 'lease-reply',
        requestId,
        granted,
        holder: holder === null ? null : peerIdFromBytes(holder),
        remainingMs,
      };
    }
    case CoordinationKind.sensorWatch: {
      const [, sensor, intervalMs, ttlMs] = fields;
      const isInterval =
        typeof intervalMs === 'number' &&
        Number.isInteger(intervalMs) &&
        intervalMs >= MIN_WATCH_INTERVAL_MS &&
        intervalMs <= MAX_WATCH_INTERVAL_MS;
      if (!isName(sensor) || !isInterval || !isDuration(ttlMs, MAX_WATCH_MS))
        return bad('SENSOR-WATCH is not [9, sensor, intervalMs, ttlMs]');
      return { kind: 'sensor-watch', sensor, intervalMs, ttlMs };
    }
    case CoordinationKind.sensorRead: {
      const [, requestId, sensor] = fields;
      return isRequestId(requestId) && isName(sensor)
        ? { kind: 'sensor-read', requestId, sensor }
        : bad('SENSOR-READ is not [7, requestId, sensor]');
    }
    case CoordinationKind.sensorValue:
      return decodeSensorValue(fields);
    default:
      return bad(`kind ${String(head[0])} is unknown`);
  }
}

function decodeCall(fields: unknown[]): CallMessage | DecodeError {
  const [, callId, action, timeoutMs, rawArgs, fireAt] = fields;
  if (!isBytes(callId, CALL_ID_BYTES)) return bad('CALL id is not 16 bytes');
  if (!isName(action)) return bad(`CALL action is not a name of 1..${MAX_NAME_CHARS} characters`);
  if (
    typeof timeoutMs !== 'number' ||
    !Number.isInteger(timeoutMs) ||
    timeoutMs < 1 ||
    timeoutMs > MAX_CALL_TIMEOUT_MS
  )
    return bad(`CALL timeout is not 1..${MAX_CALL_TIMEOUT_MS} ms`);
  const args = toJson(rawArgs);
  if (args instanceof DecodeError) return args;
  if (args === null || typeof args !== 'object' || Array.isArray(args)) return bad('CALL args is not a map');
  if (fireAt !== null && !isTimestamp(fireAt)) return bad('CALL fireAt is not a time or null');
  return {
    kind: 'call',
    callId,
    action,
    args: args as JsonObject,
    fireAt: fireAt as number | null,
    timeoutMs,
  };
}

function decodeResult(fields: unknown[]): ResultMessage | DecodeError {
  const [, callId, ok, rawBody, firedAt] = fields;
  if (!isBytes(callId, CALL_ID_BYTES)) return bad('RESULT id is not 16 bytes');
  const body = toJson(rawBody ?? null);
  if (body instanceof DecodeError) return body;
  if (firedAt !== null && !isTimestamp(firedAt)) return bad('RESULT firedAt is not a time or null');
  if (ok === true) return { kind: 'result', callId, outcome: { ok: true, value: body }, firedAt };
  if (ok !== false || !isError(body)) return bad('RESULT error is not [code, message]');
  return {
    kind: 'result',
    callId,
    outcome: { ok: false, error: { code: body[0], message: body[1] } },
    firedAt,
  };
}

function decodeSensorValue(fields: unknown[]): SensorValueMessage | DecodeError {
  const [, requestId, sensor, reading] = fields;
  if (!isRequestId(requestId) || !isName(sensor) || !Array.isArray(reading))
    return bad('SENSOR-VALUE is not [8, requestId, sensor, reading]');
  if (reading[0] === false) {
    const error = reading.slice(1);
    return isError(error)
      ? {
          kind: 'sensor-value',
          requestId,
          sensor,
          reading: { ok: false, error: { code: error[0], message: error[1] } },
        }
      : bad('SENSOR-VALUE error is not [false, code, message]');
  }
  const [, value, unit, readAt] = reading as unknown[];
  const isValue =
    (typeof value === 'number' && Number.isFinite(value)) ||
    typeof value === 'string' ||
    typeof value === 'boolean';
  if (reading[0] !== true || !isValue || !(unit === null || isName(unit)) || !isTimestamp(readAt))
    return bad('SENSOR-VALUE reading is not [true, value, unit, readAt]');
  return { kind: 'sensor-value', requestId, sensor, reading: { ok: true, value, unit, readAt } };
}

function isBytes(value: unknown, length: number): value is Uint8Array {
  return value instanceof Uint8Array && value.length === length;
}

function isName(value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && [...value].length <= MAX_NAME_CHARS;
}

function isTimestamp(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/** Error texts come from handlers (stderr): cut to what a receiver accepts rather than lose the whole message. */
function clipError(error: { code: string; message: string }): { code: string; message: string } {
  // Limits count UTF-16 units (as the receiver checks); cut between code points, never inside a pair.
  const clip = (text: string, max: number): string => {
    if (text.length <= max) return text;
    let cut = '';
    for (const char of text) {
      if (cut.length + char.length > max - 1) break;
      cut += char;
    }
    return `${cut}…`;
  };
  return { code: clip(error.code, MAX_NAME_CHARS), message: clip(error.message, MAX_ERROR_CHARS) };
}

function isDuration(value: unknown, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= max;
}

function isRequestId(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff;
}

function isError(value: unknown): value is [string, string] {
  return (
    Array.isArray(value) &&
    value.length === 2 &&
    typeof value[0] === 'string' &&
    value[0].length <= MAX_NAME_CHARS &&
    typeof value[1] === 'string' &&
    value[1].length <= MAX_ERROR_CHARS
  );
}

function bad(detail: string): DecodeError {
  return new DecodeError('bad-field', `coordination message ${detail}`);
}
