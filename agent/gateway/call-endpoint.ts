// `nearmesh/call/<target>/<action>`: an app calls an action on a peer, a group or every agent, and gets
// one result per target (docs/MQTT.md, "Calling actions"); `nearmesh/read/<peer>/<sensor>`: an app reads
// a sensor now and gets its reading. Two request forms, told apart by the response topic: MQTT 5
// request/response (payload = the arguments, options in user properties, results on the response topic
// with the correlation data), or, without a response topic (MQTT 3.1.1), a JSON envelope {args, reply_to,
// correlation, timeout, in, key} (a read's: {reply_to, correlation}) whose results go to `reply_to`
// (default `nearmesh/reply/<client-id>`) wrapped with the correlation. Every failure is a reply, never a
// throw.
import type { CallOutcome } from '../coordination/caller.js';
import type { SensorReadResult } from '../coordination/coordinator.js';
import type { Counters } from '../core/counters.js';
import { parseDuration } from '../core/duration.js';
import type { Logger } from '../core/logger.js';
import { isValidTopicName } from '../core/topic-match.js';
import type { JsonObject, JsonValue } from '../protocol/json-cbor.js';
import {
  contentTypeOf,
  decodePayload,
  encodePayload,
  formatOf,
  isJsonObject,
  type PayloadFormat,
  userProperty,
} from './app-payload.js';
import type { PublishMeta, PublishProperties } from './broker.js';
import type { CoordinationPort } from './coordination-port.js';
import { type CallTopic, defaultReplyTopic, type SensorRef } from './topic-map.js';

/** How long each target may take when the request does not say. */
export const DEFAULT_CALL_TIMEOUT_MS = 10_000;

const ENVELOPE_KEYS = new Set(['args', 'reply_to', 'correlation', 'timeout', 'in', 'key']);
const READ_ENVELOPE_KEYS = new Set(['reply_to', 'correlation']);
const READS_FAILED = 'mqtt.reads_failed';

export interface CallEndpointOptions {
  coordination: CoordinationPort;
  /** Publishes a reply to local subscribers; throws for a topic that cannot be published to. */
  publish(topic: string, payload: Buffer, properties: PublishProperties): void;
  counters: Counters;
  log: Logger;
}

/** Where and how the outcome of one request goes. */
interface ReplyPlan {
  topic: string;
  format: PayloadFormat;
  /** MQTT 5: copied back as the reply's correlation data. */
  correlationData?: Buffer;
  /** Envelope requests: the reply is {correlation?, results | error}. */
  envelope: boolean;
  correlation?: JsonValue;
}

interface CallOptions {
  args: JsonObject;
  timeoutMs: number;
  inMs?: number;
  key?: string;
}

class BadRequest extends Error {}

export class CallEndpoint {
  readonly #options: CallEndpointOptions;

  constructor(options: CallEndpointOptions) {
    this.#options = options;
  }

  /** A publish to a call topic (or an invalid one). */
  handle(call: CallTopic | 'invalid', payload: Buffer, meta: PublishMeta): void {
    const { counters } = this.#options;
    counters.increment('mqtt.calls');
    const plan = replyPlan(meta);
    let options: CallOptions;
    try {
      options = plan.envelope ? this.#fromEnvelope(payload, plan) : fromMqtt5(payload, plan.format, meta);
      if (call === 'invalid') {
        this.#fail(plan, 'invalid-topic', 'a call topic is nearmesh/call/<peer|group:NAME|all>/<action>');
        return;
      }
    } catch (error) {
      this.#fail(plan, 'bad-request', error instanceof Error ? error.message : String(error));
      return;
    }
    const { coordination } = this.#options;
    const request = {
      target: call.target,
      action: call.action,
      args: options.args,
      timeoutMs: options.timeoutMs,
      ...(options.inMs !== undefined && { fireAt: coordination.timeSync.now() + options.inMs }),
      ...(options.key !== undefined && { key: options.key }),
    };
    // A promise all the way: nothing the coordinator does can throw into the broker.
    Promise.resolve(request)
      .then((ready) => coordination.call(ready))
      .then(
        (outcomes) => this.#send(plan, outcomes.map(toRow)),
        (error: unknown) => {
          const code = errorCode(error);
          this.#options.log.debug({ err: error, client: meta.clientId }, 'mqtt: a call from an app failed');
          this.#fail(plan, code, error instanceof Error ? error.message : String(error));
        },
      );
  }

