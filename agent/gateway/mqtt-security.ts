// The local endpoint's access control, assembled at start from the [mqtt] keys (docs/MQTT.md, "Access
// control"): who may connect (password_file, username/password, anonymous clients on loopback only) and
// what each may do (acl_file for users, `anonymous` or the built-in rules for anonymous clients).

import { hashPassword, type PasswordHash, verifyPassword } from '../core/password-hash.js';
import {
  AclTopicRules,
  ALL_TOPICS,
  LOCAL_APPS_DEFAULT,
  MqttAccessControl,
  type TopicAccess,
  type TopicRules,
} from './access-control.js';
import { type AclRules, parseAcl } from './acl-file.js';
import type { MqttAuthenticator } from './auth.js';
import { parsePasswordFile } from './password-file.js';
import { MqttSecurityFileError, readSecurityFile } from './security-file.js';

export interface MqttSecuritySettings {
  /** Absolute path of a mosquitto_passwd file. */
  readonly passwordFile?: string;
  /** Absolute path of a mosquitto ACL file. */
  readonly aclFile?: string;
  /** ACL lines for anonymous clients; absent: the acl_file's, else the built-in rules. */
  readonly anonymous?: readonly string[];
  /** `[mqtt] username` and `password`: one more user. */
  readonly credentials?: { readonly username: string; readonly password: string };
  /** Whether the endpoint listens on loopback only: anonymous clients are served nowhere else. */
  readonly loopback: boolean;
}

export interface MqttSecurity {
  readonly authenticate: MqttAuthenticator;
  readonly access: TopicAccess;
}

/** Reads the files and builds the checks; a bad file rejects with MqttSecurityFileError naming it. */
export async function loadMqttSecurity(settings: MqttSecuritySettings): Promise<MqttSecurity> {
  const { passwordFile, aclFile } = settings;
  const users =
    passwordFile === undefined
      ? new Map<string, PasswordHash>()
      : parsePasswordFile(await readSecurityFile('mqtt.password_file', passwordFile), passwordFile);
  const extra = settings.credentials;
  if (extra !== undefined) {
    if (users.has(extra.username))
      throw new MqttSecurityFileError(
        passwordFile as string,
        undefined,
        `user ${JSON.stringify(extra.username)} is also [mqtt] username: keep it in one place`,
      );
    users.set(extra.username, hashPassword(extra.password));
  }
  const acl =
    aclFile === undefined ? undefined : parseAcl(await readSecurityFile('mqtt.acl_file', aclFile), aclFile);
  const logins = passwordFile !== undefined || extra !== undefined;
  const anonymous = anonymousRules(settings, acl, logins);
  const access = new MqttAccessControl({
    isUser: (username) => users.has(username),
    users:
      acl === undefined
        ? ALL_TOPICS
        : new AclTopicRules((client) => acl.users.get(client.username ?? '') ?? [], acl.patterns),
    anonymous,
  });
  const authenticate: MqttAuthenticator = (username, password) => {
    // Without logins a user name proves nothing: the client is anonymous (access-control.ts).
    if (username === undefined || !logins) return anonymous !== undefined;
    const stored = users.get(username);
    return stored !== undefined && password !== undefined && verifyPassword(stored, password);
  };
  return { authenticate, access };
}

/** Anonymous clients' rules, or undefined when they are refused at CONNECT. */
function anonymousRules(
  settings: MqttSecuritySettings,
  acl: AclRules | undefined,
  logins: boolean,
): TopicRules | undefined {
  if (!settings.loopback) return undefined;
  const inAclFile = acl !== undefined && acl.anonymous.length > 0;
  if (settings.anonymous !== undefined) {
    if (inAclFile)
      throw new MqttSecurityFileError(
        settings.aclFile as string,
        undefined,
        'has rules for anonymous clients (before any "user" line), and so has [mqtt] anonymous: keep one',
      );
    const rules = parseAcl(settings.anonymous.join('\n'), 'mqtt.anonymous', { users: false });
    return new AclTopicRules(() => rules.anonymous, rules.patterns);
  }
  if (inAclFile) return new AclTopicRules(() => acl.anonymous, acl.patterns);
  // With logins configured, anonymous clients are refused unless rules say what they may do (mosquitto 2).
  return logins ? undefined : LOCAL_APPS_DEFAULT;
}
