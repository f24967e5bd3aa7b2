// The text the CLI and the console print for status, peers, routes, links, call results and trace
// lines: written once, here.
import type {
  CallResultRow,
  HttpState,
  MeshAgentInfo,
  MqttState,
  PeerInfo,
  ResolverInfo,
  RouteInfo,
  SecurityStatus,
  StatusReport,
  TraceEvent,
  TransferInfo,
} from '../api.js';
import type { Telemetry } from '../ops/telemetry.js';
import { formatTable } from './table.js';

export function formatStatus(status: StatusReport): string {
  const lines = [
    `id        ${status.id}`,
    `name      ${status.name}`,
    `version   ${status.version} (protocol ${status.protocol})`,
    `uptime    ${status.uptime_s} s`,
    `wifi      ${status.wifi.listen ?? 'off'}${status.wifi.discovery.length > 0 ? ` (discovery: ${status.wifi.discovery.join(', ')})` : ''}`,
    `ble       ${status.ble}${status.ble_scan_duty == null ? '' : ` (scan duty ${Math.round(status.ble_scan_duty * 100)}%)`}`,
    `peers     ${status.peers.connected} connected, ${status.peers.routed} through the mesh, ${status.peers.known} known`,
    `resolvers ${status.resolvers.map((r) => `${r.name} ${r.state} (${r.candidates})`).join(', ') || 'none'}`,
    `mesh      ${describeMesh(status.mesh)}`,
    `mqtt      ${describeMqtt(status.mqtt)}`,
    `http      ${describeHttp(status.http)}`,
    `queued    ${status.queued.messages} reliable messages (${status.queued.bytes} bytes) waiting for their peers`,
    `inbox     ${status.inbox.messages} messages (${status.inbox.bytes} bytes) waiting for ${status.inbox.consumers} consumer${status.inbox.consumers === 1 ? '' : 's'}${status.inbox.oldest_at === null ? '' : `, oldest ${status.inbox.oldest_at}`}`,
    `security  ${describeSecurity(status.security)}`,
    `loop      delay max ${status.event_loop.delay_max_ms} ms, p99 ${status.event_loop.delay_p99_ms} ms (last 10-20 s)`,
    `board     ${status.board.name}${status.board.model === null ? '' : ` (${status.board.model})`}`,
    `device    ${describeTelemetry(status.telemetry)}`,
    `data dir  ${status.data_dir}`,
    `socket    ${status.control_socket}`,
  ];
  const counters = Object.entries(status.counters);
  if (counters.length > 0) lines.push('counters', ...counters.map(([name, value]) => `  ${name} ${value}`));
  return `${lines.join('\n')}\n`;
}

function describeMesh(mesh: StatusReport['mesh']): string {
  const name =
    mesh.name === null
      ? 'none yet (waiting to be invited: `nearmesh join CODE`; `nearmesh invite` founds one)'
      : mesh.name === ''
        ? 'unnamed'
        : `"${mesh.name}"`;
  const groups = mesh.groups.length > 0 ? `, groups ${mesh.groups.join(', ')}` : '';
  return `${name}, ttl ${mesh.ttl}, ${mesh.relay ? 'relaying' : 'not relaying'}${groups}`;
}

function describeSecurity(security: SecurityStatus): string {
  const parts = [`key epoch ${security.key_epoch}`];
  if (security.previous_key_until !== null)
    parts.push(`previous key accepted until ${security.previous_key_until}`);
  parts.push(`${security.revoked} revoked`);
  parts.push(security.admins.length === 0 ? 'admins: any member' : `admins: ${security.admins.join(', ')}`);
  const shunned = security.neighbours_blamed.filter((row) => row.shunned_until !== null).length;
  if (shunned > 0) parts.push(`${shunned} neighbour${shunned === 1 ? '' : 's'} shunned`);
  return parts.join(', ');
}

function describeHttp(http: HttpState): string {
  if (http.state === 'off') return 'off';
  if (http.state === 'unavailable') return `not serving: ${http.reason}`;
  return `${http.listen}, /metrics`;
}

