// Sensors and actions that local apps provide to the mesh over MQTT (docs/MQTT.md, "Providing sensors
// and actions"). A value published to `nearmesh/provide/sensor/<name>` registers (the first time) a
// sensor of this agent that reads as the latest value; a registration published to
// `nearmesh/provide/action/<name>` registers an action whose invocations go to the app on
// `nearmesh/invoke/<name>` and whose answer comes back on `nearmesh/invoke/<name>/reply|error/<call-id>`.
// An app's actions go with its connection; its sensors stay until it clears them, and go stale.
import { randomBytes } from 'node:crypto';
import {
  type ActionHandler,
  type CallContext,
  type CallResult,
  errorResult,
  type SensorHandler,
  SensorReadError,
  type SensorReading,
} from '../coordination/handler.js';
import type { Counters } from '../core/counters.js';
import { formatDuration, parseDuration } from '../core/duration.js';
import type { Logger } from '../core/logger.js';
import type { JsonObject, JsonValue } from '../protocol/json-cbor.js';
import {
  decodePayload,
  formatOf,
  isJsonObject,
  JSON_CONTENT_TYPE,
  type PayloadFormat,
  userProperty,
} from './app-payload.js';
import type { PublishMeta, PublishProperties } from './broker.js';
import type { CoordinationPort } from './coordination-port.js';
import { invokeAnswerTopic, invokeTopic, type ProvideTopic, provideTopic } from './topic-map.js';

/** How long an app's sensor value stays readable when the app does not say (`max_age`). */
export const DEFAULT_SENSOR_MAX_AGE_MS = 10 * 60_000;
/** How long an app may take to answer an invocation when its registration does not say (`timeout`). */
export const DEFAULT_ACTION_TIMEOUT_MS = 10_000;

const REGISTRATION_KEYS = new Set(['timeout', 'allow']);

export type ProvideOutcome = { ok: true } | { ok: false; error: { code: string; message: string } };

export interface AppCapabilitiesOptions {
  coordination: CoordinationPort;
  selfId: string;
  /** Publishes to local subscribers; throws for a topic that cannot be published to. */
  publish(
    topic: string,
    payload: Buffer,
    options: { qos: 0 | 1; retain?: boolean; properties?: PublishProperties },
  ): void;
  /** An app's sensor has a new value (the gateway publishes it on the sensor topic), or none (undefined). */
  sensorValue(name: string, reading: AppSensorValue | undefined): void;
  counters: Counters;
  log: Logger;
}

/** The latest value of an app's sensor. */
export interface AppSensorValue {
  value: number | string | boolean;
  unit: string | null;
  readAtMs: number;
}

/** A sensor that reads as the latest value its app published. */
class AppSensor implements SensorHandler {
  readonly kind = 'mqtt';
  value: number | string | boolean;
  unit: string | null;
  atMs: number;
  maxAgeMs: number;

  constructor(
    readonly name: string,
    value: SensorValue,
  ) {
    this.value = value.value;
    this.unit = value.unit ?? null;
    this.atMs = Date.now();
    this.maxAgeMs = value.maxAgeMs ?? DEFAULT_SENSOR_MAX_AGE_MS;
  }

  update(value: SensorValue): void {
    this.value = value.value;
    if (value.unit !== undefined) this.unit = value.unit;
    this.atMs = Date.now();
    if (value.maxAgeMs !== undefined) this.maxAgeMs = value.maxAgeMs;
  }

  async read(): Promise<SensorReading> {
    if (Date.now() - this.atMs > this.maxAgeMs) {
      throw new SensorReadError(
        'unavailable',
        `the app has published no value of "${this.name}" for ${formatDuration(this.maxAgeMs)}`,
      );
    }
    return { value: this.value, ...(this.unit !== null && { unit: this.unit }), readAtMs: this.atMs };
  }
}

interface SensorValue {
  value: number | string | boolean;
  /** undefined: the unit stays what it was (a bare value after {"value", "unit"}). */
  unit: string | null | undefined;
  /** undefined: unchanged (the default for a new sensor). */
  maxAgeMs: number | undefined;
}

