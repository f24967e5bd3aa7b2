// Options of the MQTT upstream bridge: their types, their validation and the defaults.
// Validation happens once, in the constructor, so a bad config fails at startup with a typed error
// instead of surfacing later as a confusing connect or subscribe failure in the background.

import { createSecureContext } from 'node:tls';
import type { Counters } from '../core/counters.js';
import { NearmeshError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { isValidTopicFilter, isValidTopicName } from '../core/topic-match.js';

/** Bad bridge options: the config is wrong, retrying cannot help. */
export class UpstreamConfigError extends NearmeshError {
  constructor(message: string) {
    super('mqtt-upstream-config', message);
  }
}

export interface UpstreamTlsOptions {
  /** CA certificate(s) (PEM) the upstream's certificate must chain to; default: the system CAs. */
  ca?: Buffer;
  /** Client certificate and key (PEM), for brokers that authenticate clients by certificate. */
  cert?: Buffer;
  key?: Buffer;
  /** Default true. Turning it off accepts any certificate: only for tests and closed networks. */
  rejectUnauthorized?: boolean;
}

export interface UpstreamBridgeOptions {
  /**
   * `mqtt://host[:port]` (default port 1883) or `mqtts://host[:port]` (8883). Other schemes are rejected.
   * Credentials in the URL are accepted but `username` / `password` win; they never show in `state()`.
   */
  url: string;
  /** Stable across restarts: the upstream broker keys our persistent session (subscriptions, queue) on it. */
  clientId: string;
  username?: string;
  password?: string;
  /** Only with `mqtts://`: TLS settings given with a plain `mqtt://` URL are a config mistake. */
  tls?: UpstreamTlsOptions;
  /** Local topic filters whose messages `forward` sends upstream. */
  out: readonly string[];
  /** Local topic filters (the prefix is added) subscribed to upstream and emitted as 'message'. */
  in: readonly string[];
  /** Prepended to every topic upstream ("site-a/"), stripped from every topic coming in. Default ''. */
  remotePrefix?: string;
  /** Messages kept while the upstream is unreachable; beyond it the oldest is dropped. Default 1000. */
  maxQueued?: number;
  /** This agent's peer id: stamped on what we send upstream, so we recognise (and drop) our own echo. */
  originId: string;
  counters?: Counters;
  log?: Logger;
  /** Reconnect backoff: the first retry after `reconnectMinMs` (1 s), doubling up to `reconnectMaxMs` (30 s). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** How long a connect attempt (TCP + TLS + CONNACK) may take. Default 10 s. */
  connectTimeoutMs?: number;
  /** How long the upstream keeps our session (subscriptions, queued QoS 1 messages) while we are away. Default 1 day. */
  sessionExpirySeconds?: number;
  /** What the upstream publishes for us if we vanish without a DISCONNECT (a local topic: the prefix is added). */
  will?: UpstreamWill;
}

export interface UpstreamWill {
  topic: string;
  payload: Buffer;
  qos: 0 | 1;
  retain: boolean;
}

/** Where to connect, from the URL; `display` is the URL with any credentials removed, safe to log. */
export interface UpstreamEndpoint {
  protocol: 'mqtt' | 'mqtts';
  host: string;
  port: number;
  display: string;
  urlUsername?: string;
  urlPassword?: string;
}

/** Validated options with every default filled in. */
export interface ResolvedUpstreamOptions {
  endpoint: UpstreamEndpoint;
  clientId: string;
  username: string | undefined;
  password: string | undefined;
  tls: UpstreamTlsOptions | undefined;
  out: readonly string[];
  in: readonly string[];
  remotePrefix: string;
  maxQueued: number;
  originId: string;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  connectTimeoutMs: number;
  sessionExpirySeconds: number;
  will: UpstreamWill | undefined;
}

const DEFAULTS = {
  remotePrefix: '',
  maxQueued: 1000,
  reconnectMinMs: 1000,
  reconnectMaxMs: 30_000,
  connectTimeoutMs: 10_000,
  sessionExpirySeconds: 24 * 60 * 60,
};

/** Checks every option and fills in the defaults; throws `UpstreamConfigError` on the first problem. */
export function resolveUpstreamOptions(options: UpstreamBridgeOptions): ResolvedUpstreamOptions {
  const endpoint = parseUpstreamUrl(options.url);
  if (options.tls !== undefined && endpoint.protocol !== 'mqtts')
    throw new UpstreamConfigError(`TLS options need an mqtts:// URL, got ${endpoint.display}`);
  if (options.tls !== undefined) checkTlsMaterial(options.tls);
  if (options.clientId.length === 0) throw new UpstreamConfigError('the upstream client id is empty');
  if (options.originId.length === 0) throw new UpstreamConfigError('the origin id is empty');
  const remotePrefix = options.remotePrefix ?? DEFAULTS.remotePrefix;
  if (['+', '#', '\u0000'].some((c) => remotePrefix.includes(c)))
    throw new UpstreamConfigError(
      `the remote prefix may not contain +, # or NUL: ${JSON.stringify(remotePrefix)}`,
    );
  checkFilters('out', options.out, remotePrefix);
  checkFilters('in', options.in, remotePrefix);
  const resolved: ResolvedUpstreamOptions = {
    endpoint,
    clientId: options.clientId,
    username: options.username ?? endpoint.urlUsername,
    password: options.password ?? endpoint.urlPassword,
    tls: options.tls,
    out: [...options.out],
    in: [...options.in],
    remotePrefix,
    maxQueued: options.maxQueued ?? DEFAULTS.maxQueued,
    originId: options.originId,
    reconnectMinMs: options.reconnectMinMs ?? DEFAULTS.reconnectMinMs,
    reconnectMaxMs: options.reconnectMaxMs ?? DEFAULTS.reconnectMaxMs,
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
    sessionExpirySeconds: options.sessionExpirySeconds ?? DEFAULTS.sessionExpirySeconds,
    will: options.will,
  };
  if (options.will !== undefined && !isValidTopicName(remotePrefix + options.will.topic))
    throw new UpstreamConfigError(`invalid will topic: ${JSON.stringify(options.will.topic)}`);
  positiveInteger('maxQueued', resolved.maxQueued);
  positiveInteger('reconnectMinMs', resolved.reconnectMinMs);
  positiveInteger('reconnectMaxMs', resolved.reconnectMaxMs);
  positiveInteger('connectTimeoutMs', resolved.connectTimeoutMs);
  if (resolved.reconnectMaxMs < resolved.reconnectMinMs)
    throw new UpstreamConfigError('reconnectMaxMs is smaller than reconnectMinMs');
  if (
    !Number.isInteger(resolved.sessionExpirySeconds) ||
    resolved.sessionExpirySeconds < 0 ||
    resolved.sessionExpirySeconds > 0xffff_ffff
  )
    throw new UpstreamConfigError('sessionExpirySeconds must be an integer from 0 to 4294967295');
  return resolved;
}

/** Parses `mqtt://` / `mqtts://` URLs; anything else (ws, tcp, a typo) is a config error. */
export function parseUpstreamUrl(url: string): UpstreamEndpoint {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // The raw string may hold a password: never echo it.
    throw new UpstreamConfigError('the upstream URL is not a valid URL');
  }
  const protocol = parsed.protocol.slice(0, -1);
  if (protocol !== 'mqtt' && protocol !== 'mqtts')
    throw new UpstreamConfigError(`the upstream URL must be mqtt:// or mqtts://, not ${parsed.protocol}//`);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1'); // IPv6 literals come bracketed
  if (host.length === 0) throw new UpstreamConfigError('the upstream URL has no host');
  const port = parsed.port === '' ? (protocol === 'mqtts' ? 8883 : 1883) : Number(parsed.port);
  const endpoint: UpstreamEndpoint = {
    protocol,
    host,
    port,
    display: `${protocol}://${parsed.hostname}:${port}`,
  };
  if (parsed.username !== '') endpoint.urlUsername = decodeURIComponent(parsed.username);
  if (parsed.password !== '') endpoint.urlPassword = decodeURIComponent(parsed.password);
  return endpoint;
}

