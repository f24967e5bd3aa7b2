// Row 23: what an idle agent costs in CPU, alone and with linked idle peers, against a bare node process with one
// timer measured the same way over the same windows. A hub agent on loopback is measured alone (30 s after it
// started), then with 1 and with 10 peer agents linked to it (static peers, nothing sent but what the agents send by themselves). CPU is
// the scheduler's own count over all threads of the process (/proc/<pid>/task/*/schedstat); each window also
// gives how busy the machine was, since other work on a shared 2-core machine slows everything measured.
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import { connectControl, type Polling, waitForLinks } from './bench-agents.js';
import { type BenchChild, startChild } from './bench-child.js';
import { type Load, loadSince, processCpuNs, readLoad } from './cpu-usage.js';
import { freePorts, type LoopbackAgent, Started } from './loopback-agents.js';
import { formatTimes, passMark, type ResultRow } from './table.js';
import { sleep } from './timing.js';

const PEERS = 10;
/**
 * An agent is idle once start-up is over: its JIT and garbage collector quiet down, and the event-loop monitor
 * leaves fine sampling after 10 quiet seconds (ops/event-loop-delay.ts).
 */
const STARTUP_MS = 30_000;
/** After links come up: announcements and their forwarding settle, and the event-loop monitor quiets again. */
const SETTLE_MS = 15_000;
const WINDOW_MS = 20_000;
const MAX_ALONE_MS_PER_S = 1;
const MAX_PER_PEER_MS_PER_S = 0.5;
const READY: Polling = { timeoutMs: 20_000, pollMs: 100 };
const LINKS: Polling = { timeoutMs: 30_000, pollMs: 100 };

interface Window {
  /** CPU ms per second of the hub and of the bare node, and how busy the machine was, over one window. */
  hub: number;
  bare: number;
  load: Load;
}

function pidOf(child: BenchChild): number {
  const pid = child.child.pid;
  if (pid === undefined) throw new Error('a benchmark process has no pid');
  return pid;
}

async function measure(hub: BenchChild, bare: BenchChild): Promise<Window> {
  const [hubPid, barePid] = [pidOf(hub), pidOf(bare)];
  const [hub0, bare0, load0, t0] = [
    processCpuNs(hubPid),
    processCpuNs(barePid),
    readLoad(),
    performance.now(),
  ];
  await sleep(WINDOW_MS);
  const seconds = (performance.now() - t0) / 1000;
  const perSecond = (ns: number) => ns / 1e6 / seconds;
  return {
    hub: perSecond(processCpuNs(hubPid) - hub0),
    bare: perSecond(processCpuNs(barePid) - bare0),
    load: loadSince(load0),
  };
}

export async function idleCostRows(): Promise<ResultRow[]> {
  const started = new Started();
  try {
    const meshKey = generateMeshKey();
    const [hubPort = 0, ...peerPorts] = await freePorts(PEERS + 1);
    const bare = startChild(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    started.children.push(bare);
    const hub = started.agent({ name: 'hub', port: hubPort, dials: [] }, meshKey);
    await connectControl(hub, READY);
    await sleep(STARTUP_MS);
    const alone = await measure(hub, bare);

    const peers: LoopbackAgent[] = [];
    const addPeers = async (count: number): Promise<void> => {
      const added = peerPorts
        .slice(peers.length, peers.length + count)
        .map((port, index) =>
          started.agent(
            { name: `p${String(peers.length + index + 1).padStart(2, '0')}`, port, dials: [hubPort] },
            meshKey,
          ),
        );
      peers.push(...added);
      await Promise.all(added.map((peer) => connectControl(peer, READY)));
      await waitForLinks(
        hub,
        peers.map((peer) => peer.name),
        LINKS,
      );
      await sleep(SETTLE_MS);
    };
    await addPeers(1);
    const one = await measure(hub, bare);
    await addPeers(PEERS - 1);
    const ten = await measure(hub, bare);

    const perPeer = (ten.hub - alone.hub) / PEERS;
    const ms = (value: number) => `${value.toFixed(2)} ms/s`;
    return [
      {
        benchmark: '23a idle CPU, agent alone',
        nearmesh: ms(alone.hub),
        baseline: ms(alone.bare),
        ratio: formatTimes(alone.hub / alone.bare),
        goal: `≤ ${MAX_ALONE_MS_PER_S} ms/s (abs)`,
        pass: passMark(alone.hub <= MAX_ALONE_MS_PER_S),
        load: alone.load,
      },
      {
        benchmark: '23b idle CPU, 1 linked idle peer',
        nearmesh: ms(one.hub),
        baseline: ms(one.bare),
        ratio: formatTimes(one.hub / one.bare),
        goal: '— (info)',
        pass: '—',
        load: one.load,
      },
      {
        benchmark: '23c idle CPU per linked peer, 10 peers',
        nearmesh: ms(perPeer),
        baseline: ms(ten.bare),
        ratio: formatTimes(perPeer / ten.bare),
        goal: `≤ +${MAX_PER_PEER_MS_PER_S} ms/s per peer (abs)`,
        pass: passMark(perPeer <= MAX_PER_PEER_MS_PER_S),
        load: ten.load,
      },
    ];
  } finally {
    await started.stopAll();
  }
}