interface AppAction {
  readonly name: string;
  /** The client that registered it: the action goes when that client does. */
  readonly clientId: string;
  /** Which invocation form the app gets (MQTT 5 request/response, or the 3.1.1 envelope). */
  readonly protocolVersion: 4 | 5;
}

interface Pending {
  readonly action: string;
  finish(result: CallResult): void;
}

class Refused extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class AppCapabilities {
  readonly #options: AppCapabilitiesOptions;
  readonly #sensors = new Map<string, AppSensor>();
  readonly #actions = new Map<string, AppAction>();
  readonly #pending = new Map<string, Pending>();

  constructor(options: AppCapabilitiesOptions) {
    this.#options = options;
  }

  /** A publish to `nearmesh/provide/sensor|action/<name>`: registers, updates or removes. */
  provide(topic: ProvideTopic, payload: Buffer, meta: PublishMeta): ProvideOutcome {
    try {
      if (topic.kind === 'sensor') this.#provideSensor(topic.name, payload, meta);
      else this.#provideAction(topic.name, payload, meta);
      return { ok: true };
    } catch (error) {
      this.#options.counters.increment('mqtt.provide_refused');
      const code = error instanceof Refused ? error.code : 'internal';
      return { ok: false, error: { code, message: error instanceof Error ? error.message : String(error) } };
    }
  }

  /** An app's answer to an invocation, on `nearmesh/invoke/<action>/reply|error/<call-id>`. */
  answer(
    topic: { action: string; kind: 'reply' | 'error'; callId: string },
    payload: Buffer,
    meta: PublishMeta,
  ): void {
    const pending = this.#pending.get(topic.callId);
    if (pending === undefined || pending.action !== topic.action) {
      this.#options.counters.increment('mqtt.invoke_answers_unmatched');
      return;
    }
    pending.finish(toCallResult(topic.kind, payload, meta.properties));
  }

