// The MQTT topics the agent serves to local apps (docs/MQTT.md): where apps publish to reach the mesh and
// where the mesh's messages and state appear. The only place that spells these topics.

import { isPeerId } from '../core/peer-id.js';

export const TOPIC_ROOT = 'nearmesh';
const SEND_PREFIX = `${TOPIC_ROOT}/send/`;
const INBOX_PREFIX = `${TOPIC_ROOT}/inbox/`;
/** Retained JSON of the peer table. */
export const PEERS_TOPIC = `${TOPIC_ROOT}/peers`;
/** The inbox "sender" of messages published upstream by something that is not a nearmesh agent. */
export const UPSTREAM_SENDER = 'upstream';
const GROUP_PREFIX = 'group:';

/** Who a `nearmesh/send/<target>` publish is for. */
export type SendTarget =
  | { readonly kind: 'peer'; readonly reference: string }
  | { readonly kind: 'group'; readonly name: string }
  | { readonly kind: 'all' };

/** The target of a send topic; undefined for any other topic, 'invalid' for a send topic without one. */
export function parseSendTopic(topic: string): SendTarget | 'invalid' | undefined {
  if (!topic.startsWith(SEND_PREFIX)) return undefined;
  const target = topic.slice(SEND_PREFIX.length);
  if (target === '' || target.includes('/')) return 'invalid';
  if (target === 'all') return { kind: 'all' };
  if (target.startsWith(GROUP_PREFIX)) {
    const name = target.slice(GROUP_PREFIX.length);
    return name === '' ? 'invalid' : { kind: 'group', name };
  }
  return { kind: 'peer', reference: target };
}

export function inboxTopic(from: string): string {
  return `${INBOX_PREFIX}${from}`;
}

// The site tunnel (docs/PROTOCOL.md §20): upstream only, never served to local apps.

const TUNNEL_PREFIX = `${TOPIC_ROOT}/tunnel/`;

/** Where sealed frames for one agent travel on the upstream broker (under the bridge's prefix). */
export function tunnelTopic(peer: string): string {
  return `${TUNNEL_PREFIX}${peer}`;
}

/** Whether a topic is a tunnel topic (for any agent). */
export function isTunnelTopic(topic: string): boolean {
  return topic.startsWith(TUNNEL_PREFIX);
}

// Coordination over MQTT: calls from apps, sensor values, and what apps provide to the mesh.

const CALL_PREFIX = `${TOPIC_ROOT}/call/`;
const REPLY_PREFIX = `${TOPIC_ROOT}/reply/`;
const SENSOR_PREFIX = `${TOPIC_ROOT}/sensor/`;
const READ_PREFIX = `${TOPIC_ROOT}/read/`;
const PROVIDE_SENSOR_PREFIX = `${TOPIC_ROOT}/provide/sensor/`;
const PROVIDE_ACTION_PREFIX = `${TOPIC_ROOT}/provide/action/`;
const INVOKE_PREFIX = `${TOPIC_ROOT}/invoke/`;

/** An action or sensor name, as the config allows them: dot-separated words, no topic separators. */
const CAPABILITY_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

export function isCapabilityName(name: string): boolean {
  return name.length <= 63 && CAPABILITY_NAME.test(name);
}

/** `nearmesh/call/<target>/<action>`: a call target as Coordinator.call takes it (id, name, group:NAME, all). */
export interface CallTopic {
  readonly target: string;
  readonly action: string;
}

/** The call a topic asks for; undefined for any other topic, 'invalid' for a call topic without a usable one. */
export function parseCallTopic(topic: string): CallTopic | 'invalid' | undefined {
  if (!topic.startsWith(CALL_PREFIX)) return undefined;
  const levels = topic.slice(CALL_PREFIX.length).split('/');
  if (levels.length !== 2) return 'invalid';
  const [target, action] = levels as [string, string];
  if (target === '' || target === GROUP_PREFIX || !isCapabilityName(action)) return 'invalid';
  return { target, action };
}

export function callTopic(target: string, action: string): string {
  return `${CALL_PREFIX}${target}/${action}`;
}

/** Where the results of a call without a response topic or `reply_to` go. */
export function defaultReplyTopic(clientId: string): string {
  return `${REPLY_PREFIX}${clientId}`;
}

/** Retained latest value of a sensor of any agent. */
export function sensorTopic(peer: string, sensor: string): string {
  return `${SENSOR_PREFIX}${peer}/${sensor}`;
}

/** A sensor of an agent (by peer id or name) named in a topic. */
export interface SensorRef {
  readonly peer: string;
  readonly sensor: string;
}

/** `<prefix><peer>/<sensor>` with a usable peer and sensor name; undefined otherwise. */
function sensorRefAfter(prefix: string, topic: string): SensorRef | undefined {
  const levels = topic.slice(prefix.length).split('/');
  if (levels.length !== 2) return undefined;
  const [peer, sensor] = levels as [string, string];
  if (peer === '' || peer === '+' || peer === '#' || !isCapabilityName(sensor)) return undefined;
  return { peer, sensor };
}

