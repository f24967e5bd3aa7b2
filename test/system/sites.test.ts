// Beyond one site: two labs of agents in their own network namespaces, each lab one mesh, joined only through
// a real mosquitto that both reach (the router between them drops anything else from one lab to the other).
// An agent of lab A calls an action and reads a sensor of an agent of lab B by peer id; QoS 1 messages an app
// sends from A to B survive B losing its bridge and the broker restarting with its persistence: all arrive,
// once each, in order. Then the same calls and messages through two brokers bridged to each other (Debian
// packages no second broker kind: no NanoMQ, VerneMQ or EMQX). The round trip of a call through the broker and
// within a mesh are logged. NEARMESH_SITE_AGENTS sets agents per lab (default 3; 10 for the bench figure).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentStatus, CallResultRow } from '../../agent/api.js';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import { ControlClient } from '../../agent/control/client.js';
import type { PeerInfo } from '../../agent/links/peer-directory.js';
import { type AgentProcess, cliCall, startAgent, stopAllAgents } from '../support/agent-process.js';
import { Mosquitto, missingMosquittoTools } from '../support/mosquitto.js';
import { ANONYMOUS_MAY_DO_ANYTHING } from '../support/mqtt-clients.js';
import { RoutedSite, whyNetnsUnavailable, whyNftUnavailable } from '../support/netns.js';
import { describeWhenAvailable } from '../support/requirements.js';
import { until } from '../support/until.js';

const AGENTS_PER_LAB = Number(process.env.NEARMESH_SITE_AGENTS ?? 3);
const BROKER_PORT = 1883;
const FIRST_PORT = 7450;
const PREFIX = 'sites/';
const ROUND_TRIPS = 20;
const START_BATCH = 3;
/** As docs/MQTT.md advises for a site broker: small publishes do not wait for delayed ACKs (~40 ms each). */
const NO_DELAY = 'set_tcp_nodelay true';

interface Subnet {
  ns: string;
  address: string;
}

function sh(command: string, args: string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')}: ${result.stderr.trim()}`);
}

/** nft in the router: the labs reach the brokers only, never each other. */
function isolateLabs(router: string, labA: Subnet, labB: Subnet): void {
  const [a, b] = [labA, labB].map((subnet) => subnet.address.replace(/\.2$/, '.0/24'));
  sh('ip', ['netns', 'exec', router, 'nft', 'add', 'table', 'inet', 'sites']);
  sh('ip', [
    'netns',
    'exec',
    router,
    'nft',
    'add chain inet sites forward { type filter hook forward priority 0; policy accept; }',
  ]);
  for (const [from, to] of [
    [a, b],
    [b, a],
  ])
    sh('ip', [
      'netns',
      'exec',
      router,
      'nft',
      `add rule inet sites forward ip saddr ${from} ip daddr ${to} drop`,
    ]);
}

/** Cuts (or restores) one lab's connections to the broker: resets, so both ends notice at once. */
function cutBroker(router: string, lab: Subnet, cut: boolean): void {
  const net = lab.address.replace(/\.2$/, '.0/24');
  if (!cut) {
    sh('ip', ['netns', 'exec', router, 'nft', 'delete', 'table', 'inet', 'cut']);
    return;
  }
  sh('ip', ['netns', 'exec', router, 'nft', 'add', 'table', 'inet', 'cut']);
  sh('ip', [
    'netns',
    'exec',
    router,
    'nft',
    'add chain inet cut forward { type filter hook forward priority -1; policy accept; }',
  ]);
  for (const match of [
    `ip saddr ${net} tcp dport ${BROKER_PORT}`,
    `ip daddr ${net} tcp sport ${BROKER_PORT}`,
  ])
    sh('ip', ['netns', 'exec', router, 'nft', `add rule inet cut forward ${match} reject with tcp reset`]);
}