  /** A client went: the actions it registered go with it. */
  clientGone(clientId: string): void {
    for (const action of [...this.#actions.values()]) {
      if (action.clientId !== clientId) continue;
      this.#removeAction(action.name, 'the app that provides it disconnected');
      this.#clearRetained(provideTopic('action', action.name));
    }
  }

  /** The gateway stops: everything apps provided is removed from the mesh. */
  stop(): void {
    for (const name of [...this.#actions.keys()]) this.#removeAction(name, 'the MQTT endpoint stopped');
    for (const name of [...this.#sensors.keys()]) {
      this.#sensors.delete(name);
      this.#options.coordination.unregisterSensor(name);
    }
  }

  #provideSensor(name: string, payload: Buffer, meta: PublishMeta): void {
    const { coordination, selfId, sensorValue } = this.#options;
    if (payload.length === 0) {
      if (!this.#sensors.delete(name)) return;
      coordination.unregisterSensor(name);
      sensorValue(name, undefined);
      return;
    }
    const value = parseSensorValue(payload, formatOf(meta.properties));
    let sensor = this.#sensors.get(name);
    if (sensor === undefined) {
      if (coordination.sensors().some((row) => row.peer === selfId && row.sensor === name)) {
        throw new Refused('conflict', `this agent already has a sensor "${name}" that no app provides`);
      }
      sensor = new AppSensor(name, value);
      coordination.registerSensor({ name, handler: sensor, unit: sensor.unit, everyMs: undefined });
      this.#sensors.set(name, sensor);
    } else {
      const unitChanged = value.unit !== undefined && sensor.unit !== value.unit;
      sensor.update(value);
      // The unit is part of what the mesh is told: announce it again.
      if (unitChanged)
        coordination.registerSensor({ name, handler: sensor, unit: sensor.unit, everyMs: undefined });
    }
    sensorValue(name, { value: sensor.value, unit: sensor.unit, readAtMs: sensor.atMs });
  }

  #provideAction(name: string, payload: Buffer, meta: PublishMeta): void {
    const { coordination, selfId } = this.#options;
    if (payload.length === 0) {
      this.#removeAction(name, 'the app removed it');
      return;
    }
    const registration = parseRegistration(payload, formatOf(meta.properties));
    if (
      !this.#actions.has(name) &&
      coordination.actions().some((row) => row.peer === selfId && row.action === name)
    ) {
      throw new Refused('conflict', `this agent already has an action "${name}" that no app provides`);
    }
    const handler: ActionHandler = {
      kind: 'mqtt',
      invoke: (args, context) => this.#invoke(name, args, context),
    };
    coordination.registerAction({
      name,
      handler,
      timeoutMs: registration.timeoutMs,
      allow: registration.allow,
    });
    // The latest registration wins (an app that restarts registers again).
    this.#actions.set(name, { name, clientId: meta.clientId, protocolVersion: meta.protocolVersion });
  }

  #removeAction(name: string, why: string): void {
    if (!this.#actions.delete(name)) return;
    this.#options.coordination.unregisterAction(name);
    for (const pending of [...this.#pending.values()]) {
      if (pending.action === name) pending.finish(errorResult('unavailable', `"${name}" is gone: ${why}`));
    }
  }

  /** One call of an app's action: published to the app, answered by it, or timed out. Never rejects. */
  #invoke(name: string, args: JsonObject, context: CallContext): Promise<CallResult> {
    const action = this.#actions.get(name);
    if (action === undefined) return Promise.resolve(errorResult('unavailable', `"${name}" is gone`));
    const callId = randomBytes(8).toString('hex');
    return new Promise<CallResult>((resolve) => {
      const onAbort = (): void => finish(errorResult('aborted', 'the call was aborted'));
      const waitMs = Math.max(0, context.deadlineMs - Date.now());
      const timer = setTimeout(
        () => finish(errorResult('timeout', `the app did not answer within ${formatDuration(waitMs)}`)),
        waitMs,
      );
      const finish = (result: CallResult): void => {
        if (!this.#pending.delete(callId)) return;
        clearTimeout(timer);
        context.signal.removeEventListener('abort', onAbort);
        if (!result.ok) this.#options.counters.increment('mqtt.invokes_failed');
        resolve(result);
      };
      this.#pending.set(callId, { action: name, finish });
      context.signal.addEventListener('abort', onAbort);
      this.#options.counters.increment('mqtt.invokes');
      try {
        this.#publishInvocation(action, callId, args, context);
      } catch (error) {
        finish(errorResult('internal', `cannot publish the invocation: ${String(error)}`));
      }
    });
  }

  #publishInvocation(action: AppAction, callId: string, args: JsonObject, context: CallContext): void {
    const reply = invokeAnswerTopic(action.name, 'reply', callId);
    const about = {
      call_id: callId,
      caller: context.caller,
      ...(context.callerName !== undefined && { caller_name: context.callerName }),
      deadline: new Date(context.deadlineMs).toISOString(),
    };
    if (action.protocolVersion === 5) {
      // MQTT 5: the arguments as they are; answer on the response topic with the correlation data.
      this.#options.publish(invokeTopic(action.name), Buffer.from(JSON.stringify(args)), {
        qos: 1,
        properties: {
          contentType: JSON_CONTENT_TYPE,
          responseTopic: reply,
          correlationData: Buffer.from(callId),
          userProperties: about,
        },
      });
      return;
    }
    // MQTT 3.1.1: no properties, so the call id and the answer topics travel in an envelope.
    const envelope = {
      ...about,
      args,
      reply_to: reply,
      error_to: invokeAnswerTopic(action.name, 'error', callId),
    };
    this.#options.publish(invokeTopic(action.name), Buffer.from(JSON.stringify(envelope)), { qos: 1 });
  }

  #clearRetained(topic: string): void {
    try {
      this.#options.publish(topic, Buffer.alloc(0), { qos: 0, retain: true });
    } catch {
      // a name that is not a valid topic was never registered
    }
  }
}

