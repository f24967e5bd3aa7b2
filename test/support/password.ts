// Password hashes as mosquitto_passwd writes them, for tests of what checks them.
import { pbkdf2Sync, randomBytes } from 'node:crypto';

/** A `$7$` hash of `password` (PBKDF2-SHA512), with few iterations so the tests stay quick. */
export function mosquittoPasswdHash(password: string): string {
  const salt = randomBytes(12);
  const hash = pbkdf2Sync(password, salt, 1000, 64, 'sha512');
  return `$7$1000$${salt.toString('base64')}$${hash.toString('base64')}`;
}
