// A whole StatusReport and PeerInfo, as `nearmesh status --json` and `peers --json` give them, for tests of
// what renders them.
import type { PeerInfo, StatusReport } from '../../agent/api.js';

/** An agent's status with everything idle and off, `fields` over that. */
export function sampleStatusReport(fields: Partial<StatusReport> = {}): StatusReport {
  return {
    id: '0123456789abcdef',
    name: 'alpha',
    version: '0.0.0',
    protocol: 1,
    pid: 1,
    uptime_s: 1,
    data_dir: '/tmp',
    control_socket: '/tmp/s',
    wifi: { listen: null, discovery: [] },
    ble: 'off',
    ble_scan_duty: null,
    peers: { connected: 0, routed: 0, known: 0 },
    resolvers: [{ name: 'static', state: 'running', candidates: 1 }],
    mesh: { name: 'test-mesh', ttl: 4, relay: true, groups: [] },
    mqtt: { state: 'off' },
    http: { state: 'off' },
    queued: { messages: 0, bytes: 0 },
    inbox: {
      messages: 0,
      bytes: 0,
      oldest_at: null,
      consumers: 0,
      max_messages: 10_000,
      max_bytes: 16_777_216,
      when_full: 'refuse',
    },
    security: {
      key_epoch: 0,
      previous_key_until: null,
      revoked: 0,
      admins: [],
      members_known: 0,
      neighbours_blamed: [],
    },
    event_loop: { delay_max_ms: 0, delay_p99_ms: 0 },
    counters: {},
    board: { id: 'generic', name: 'generic', model: null },
    telemetry: { cpu_temp: null, throttling: null, load: null, memory: null, disk: null, uptime_s: null },
    ...fields,
  };
}

/** A peer on a direct Wi-Fi link (`pi-<id>`), `fields` over that. */
export function samplePeer(id: string, fields: Partial<PeerInfo> = {}): PeerInfo {
  return {
    id,
    name: `pi-${id}`,
    state: 'connected',
    medium: 'wifi',
    address: null,
    direction: null,
    addresses: [],
    rtt_ms: null,
    rssi_dbm: null,
    last_seen: '2026-12-07T00:00:00.000Z',
    connected_since: null,
    media: [],
    hops: 1,
    next_hop: null,
    name_conflict: false,
    ...fields,
  };
}
