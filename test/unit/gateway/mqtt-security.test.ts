import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../../agent/core/password-hash.js';
import { loadMqttSecurity } from '../../../agent/gateway/mqtt-security.js';

const dir = mkdtempSync(join(tmpdir(), 'nearmesh-mqtt-security-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** A mosquitto_passwd line, made the way mosquitto_passwd makes it (PBKDF2-SHA512, 101 iterations). */
function passwdLine(user: string, password: string): string {
  const stored = hashPassword(password);
  if (stored.kind !== 'pbkdf2-sha512') throw new Error('expected a $7$ hash');
  return `${user}:$7$${stored.iterations}$${stored.salt.toString('base64')}$${stored.hash.toString('base64')}`;
}

const anon = { clientId: 'app', username: undefined };
const pw = (text: string) => Buffer.from(text);

describe('loadMqttSecurity', () => {
  it('without logins: anonymous local clients get the default rules, a user name changes nothing', async () => {
    const { authenticate, access } = await loadMqttSecurity({ loopback: true });
    expect(authenticate(undefined, undefined, 'app')).toBe(true);
    expect(authenticate('someone', pw('anything'), 'app')).toBe(true);
    expect(access.mayPublish(anon, 'app/x')).toBe(true);
    expect(access.mayPublish(anon, 'nearmesh/send/all')).toBe(false);
    expect(access.mayPublish({ clientId: 'app', username: 'someone' }, 'nearmesh/send/all')).toBe(false);
  });

  it('with a password file: its users and [mqtt] username may log in, get everything without acl_file; anonymous clients are refused', async () => {
    const passwordFile = file('users', `${passwdLine('alice', 'a-pass')}\n`);
    const { authenticate, access } = await loadMqttSecurity({
      loopback: true,
      passwordFile,
      credentials: { username: 'apps', password: 'apps-pass' },
    });
    expect(authenticate('alice', pw('a-pass'), 'c')).toBe(true);
    expect(authenticate('alice', pw('apps-pass'), 'c')).toBe(false);
    expect(authenticate('apps', pw('apps-pass'), 'c')).toBe(true);
    expect(authenticate('bob', pw('a-pass'), 'c')).toBe(false);
    expect(authenticate('alice', undefined, 'c')).toBe(false);
    expect(authenticate(undefined, undefined, 'c')).toBe(false);
    expect(access.mayPublish({ clientId: 'c', username: 'alice' }, 'nearmesh/send/all')).toBe(true);
  });

  it('anonymous rules come from [mqtt] anonymous or the acl_file, not both; never off loopback', async () => {
    const aclFile = file('acl', 'topic read public/#\nuser alice\ntopic readwrite #\n');
    const passwordFile = file('users2', `${passwdLine('alice', 'a-pass')}\n`);
    const fromFile = await loadMqttSecurity({ loopback: true, passwordFile, aclFile });
    expect(fromFile.authenticate(undefined, undefined, 'c')).toBe(true);
    expect(fromFile.access.mayRead(anon, 'public/x')).toBe(true);
    expect(fromFile.access.mayPublish(anon, 'public/x')).toBe(false);

    const fromKey = await loadMqttSecurity({
      loopback: true,
      passwordFile,
      anonymous: ['topic readwrite app/#'],
    });
    expect(fromKey.access.mayPublish(anon, 'app/x')).toBe(true);
    expect(fromKey.access.mayPublish(anon, 'other')).toBe(false);

    await expect(
      loadMqttSecurity({ loopback: true, passwordFile, aclFile, anonymous: ['topic read #'] }),
    ).rejects.toThrow(/acl: has rules for anonymous clients .* and so has \[mqtt\] anonymous: keep one$/);

    const wide = await loadMqttSecurity({ loopback: false, passwordFile, aclFile });
    expect(wide.authenticate(undefined, undefined, 'c')).toBe(false);
    expect(wide.access.mayRead(anon, 'public/x')).toBe(false);
  });

  it('stops on a missing or bad file, naming it (and the line)', async () => {
    await expect(loadMqttSecurity({ loopback: true, passwordFile: join(dir, 'none') })).rejects.toThrow(
      /none: cannot read it \(mqtt.password_file\): ENOENT/,
    );
    const bad = file('bad-acl', 'user a\ntopic readwrite x\ntopics read y\n');
    await expect(loadMqttSecurity({ loopback: true, aclFile: bad })).rejects.toThrow(
      /bad-acl:3: expected "topic"/,
    );
    const dup = file('dup', `${passwdLine('apps', 'x')}\n`);
    await expect(
      loadMqttSecurity({
        loopback: true,
        passwordFile: dup,
        credentials: { username: 'apps', password: 'y' },
      }),
    ).rejects.toThrow(/user "apps" is also \[mqtt\] username/);
  });
});