function describeMqtt(mqtt: MqttState): string {
  if (mqtt.state === 'off') return 'off';
  if (mqtt.state === 'unavailable') return `not serving: ${mqtt.reason}`;
  const clients = `${mqtt.listen}, ${mqtt.clients} client${mqtt.clients === 1 ? '' : 's'}`;
  if (mqtt.upstream === null) return clients;
  const link = mqtt.upstream.connected ? 'connected' : 'not connected';
  return `${clients}; upstream ${mqtt.upstream.url} ${link}, ${mqtt.upstream.queued} queued`;
}

/** One line: temperature, load, memory and disk, whatever the device reports. */
function describeTelemetry(telemetry: Telemetry): string {
  const parts: string[] = [];
  if (telemetry.cpu_temp !== null) parts.push(`${telemetry.cpu_temp.celsius.toFixed(1)} °C`);
  if (telemetry.load !== null) parts.push(`load ${telemetry.load.avg_1m.toFixed(2)}`);
  if (telemetry.memory?.available_bytes != null)
    parts.push(`${mib(telemetry.memory.available_bytes)} MiB free memory`);
  if (telemetry.disk !== null) parts.push(`${mib(telemetry.disk.available_bytes)} MiB free disk`);
  return parts.length === 0 ? '-' : parts.join(', ');
}

function mib(bytes: number): number {
  return Math.round(bytes / 2 ** 20);
}

export function formatPeers(peers: readonly PeerInfo[]): string {
  if (peers.length === 0) return 'no peers yet\n';
  const nameOf = (id: string | null): string => peers.find((peer) => peer.id === id)?.name ?? id ?? '?';
  const rows = peers.map((peer) => [
    peer.id,
    // The name is someone else's: say so where people look for it.
    peer.name_conflict ? `${peer.name} (name owned by another id)` : peer.name,
    peer.state,
    peer.medium ?? '-',
    peer.state === 'routed' ? `via ${nameOf(peer.next_hop)}` : (peer.address ?? peer.addresses[0] ?? '-'),
    peer.hops === null ? '-' : String(peer.hops),
    peer.rtt_ms === null ? '-' : `${peer.rtt_ms} ms`,
    peer.rssi_dbm === null ? '-' : `${peer.rssi_dbm} dBm`,
    peer.last_seen,
  ]);
  return formatTable(['ID', 'NAME', 'STATE', 'MEDIUM', 'ADDRESS', 'HOPS', 'RTT', 'RSSI', 'LAST SEEN'], rows);
}

/** The direct links only: peers with state connected. */
export function formatLinks(peers: readonly PeerInfo[]): string {
  const links = peers.filter((peer) => peer.state === 'connected');
  if (links.length === 0) return 'no direct links\n';
  const rows = links.map((peer) => [
    peer.id,
    peer.name,
    peer.medium ?? '-',
    peer.address ?? '-',
    peer.direction ?? '-',
    peer.rtt_ms === null ? '-' : `${peer.rtt_ms} ms`,
    peer.connected_since ?? '-',
  ]);
  return formatTable(['ID', 'NAME', 'MEDIUM', 'ADDRESS', 'DIRECTION', 'RTT', 'SINCE'], rows);
}

export function formatRoutes(routes: readonly RouteInfo[]): string {
  if (routes.length === 0) return 'no routes yet\n';
  const rows = routes.map((route) => [
    route.destination,
    route.name ?? '-',
    String(route.hops),
    `${route.next_hop_name ?? '-'} (${route.next_hop})`,
    `${route.age_s} s`,
  ]);
  return formatTable(['DESTINATION', 'NAME', 'HOPS', 'NEXT HOP', 'AGE'], rows);
}

