// The MQTT topics the agent serves to local apps (docs/MQTT.md): where apps publish to reach the mesh and
// where the mesh's messages and state appear. The only place that spells these topics.

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

export function sendTopic(target: SendTarget): string {
  switch (target.kind) {
    case 'all':
      return `${SEND_PREFIX}all`;
    case 'group':
      return `${SEND_PREFIX}${GROUP_PREFIX}${target.name}`;
    case 'peer':
      return `${SEND_PREFIX}${target.reference}`;
  }
}

export function inboxTopic(from: string): string {
  return `${INBOX_PREFIX}${from}`;
}
