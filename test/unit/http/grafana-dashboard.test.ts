// docs/grafana/nearmesh-dashboard.json asks only for metrics the agent exposes: each gauge /metrics
// renders, and each counter one the agent's code increments.
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';
import { renderMetrics } from '../../../agent/http/prometheus.js';
import { samplePeer, sampleStatusReport } from '../../support/status-report.js';

const ROOT = resolve(import.meta.dirname, '../../..');

/** Every counter name the agent's code increments (`increment('a.b')`), as its metric name. */
function counterMetrics(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts'))
        for (const match of readFileSync(path, 'utf8').matchAll(/increment\(\s*'([a-z0-9_.]+)'/g))
          names.add(`nearmesh_${(match[1] as string).replace(/\./g, '_')}_total`);
    }
  };
  walk(join(ROOT, 'agent'));
  return names;
}

/** A peer on a direct link with its RTT and RSSI measured, so that the per-peer gauges are rendered. */
const LINKED = samplePeer('aa', { rtt_ms: 2, rssi_dbm: -60 });

it('the Grafana dashboard in docs/ uses only metrics the agent exposes', () => {
  const dashboard = readFileSync(join(ROOT, 'docs/grafana/nearmesh-dashboard.json'), 'utf8');
  JSON.parse(dashboard);
  const used = new Set(dashboard.match(/nearmesh_[a-z0-9_]+/g));
  const mqttOn = sampleStatusReport({
    mqtt: {
      state: 'on',
      listen: '',
      clients: 0,
      sessions: 0,
      retained: 0,
      sensor_watches: 0,
      upstream: null,
    },
    telemetry: {
      cpu_temp: { celsius: 50, zone: 'thermal_zone0', type: null },
      throttling: null,
      load: null,
      memory: null,
      disk: null,
      uptime_s: null,
    },
  });
  const gauges = new Set(renderMetrics(mqttOn, [LINKED], 1).match(/^nearmesh_[a-z0-9_]+/gm));
  const counters = counterMetrics();
  const unknown = [...used].filter((name) => !gauges.has(name) && !counters.has(name));
  expect(used.size).toBeGreaterThan(10);
  expect(unknown).toEqual([]);
});