/** The mesh as this agent knows it: every agent, what it runs, and whom it links to (by name where known). */
export function formatTopology(agents: readonly MeshAgentInfo[]): string {
  const names = new Map(agents.map((agent) => [agent.id, agent.name]));
  const rows = agents.map((agent) => [
    agent.id,
    agent.name,
    agent.board ?? '-',
    agent.software ?? '-',
    agent.groups.length === 0 ? '-' : agent.groups.join(','),
    agent.neighbours.length === 0 ? '-' : agent.neighbours.map((id) => names.get(id) ?? id).join(','),
    `${agent.heard_s} s`,
  ]);
  return formatTable(['ID', 'NAME', 'BOARD', 'VERSION', 'GROUPS', 'LINKS TO', 'HEARD'], rows);
}

/** Files on their way, with how far each has come. */
export function formatTransfers(transfers: readonly TransferInfo[]): string {
  if (transfers.length === 0) return 'no transfers\n';
  const rows = transfers.map((transfer) => [
    transfer.transfer_id,
    transfer.direction === 'out' ? `to ${transfer.peer}` : `from ${transfer.peer}`,
    transfer.name,
    `${transfer.size === 0 ? 100 : Math.floor((100 * transfer.bytes_done) / transfer.size)} %`,
    `${mib(transfer.size)} MiB`,
    transfer.state,
  ]);
  return formatTable(['TRANSFER', 'PEER', 'NAME', 'DONE', 'SIZE', 'STATE'], rows);
}

/** One row per resolver; the detail (why it waits, what failed) on a line of its own under it. */
export function formatResolvers(resolvers: readonly ResolverInfo[]): string {
  const rows = resolvers.map((resolver) => [
    resolver.name,
    resolver.state,
    String(resolver.candidates),
    String(resolver.found),
    String(resolver.lost),
    String(resolver.invalid + resolver.dropped),
    String(resolver.dials),
    String(resolver.links),
  ]);
  const table = formatTable(
    ['RESOLVER', 'STATE', 'CANDIDATES', 'FOUND', 'LOST', 'REFUSED', 'DIALS', 'LINKS'],
    rows,
  );
  const details = resolvers.flatMap((resolver) =>
    resolver.detail === undefined ? [] : [`${resolver.name}: ${resolver.detail}`],
  );
  return details.length === 0 ? table : `${table}${details.join('\n')}\n`;
}

/** One target's outcome of a remote call, as `call` answers it (`nearmesh call --json` prints these). */
/** One row per target; `target` names what was called when no agent answered. */
export function formatCallResults(rows: readonly CallResultRow[], target?: string): string {
  if (rows.length === 0) return `no agent offers ${target ?? 'that'}\n`;
  return formatTable(
    ['PEER', 'NAME', 'STATUS', 'RESULT', 'FIRED AT'],
    rows.map((row) => [
      row.peer,
      row.name,
      row.status,
      row.status === 'ok'
        ? JSON.stringify(row.result)
        : row.error === undefined
          ? ''
          : `${row.error.code}: ${row.error.message}`,
      row.fired_at ?? '',
    ]),
  );
}

/**
 * One traced frame on one line: time (UTC, ms), → sent or ← received, medium, type and its fields, e.g.
 * `14:32:17.123 → wifi DATA id=7 ack system size=152 call`. Payload bytes are never shown, only sizes.
 */
export function formatTraceLine(event: TraceEvent): string {
  const parts = [event.at.slice(11, 23), event.direction === 'out' ? '→' : '←', event.medium, event.type];
  if (event.id !== undefined) parts.push(`id=${event.id}`);
  parts.push(...event.flags);
  if (event.route !== undefined)
    parts.push(`${event.route.src}→${event.route.dst}`, `ttl=${event.route.ttl}`);
  if (event.name !== undefined) parts.push(`name=${event.name}`);
  if (event.size !== undefined) parts.push(`size=${event.size}`);
  if (event.coordination !== undefined) parts.push(event.coordination);
  if (event.code !== undefined) parts.push(`code=${event.code}`);
  if (event.reason !== undefined && event.reason !== '') parts.push(JSON.stringify(event.reason));
  return `${parts.join(' ')}\n`;
}