  /** A publish to a read topic (or an invalid one): the sensor's reading now, replied as a call's results are. */
  read(sensor: SensorRef | 'invalid', payload: Buffer, meta: PublishMeta): void {
    this.#options.counters.increment('mqtt.reads');
    const plan = replyPlan(meta);
    try {
      if (plan.envelope) readEnvelope(payload, plan, READ_ENVELOPE_KEYS, '{"reply_to", "correlation"}');
      if (sensor === 'invalid') {
        this.#fail(plan, 'invalid-topic', 'a read topic is nearmesh/read/<peer>/<sensor>', READS_FAILED);
        return;
      }
    } catch (error) {
      this.#fail(plan, 'bad-request', error instanceof Error ? error.message : String(error), READS_FAILED);
      return;
    }
    const { coordination } = this.#options;
    Promise.resolve(sensor)
      .then(({ peer, sensor: name }) => coordination.read(peer, name))
      .then(
        (reading) => this.#send(plan, readingRow(reading)),
        (error: unknown) =>
          this.#fail(
            plan,
            errorCode(error),
            error instanceof Error ? error.message : String(error),
            READS_FAILED,
          ),
      );
  }

  /** The envelope of a request without a response topic; sets where the reply goes first, so errors get there. */
  #fromEnvelope(payload: Buffer, plan: ReplyPlan): CallOptions {
    const envelope = readEnvelope(
      payload,
      plan,
      ENVELOPE_KEYS,
      '{"args": {...}, "reply_to", "correlation", "timeout", "in", "key"}',
    );
    const args = envelope.args ?? {};
    if (!isJsonObject(args)) throw new BadRequest('"args" must be a JSON object');
    return callOptions(args, {
      timeout: optionalString(envelope.timeout, 'timeout'),
      in: optionalString(envelope.in, 'in'),
      key: optionalString(envelope.key, 'key'),
    });
  }

  #fail(plan: ReplyPlan, code: string, message: string, counter = 'mqtt.calls_failed'): void {
    this.#options.counters.increment(counter);
    this.#send(plan, { error: { code, message } });
  }

  #send(plan: ReplyPlan, body: JsonValue): void {
    const reply: JsonValue = plan.envelope
      ? {
          ...(plan.correlation !== undefined && { correlation: plan.correlation }),
          ...(Array.isArray(body) ? { results: body } : (body as JsonObject)),
        }
      : body;
    try {
      this.#options.publish(plan.topic, encodePayload(reply, plan.format), {
        contentType: contentTypeOf(plan.format),
        ...(plan.correlationData !== undefined && { correlationData: plan.correlationData }),
      });
    } catch {
      this.#options.counters.increment('mqtt.replies_invalid_topic');
    }
  }
}

/** Where a request's reply goes: its MQTT 5 response topic, or (an envelope request) the default reply topic. */
function replyPlan(meta: PublishMeta): ReplyPlan {
  const responseTopic = meta.properties?.responseTopic;
  const format = formatOf(meta.properties);
  if (responseTopic === undefined) return { topic: defaultReplyTopic(meta.clientId), format, envelope: true };
  return {
    topic: responseTopic,
    format,
    envelope: false,
    ...(meta.properties?.correlationData !== undefined && {
      correlationData: meta.properties.correlationData,
    }),
  };
}

/**
 * A request envelope with only `keys` in it; sets the plan's reply topic and correlation first, so that
 * an error in the rest gets to the app.
 */
function readEnvelope(payload: Buffer, plan: ReplyPlan, keys: ReadonlySet<string>, form: string): JsonObject {
  const envelope = decodeObject(payload, plan.format, 'the request envelope');
  if (envelope.correlation !== undefined) plan.correlation = envelope.correlation;
  const replyTo = envelope.reply_to;
  if (replyTo !== undefined) {
    if (typeof replyTo !== 'string' || !isValidTopicName(replyTo))
      throw new BadRequest('"reply_to" must be a topic name without wildcards');
    plan.topic = replyTo;
  }
  const unknown = Object.keys(envelope).filter((key) => !keys.has(key));
  if (unknown.length > 0) {
    throw new BadRequest(
      `unknown key ${JSON.stringify(unknown[0])} in the request envelope: without a response topic the payload is ${form}`,
    );
  }
  return envelope;
}

/** A reading, as apps get it: the same shape as `nearmesh read --json`. */
function readingRow(reading: SensorReadResult): JsonObject {
  return { ...reading };
}

/** MQTT 5 request: the payload is the arguments; timeout, in and key are user properties. */
function fromMqtt5(payload: Buffer, format: PayloadFormat, meta: PublishMeta): CallOptions {
  const args = decodeObject(payload, format, 'the arguments');
  return callOptions(args, {
    timeout: userProperty(meta.properties, 'timeout'),
    in: userProperty(meta.properties, 'in'),
    key: userProperty(meta.properties, 'key'),
  });
}

function decodeObject(payload: Buffer, format: PayloadFormat, what: string): JsonObject {
  if (payload.length === 0) return {};
  const decoded = decodePayload(payload, format);
  if (!decoded.ok) throw new BadRequest(`${what}: ${decoded.message}`);
  if (!isJsonObject(decoded.value)) throw new BadRequest(`${what} must be a ${format.toUpperCase()} object`);
  return decoded.value;
}

function callOptions(
  args: JsonObject,
  text: { timeout: string | undefined; in: string | undefined; key: string | undefined },
): CallOptions {
  const timeoutMs = text.timeout === undefined ? DEFAULT_CALL_TIMEOUT_MS : duration(text.timeout, 'timeout');
  if (timeoutMs <= 0) throw new BadRequest('"timeout" must be longer than 0ms');
  const inMs = text.in === undefined ? undefined : duration(text.in, 'in');
  if (text.key === '') throw new BadRequest('"key" must not be empty');
  return {
    args,
    timeoutMs,
    ...(inMs !== undefined && { inMs }),
    ...(text.key !== undefined && { key: text.key }),
  };
}

function duration(text: string, name: string): number {
  try {
    return parseDuration(text);
  } catch (error) {
    throw new BadRequest(`"${name}": ${error instanceof Error ? error.message : String(error)}`);
  }
}

function optionalString(value: JsonValue | undefined, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new BadRequest(`"${name}" must be a string`);
  return value;
}

/** One result, as apps get it: the same shape as `nearmesh call --json`. */
function toRow(outcome: CallOutcome): JsonObject {
  return {
    peer: outcome.peer,
    name: outcome.name,
    status: outcome.status,
    ...(outcome.value !== undefined && { result: outcome.value }),
    ...(outcome.error !== undefined && {
      error: { code: outcome.error.code, message: outcome.error.message },
    }),
    fired_at: outcome.firedAtMs === null ? null : new Date(outcome.firedAtMs).toISOString(),
  };
}

function errorCode(error: unknown): string {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : 'internal';
}
