// The console password's `$7$` form is mosquitto_passwd's: a hash it wrote verifies here, and what
// OPERATIONS.md tells people to run makes one.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { MAX_CONSOLE_ITERATIONS } from '../../../agent/console/login.js';
import {
  type PasswordHash,
  parsePasswordHash,
  verifyPasswordOffLoop,
} from '../../../agent/core/password-hash.js';

function parsed(text: string): PasswordHash & { kind: 'pbkdf2-sha512' } {
  const hash = parsePasswordHash(text, MAX_CONSOLE_ITERATIONS);
  if (typeof hash === 'string' || hash.kind !== 'pbkdf2-sha512')
    throw new Error(`not a $7$ hash: ${String(hash)}`);
  return hash;
}

/** Written by `mosquitto_passwd -b FILE console 'hunter2 x'` (mosquitto 2.0). */
const FROM_MOSQUITTO =
  '$7$101$zm1OLFE2GNDUxHAH$ObQU6TUIoplqmypW5MHrubOEAvkcBZKsdKTflpsQLMOXiEhHP2zbGB2DV/m921YWnVSD6wVH9LOjKPzHL1kyPQ==';

/** The one-liner of OPERATIONS.md ("Console"): the password comes in $PW, never on a command line. */
const DOCUMENTED_RECIPE =
  'const c=require("crypto"),s=c.randomBytes(12),i=100000;' +
  'console.log(`$7$${i}$${s.toString("base64")}$${c.pbkdf2Sync(process.env.PW,s,i,64,"sha512").toString("base64")}`)';

describe('password hash (console and MQTT)', () => {
  it('verifies a hash mosquitto_passwd wrote, and refuses another password', async () => {
    const stored = parsed(FROM_MOSQUITTO);
    expect(stored.iterations).toBe(101);
    expect(await verifyPasswordOffLoop(stored, 'hunter2 x')).toBe(true);
    expect(await verifyPasswordOffLoop(stored, 'hunter2')).toBe(false);
  });

  it('makes one with the documented node one-liner', async () => {
    const line = execFileSync(process.execPath, ['-e', DOCUMENTED_RECIPE], {
      encoding: 'utf8',
      env: { ...process.env, PW: 's3cret pass' },
    });
    const stored = parsed(line.trim());
    expect(stored.iterations).toBe(100_000);
    expect(await verifyPasswordOffLoop(stored, 's3cret pass')).toBe(true);
  });

  it.each([
    ['a plain password', 'hunter2'],
    ['another algorithm', FROM_MOSQUITTO.replace('$7$', '$5$')],
    ['no iterations', FROM_MOSQUITTO.replace('$101$', '$0$')],
    ['too many iterations', FROM_MOSQUITTO.replace('$101$', '$99999999$')],
    ['a short hash', FROM_MOSQUITTO.slice(0, -20)],
    ['text around it', ` ${FROM_MOSQUITTO}`],
  ])('refuses %s', (_what, text) => {
    expect(typeof parsePasswordHash(text, MAX_CONSOLE_ITERATIONS)).toBe('string');
  });
});