/** One lab: agents in one namespace, linked to each other by static peers, each bridged to `broker`. */
async function startLab(
  lab: Subnet,
  label: string,
  meshKey: string,
  broker: Subnet,
  count: number,
  offer: boolean,
): Promise<{ agents: AgentProcess[]; ids: string[] }> {
  const agents: AgentProcess[] = [];
  // A few at a time: twenty agents starting at once on two cores miss their start-up deadline.
  for (let first = 0; first < count; first += START_BATCH) {
    const batch = Array.from({ length: Math.min(START_BATCH, count - first) }, (_, k) => first + k);
    agents.push(
      ...(await Promise.all(
        batch.map((i) =>
          startAgent({
            name: `${label}${i + 1}`,
            meshKey,
            port: FIRST_PORT + i,
            listenHost: lab.address,
            netns: lab.ns,
            peers: Array.from({ length: i }, (_, j) => `${lab.address}:${FIRST_PORT + j}`),
            mqtt: [
              'listen = "127.0.0.1:0"',
              ANONYMOUS_MAY_DO_ANYTHING,
              '[mqtt.upstream]',
              `url = "mqtt://${broker.address}:${BROKER_PORT}"`,
              `client_id = "${label}${i + 1}"`,
              `prefix = "${PREFIX}"`,
            ],
            ...(offer && {
              extraToml: [
                '[[actions]]',
                'name = "light.set"',
                'exec = ["/bin/echo", "{\\"on\\": true}"]',
                '[[sensors]]',
                'name = "room.temp"',
                'unit = "Cel"',
                'exec = ["/bin/echo", "21.5"]',
              ].join('\n'),
            }),
          }),
        ),
      )),
    );
  }
  const ids = await Promise.all(agents.map(async (agent) => (await agent.json<{ id: string }>(['id'])).id));
  await until(
    `lab ${label}: every agent linked to the others and bridged`,
    async () => {
      for (const agent of agents) {
        const peers = await agent.json<PeerInfo[]>(['peers']);
        if (peers.filter((peer) => peer.state === 'connected').length !== count - 1) return false;
        if (!(await upstreamIs(agent, true))) return false;
      }
      return true;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  return { agents, ids };
}

async function upstreamIs(agent: AgentProcess, connected: boolean): Promise<boolean> {
  const status = await agent.json<AgentStatus>(['status']);
  return status.mqtt.state === 'on' && status.mqtt.upstream?.connected === connected;
}

async function mqttPort(agent: AgentProcess): Promise<number> {
  const status = await agent.json<AgentStatus>(['status']);
  if (status.mqtt.state !== 'on') throw new Error(`${agent.spec.name} serves no MQTT`);
  return Number(status.mqtt.listen.split(':').at(-1));
}

/** An MQTT 5 app on an agent's endpoint, inside its lab: mosquitto_sub printing each payload on a line. */
async function inboxOf(
  agent: AgentProcess,
  from: string,
): Promise<{ lines: () => string[]; child: ChildProcess }> {
  const port = await mqttPort(agent);
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      agent.spec.netns ?? '',
      'mosquitto_sub',
      '-p',
      String(port),
      '-V',
      'mqttv5',
      '-q',
      '1',
    ].concat(['-t', `nearmesh/inbox/${from}`, '-F', '%p']),
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  return { lines: () => out.split('\n').filter((line) => line !== ''), child };
}

/** An MQTT 5 app on an agent's endpoint that publishes each line written to it, QoS 1, to `topic`. */
async function publisherOn(agent: AgentProcess, topic: string): Promise<ChildProcess> {
  const port = await mqttPort(agent);
  return spawn(
    'ip',
    [
      'netns',
      'exec',
      agent.spec.netns ?? '',
      'mosquitto_pub',
      '-p',
      String(port),
      '-V',
      'mqttv5',
      '-q',
      '1',
    ].concat(['-t', topic, '-l']),
    { stdio: ['pipe', 'ignore', 'inherit'] },
  );
}

/** Median of `ROUND_TRIPS` calls, in ms, over the control socket (no CLI start-up in the figure). */
async function medianCallMs(caller: AgentProcess, target: string, action: string): Promise<number> {
  const client = await ControlClient.connect(caller.socketPath);
  try {
    const times: number[] = [];
    for (let i = 0; i < ROUND_TRIPS; i++) {
      const started = performance.now();
      const [row] = await client.request({ cmd: 'call', target, action, args: {}, timeout_ms: 5_000 });
      times.push(performance.now() - started);
      expect(row?.status).toBe('ok');
    }
    times.sort((x, y) => x - y);
    return times[Math.floor(times.length / 2)] as number;
  } finally {
    client.close();
  }
}

describeWhenAvailable(
  'beyond one site: two labs joined only through an MQTT broker',
  whyNetnsUnavailable() ?? whyNftUnavailable() ?? missingMosquittoTools(),
  () => {
    describe(`one mosquitto, ${AGENTS_PER_LAB} + ${AGENTS_PER_LAB} agents`, () => {
      const site = new RoutedSite('sts', 3);
      const [labA, labB, brokerNet] = site.subnets as [Subnet, Subnet, Subnet];
      const meshKey = generateMeshKey();
      let brokerDir: string;
      let broker: Mosquitto;
      let a: { agents: AgentProcess[]; ids: string[] };
      let b: { agents: AgentProcess[]; ids: string[] };
      const children: ChildProcess[] = [];

      beforeAll(async () => {
        site.create();
        isolateLabs(site.router, labA, labB);
        brokerDir = await mkdtemp(join(tmpdir(), 'nearmesh-sites-broker-'));
        broker = new Mosquitto(brokerDir, BROKER_PORT, undefined, [NO_DELAY], {
          netns: brokerNet.ns,
          host: brokerNet.address,
        });
        await broker.start();
        [a, b] = await Promise.all([
          startLab(labA, 'a', meshKey, brokerNet, AGENTS_PER_LAB, false),
          startLab(labB, 'b', meshKey, brokerNet, AGENTS_PER_LAB, true),
        ]);
      }, 120_000);

      afterAll(async () => {
        for (const child of children) child.kill();
        await stopAllAgents();
        await broker?.stop();
        site.delete();
        if (brokerDir !== undefined) await rm(brokerDir, { recursive: true, force: true });
      });

      it('an agent of lab A calls an action and reads a sensor of an agent of lab B by peer id', async () => {
        const caller = a.agents.at(-1) as AgentProcess;
        const target = b.ids.at(-1) as string;
        // Lab A's mesh knows nothing of lab B: only the broker joins them.
        const peers = await caller.json<PeerInfo[]>(['peers']);
        expect(peers.map((peer) => peer.id)).not.toContain(target);

        const [row] = await cliCall(caller, [target, 'light.set']);
        expect(row).toMatchObject({ peer: target, status: 'ok', result: { on: true } });
        const reading = await caller.json<{ peer: string; value: unknown; unit: string }>([
          'read',
          target,
          'room.temp',
        ]);
        expect(reading).toMatchObject({ peer: target, value: 21.5, unit: 'Cel' });
        // By peer id only: a name of the other site means nothing here.
        const byName = await caller.cli(['call', `b${AGENTS_PER_LAB}`, 'light.set', '--json']);
        expect(byName.code).not.toBe(0);

        const status = await (b.agents.at(-1) as AgentProcess).json<AgentStatus>(['status']);
        expect(status.counters['tunnel.received']).toBeGreaterThanOrEqual(2);
        expect(status.counters['tunnel.dropped_bad_origin'] ?? 0).toBe(0);
      });

      it('measures a call through the broker against one within a mesh', async () => {
        const caller = a.agents[0] as AgentProcess;
        const viaBroker = await medianCallMs(caller, b.ids[0] as string, 'light.set');
        const inMesh = await medianCallMs(b.agents[1] as AgentProcess, b.ids[0] as string, 'light.set');
        console.log(
          `call round trip, median of ${ROUND_TRIPS} (${AGENTS_PER_LAB}+${AGENTS_PER_LAB} agents): ` +
            `through the broker ${viaBroker.toFixed(1)} ms, within the mesh ${inMesh.toFixed(1)} ms`,
        );
        // Both run the same action (a process start): the broker path adds two MQTT hops each way.
        expect(viaBroker).toBeLessThan(5_000);
      });

      it('QoS 1 messages from lab A to lab B survive a bridge loss and a broker restart, once each, in order', async () => {
        const sender = a.agents[0] as AgentProcess;
        const receiver = b.agents[0] as AgentProcess;
        const [senderId, receiverId] = [a.ids[0] as string, b.ids[0] as string];
        const inbox = await inboxOf(receiver, senderId);
        children.push(inbox.child);
        const publisher = await publisherOn(sender, `nearmesh/send/${receiverId}`);
        children.push(publisher);
        const sent: string[] = [];
        const send = (count: number): void => {
          for (let i = 0; i < count; i++) {
            const text = `m${sent.length}`;
            sent.push(text);
            publisher.stdin?.write(`${text}\n`);
          }
        };
        // The subscription is in place once a first message got through.
        await until('the first message across', async () => {
          if (sent.length === 0) send(1);
          return inbox.lines().length > 0;
        });
        send(9);
        await until('the first ten across', async () => inbox.lines().length >= 10);

        // Lab B loses its bridge: lab A goes on sending, the broker keeps B's messages in its session.
        cutBroker(site.router, labB, true);
        send(10);
        // B notices when it next writes to the broker (the resets answer its packets): a message of its own.
        sh('ip', [
          'netns',
          'exec',
          labB.ns,
          'mosquitto_pub',
          '-p',
          String(await mqttPort(receiver)),
          '-V',
          'mqttv5',
          '-q',
          '1',
          '-t',
          `nearmesh/send/${senderId}`,
          '-m',
          'from lab B',
        ]);
        await until('lab B noticed', () => upstreamIs(receiver, false));
        send(10);
        // The broker restarts (persistence written on SIGTERM) while B is still cut off; A's bridge queues.
        await broker.stop();
        await until('lab A noticed', () => upstreamIs(sender, false));
        send(10);
        await broker.start();
        cutBroker(site.router, labB, false);
        send(10);
        await until(
          () => `all ${sent.length} across: got ${inbox.lines().length}`,
          async () => inbox.lines().length >= sent.length,
          { timeoutMs: 60_000, intervalMs: 500 },
        );
        // Nothing more straggles in later.
        await new Promise((resolve) => setTimeout(resolve, 2_000));
        expect(inbox.lines()).toEqual(sent);
        // A copy the broker delivered twice (its acknowledgement lost in the cut) was dropped as a replay.
        const status = await receiver.json<AgentStatus>(['status']);
        console.log(
          `bridge loss and broker restart: ${sent.length} sent, ${inbox.lines().length} delivered, ` +
            `${status.counters['tunnel.dropped_replayed'] ?? 0} duplicate copies dropped`,
        );
        // And calls go through again.
        const [row] = await cliCall(sender, [receiverId, 'light.set']);
        expect(row).toMatchObject({ status: 'ok' });
      }, 120_000);
    });

    describe('two mosquitto brokers bridged to each other, 1 + 1 agents', () => {
      const site = new RoutedSite('stt', 4);
      const [labA, labB, brokerNetA, brokerNetB] = site.subnets as [Subnet, Subnet, Subnet, Subnet];
      const meshKey = generateMeshKey();
      const dirs: string[] = [];
      const brokers: Mosquitto[] = [];
      let a: { agents: AgentProcess[]; ids: string[] };
      let b: { agents: AgentProcess[]; ids: string[] };
      const children: ChildProcess[] = [];

      beforeAll(async () => {
        site.create();
        isolateLabs(site.router, labA, labB);
        const [dirA, dirB] = await Promise.all(
          [1, 2].map(() => mkdtemp(join(tmpdir(), 'nearmesh-sites-broker-'))),
        );
        dirs.push(dirA as string, dirB as string);
        const siteBroker = new Mosquitto(dirB as string, BROKER_PORT, undefined, [NO_DELAY], {
          netns: brokerNetB.ns,
          host: brokerNetB.address,
        });
        // Site A's broker bridges the nearmesh topics to site B's, both ways, MQTT 5, QoS 1.
        const bridging = new Mosquitto(
          dirA as string,
          BROKER_PORT,
          undefined,
          [
            NO_DELAY,
            'connection to-site-b',
            `address ${brokerNetB.address}:${BROKER_PORT}`,
            'bridge_protocol_version mqttv50',
            `topic ${PREFIX}nearmesh/# both 1`,
            'cleansession false',
            'remote_clientid site-a-bridge',
          ],
          { netns: brokerNetA.ns, host: brokerNetA.address },
        );
        brokers.push(siteBroker, bridging);
        await siteBroker.start();
        await bridging.start();
        [a, b] = await Promise.all([
          startLab(labA, 'a', meshKey, brokerNetA, 1, false),
          startLab(labB, 'b', meshKey, brokerNetB, 1, true),
        ]);
      }, 120_000);

      afterAll(async () => {
        for (const child of children) child.kill();
        await stopAllAgents();
        for (const broker of brokers) await broker.stop();
        site.delete();
        for (const dir of dirs) await rm(dir, { recursive: true, force: true });
      });

      it('calls, reads and messages cross both brokers', async () => {
        const caller = a.agents[0] as AgentProcess;
        const target = b.ids[0] as string;
        const [row] = await until('the brokers bridged', async () => {
          const rows = await caller.cli(['call', target, 'light.set', '--json']);
          return rows.code === 0 ? (JSON.parse(rows.stdout) as CallResultRow[]) : undefined;
        });
        expect(row).toMatchObject({ peer: target, status: 'ok', result: { on: true } });
        const reading = await caller.json<{ value: unknown }>(['read', target, 'room.temp']);
        expect(reading.value).toBe(21.5);
        const inbox = await inboxOf(b.agents[0] as AgentProcess, a.ids[0] as string);
        const publisher = await publisherOn(caller, `nearmesh/send/${target}`);
        children.push(inbox.child, publisher);
        const sent = ['one', 'two', 'three'];
        // The first may go before the brokers' bridge subscribed: the test waits for it, then counts the rest.
        publisher.stdin?.write('warm-up\n');
        await until('the first message across both brokers', async () => inbox.lines().length > 0);
        for (const text of sent) publisher.stdin?.write(`${text}\n`);
        const across = () => inbox.lines().filter((line) => line !== 'warm-up');
        await until('three messages across both brokers', async () => across().length >= sent.length);
        expect(across()).toEqual(sent);
        const viaBrokers = await medianCallMs(caller, target, 'light.set');
        console.log(
          `call round trip through two bridged brokers, median of ${ROUND_TRIPS}: ${viaBrokers.toFixed(1)} ms`,
        );
      });
    });
  },
);
