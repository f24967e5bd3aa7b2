import { describe, expect, it } from 'vitest';
import {
  AclTopicRules,
  ALL_TOPICS,
  filterCovers,
  filtersOverlap,
  LOCAL_APPS_DEFAULT,
  MqttAccessControl,
  type MqttClientIdentity,
  type TopicRules,
} from '../../../agent/gateway/access-control.js';
import { parseAcl } from '../../../agent/gateway/acl-file.js';

const ACL = parseAcl(
  [
    'topic read public/#',
    'user kitchen',
    'topic readwrite nearmesh/send/#',
    'topic deny nearmesh/send/garage-pi',
    'topic read nearmesh/inbox/#',
    'topic write metrics/kitchen',
    'user reader',
    'topic read #',
    'topic deny secrets/#',
    'pattern readwrite devices/%c/#',
    'pattern read users/%u/inbox',
  ].join('\n'),
  'test.acl',
);

const users = new AclTopicRules((client) => ACL.users.get(client.username ?? '') ?? [], ACL.patterns);
const anonymous = new AclTopicRules(() => ACL.anonymous, ACL.patterns);
const control = new MqttAccessControl({ isUser: (name) => ACL.users.has(name), users, anonymous });

const kitchen: MqttClientIdentity = { clientId: 'kitchen-app', username: 'kitchen' };
const reader: MqttClientIdentity = { clientId: 'dash', username: 'reader' };
const anon: MqttClientIdentity = { clientId: 'anon-1', username: undefined };

describe('ACL decisions (mosquitto semantics)', () => {
  it('publish needs write: readwrite and write grant it, read does not, deny wins over any grant', () => {
    expect(control.mayPublish(kitchen, 'nearmesh/send/hall-pi')).toBe(true);
    expect(control.mayPublish(kitchen, 'nearmesh/send/garage-pi')).toBe(false);
    expect(control.mayPublish(kitchen, 'metrics/kitchen')).toBe(true);
    expect(control.mayPublish(kitchen, 'nearmesh/inbox/x')).toBe(false);
    expect(control.mayPublish(kitchen, 'elsewhere')).toBe(false);
    expect(control.mayPublish(reader, 'public/news')).toBe(false);
  });

  it('read is checked per topic: a read # with a deny keeps the denied topics out', () => {
    expect(control.mayRead(reader, 'anything/at/all')).toBe(true);
    expect(control.mayRead(reader, 'secrets/key')).toBe(false);
    expect(control.mayRead(kitchen, 'metrics/kitchen')).toBe(false); // write only
    expect(control.mayRead(kitchen, 'nearmesh/inbox/garage-pi')).toBe(true);
  });

  it('patterns substitute the client id (%c) and user name (%u), for users and anonymous clients', () => {
    expect(control.mayPublish(kitchen, 'devices/kitchen-app/state')).toBe(true);
    expect(control.mayPublish(kitchen, 'devices/other-app/state')).toBe(false);
    expect(control.mayRead(kitchen, 'users/kitchen/inbox')).toBe(true);
    expect(control.mayRead(reader, 'users/kitchen/inbox')).toBe(true); // reader reads # anyway
    expect(control.mayPublish(anon, 'devices/anon-1/x')).toBe(true);
    // %u patterns do not apply to a client without a user name.
    expect(control.mayRead({ clientId: 'c', username: undefined }, 'users//inbox')).toBe(false);
  });

  it('a client id or user name with + # or / cannot widen a pattern', () => {
    expect(control.mayPublish({ clientId: '+', username: undefined }, 'devices/x/state')).toBe(false);
    expect(control.mayPublish({ clientId: 'a/b', username: undefined }, 'devices/a/b/c')).toBe(false);
  });

  it('anonymous clients get the lines before any user, a user name that is no user makes no one a user', () => {
    expect(control.mayRead(anon, 'public/news')).toBe(true);
    expect(control.mayPublish(anon, 'public/news')).toBe(false);
    expect(control.mayPublish({ clientId: 'x', username: 'nobody' }, 'nearmesh/send/a')).toBe(false);
    expect(control.mayRead({ clientId: 'x', username: 'nobody' }, 'public/a')).toBe(true);
  });

  it('a subscription is refused when its filter can reach no readable topic, or a deny covers it all', () => {
    expect(control.maySubscribe(kitchen, 'nearmesh/inbox/#')).toBe(true);
    expect(control.maySubscribe(kitchen, '#')).toBe(true); // delivery filters it to what may be read
    expect(control.maySubscribe(kitchen, 'metrics/kitchen')).toBe(false); // write only
    expect(control.maySubscribe(reader, 'secrets/#')).toBe(false);
    expect(control.maySubscribe(reader, 'secrets/+/x')).toBe(false);
    expect(control.maySubscribe(reader, '+/key')).toBe(true); // reaches more than secrets/key
    expect(control.maySubscribe(anon, 'nearmesh/inbox/#')).toBe(false);
    expect(control.maySubscribe(anon, 'public/+')).toBe(true);
  });

  it('without anonymous rules an anonymous client may do nothing', () => {
    const closed = new MqttAccessControl({ isUser: () => false, users: ALL_TOPICS, anonymous: undefined });
    expect(closed.mayPublish(anon, 'app/x')).toBe(false);
    expect(closed.mayRead(anon, 'app/x')).toBe(false);
    expect(closed.maySubscribe(anon, '#')).toBe(false);
  });
});

