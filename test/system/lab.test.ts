// The network-namespace lab with real agents: a chain of three namespaces where each agent links only to
// its neighbours, the ends cannot reach each other, a cut link drops and comes back, and loss and rate
// shaping do what they say. Root only (skips loudly elsewhere, fails under CI=true).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import type { PeerInfo } from '../../agent/links/peer-directory.js';
import { Lab } from '../../scripts/lab/lab.js';
import { chain } from '../../scripts/lab/topology.js';
import { type AgentProcess, startAgent, stopAllAgents } from '../support/agent-process.js';
import { describeWithNetns, whyNftUnavailable } from '../support/netns.js';
import { itWhenAvailable } from '../support/requirements.js';
import { until } from '../support/until.js';

const PORT = 7450;
const PROBE_PORT = 7460;
const lab = new Lab(chain(3), `t${process.pid}`);

/** A node script running in the background inside a namespace, with its stdout collected. */
interface Background {
  readonly child: ChildProcess;
  stdout: string;
  readonly exited: Promise<void>;
}

/** Killed in afterAll, so a failed probe never keeps a namespace alive. */
const backgrounds = new Set<ChildProcess>();

function runInBackground(node: string, script: string, args: string[]): Background {
  const child = spawn(
    'ip',
    ['netns', 'exec', lab.namespaceOf(node), process.execPath, '-e', script, ...args],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const background: Background = {
    child,
    stdout: '',
    exited: new Promise((resolveExit) => child.once('exit', () => resolveExit())),
  };
  backgrounds.add(child);
  void background.exited.then(() => backgrounds.delete(child));
  child.stdout?.on('data', (chunk: Buffer) => {
    background.stdout += chunk.toString();
  });
  return background;
}

// Counts "x" datagrams until the first "end", then prints the count: a link keeps datagrams in order, so
// by then every "x" that got through has arrived.
const UDP_COUNTER = `
const s = require('node:dgram').createSocket('udp4'); let n = 0;
s.on('message', (m) => { if (m.toString() === 'x') n++; else { console.log(n); process.exit(0); } });
s.bind(Number(process.argv[1]), () => console.log('ready'));`;

// Sends count "x" datagrams, then 50 "end" ones (one gets through whatever loss is being tried), 2 ms apart.
const UDP_SENDER = `
const [host, port, count] = process.argv.slice(1); const s = require('node:dgram').createSocket('udp4'); let i = 0;
const total = Number(count) + 50;
const next = () => {
  if (i === total) return s.close();
  const payload = i++ < Number(count) ? 'x' : 'end';
  s.send(payload, Number(port), host, () => setTimeout(next, 2));
};
next();`;

// Accepts one TCP connection and prints how long its bytes took, first byte to end, in ms.
const TCP_SINK = `
const server = require('node:net').createServer((socket) => {
  let first = 0; let bytes = 0;
  socket.on('data', (chunk) => { if (first === 0) first = Date.now(); bytes += chunk.length; });
  socket.on('end', () => { console.log(JSON.stringify({ bytes, ms: Date.now() - first })); process.exit(0); });
});
server.listen(Number(process.argv[1]), () => console.log('ready'));`;

const TCP_SOURCE = `
const [host, port, bytes] = process.argv.slice(1);
const s = require('node:net').connect({ host, port: Number(port) }, () => s.end(Buffer.alloc(Number(bytes))));`;

/** Datagrams that arrive at `to` out of `count` sent by `from` over their link. */
async function udpDelivered(from: string, to: string, count: number): Promise<number> {
  const counter = runInBackground(to, UDP_COUNTER, [String(PROBE_PORT)]);
  await until('the UDP counter', () => counter.stdout.includes('ready'), {
    timeoutMs: 5_000,
    intervalMs: 20,
  });
  const sent = lab.exec(from, process.execPath, [
    '-e',
    UDP_SENDER,
    lab.addressOf(to, from),
    String(PROBE_PORT),
    String(count),
  ]);
  expect(sent.status).toBe(0);
  await until('the UDP count', () => counter.stdout.split('\n').length > 2, { timeoutMs: 5_000 });
  return Number(counter.stdout.split('\n')[1]);
}

/** How long `bytes` of TCP take from `from` to `to` over their link, in ms. */
async function tcpTransferMs(from: string, to: string, bytes: number): Promise<number> {
  const sink = runInBackground(to, TCP_SINK, [String(PROBE_PORT)]);
  await until('the TCP sink', () => sink.stdout.includes('ready'), { timeoutMs: 5_000, intervalMs: 20 });
  const sent = lab.exec(from, process.execPath, [
    '-e',
    TCP_SOURCE,
    lab.addressOf(to, from),
    String(PROBE_PORT),
    String(bytes),
  ]);
  expect(sent.status).toBe(0);
  await sink.exited;
  const result = JSON.parse(sink.stdout.split('\n')[1] ?? '') as { bytes: number; ms: number };
  expect(result.bytes).toBe(bytes);
  return result.ms;
}

describeWithNetns('the network-namespace lab (scripts/lab)', () => {
  const agents = new Map<string, AgentProcess>();
  const agent = (node: string) => agents.get(node)!;

  /** Names of the peers `node`'s agent is connected to, and of every peer it knows at all. */
  async function peersOf(node: string): Promise<{ connected: string[]; known: string[] }> {
    const peers = await agent(node).json<PeerInfo[]>(['peers']);
    return {
      connected: peers
        .filter((peer) => peer.state === 'connected')
        .map((peer) => peer.name)
        .sort(),
      known: peers.map((peer) => peer.name).sort(),
    };
  }

  const connectedTo = (node: string, names: string[]) => async () =>
    JSON.stringify((await peersOf(node)).connected) === JSON.stringify(names) ? true : undefined;

  beforeAll(async () => {
    lab.create();
    const meshKey = generateMeshKey();
    await Promise.all(
      lab.topology.nodes.map(async (node) => {
        const started = await startAgent({
          name: node,
          meshKey,
          port: PORT,
          listenHost: '0.0.0.0',
          discovery: [],
          netns: lab.namespaceOf(node),
          peers: lab.peerAddresses(node, PORT),
        });
        agents.set(node, started);
      }),
    );
  }, 30_000);

  afterAll(async () => {
    // Processes first: a namespace with a process inside outlives `ip netns del`.
    for (const child of backgrounds) child.kill('SIGKILL');
    await stopAllAgents();
    lab.destroy();
    lab.destroy();
    const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    expect(left).not.toContain(`nml-${lab.label}-`);
  });

  it('gives every link its own subnet and every node only its neighbours', () => {
    expect(lab.neighbours('n2').map((neighbour) => neighbour.node)).toEqual(['n1', 'n3']);
    expect(lab.peerAddresses('n1', PORT)).toEqual([`${lab.addressOf('n2', 'n1')}:${PORT}`]);
    const addresses = lab.exec('n2', 'ip', ['-br', '-4', 'addr']).stdout;
    expect(addresses).toContain(`${lab.addressOf('n2', 'n1')}/30`);
    expect(addresses).toContain(`${lab.addressOf('n2', 'n3')}/30`);
    // The root namespace never sees the lab's veths.
    const root = spawnSync('ip', ['-br', 'addr'], { encoding: 'utf8' }).stdout;
    expect(root).not.toContain('10.78.');
  });

  it('links each agent to exactly its neighbours', async () => {
    await until('n1 linked to n2', connectedTo('n1', ['n2']), { timeoutMs: 15_000 });
    await until('n2 linked to n1 and n3', connectedTo('n2', ['n1', 'n3']), { timeoutMs: 15_000 });
    await until('n3 linked to n2', connectedTo('n3', ['n2']), { timeoutMs: 15_000 });
    // The ends have no link to each other; they know each other only through the mesh, two hops away.
    expect((await peersOf('n1')).connected).toEqual(['n2']);
    expect((await peersOf('n3')).connected).toEqual(['n2']);
  }, 20_000);

  it('keeps the ends of the chain out of each other’s reach', () => {
    expect(lab.tcpReachable('n1', lab.addressOf('n2', 'n1'), PORT)).toBe(true);
    expect(lab.tcpReachable('n1', lab.addressOf('n3', 'n2'), PORT)).toBe(false);
    expect(lab.tcpReachable('n3', lab.addressOf('n1', 'n2'), PORT)).toBe(false);
  });

  it('cut drops the link between two neighbours within 10 s and restore brings it back', async () => {
    lab.cut('n1', 'n2');
    try {
      expect(lab.linkStatus('n1', 'n2').up).toBe(false);
      expect(lab.tcpReachable('n1', lab.addressOf('n2', 'n1'), PORT)).toBe(false);
      await until('n1 to lose n2', connectedTo('n1', []), { timeoutMs: 10_000 });
      await until('n2 to lose n1', connectedTo('n2', ['n3']), { timeoutMs: 10_000 });
    } finally {
      lab.restore('n1', 'n2');
    }
    expect(lab.linkStatus('n1', 'n2').up).toBe(true);
    expect(lab.tcpReachable('n1', lab.addressOf('n2', 'n1'), PORT)).toBe(true);
    // Redial backoff tops out at 8 s (plus jitter) after failed dials during the cut.
    await until('n1 relinked to n2', connectedTo('n1', ['n2']), { timeoutMs: 15_000 });
    await until('n2 relinked to n1', connectedTo('n2', ['n1', 'n3']), { timeoutMs: 15_000 });
  }, 35_000);

  itWhenAvailable(
    'leaves nftables alone until loss is asked for (a lab without loss needs no nft)',
    whyNftUnavailable(),
    () => {
      for (const node of lab.topology.nodes)
        expect(lab.exec(node, 'nft', ['list', 'tables']).stdout).toBe('');
      expect(lab.linkStatus('n2', 'n3').lossPercent).toBe(0);
    },
  );

  itWhenAvailable(
    'setLoss drops about that share of packets on one link, and 0 turns it off',
    whyNftUnavailable(),
    async () => {
      const count = 200;
      lab.setLoss('n2', 'n3', 30);
      try {
        expect(lab.linkStatus('n3', 'n2').lossPercent).toBe(30);
        const delivered = await udpDelivered('n2', 'n3', count);
        // 30 % of 200 is 60 lost on average (σ ≈ 6.5): 25..95 is more than five σ either way.
        expect(count - delivered).toBeGreaterThanOrEqual(25);
        expect(count - delivered).toBeLessThanOrEqual(95);
        // The other link is untouched.
        expect(await udpDelivered('n2', 'n1', count)).toBe(count);
      } finally {
        lab.setLoss('n2', 'n3', 0);
      }
      expect(lab.linkStatus('n2', 'n3').lossPercent).toBe(0);
      expect(await udpDelivered('n3', 'n2', count)).toBe(count);
    },
    20_000,
  );

  it('setRate caps a link’s throughput with tbf', async () => {
    const bytes = 1_000_000;
    lab.setRate('n2', 'n3', 8);
    try {
      expect(lab.linkStatus('n2', 'n3').rate).toBe('8Mbit');
      // 1 MB at 8 Mbit/s is 1 s; allow for the bucket and timer slack.
      expect(await tcpTransferMs('n3', 'n2', bytes)).toBeGreaterThan(800);
    } finally {
      lab.setRate('n2', 'n3', undefined);
    }
    expect(lab.linkStatus('n2', 'n3').rate).toBeUndefined();
    expect(await tcpTransferMs('n3', 'n2', bytes)).toBeLessThan(500);
  }, 20_000);
});
