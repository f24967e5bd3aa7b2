// Who may publish to, subscribe to and receive which topics: mosquitto's ACL semantics (acl-file.ts),
// the built-in rules for anonymous local clients, and the choice between a user's and anonymous rules.
// The broker asks on PUBLISH (write), on SUBSCRIBE (a filter some readable topic could match) and at
// delivery (read), so a subscription to `#` never brings a topic the client may not read.
import { topicMatches } from '../core/topic-match.js';
import type { AclRule } from './acl-file.js';
import { PEERS_TOPIC, sensorTopic, TOPIC_ROOT } from './topic-map.js';

export interface MqttClientIdentity {
  readonly clientId: string;
  /** The authenticated user; undefined for an anonymous client. */
  readonly username: string | undefined;
}

/** What the broker asks before a client publishes, subscribes, or receives a message. */
export interface TopicAccess {
  mayPublish(client: MqttClientIdentity, topic: string): boolean;
  mayRead(client: MqttClientIdentity, topic: string): boolean;
  /** False when no topic the filter matches could be read: the subscription is refused. */
  maySubscribe(client: MqttClientIdentity, filter: string): boolean;
}

/** The rules of one kind of client (users, or anonymous clients). */
export interface TopicRules {
  allows(client: MqttClientIdentity, access: 'read' | 'write', topic: string): boolean;
  allowsSubscribe(client: MqttClientIdentity, filter: string): boolean;
}

/** Authenticated users when there is no acl_file: every topic, as mosquitto with a password file alone. */
export const ALL_TOPICS: TopicRules = { allows: () => true, allowsSubscribe: () => true };

/**
 * mosquitto's order: the client's own rules, denials first, then the patterns, denials first; the first
 * rule that matches with the access asked for grants it, and nothing matching means denied.
 */
export class AclTopicRules implements TopicRules {
  constructor(
    private readonly own: (client: MqttClientIdentity) => readonly AclRule[],
    private readonly patterns: readonly AclRule[],
  ) {}

  allows(client: MqttClientIdentity, access: 'read' | 'write', topic: string): boolean {
    const matches = (filter: string): boolean => topicMatches(filter, topic);
    return this.#decide(client, access, matches, matches);
  }

  allowsSubscribe(client: MqttClientIdentity, filter: string): boolean {
    return this.#decide(
      client,
      'read',
      (ruleFilter) => filterCovers(ruleFilter, filter),
      (ruleFilter) => filtersOverlap(ruleFilter, filter),
    );
  }

  /** `denies(filter)`: a deny rule with this filter applies; `grants(filter)`: an allowing rule does. */
  #decide(
    client: MqttClientIdentity,
    access: 'read' | 'write',
    denies: (filter: string) => boolean,
    grants: (filter: string) => boolean,
  ): boolean {
    const own = decideWith(this.own(client), access, denies, grants);
    if (own !== undefined) return own;
    if (this.patterns.length === 0) return false;
    const substituted = substitutePatterns(this.patterns, client);
    return substituted !== undefined && decideWith(substituted, access, denies, grants) === true;
  }
}

function decideWith(
  rules: readonly AclRule[],
  access: 'read' | 'write',
  denies: (filter: string) => boolean,
  grants: (filter: string) => boolean,
): boolean | undefined {
  if (rules.some((rule) => rule.access === 'deny' && denies(rule.filter))) return false;
  const granting = (rule: AclRule): boolean => rule.access === access || rule.access === 'readwrite';
  if (rules.some((rule) => granting(rule) && grants(rule.filter))) return true;
  return undefined;
}

/**
 * The patterns with `%c` and `%u` filled in; patterns with `%u` do not apply to anonymous clients.
 * A client id or user name holding `+`, `#` or `/` would widen a pattern: undefined, nothing granted.
 */