/** A sensor value: a bare number, boolean or text, or an object {value, unit?, max_age?}. */
function parseSensorValue(payload: Buffer, format: PayloadFormat): SensorValue {
  const decoded = decodePayload(payload, format);
  if (!decoded.ok) {
    if (format === 'cbor') throw new Refused('bad-request', decoded.message);
    // Not JSON: the text itself is the value ("open", "on").
    return { value: payload.toString('utf8').trim(), unit: undefined, maxAgeMs: undefined };
  }
  const value = decoded.value;
  if (isPrimitive(value)) return { value, unit: undefined, maxAgeMs: undefined };
  if (!isJsonObject(value) || !isPrimitive(value.value)) {
    throw new Refused(
      'bad-request',
      'a sensor value is a number, a boolean, text or {"value": ..., "unit": "...", "max_age": "..."}',
    );
  }
  const unit = value.unit;
  if (unit !== undefined && unit !== null && typeof unit !== 'string')
    throw new Refused('bad-request', '"unit" must be text or null');
  const maxAgeMs = value.max_age === undefined ? undefined : durationField(value.max_age, 'max_age');
  return { value: value.value, unit: unit === '' ? null : unit, maxAgeMs };
}

function parseRegistration(
  payload: Buffer,
  format: PayloadFormat,
): { timeoutMs: number; allow: readonly string[] | undefined } {
  const decoded = decodePayload(payload, format);
  if (!decoded.ok || !isJsonObject(decoded.value)) {
    throw new Refused(
      'bad-request',
      `an action registration is an object such as {} or {"timeout": "5s", "allow": ["group:hall"]}${decoded.ok ? '' : ` (${decoded.message})`}`,
    );
  }
  const registration = decoded.value;
  const unknown = Object.keys(registration).find((key) => !REGISTRATION_KEYS.has(key));
  if (unknown !== undefined) throw new Refused('bad-request', `unknown key ${JSON.stringify(unknown)}`);
  const timeoutMs =
    registration.timeout === undefined
      ? DEFAULT_ACTION_TIMEOUT_MS
      : durationField(registration.timeout, 'timeout');
  if (timeoutMs <= 0) throw new Refused('bad-request', '"timeout" must be longer than 0ms');
  const allow = registration.allow;
  if (allow !== undefined && (!Array.isArray(allow) || !allow.every((entry) => typeof entry === 'string'))) {
    throw new Refused('bad-request', '"allow" must be a list of peer ids, names or "group:NAME"');
  }
  return { timeoutMs, allow: allow as string[] | undefined };
}

function durationField(value: JsonValue, name: string): number {
  if (typeof value !== 'string')
    throw new Refused('bad-request', `"${name}" must be a duration such as "5s"`);
  try {
    return parseDuration(value);
  } catch (error) {
    throw new Refused('bad-request', `"${name}": ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** An app's answer as the caller gets it. */
function toCallResult(
  kind: 'reply' | 'error',
  payload: Buffer,
  properties: PublishProperties | undefined,
): CallResult {
  const format = formatOf(properties);
  const text = payload.toString('utf8');
  const errorCode = userProperty(properties, 'error');
  if (kind === 'reply' && errorCode === undefined) {
    if (payload.length === 0) return { ok: true, value: null };
    const decoded = decodePayload(payload, format);
    if (decoded.ok) return { ok: true, value: decoded.value };
    // Not JSON: the text is the result, as for exec actions.
    return format === 'cbor' ? errorResult('bad-output', decoded.message) : { ok: true, value: text };
  }
  if (errorCode !== undefined) return errorResult(errorCode, text);
  const decoded = decodePayload(payload, format);
  if (decoded.ok && isJsonObject(decoded.value)) {
    const { code, message } = decoded.value;
    return errorResult(
      typeof code === 'string' && code !== '' ? code : 'app-error',
      typeof message === 'string' ? message : JSON.stringify(decoded.value),
    );
  }
  return errorResult('app-error', decoded.ok && typeof decoded.value === 'string' ? decoded.value : text);
}

function isPrimitive(value: JsonValue | undefined): value is number | string | boolean {
  return typeof value === 'number' || typeof value === 'string' || typeof value === 'boolean';
}
