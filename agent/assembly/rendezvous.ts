// `[rendezvous]` made into a running RendezvousResolver: the broker is [mqtt.upstream]'s (its URL, credentials
// and TLS files) unless the table names its own URL; what it announces is `announce`, or where the listener
// accepts links. Loaded only when enabled, like the upstream bridge it connects through.
import type { Config } from '../config/index.js';
import type { Counters } from '../core/counters.js';
import type { Logger } from '../core/logger.js';
import type { RendezvousResolver } from '../gateway/rendezvous-resolver.js';
import type { Identity } from '../identity/identity.js';
import { localEndpoints } from '../links/local-endpoints.js';
import type { Media } from './media.js';
import { readBridgeTls } from './mqtt-endpoint.js';

export interface RendezvousParts {
  config: Config;
  identity: Identity;
  media: Media;
  meshKeys: () => readonly Uint8Array[];
  hasMesh: () => boolean;
  isRevoked: (peerId: string) => boolean;
  counters: Counters;
  log: Logger;
}

/** The resolver, or undefined when `[rendezvous]` is off. */
export async function openRendezvous(parts: RendezvousParts): Promise<RendezvousResolver | undefined> {
  const { config, identity, media } = parts;
  const settings = config.rendezvous;
  if (!settings.enabled) return undefined;
  const [{ RendezvousResolver }, { UpstreamBridge }] = await Promise.all([
    import('../gateway/rendezvous-resolver.js'),
    import('../gateway/upstream-bridge.js'),
  ]);
  const upstream = config.mqtt.upstream;
  const clientId = `${upstream?.clientId ?? `nearmesh-${identity.peerId}`}-rendezvous`;
  // The config check guarantees a broker: its own URL, or the upstream's.
  const connection =
    settings.url !== undefined || upstream === undefined
      ? { url: settings.url ?? '', clientId }
      : await upstreamConnection(upstream, clientId);
  return new RendezvousResolver({
    connection,
    prefix: settings.prefix,
    identity,
    name: config.name,
    meshKeys: parts.meshKeys,
    hasMesh: parts.hasMesh,
    endpoints: () => [...(settings.announce ?? localEndpoints(media.tcp?.address()))],
    ttlS: settings.ttlS,
    isRevoked: parts.isRevoked,
    maxRecords: settings.maxRecords,
    connect: (options) => new UpstreamBridge(options),
    counters: parts.counters,
    log: parts.log,
  });
}

async function upstreamConnection(upstream: NonNullable<Config['mqtt']['upstream']>, clientId: string) {
  const tls = await readBridgeTls(upstream);
  return {
    url: upstream.url,
    clientId,
    ...(upstream.credentials !== undefined && upstream.credentials),
    ...(tls !== undefined && { tls }),
  };
}
