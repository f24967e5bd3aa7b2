// mosquitto_passwd's password file: one `user:<hash>` per line, the hash in one of its formats
// (core/password-hash.ts). Verified at CONNECT, on the event loop, so the iterations are bounded.
import { type PasswordHash, parsePasswordHash } from '../core/password-hash.js';
import { contentLines, MqttSecurityFileError } from './security-file.js';

/**
 * Verification runs on the event loop at every CONNECT: mosquitto_passwd's 101 iterations take ~0.1 ms;
 * this bound keeps a CONNECT to a few ms on a Pi Zero, so a flood of wrong passwords cannot stall the agent.
 */
export const MAX_MQTT_ITERATIONS = 1_000;

/** Users and their hashes, from a mosquitto_passwd file; `source` (its path) names it in errors. */
export function parsePasswordFile(text: string, source: string): Map<string, PasswordHash> {
  const users = new Map<string, PasswordHash>();
  for (const { number, text: line } of contentLines(text)) {
    const colon = line.indexOf(':');
    if (colon < 0) throw new MqttSecurityFileError(source, number, 'expected "user:hash" (mosquitto_passwd)');
    const user = line.slice(0, colon).trim();
    if (user === '') throw new MqttSecurityFileError(source, number, 'expected a user name before ":"');
    if (users.has(user))
      throw new MqttSecurityFileError(source, number, `user ${JSON.stringify(user)} again`);
    const hash = parsePasswordHash(line.slice(colon + 1).trim(), MAX_MQTT_ITERATIONS);
    if (typeof hash === 'string') throw new MqttSecurityFileError(source, number, hash);
    users.set(user, hash);
  }
  return users;
}
