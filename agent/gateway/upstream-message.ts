// Translation between the bridge's messages and MQTT 5 PUBLISH packets to and from the upstream broker:
// the topic prefix, the origin stamp that breaks forwarding loops, and the checks on what comes in.
// Pure functions, so the rules are testable without a broker.

import type { IClientPublishOptions, IPublishPacket } from 'mqtt';
import { isValidTopicName, topicMatches } from '../core/topic-match.js';

/** The MQTT 5 user property naming the agent that sent a message upstream. */
export const ORIGIN_PROPERTY = 'nearmesh-origin';

/** MQTT 5 properties the bridge carries across, in both directions. */
export interface BridgedProperties {
  contentType?: string;
  userProperties?: Record<string, string | string[]>;
  /** A local topic: prefixed on the way up, stripped on the way down (and left out if it lacks the prefix). */
  responseTopic?: string;
  correlationData?: Buffer;
  /** Up only: seconds after which the broker drops the message undelivered (MQTT 5 message expiry). */
  messageExpiryInterval?: number;
}

/** One message crossing the bridge, always with its local (unprefixed) topic. */
export interface BridgedMessage {
  topic: string;
  payload: Buffer;
  qos: 0 | 1;
  retain: boolean;
  /**
   * On 'message': the peer id of the agent that sent it upstream (from `nearmesh-origin`), if any.
   * On `forward`: set means the message came from an upstream bridge, so it is not exported again.
   */
  origin?: string;
  properties?: BridgedProperties;
}

/** The PUBLISH options for sending `message` upstream, stamped with our origin. */
export function toUpstreamPublish(
  message: BridgedMessage,
  prefix: string,
  originId: string,
): { topic: string; options: IClientPublishOptions } {
  const source = message.properties ?? {};
  const properties: NonNullable<IClientPublishOptions['properties']> = {
    // Ours wins over a caller's: the stamp is what loop prevention trusts.
    userProperties: { ...source.userProperties, [ORIGIN_PROPERTY]: originId },
  };
  if (source.contentType !== undefined) properties.contentType = source.contentType;
  if (source.responseTopic !== undefined) properties.responseTopic = prefix + source.responseTopic;
  if (source.correlationData !== undefined) properties.correlationData = source.correlationData;
  if (source.messageExpiryInterval !== undefined)
    properties.messageExpiryInterval = source.messageExpiryInterval;
  return {
    topic: prefix + message.topic,
    options: { qos: message.qos, retain: message.retain, properties },
  };
}

/**
 * The encoded size of an MQTT 5 PUBLISH (QoS > 0) with these fields, in bytes: an upper bound within a
 * few bytes. mqtt.js does not check the upstream's Maximum Packet Size when sending, and a PUBLISH
 * over it gets us disconnected, then resent from the store after the reconnect, forever.
 */
export function publishPacketSize(topic: string, payload: Buffer, options: IClientPublishOptions): number {
  const p = options.properties ?? {};
  let properties = 0;
  for (const [key, values] of Object.entries(p.userProperties ?? {})) {
    for (const value of Array.isArray(values) ? values : [values])
      properties += 5 + Buffer.byteLength(key) + Buffer.byteLength(value);
  }
  if (p.contentType !== undefined) properties += 3 + Buffer.byteLength(p.contentType);
  if (p.responseTopic !== undefined) properties += 3 + Buffer.byteLength(p.responseTopic);
  if (p.correlationData !== undefined) properties += 3 + p.correlationData.length;
  if (p.messageExpiryInterval !== undefined) properties += 5;
  const remaining = 2 + Buffer.byteLength(topic) + 2 + 4 + properties + payload.length;
  return 1 + 4 + remaining; // fixed header byte and (at most) four length bytes
}

/** Why an incoming PUBLISH was not emitted; each reason has its own counter. */
export type IncomingRejection = 'bad_topic' | 'unmatched' | 'loop';

/**
 * The local message for a PUBLISH from upstream, or why it must be dropped: outside our prefix or not a
 * valid topic once stripped (bad_topic), outside the `in` filters, e.g. a subscription left over in the
 * persistent session from an older config (unmatched), or sent by ourselves (loop).
 */
export function fromUpstreamPublish(
  topic: string,
  payload: Buffer,
  packet: Pick<IPublishPacket, 'qos' | 'retain' | 'properties'>,
  rules: { prefix: string; filters: readonly string[]; originId: string },
): BridgedMessage | IncomingRejection {
  if (!topic.startsWith(rules.prefix)) return 'bad_topic';
  const local = topic.slice(rules.prefix.length);
  if (!isValidTopicName(local)) return 'bad_topic';
  if (!rules.filters.some((filter) => topicMatches(filter, local))) return 'unmatched';
  const source = packet.properties ?? {};
  const { [ORIGIN_PROPERTY]: stamp, ...userProperties } = source.userProperties ?? {};
  const origins = stamp === undefined ? [] : Array.isArray(stamp) ? stamp : [stamp];
  if (origins.includes(rules.originId)) return 'loop';
  const message: BridgedMessage = {
    topic: local,
    payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload),
    // We subscribe at QoS 1, so QoS 2 cannot arrive; clamp anyway, the local side is QoS 0/1 only.
    qos: packet.qos === 0 ? 0 : 1,
    retain: packet.retain,
  };
  if (origins[0] !== undefined) message.origin = origins[0];
  const properties: BridgedProperties = {};
  if (source.contentType !== undefined) properties.contentType = source.contentType;
  if (Object.keys(userProperties).length > 0) properties.userProperties = userProperties;
  const responseTopic = source.responseTopic;
  if (responseTopic?.startsWith(rules.prefix) && isValidTopicName(responseTopic.slice(rules.prefix.length)))
    properties.responseTopic = responseTopic.slice(rules.prefix.length);
  if (source.correlationData !== undefined) properties.correlationData = source.correlationData;
  if (Object.keys(properties).length > 0) message.properties = properties;
  return message;
}
