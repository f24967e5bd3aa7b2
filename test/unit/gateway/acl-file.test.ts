import { describe, expect, it } from 'vitest';
import { parseAcl } from '../../../agent/gateway/acl-file.js';
import { MqttSecurityFileError } from '../../../agent/gateway/security-file.js';

describe('parseAcl (mosquitto ACL format)', () => {
  it('reads anonymous lines, user sections, patterns, access words and comments', () => {
    const rules = parseAcl(
      [
        '# lines before any user line are for anonymous clients',
        'topic read nearmesh/peers',
        '',
        'user kitchen',
        'topic nearmesh/send/#',
        '  topic   write   app/commands/#  ',
        'topic deny nearmesh/send/garage-pi',
        'pattern readwrite app/%u/%c/#',
        'user garage',
        'topic read app/with space',
        'user kitchen',
        'topic read nearmesh/inbox/#',
      ].join('\n'),
      '/etc/nearmesh/mqtt.acl',
    );
    expect(rules.anonymous).toEqual([{ access: 'read', filter: 'nearmesh/peers' }]);
    expect(Object.fromEntries(rules.users)).toEqual({
      kitchen: [
        { access: 'readwrite', filter: 'nearmesh/send/#' },
        { access: 'write', filter: 'app/commands/#' },
        { access: 'deny', filter: 'nearmesh/send/garage-pi' },
        { access: 'read', filter: 'nearmesh/inbox/#' },
      ],
      garage: [{ access: 'read', filter: 'app/with space' }],
    });
    // A pattern applies to every client, wherever it is written.
    expect(rules.patterns).toEqual([{ access: 'readwrite', filter: 'app/%u/%c/#' }]);
  });

  it('names the file and the line of a mistake', () => {
    const cases: Array<[string, number, RegExp]> = [
      ['topic read a\nsubscribe a/#', 2, /expected "topic", "pattern" or "user"/],
      ['user', 1, /user name/],
      ['topic read', 1, /expected "topic \[read\|write\|readwrite\|deny\] <topic filter>"/],
      ['topic', 1, /expected "topic/],
      ['\n\ntopic readwrite a/#/b', 3, /not a topic filter/],
      ['pattern read a/%c+', 1, /not a topic filter/],
    ];
    for (const [text, line, problem] of cases) {
      let caught: unknown;
      try {
        parseAcl(text, '/etc/nearmesh/mqtt.acl');
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(MqttSecurityFileError);
      const error = caught as MqttSecurityFileError;
      expect(error.message).toMatch(new RegExp(`^/etc/nearmesh/mqtt.acl:${line}: `));
      expect(error.problem).toMatch(problem);
    }
  });

  it('refuses user sections where every line is for anonymous clients', () => {
    expect(() => parseAcl('topic read a\nuser x', 'mqtt.anonymous', { users: false })).toThrow(
      /^mqtt.anonymous:2: "user" sections belong in acl_file/,
    );
  });
});
