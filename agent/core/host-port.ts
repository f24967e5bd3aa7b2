// "host:port" parsing shared by the config, the CLI and the transports, so every place accepts the same
// spellings (IPv6 only in brackets: "[::1]:7450") and rejects the same mistakes with the same words.
import { isIPv4, isIPv6 } from 'node:net';
import { NearmeshError } from './errors.js';

/** A host (IP literal without brackets, or a hostname) and a port. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface HostPortOptions {
  /** Accept port 0 (listen on an ephemeral port, for tests). Dialing port 0 makes no sense, so default false. */
  readonly allowPortZero?: boolean;
}

export type HostPortCheck =
  | { readonly ok: true; readonly value: HostPort }
  | { readonly ok: false; readonly expected: string };

/** A "host:port" string (from a config, a flag or a peer) that cannot be used. */
export class AddressError extends NearmeshError {
  constructor(
    readonly address: string,
    /** What was expected, e.g. `expected a port in 1..65535`. */
    readonly expected: string,
  ) {
    super('invalid-address', `invalid address ${JSON.stringify(address)}: ${expected}`);
  }
}

const HOSTNAME_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** RFC 1123 hostname, optionally with a trailing dot. An all-numeric last label is refused because it is a mistyped IPv4 address. */
export function isHostname(text: string): boolean {
  const name = text.endsWith('.') ? text.slice(0, -1) : text;
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.split('.');
  if (!labels.every((label) => HOSTNAME_LABEL.test(label))) return false;
  return !/^\d+$/.test(labels[labels.length - 1] ?? '');
}

/** Like parseHostPort, but returns what was expected instead of throwing (the config schema reports it with the key). */
export function checkHostPort(text: string, options: HostPortOptions = {}): HostPortCheck {
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':')
      return { ok: false, expected: 'expected "[IPv6]:port", like "[::1]:7450"' };
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!isIPv6(host)) return { ok: false, expected: 'expected an IPv6 address inside the brackets' };
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return { ok: false, expected: 'expected "host:port"' };
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':'))
      return { ok: false, expected: 'expected an IPv6 address in brackets, like "[::1]:7450"' };
    if (host === '')
      return { ok: false, expected: 'expected a host before the ":" (use "0.0.0.0" for every interface)' };
    if (!isIPv4(host) && !isHostname(host))
      return { ok: false, expected: 'expected an IPv4 address, "[IPv6]" or a hostname before the ":"' };
  }
  const lowest = options.allowPortZero === true ? 0 : 1;
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
  if (!(port >= lowest && port <= 65535))
    return { ok: false, expected: `expected a port in ${lowest}..65535 after the ":"` };
  return { ok: true, value: { host, port } };
}

/** Parses "host:port", "1.2.3.4:port" or "[v6]:port"; throws AddressError naming what was expected. */
export function parseHostPort(text: string, options: HostPortOptions = {}): HostPort {
  const result = checkHostPort(text, options);
  if (!result.ok) throw new AddressError(text, result.expected);
  return result.value;
}

/** The inverse of parseHostPort: brackets IPv6 hosts again. */
export function formatHostPort(address: HostPort): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/**
 * Whether a listener on `host` is reachable from this machine only: 127.0.0.0/8, ::1 (also IPv4-mapped)
 * or "localhost". A hostname that merely resolves to loopback is not trusted to keep doing so.
 */
export function isLoopbackHost(host: string): boolean {
  const lower = host.toLowerCase();
  if (lower === 'localhost' || lower === 'localhost.' || lower === '::1') return true;
  const v4 = lower.startsWith('::ffff:') ? lower.slice('::ffff:'.length) : lower;
  return isIPv4(v4) && v4.startsWith('127.');
}
