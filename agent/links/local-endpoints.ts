// Where this agent accepts Wi-Fi/LAN links, as peers linked over BLE are told (ENDPOINTS): the TCP
// listener's address, or, for a wildcard listener, every IPv4 address of the machine's interfaces.
import { networkInterfaces } from 'node:os';

/** Enough for every interface a Pi has (wlan0, eth0, usb0) several times over. */
const MAX_LOCAL_ENDPOINTS = 8;

export function localEndpoints(
  listening: { host: string; port: number } | undefined,
  interfaces: ReturnType<typeof networkInterfaces> = networkInterfaces(),
): string[] {
  if (listening === undefined) return [];
  const isWildcard = listening.host === '0.0.0.0' || listening.host === '::';
  if (!isWildcard) return listening.host.includes(':') ? [] : [`${listening.host}:${listening.port}`];
  // IPv4 only: link-local IPv6 needs a zone that means nothing on the peer's side.
  const addresses = Object.values(interfaces)
    .flatMap((entries) => entries ?? [])
    .filter((entry) => entry.family === 'IPv4' && !entry.internal)
    .map((entry) => `${entry.address}:${listening.port}`);
  return [...new Set(addresses)].slice(0, MAX_LOCAL_ENDPOINTS);
}
