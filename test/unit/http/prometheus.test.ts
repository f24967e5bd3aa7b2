// /metrics' text: Prometheus' own promtool accepts it, names follow its conventions, label values are
// escaped, and every counter the agent keeps is there.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { MAX_PEER_SERIES, renderMetrics } from '../../../agent/http/prometheus.js';
import { itWhenAvailable } from '../../support/requirements.js';
import { samplePeer, sampleStatusReport } from '../../support/status-report.js';

const REPORT = sampleStatusReport({
  name: 'kitchen "pi"\\1\nnext',
  uptime_s: 42,
  peers: { connected: 2, routed: 1, known: 5 },
  mqtt: {
    state: 'on',
    listen: '127.0.0.1:1883',
    clients: 3,
    sessions: 4,
    retained: 5,
    sensor_watches: 1,
    upstream: null,
  },
  event_loop: { delay_max_ms: 12.5, delay_p99_ms: 3 },
  counters: { 'mqtt.sends': 7, 'links.up': 2, 'mqtt.sends_failed': 1, 'weird-name.x': 3 },
});

const PEERS = [
  samplePeer('bb', { rtt_ms: 4.5, rssi_dbm: -61, medium: 'ble' }),
  samplePeer('aa', { rtt_ms: 2 }),
  samplePeer('cc', { state: 'routed', medium: null, hops: 3 }),
  samplePeer('dd', { state: 'disconnected', medium: null, hops: null }),
];

function promtoolMissing(): string | undefined {
  const probe = spawnSync('promtool', ['--version']);
  return probe.error === undefined ? undefined : 'promtool is not installed (apt-get install prometheus)';
}

describe('the Prometheus exposition of a status report', () => {
  const text = renderMetrics(REPORT, PEERS, 50_000_000);

  it('has each counter as nearmesh_<name>_total, and the gauges with their units', () => {
    expect(text).toContain('# TYPE nearmesh_mqtt_sends_total counter\nnearmesh_mqtt_sends_total 7\n');
    expect(text).toContain('nearmesh_mqtt_sends_failed_total 1\n');
    expect(text).toContain('nearmesh_links_up_total 2\n');
    expect(text).toContain('nearmesh_weird_name_x_total 3\n');
    expect(text).toContain('nearmesh_peers{state="connected"} 2\n');
    expect(text).toContain('nearmesh_resident_memory_bytes 50000000\n');
    expect(text).toContain('nearmesh_event_loop_delay_max_seconds 0.0125\n');
    expect(text).toContain('nearmesh_mqtt_clients 3\n');
    expect(text).toContain('nearmesh_uptime_seconds 42\n');
  });

  it('gives each reachable peer its hops, and RTT and RSSI where known, the nearest first', () => {
    expect(text).toContain(
      [
        'nearmesh_peer_hops{peer="aa",name="pi-aa",medium="wifi"} 1',
        'nearmesh_peer_hops{peer="bb",name="pi-bb",medium="ble"} 1',
        'nearmesh_peer_hops{peer="cc",name="pi-cc",medium="mesh"} 3',
      ].join('\n'),
    );
    expect(text).toContain('nearmesh_peer_rtt_seconds{peer="bb",name="pi-bb",medium="ble"} 0.0045\n');
    expect(text).toContain('nearmesh_peer_rssi_dbm{peer="bb",name="pi-bb",medium="ble"} -61\n');
    expect(text).not.toContain('peer="dd"');
  });

  it('gives at most MAX_PEER_SERIES peers series of their own', () => {
    const many = Array.from({ length: MAX_PEER_SERIES + 10 }, (_, i) =>
      samplePeer(i.toString(16).padStart(4, '0'), {}),
    );
    const lines = renderMetrics(sampleStatusReport(), many, 1).match(/^nearmesh_peer_hops\{/gm);
    expect(lines).toHaveLength(MAX_PEER_SERIES);
  });

  it('escapes label values', () => {
    expect(text).toContain('name="kitchen \\"pi\\"\\\\1\\nnext"');
  });

  it('never repeats a metric, though two counter names meet in one', () => {
    const twice = renderMetrics(sampleStatusReport({ counters: { 'a.b': 1, a_b: 2 } }), [], 1);
    expect(twice.match(/^nearmesh_a_b_total /gm)).toHaveLength(1);
  });

  itWhenAvailable('passes promtool check metrics (Prometheus’ own linter)', promtoolMissing(), () => {
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
  });
});
