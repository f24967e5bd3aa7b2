// The agent's status in the Prometheus text exposition format (version 0.0.4): every counter it keeps as
// `nearmesh_<name>_total`, gauges for what `nearmesh status` shows, and each reachable peer's hops, RTT
// and RSSI. Names are stable and carry their unit (`_bytes`, `_seconds`); labels are few and bounded (no
// per-message or per-topic label; at most MAX_PEER_SERIES peers).
import type { PeerInfo, StatusReport } from '../api.js';

/** Peers given series of their own (the nearest first): bounds the labels a big mesh brings. */
export const MAX_PEER_SERIES = 256;

/** The Content-Type of the text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Readonly<Record<string, string>>;

interface Sample {
  labels?: Labels;
  value: number;
}

interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  samples: Sample[];
}

/** The exposition text for one status report, the peer table and the process's resident memory. */
export function renderMetrics(
  report: StatusReport,
  peers: readonly PeerInfo[],
  residentBytes: number,
): string {
  const families: Family[] = [
    gauge('nearmesh_info', 'The agent: its id, name, version, protocol and board (always 1).', [
      {
        labels: {
          id: report.id,
          name: report.name,
          version: report.version,
          protocol: String(report.protocol),
          board: report.board.id,
        },
        value: 1,
      },
    ]),
    gauge('nearmesh_uptime_seconds', 'Seconds since the agent started.', [{ value: report.uptime_s }]),
    gauge('nearmesh_resident_memory_bytes', 'Resident memory of the agent process.', [
      { value: residentBytes },
    ]),
    gauge(
      'nearmesh_peers',
      'Peers by how they are reached: linked directly, routed through others, or known.',
      (['connected', 'routed', 'known'] as const).map((state) => ({
        labels: { state },
        value: report.peers[state],
      })),
    ),
    gauge('nearmesh_queued_messages', 'Reliable messages queued durably, not yet confirmed by their peers.', [
      { value: report.queued.messages },
    ]),
    gauge('nearmesh_queued_bytes', 'Bytes of the reliable messages queued durably.', [
      { value: report.queued.bytes },
    ]),
    gauge('nearmesh_inbox_messages', 'Reliable messages waiting in the app inbox.', [
      { value: report.inbox.messages },
    ]),
    gauge('nearmesh_inbox_bytes', 'Bytes of the messages waiting in the app inbox.', [
      { value: report.inbox.bytes },
    ]),
    gauge('nearmesh_inbox_consumers', 'Consumers the app inbox keeps messages for.', [
      { value: report.inbox.consumers },
    ]),
    gauge('nearmesh_key_epoch', 'The mesh key epoch in force.', [{ value: report.security.key_epoch }]),
    gauge(
      'nearmesh_event_loop_delay_p99_seconds',
      'How late the event loop ran, 99th percentile of the last 10-20 s.',
      [{ value: report.event_loop.delay_p99_ms / 1000 }],
    ),
    gauge(
      'nearmesh_event_loop_delay_max_seconds',
      'How late the event loop ran at most over the last 10-20 s.',
      [{ value: report.event_loop.delay_max_ms / 1000 }],
    ),
  ];
  if (report.mqtt.state === 'on') {
    const mqtt = report.mqtt;
    families.push(
      gauge('nearmesh_mqtt_clients', 'MQTT clients connected to the local endpoint.', [
        { value: mqtt.clients },
      ]),
      gauge('nearmesh_mqtt_sessions', 'MQTT sessions held, connected or persistent.', [
        { value: mqtt.sessions },
      ]),
      gauge('nearmesh_mqtt_retained_messages', 'Retained MQTT messages held.', [{ value: mqtt.retained }]),
      gauge('nearmesh_mqtt_sensor_watches', 'Sensors watched because an MQTT client subscribed to one.', [
        { value: mqtt.sensor_watches },
      ]),
    );
  }
  const celsius = report.telemetry.cpu_temp?.celsius;
  if (celsius !== undefined)
    families.push(gauge('nearmesh_cpu_temperature_celsius', 'CPU temperature.', [{ value: celsius }]));
  families.push(...peerFamilies(peers));
  families.push(...counterFamilies(report.counters));
  return families.map(renderFamily).join('');
}

/** Hops, RTT and RSSI of the reachable peers, the nearest first, at most MAX_PEER_SERIES of them. */
function peerFamilies(peers: readonly PeerInfo[]): Family[] {
  const reachable = peers
    .filter((peer) => peer.hops !== null)
    .sort((a, b) => (a.hops as number) - (b.hops as number) || a.id.localeCompare(b.id))
    .slice(0, MAX_PEER_SERIES);
  const labels = (peer: PeerInfo): Labels => ({
    peer: peer.id,
    name: peer.name,
    medium: peer.medium ?? 'mesh',
  });
  return [
    gauge(
      'nearmesh_peer_hops',
      'Hops to each reachable peer: 1 over a direct link, more through the mesh.',
      reachable.map((peer) => ({ labels: labels(peer), value: peer.hops as number })),
    ),
    gauge(
      'nearmesh_peer_rtt_seconds',
      'Round-trip time of the link to each directly linked peer, where measured.',
      reachable.flatMap((peer) =>
        peer.rtt_ms === null ? [] : [{ labels: labels(peer), value: peer.rtt_ms / 1000 }],
      ),
    ),
    gauge(
      'nearmesh_peer_rssi_dbm',
      "Signal strength of each peer's last BLE advertisement heard, where the radio reports it.",
      reachable.flatMap((peer) =>
        peer.rssi_dbm === null ? [] : [{ labels: labels(peer), value: peer.rssi_dbm }],
      ),
    ),
  ].filter((family) => family.samples.length > 0);
}

function gauge(name: string, help: string, samples: Sample[]): Family {
  return { name, help, type: 'gauge', samples };
}

/**
 * Each counter as `nearmesh_<name>_total` (`mqtt.sends_failed` → `nearmesh_mqtt_sends_failed_total`).
 * Two counter names that differ only in characters a metric name cannot hold would meet in one name: the
 * first (in name order) keeps it, so the output never repeats a metric.
 */
function counterFamilies(counters: Readonly<Record<string, number>>): Family[] {
  const families = new Map<string, Family>();
  for (const name of Object.keys(counters).sort()) {
    const metric = `nearmesh_${name.replace(/[^a-zA-Z0-9_]/g, '_')}_total`;
    if (families.has(metric)) continue;
    families.set(metric, {
      name: metric,
      help: `The agent's counter ${name}.`,
      type: 'counter',
      samples: [{ value: counters[name] as number }],
    });
  }
  return [...families.values()];
}

function renderFamily({ name, help, type, samples }: Family): string {
  const lines = [`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`];
  for (const { labels, value } of samples) lines.push(`${name}${renderLabels(labels)} ${renderValue(value)}`);
  return `${lines.join('\n')}\n`;
}

function renderLabels(labels: Labels | undefined): string {
  if (labels === undefined) return '';
  const pairs = Object.entries(labels).map(([key, value]) => `${key}="${escapeLabelValue(value)}"`);
  return `{${pairs.join(',')}}`;
}

function renderValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

/** A label value: backslash, double quote and line feed escaped (the format's rules). */
function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text: backslash and line feed escaped. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}
