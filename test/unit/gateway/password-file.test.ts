import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hashPassword, verifyPassword } from '../../../agent/core/password-hash.js';
import { parsePasswordFile } from '../../../agent/gateway/password-file.js';
import { MqttSecurityFileError } from '../../../agent/gateway/security-file.js';
import { describeWhenAvailable } from '../../support/requirements.js';

const MOSQUITTO_PASSWD = '/usr/bin/mosquitto_passwd';
const missing =
  spawnSync(MOSQUITTO_PASSWD, ['-h']).error === undefined
    ? undefined
    : `${MOSQUITTO_PASSWD} is not installed (apt-get install mosquitto)`;

const dir = mkdtempSync(join(tmpdir(), 'nearmesh-passwd-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the real mosquitto_passwd (batch mode: the password on the command line). */
function mosquittoPasswd(args: string[]): void {
  const result = spawnSync(MOSQUITTO_PASSWD, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`mosquitto_passwd ${args.join(' ')} failed: ${result.stderr}`);
}

describeWhenAvailable('a password file written by mosquitto_passwd', missing, () => {
  it('verifies its $7$ (PBKDF2-SHA512) users, and refuses wrong passwords', () => {
    const file = join(dir, 'pbkdf2');
    mosquittoPasswd(['-c', '-b', file, 'alice', 'correct horse']);
    mosquittoPasswd(['-b', file, 'bob', 'p:w$ünï']);
    const text = readFileSync(file, 'utf8');
    const users = parsePasswordFile(text, file);
    expect(text).toMatch(/^alice:\$7\$\d+\$/);
    expect([...users.keys()]).toEqual(['alice', 'bob']);
    expect(verifyPassword(users.get('alice')!, Buffer.from('correct horse'))).toBe(true);
    expect(verifyPassword(users.get('alice')!, Buffer.from('correct horse '))).toBe(false);
    expect(verifyPassword(users.get('bob')!, Buffer.from('p:w$ünï'))).toBe(true);
    expect(verifyPassword(users.get('bob')!, Buffer.from('correct horse'))).toBe(false);
  });

  it('verifies the $6$ (salted SHA-512) hashes of `mosquitto_passwd -H sha512`', () => {
    const file = join(dir, 'sha512');
    mosquittoPasswd(['-H', 'sha512', '-c', '-b', file, 'carol', 's3cret']);
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/^carol:\$6\$/);
    const carol = parsePasswordFile(text, file).get('carol')!;
    expect(verifyPassword(carol, Buffer.from('s3cret'))).toBe(true);
    expect(verifyPassword(carol, Buffer.from('s3cret!'))).toBe(false);
  });

  it('reads a file mosquitto_passwd -D has edited, comments and blank lines included', () => {
    const file = join(dir, 'edited');
    mosquittoPasswd(['-c', '-b', file, 'one', 'x']);
    mosquittoPasswd(['-b', file, 'two', 'y']);
    mosquittoPasswd(['-D', file, 'one']);
    const users = parsePasswordFile(`# apps on this Pi\n\n${readFileSync(file, 'utf8')}`, file);
    expect([...users.keys()]).toEqual(['two']);
  });
});

describe('parsePasswordFile', () => {
  const errorOf = (text: string): MqttSecurityFileError => {
    try {
      parsePasswordFile(text, '/etc/nearmesh/mqtt.passwd');
    } catch (error) {
      if (error instanceof MqttSecurityFileError) return error;
      throw error;
    }
    throw new Error('no error');
  };
  const good =
    'alice:$7$101$MO1z9wDhfl5Wip+3$d5HjFrPiTKW33+7jLKwLwnMTkCmusfoEXIfzJalHObrhEnQSGnQO/Y1uFMuYFwUb4a3DP62SI/rjmHbaxzjfVQ==';

  it('names the file and the line of a mistake', () => {
    const cases: Array<[string, number, RegExp]> = [
      [`${good}\nbob:plaintext`, 2, /mosquitto_passwd -U/],
      [`# users\nnocolon`, 2, /expected "user:hash"/],
      [`:$7$101$x$y`, 1, /user name/],
      [`${good}\n${good}`, 2, /"alice" again/],
      [`a:$7$0$MO1z9wDhfl5Wip+3$${good.split('$')[4]}`, 1, /iterations/],
      [`a:$7$999999999$MO1z9wDhfl5Wip+3$${good.split('$')[4]}`, 1, /iterations/],
      [`a:$7$101$c2hvcnQ=$${good.split('$')[4]}`, 1, /salt of 12 or 64 bytes/],
      ['a:$7$101$MO1z9wDhfl5Wip+3$AAAA', 1, /hash of 64 bytes/],
      ['a:$7$101$MO1z9wDhfl5Wip+3', 1, /\$7\$iterations\$salt\$hash/],
    ];
    for (const [text, line, problem] of cases) {
      const error = errorOf(text);
      expect(error.code).toBe('mqtt-security-file');
      expect(error.message).toMatch(new RegExp(`^/etc/nearmesh/mqtt.passwd:${line}: `));
      expect(error.problem).toMatch(problem);
    }
  });

  it('hashes a configured password so it verifies like a file entry', () => {
    const stored = hashPassword('from-the-config');
    expect(verifyPassword(stored, Buffer.from('from-the-config'))).toBe(true);
    expect(verifyPassword(stored, Buffer.from('from-the-confiG'))).toBe(false);
  });
});