function substitutePatterns(patterns: readonly AclRule[], client: MqttClientIdentity): AclRule[] | undefined {
  const unsafe = (value: string): boolean => /[+#/]/.test(value);
  const rules: AclRule[] = [];
  for (const { access, filter } of patterns) {
    if (filter.includes('%c') && unsafe(client.clientId)) return undefined;
    if (filter.includes('%u')) {
      if (client.username === undefined) continue;
      if (unsafe(client.username)) return undefined;
    }
    const username = client.username ?? '';
    rules.push({ access, filter: filter.replaceAll('%c', client.clientId).replaceAll('%u', username) });
  }
  return rules;
}

/** Whether some topic matches both filters. */
export function filtersOverlap(a: string, b: string): boolean {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; ; i++) {
    const p = x[i];
    const q = y[i];
    if (p === '#' || q === '#') return true; // `a/#` also matches `a`
    if (p === undefined || q === undefined) return p === q;
    if (p !== '+' && q !== '+' && p !== q) return false;
  }
}

/** Whether every topic `inner` matches, `outer` matches too. */
export function filterCovers(outer: string, inner: string): boolean {
  const x = outer.split('/');
  const y = inner.split('/');
  for (let i = 0; ; i++) {
    const p = x[i];
    const q = y[i];
    if (p === '#') return true;
    if (p === undefined || q === undefined) return p === q;
    if (q === '#') return false;
    if (p !== '+' && p !== q) return false;
  }
}

/** Topics of the nearmesh tree an anonymous local client may read by default. */
const DEFAULT_ANONYMOUS_NEARMESH_RULES = [
  { access: 'read', filter: PEERS_TOPIC },
  { access: 'read', filter: sensorTopic('+', '#') },
] as const;
const DEFAULT_ANONYMOUS_NEARMESH = new AclTopicRules(() => DEFAULT_ANONYMOUS_NEARMESH_RULES, []);

/**
 * Anonymous local clients unless `[mqtt] anonymous` says otherwise: apps' own topics (anything outside
 * `nearmesh/`) readwrite, so apps talk to each other as through a local mosquitto; the peer table and
 * sensor values read; nothing that acts in the mesh or reads another app's messages.
 */
export const LOCAL_APPS_DEFAULT: TopicRules = {
  allows: (client, access, topic) =>
    firstLevel(topic) !== TOPIC_ROOT || DEFAULT_ANONYMOUS_NEARMESH.allows(client, access, topic),
  allowsSubscribe: (client, filter) =>
    firstLevel(filter) !== TOPIC_ROOT || DEFAULT_ANONYMOUS_NEARMESH.allowsSubscribe(client, filter),
};

function firstLevel(topic: string): string {
  const slash = topic.indexOf('/');
  return slash < 0 ? topic : topic.slice(0, slash);
}

/** Users' rules for clients that logged in as a known user, anonymous rules for the others (if any). */
export class MqttAccessControl implements TopicAccess {
  constructor(
    private readonly options: {
      readonly isUser: (username: string) => boolean;
      readonly users: TopicRules;
      /** Undefined: anonymous clients get nothing (they are refused at CONNECT anyway). */
      readonly anonymous: TopicRules | undefined;
    },
  ) {}

  mayPublish(client: MqttClientIdentity, topic: string): boolean {
    return this.#with(client, (rules, who) => rules.allows(who, 'write', topic));
  }

  mayRead(client: MqttClientIdentity, topic: string): boolean {
    return this.#with(client, (rules, who) => rules.allows(who, 'read', topic));
  }

  maySubscribe(client: MqttClientIdentity, filter: string): boolean {
    return this.#with(client, (rules, who) => rules.allowsSubscribe(who, filter));
  }

  #with(client: MqttClientIdentity, ask: (rules: TopicRules, who: MqttClientIdentity) => boolean): boolean {
    const { username } = client;
    if (username !== undefined && this.options.isUser(username)) return ask(this.options.users, client);
    const anonymous = this.options.anonymous;
    // A user name that is no user (accepted only when there are no users at all) is just a label.
    return anonymous !== undefined && ask(anonymous, { clientId: client.clientId, username: undefined });
  }
}
