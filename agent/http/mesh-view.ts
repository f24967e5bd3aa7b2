// The web view's snapshot of the mesh, read through the typed agent API (the same one the CLI uses): who is
// there, how they are linked, what each offers, and this agent's health. Pure: the API's answers in, the
// snapshot out.
import type {
  ActionInfo,
  LeaseInfo,
  MeshAgentInfo,
  PeerInfo,
  SensorInfo,
  StatusReport,
  TransferInfo,
} from '../api.js';
import type { MeshView, ViewAgent, ViewLink, ViewSelf } from './web/view-types.js';

/** What the snapshot is made of: the API's answers at one moment. */
export interface MeshViewInputs {
  status: StatusReport;
  rssBytes: number;
  topology: readonly MeshAgentInfo[];
  peers: readonly PeerInfo[];
  actions: readonly ActionInfo[];
  sensors: readonly SensorInfo[];
  leases: readonly LeaseInfo[];
  transfers: readonly TransferInfo[];
}

/** Counter names that count something going wrong. */
const TROUBLE = /error|fail|drop|refus|reject|timeout|lost|invalid|malformed/;
/** Trouble counters shown: the largest. */
const MAX_TROUBLES = 12;

export function meshView(inputs: MeshViewInputs): MeshView {
  const { status, topology, peers } = inputs;
  const peerById = new Map(peers.map((peer) => [peer.id, peer]));
  const agents: ViewAgent[] = topology.map((agent) => {
    const peer = peerById.get(agent.id);
    const self = agent.id === status.id;
    return {
      id: agent.id,
      name: agent.name,
      board: agent.board,
      software: agent.software,
      groups: agent.groups,
      state: self ? 'self' : (peer?.state ?? 'disconnected'),
      hops: self ? 0 : (peer?.hops ?? null),
      heard_s: agent.heard_s,
    };
  });
  // Peers linked or routed that have not announced themselves (yet): still on the map.
  const known = new Set(agents.map((agent) => agent.id));
  for (const peer of peers) {
    if (known.has(peer.id) || peer.state === 'disconnected') continue;
    agents.push({
      id: peer.id,
      name: peer.name,
      board: null,
      software: null,
      groups: [],
      state: peer.state,
      hops: peer.hops,
      heard_s: 0,
    });
  }
  return {
    self: selfView(inputs),
    agents,
    links: links(status.id, topology, peers),
    routes: peers.flatMap((peer) =>
      peer.state === 'routed' && peer.next_hop !== null && peer.hops !== null
        ? [{ to: peer.id, via: peer.next_hop, hops: peer.hops }]
        : [],
    ),
    actions: actionsByPeer(inputs.actions),
    sensors: inputs.sensors.map((sensor) => ({
      peer: sensor.peer,
      sensor: sensor.sensor,
      unit: sensor.unit,
      value: sensor.value,
      read_at: sensor.read_at,
    })),
    leases: inputs.leases.map((lease) => ({
      peer: lease.peer,
      resource: lease.resource,
      holder: lease.holder,
      holder_name: lease.holder_name,
      remaining_ms: lease.remaining_ms,
    })),
    transfers: inputs.transfers.map((transfer) => ({
      id: transfer.transfer_id,
      direction: transfer.direction,
      peer: transfer.peer,
      name: transfer.name,
      size: transfer.size,
      bytes_done: transfer.bytes_done,
      state: transfer.state,
    })),
  };
}

/** This agent's links as it measures them, then every other link the mesh announced, each pair once. */
function links(selfId: string, topology: readonly MeshAgentInfo[], peers: readonly PeerInfo[]): ViewLink[] {
  const result: ViewLink[] = [];
  const seen = new Set<string>();
  const key = (a: string, b: string) => (a < b ? `${a} ${b}` : `${b} ${a}`);
  for (const peer of peers) {
    if (peer.state !== 'connected' || peer.medium === null) continue;
    seen.add(key(selfId, peer.id));
    result.push({
      from: selfId,
      to: peer.id,
      medium: peer.medium,
      rtt_ms: peer.rtt_ms,
      rssi_dbm: peer.rssi_dbm,
    });
  }
  const known = new Set(topology.map((agent) => agent.id));
  for (const agent of topology) {
    if (agent.id === selfId) continue;
    for (const neighbour of agent.neighbours) {
      // A link to this agent that it no longer has (an announcement older than the link's end) is not drawn.
      if (neighbour === selfId || !known.has(neighbour) || seen.has(key(agent.id, neighbour))) continue;
      seen.add(key(agent.id, neighbour));
      result.push({ from: agent.id, to: neighbour, medium: 'mesh', rtt_ms: null, rssi_dbm: null });
    }
  }
  return result;
}

function actionsByPeer(actions: readonly ActionInfo[]): Record<string, string[]> {
  const byPeer: Record<string, string[]> = {};
  for (const action of actions) byPeer[action.peer] = [...(byPeer[action.peer] ?? []), action.action];
  return byPeer;
}

function selfView({ status, rssBytes }: MeshViewInputs): ViewSelf {
  const troubles = Object.entries(status.counters)
    .filter(([name, count]) => count > 0 && TROUBLE.test(name))
    .sort((a, b) => b[1] - a[1])
    .slice(0, MAX_TROUBLES)
    .map(([name, count]) => ({ name, count }));
  return {
    id: status.id,
    name: status.name,
    version: status.version,
    uptime_s: status.uptime_s,
    rss_bytes: rssBytes,
    cpu_temp_c: status.telemetry.cpu_temp?.celsius ?? null,
    key_epoch: status.security.key_epoch,
    event_loop_p99_ms: status.event_loop.delay_p99_ms,
    queued_messages: status.queued.messages,
    inbox_messages: status.inbox.messages,
    inbox_bytes: status.inbox.bytes,
    troubles,
  };
}