/** `nearmesh/read/<peer>/<sensor>`: a read request; undefined for any other topic, 'invalid' for a bad one. */
export function parseReadTopic(topic: string): SensorRef | 'invalid' | undefined {
  if (!topic.startsWith(READ_PREFIX)) return undefined;
  return sensorRefAfter(READ_PREFIX, topic) ?? 'invalid';
}

/** The one sensor a subscription filter names exactly (no wildcards); undefined for any other filter. */
export function parseSensorFilter(filter: string): SensorRef | undefined {
  return filter.startsWith(SENSOR_PREFIX) ? sensorRefAfter(SENSOR_PREFIX, filter) : undefined;
}

/** What an app provides to the mesh from its device. */
export type ProvideTopic =
  | { readonly kind: 'sensor'; readonly name: string }
  | { readonly kind: 'action'; readonly name: string };

/** `nearmesh/provide/sensor/<name>` or `nearmesh/provide/action/<name>`; 'invalid' for a bad name. */
export function parseProvideTopic(topic: string): ProvideTopic | 'invalid' | undefined {
  for (const [prefix, kind] of [
    [PROVIDE_SENSOR_PREFIX, 'sensor'],
    [PROVIDE_ACTION_PREFIX, 'action'],
  ] as const) {
    if (topic.startsWith(prefix)) {
      const name = topic.slice(prefix.length);
      return isCapabilityName(name) ? { kind, name } : 'invalid';
    }
  }
  return topic.startsWith(`${TOPIC_ROOT}/provide/`) ? 'invalid' : undefined;
}

export function provideTopic(kind: ProvideTopic['kind'], name: string): string {
  return `${kind === 'sensor' ? PROVIDE_SENSOR_PREFIX : PROVIDE_ACTION_PREFIX}${name}`;
}

/** Where the agent publishes the invocations of an action an app provides. */
export function invokeTopic(action: string): string {
  return `${INVOKE_PREFIX}${action}`;
}

/** Where the app answers one invocation: its result, or an error. */
export function invokeAnswerTopic(action: string, kind: 'reply' | 'error', callId: string): string {
  return `${INVOKE_PREFIX}${action}/${kind}/${callId}`;
}

/** An app's answer to an invocation: `nearmesh/invoke/<action>/reply|error/<call-id>`. */
export function parseInvokeAnswerTopic(
  topic: string,
): { action: string; kind: 'reply' | 'error'; callId: string } | undefined {
  if (!topic.startsWith(INVOKE_PREFIX)) return undefined;
  const levels = topic.slice(INVOKE_PREFIX.length).split('/');
  if (levels.length !== 3) return undefined;
  const [action, kind, callId] = levels as [string, string, string];
  if ((kind !== 'reply' && kind !== 'error') || callId === '') return undefined;
  return { action, kind, callId };
}

// Home Assistant MQTT discovery (homeassistant-discovery.ts): what a gateway agent publishes for HA, and where
// HA's buttons and switches publish back. Under the gateway's own id, so two gateways never mix their words.

const HA_PREFIX = `${TOPIC_ROOT}/ha/`;

/** Retained "online"/"offline" of the gateway agent itself (its bridge's will says "offline"). */
export function haGatewayStatusTopic(gateway: string): string {
  return `${HA_PREFIX}${gateway}/status`;
}

/** Retained "online"/"offline": whether the gateway reaches that agent. */
export function haAvailabilityTopic(gateway: string, peer: string): string {
  return `${HA_PREFIX}${gateway}/availability/${peer}`;
}

/** Where Home Assistant publishes a button press or a switch command for an agent's action. */
export function haCommandTopic(gateway: string, peer: string, action: string): string {
  return `${HA_PREFIX}${gateway}/call/${peer}/${action}`;
}

/** Every command topic of a gateway, as a filter (the bridge subscribes to it upstream). */
export function haCommandFilter(gateway: string): string {
  return `${HA_PREFIX}${gateway}/call/#`;
}

/** The agent and action of a gateway's command topic; undefined for any other topic. */
export function parseHaCommandTopic(
  gateway: string,
  topic: string,
): { peer: string; action: string } | undefined {
  const prefix = `${HA_PREFIX}${gateway}/call/`;
  if (!topic.startsWith(prefix)) return undefined;
  const levels = topic.slice(prefix.length).split('/');
  if (levels.length !== 2) return undefined;
  const [peer, action] = levels as [string, string];
  return isPeerId(peer) && isCapabilityName(action) ? { peer, action } : undefined;
}

/** One agent's device-based discovery config (Home Assistant 2024.11 and later). */
export function haDeviceConfigTopic(discoveryPrefix: string, peer: string): string {
  return `${discoveryPrefix}/device/nearmesh_${peer}/config`;
}

/** Home Assistant's birth and last-will topic: "online" when it (re)starts and wants discovery again. */
export function haBirthTopic(discoveryPrefix: string): string {
  return `${discoveryPrefix}/status`;
}
