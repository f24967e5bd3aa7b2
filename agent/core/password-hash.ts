// Password hashes in mosquitto_passwd's formats, so its tool manages them: `$7$<iterations>$<base64 salt>$
// <base64 hash>` (PBKDF2-HMAC-SHA512, what mosquitto 2 writes) and `$6$<base64 salt>$<base64 hash>` (SHA-512
// of password and salt: `mosquitto_passwd -H sha512`, mosquitto 1.6). Only hashes are stored: reading a
// config or password file does not reveal a password. Checks compare in constant time.
import { createHash, pbkdf2, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

const HASH_BYTES = 64;
/** mosquitto_passwd's salts: 12 bytes; mosquitto also reads 64. */
const SALT_BYTES = [12, 64];
/** What `hashPassword` uses: mosquitto_passwd's own count. */
const DEFAULT_ITERATIONS = 101;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export const PASSWORD_HASH_FORMAT = '$7$<iterations>$<base64 salt>$<base64 64-byte hash> (mosquitto_passwd)';

export type PasswordHash =
  | {
      readonly kind: 'pbkdf2-sha512';
      readonly iterations: number;
      readonly salt: Buffer;
      readonly hash: Buffer;
    }
  | { readonly kind: 'sha512'; readonly salt: Buffer; readonly hash: Buffer };

/**
 * The hash `text` holds, or what is wrong with it. `maxIterations` bounds what one check may cost (a check
 * on the event loop must stay short).
 */
export function parsePasswordHash(text: string, maxIterations: number): PasswordHash | string {
  const parts = text.split('$');
  // "$7$iter$salt$hash" splits into ["", "7", iter, salt, hash]; "$6$salt$hash" into ["", "6", salt, hash].
  if (parts[0] !== '' || (parts[1] !== '6' && parts[1] !== '7')) {
    return 'expected a $7$ or $6$ hash; a plain-text password? hash it with `mosquitto_passwd -U <file>`';
  }
  const kind = parts[1] === '7' ? 'pbkdf2-sha512' : 'sha512';
  const fields = parts.slice(kind === 'sha512' ? 2 : 3);
  if (fields.length !== 2)
    return `expected ${kind === 'sha512' ? '$6$salt$hash' : '$7$iterations$salt$hash'}`;
  const [saltText, hashText] = fields as [string, string];
  const salt = decodeBase64(saltText);
  if (salt === undefined || !SALT_BYTES.includes(salt.length))
    return `expected a base64 salt of ${SALT_BYTES.join(' or ')} bytes`;
  const hash = decodeBase64(hashText);
  if (hash === undefined || hash.length !== HASH_BYTES)
    return `expected a base64 hash of ${HASH_BYTES} bytes`;
  if (kind === 'sha512') return { kind, salt, hash };
  const iterations = /^\d{1,9}$/.test(parts[2] ?? '') ? Number(parts[2]) : 0;
  if (iterations < 1 || iterations > maxIterations) return `expected 1..${maxIterations} iterations`;
  return { kind, iterations, salt, hash };
}

function decodeBase64(text: string): Buffer | undefined {
  if (!BASE64.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

/** Whether `password` is the one `stored` was made from, on the event loop (keep iterations low). */
export function verifyPassword(stored: PasswordHash, password: Buffer | string): boolean {
  const derived =
    stored.kind === 'pbkdf2-sha512'
      ? pbkdf2Sync(password, stored.salt, stored.iterations, HASH_BYTES, 'sha512')
      : createHash('sha512').update(password).update(stored.salt).digest();
  return timingSafeEqual(derived, stored.hash);
}

/** The same check with PBKDF2 off the event loop, for hashes with many iterations. */
export function verifyPasswordOffLoop(stored: PasswordHash, password: Buffer | string): Promise<boolean> {
  if (stored.kind === 'sha512') return Promise.resolve(verifyPassword(stored, password));
  return new Promise((resolve, reject) => {
    pbkdf2(password, stored.salt, stored.iterations, HASH_BYTES, 'sha512', (error, derived) => {
      if (error) reject(error);
      else resolve(timingSafeEqual(derived, stored.hash));
    });
  });
}

/** A hash of a password given in plain text (the config's MQTT password), so every user is checked alike. */
export function hashPassword(password: string): PasswordHash {
  const salt = randomBytes(12);
  const iterations = DEFAULT_ITERATIONS;
  const hash = pbkdf2Sync(password, salt, iterations, HASH_BYTES, 'sha512');
  return { kind: 'pbkdf2-sha512', iterations, salt, hash };
}
