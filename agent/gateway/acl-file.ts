// mosquitto's ACL format (mosquitto.conf(5), acl_file): `user <name>` starts a user's section;
// `topic [read|write|readwrite|deny] <filter>` grants (or denies) a filter to the section's user, or to
// anonymous clients before any `user` line; `pattern [...] <filter>` applies to every client, with `%c`
// replaced by its client id and `%u` by its user name. No access word means readwrite. `#` starts a comment.
import { isValidTopicFilter } from '../core/topic-match.js';
import { contentLines, MqttSecurityFileError } from './security-file.js';

export type AclAccess = 'read' | 'write' | 'readwrite' | 'deny';

export interface AclRule {
  readonly access: AclAccess;
  /** A topic filter; in a pattern it may hold `%c` and `%u`. */
  readonly filter: string;
}

export interface AclRules {
  /** `topic` lines before any `user` line. */
  readonly anonymous: readonly AclRule[];
  readonly users: ReadonlyMap<string, readonly AclRule[]>;
  /** `pattern` lines, wherever they are. */
  readonly patterns: readonly AclRule[];
}

const ACCESS_WORDS: readonly string[] = ['read', 'write', 'readwrite', 'deny'];

/**
 * Parses ACL text; `source` names it in errors (a path, or the config key). Without `users`, a `user`
 * line is an error: the text is one client's rules, as `[mqtt] anonymous` is.
 */
export function parseAcl(text: string, source: string, { users = true }: { users?: boolean } = {}): AclRules {
  const anonymous: AclRule[] = [];
  const byUser = new Map<string, AclRule[]>();
  const patterns: AclRule[] = [];
  let section = anonymous;
  for (const { number, text: line } of contentLines(text)) {
    const fail = (problem: string): never => {
      throw new MqttSecurityFileError(source, number, problem);
    };
    const [keyword = '', rest = ''] = splitFirstWord(line);
    if (keyword === 'user') {
      if (!users) fail('"user" sections belong in acl_file; here every line is for anonymous clients');
      if (rest === '') fail('expected a user name after "user"');
      section = byUser.get(rest) ?? [];
      byUser.set(rest, section);
      continue;
    }
    if (keyword !== 'topic' && keyword !== 'pattern') fail('expected "topic", "pattern" or "user"');
    const rule = parseRule(rest) ?? fail(`expected "${keyword} [read|write|readwrite|deny] <topic filter>"`);
    if (!isValidTopicFilter(rule.filter))
      fail(
        `${JSON.stringify(rule.filter)} is not a topic filter ("+" and "#" only as whole levels, "#" last)`,
      );
    (keyword === 'pattern' ? patterns : section).push(rule);
  }
  return { anonymous, users: byUser, patterns };
}

function parseRule(text: string): AclRule | undefined {
  const [first = '', after = ''] = splitFirstWord(text);
  if (!ACCESS_WORDS.includes(first)) return text === '' ? undefined : { access: 'readwrite', filter: text };
  return after === '' ? undefined : { access: first as AclAccess, filter: after };
}

/** The first word and the rest of the line, each without the blanks around it. */
function splitFirstWord(text: string): [string, string] {
  const match = /^(\S+)\s*(.*)$/.exec(text);
  return match === null ? ['', ''] : [match[1] as string, (match[2] as string).trim()];
}
