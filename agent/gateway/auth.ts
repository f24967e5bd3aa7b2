// Client authentication at CONNECT: fixed credentials (compared in constant time) or a caller's check.

import { timingSafeEqual } from 'node:crypto';

export type MqttAuthenticator = (
  username: string | undefined,
  password: Buffer | undefined,
  clientId: string,
) => boolean;

/** Required credentials, or a check; undefined accepts every client. */
export type MqttAuth = { username: string; password: string } | MqttAuthenticator;

export function authenticate(
  auth: MqttAuth | undefined,
  username: string | undefined,
  password: Buffer | undefined,
  clientId: string,
): boolean {
  if (auth === undefined) return true;
  if (typeof auth === 'function') {
    try {
      return auth(username, password, clientId);
    } catch {
      return false;
    }
  }
  if (username === undefined || password === undefined) return false;
  return (
    safeEqual(Buffer.from(username), Buffer.from(auth.username)) &&
    safeEqual(password, Buffer.from(auth.password))
  );
}

function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
