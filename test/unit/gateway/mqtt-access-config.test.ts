import { describe, expect, it } from 'vitest';
import { mqttTable, resolveMqtt } from '../../../agent/gateway/config.js';

function problems(table: Record<string, unknown>): string[] {
  const result = mqttTable.safeParse(table);
  return result.success
    ? []
    : result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
}

describe('[mqtt] access control keys', () => {
  it('a listen off loopback needs logins, and serves no anonymous clients', () => {
    expect(problems({ listen: '0.0.0.0:1883' })).toEqual([
      'password_file: required: listen = "0.0.0.0:1883" is not loopback, so clients must log in (mosquitto_passwd -c <file> <user>)',
    ]);
    expect(problems({ listen: '[::]:1883', password_file: 'p', anonymous: ['topic read #'] })).toEqual([
      'anonymous: anonymous clients are served on a loopback listen only, and listen = "[::]:1883" is not loopback',
    ]);
    expect(problems({ listen: '0.0.0.0:1883', password_file: 'mqtt.passwd' })).toEqual([]);
    expect(problems({ listen: '0.0.0.0:1883', username: 'apps', password: 'x' })).toEqual([]);
    for (const listen of ['127.0.0.1:1883', '127.1.2.3:1', '[::1]:1883', 'localhost:1883'])
      expect(problems({ listen })).toEqual([]);
  });

  it('anonymous lines are checked as ACL lines when the config is read', () => {
    expect(problems({ anonymous: ['topic readwrite #', 'pattern write apps/%c/#'] })).toEqual([]);
    expect(problems({ anonymous: ['topic read a/#/b'] })).toEqual([
      'anonymous.0: "a/#/b" is not a topic filter ("+" and "#" only as whole levels, "#" last)',
    ]);
    expect(problems({ anonymous: ['user kitchen'] })[0]).toMatch(
      /^anonymous\.0: "user" sections belong in acl_file/,
    );
    expect(problems({ anonymous: 'topic read #' })[0]).toMatch(/^anonymous: expected an array of ACL lines/);
  });

  it('resolves the files relative to the config and keeps the anonymous lines', () => {
    const raw = mqttTable.parse({ password_file: 'mqtt.passwd', acl_file: '/etc/mqtt.acl', anonymous: [] });
    const config = resolveMqtt(raw, (path) => (path.startsWith('/') ? path : `/etc/nearmesh/${path}`));
    expect(config).toMatchObject({
      passwordFile: '/etc/nearmesh/mqtt.passwd',
      aclFile: '/etc/mqtt.acl',
      anonymous: [],
    });
  });
});