describe('the default rules for anonymous local clients', () => {
  const rules: TopicRules = LOCAL_APPS_DEFAULT;
  it("let apps use their own topics, and read the peer table and sensor values, nothing else of nearmesh's", () => {
    for (const topic of ['app/x', 'home/kitchen/light', '$app/y', 'nearmeshy/z']) {
      expect(rules.allows(anon, 'write', topic)).toBe(true);
      expect(rules.allows(anon, 'read', topic)).toBe(true);
    }
    expect(rules.allows(anon, 'read', 'nearmesh/peers')).toBe(true);
    expect(rules.allows(anon, 'read', 'nearmesh/sensor/abc/room.temp')).toBe(true);
    expect(rules.allows(anon, 'write', 'nearmesh/peers')).toBe(false);
    expect(rules.allows(anon, 'write', 'nearmesh/sensor/abc/room.temp')).toBe(false);
    for (const topic of [
      'nearmesh/send/garage-pi',
      'nearmesh/send/all',
      'nearmesh/call/all/light.set',
      'nearmesh/provide/action/door.open',
      'nearmesh/invoke/door.open/reply/1',
    ])
      expect(rules.allows(anon, 'write', topic)).toBe(false);
    for (const topic of ['nearmesh/inbox/abc', 'nearmesh/reply/some-app', 'nearmesh/invoke/door.open'])
      expect(rules.allows(anon, 'read', topic)).toBe(false);
  });

  it('grant subscriptions that reach readable topics only', () => {
    expect(rules.allowsSubscribe(anon, 'app/#')).toBe(true);
    expect(rules.allowsSubscribe(anon, '#')).toBe(true);
    expect(rules.allowsSubscribe(anon, 'nearmesh/sensor/#')).toBe(true);
    expect(rules.allowsSubscribe(anon, 'nearmesh/#')).toBe(true); // peers and sensors, delivered alone
    expect(rules.allowsSubscribe(anon, 'nearmesh/inbox/#')).toBe(false);
    expect(rules.allowsSubscribe(anon, 'nearmesh/reply/+')).toBe(false);
  });
});

describe('topic filter relations', () => {
  it('filtersOverlap: some topic matches both', () => {
    expect(filtersOverlap('a/#', 'a')).toBe(true);
    expect(filtersOverlap('a/+', 'a/b/c')).toBe(false);
    expect(filtersOverlap('+/b', 'a/+')).toBe(true);
    expect(filtersOverlap('a/b', 'a/c')).toBe(false);
    expect(filtersOverlap('a', 'a/+')).toBe(false);
  });

  it('filterCovers: every topic the inner filter matches, the outer matches too', () => {
    expect(filterCovers('a/#', 'a')).toBe(true);
    expect(filterCovers('a/#', 'a/+/c')).toBe(true);
    expect(filterCovers('a/+', 'a/#')).toBe(false); // a/# also matches a and a/b/c
    expect(filterCovers('a/+', 'a/x')).toBe(true);
    expect(filterCovers('a/x', 'a/+')).toBe(false);
    expect(filterCovers('#', 'anything/#')).toBe(true);
  });
});