/** Unreadable PEM would otherwise fail every connect attempt in the background, forever. */
function checkTlsMaterial(tls: UpstreamTlsOptions): void {
  // Node silently skips a CA that is not PEM, which would leave no trusted CA at all.
  if (tls.ca !== undefined && !tls.ca.toString('latin1').includes('-----BEGIN CERTIFICATE-----'))
    throw new UpstreamConfigError('the TLS CA is not a PEM certificate');
  try {
    createSecureContext({
      ...(tls.ca === undefined ? {} : { ca: tls.ca }),
      ...(tls.cert === undefined ? {} : { cert: tls.cert }),
      ...(tls.key === undefined ? {} : { key: tls.key }),
    });
  } catch (error) {
    // The message names the failing part (e.g. "bad decrypt"); key material itself is never in it.
    throw new UpstreamConfigError(`unusable TLS material: ${(error as Error).message}`);
  }
}

function checkFilters(which: 'in' | 'out', filters: readonly string[], prefix: string): void {
  for (const filter of filters) {
    if (!isValidTopicFilter(filter) || !isValidTopicFilter(prefix + filter))
      throw new UpstreamConfigError(`invalid "${which}" topic filter: ${JSON.stringify(filter)}`);
  }
}

function positiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1)
    throw new UpstreamConfigError(`${name} must be a positive integer, got ${value}`);
}
