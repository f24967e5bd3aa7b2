// The web view's snapshot from the agent API's answers: agents with their state, this agent's links as it
// measures them, the links others announced (each pair once), routes, actions by peer, and trouble counters.
import { describe, expect, it } from 'vitest';
import type { MeshAgentInfo } from '../../../agent/api.js';
import { meshView } from '../../../agent/http/mesh-view.js';
import { samplePeer, sampleStatusReport } from '../../support/status-report.js';

const SELF = '0123456789abcdef';
const B = 'bbbbbbbbbbbbbbbb';
const C = 'cccccccccccccccc';
const D = 'dddddddddddddddd';

function agent(
  id: string,
  name: string,
  neighbours: string[],
  fields: Partial<MeshAgentInfo> = {},
): MeshAgentInfo {
  return {
    id,
    name,
    board: 'Raspberry Pi 4',
    software: '1.0.0',
    groups: [],
    relays: true,
    neighbours,
    heard_s: 3,
    ...fields,
  };
}

function view(overrides: Partial<Parameters<typeof meshView>[0]> = {}) {
  return meshView({
    status: sampleStatusReport({
      id: SELF,
      name: 'alpha',
      counters: { 'links.dropped_malformed': 2, 'mesh.forwarded': 90, 'auth.failed': 5, 'http.errors': 0 },
    }),
    rssBytes: 50_000_000,
    // A chain alpha - b - c; d announced a link to c.
    topology: [
      agent(SELF, 'alpha', [B], { heard_s: 0 }),
      agent(B, 'b', [SELF, C]),
      agent(C, 'c', [B, D]),
      agent(D, 'd', [C]),
    ],
    peers: [
      samplePeer(B, { name: 'b', rtt_ms: 4.5, rssi_dbm: -61, medium: 'ble' }),
      samplePeer(C, { name: 'c', state: 'routed', medium: null, hops: 2, next_hop: B }),
      samplePeer(D, { name: 'd', state: 'disconnected', medium: null, hops: null }),
    ],
    actions: [
      { peer: B, name: 'b', action: 'relay' },
      { peer: B, name: 'b', action: 'chime' },
    ],
    sensors: [
      { peer: C, name: 'c', sensor: 'temp', unit: 'Cel', value: 21.5, read_at: '2026-12-07T00:00:00.000Z' },
    ],
    leases: [{ peer: B, name: 'b', resource: 'relay', holder: C, holder_name: 'c', remaining_ms: 4000 }],
    transfers: [],
    ...overrides,
  });
}

describe('meshView', () => {
  it('lists every agent, this one first, with how it is reached', () => {
    expect(view().agents.map((a) => [a.name, a.state, a.hops])).toEqual([
      ['alpha', 'self', 0],
      ['b', 'connected', 1],
      ['c', 'routed', 2],
      ['d', 'disconnected', null],
    ]);
  });

  it("draws this agent's links with what it measures, then each announced link once, never one to itself", () => {
    expect(view().links).toEqual([
      { from: SELF, to: B, medium: 'ble', rtt_ms: 4.5, rssi_dbm: -61 },
      { from: B, to: C, medium: 'mesh', rtt_ms: null, rssi_dbm: null },
      { from: C, to: D, medium: 'mesh', rtt_ms: null, rssi_dbm: null },
    ]);
  });

  it('does not draw a link to this agent that only an old announcement still lists', () => {
    const cut = view({
      peers: [samplePeer(B, { name: 'b', state: 'routed', medium: null, hops: 2, next_hop: C })],
    });
    expect(cut.links.some((link) => link.from === SELF || link.to === SELF)).toBe(false);
  });

  it('puts a linked peer that has not announced itself yet on the map', () => {
    const early = view({ topology: [agent(SELF, 'alpha', [])] });
    expect(early.agents.map((a) => a.name)).toEqual(['alpha', 'b', 'c']);
  });

  it('gives routes, actions by peer, sensors, and the trouble counters largest first', () => {
    const v = view();
    expect(v.routes).toEqual([{ to: C, via: B, hops: 2 }]);
    expect(v.actions).toEqual({ [B]: ['relay', 'chime'] });
    expect(v.sensors).toEqual([
      { peer: C, sensor: 'temp', unit: 'Cel', value: 21.5, read_at: '2026-12-07T00:00:00.000Z' },
    ]);
    expect(v.leases).toEqual([
      { peer: B, resource: 'relay', holder: C, holder_name: 'c', remaining_ms: 4000 },
    ]);
    expect(v.self).toMatchObject({ id: SELF, name: 'alpha', rss_bytes: 50_000_000 });
    expect(v.self.troubles).toEqual([
      { name: 'auth.failed', count: 5 },
      { name: 'links.dropped_malformed', count: 2 },
    ]);
  });
});
