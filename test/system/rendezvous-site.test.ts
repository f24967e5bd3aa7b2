// Two agents on two subnets of one site, joined by a router namespace that forwards unicast only (no
// multicast, so mDNS cannot cross it), a real mosquitto on a third subnet, no [[peers]]: they find each other
// through the broker's retained records and link directly (the link's address is the other subnet's, not the
// broker's). Stopping the broker afterwards leaves the link up; a record of an earlier run, replayed on the
// broker by anyone, is ignored.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AgentStatus, ResolverInfo } from '../../agent/api.js';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import type { PeerInfo } from '../../agent/links/peer-directory.js';
import {
  type AgentProcess,
  expectDelivered,
  startAgent,
  stopAllAgents,
  untilLinked,
} from '../support/agent-process.js';
import { Mosquitto, missingMosquittoTools } from '../support/mosquitto.js';
import { RoutedSite, whyNetnsUnavailable } from '../support/netns.js';
import { describeWhenAvailable } from '../support/requirements.js';
import { until } from '../support/until.js';

const site = new RoutedSite('rdv');
const [subnetA, subnetB, subnetBroker] = site.subnets as [
  (typeof site.subnets)[number],
  (typeof site.subnets)[number],
  (typeof site.subnets)[number],
];
const BROKER_PORT = 1883;
const TOPICS = 'nearmesh/rendezvous/#';

describeWhenAvailable(
  'agents on two subnets meet through the site broker',
  whyNetnsUnavailable() ?? missingMosquittoTools(),
  () => {
    let broker: Mosquitto;
    let brokerDir: string;
    let alpha: AgentProcess;
    let bravo: AgentProcess;
    const meshKey = generateMeshKey();

    const spec = (name: string, subnet: typeof subnetA) => ({
      name,
      meshKey,
      port: 7450,
      listenHost: '0.0.0.0',
      // mDNS is on, as on a Pi's defaults: it just cannot cross the router.
      discovery: ['mdns'],
      netns: subnet.ns,
      extraToml: [
        '[rendezvous]',
        'enabled = true',
        `url = "mqtt://${subnetBroker.address}:${BROKER_PORT}"`,
      ].join('\n'),
    });
    /** Retained records on the broker, as `topic hex-payload` lines (mosquitto_sub on the broker's subnet). */
    const retainedRecords = (): string[] => {
      const sub = spawnSync(
        'ip',
        [
          'netns',
          'exec',
          subnetBroker.ns,
          'mosquitto_sub',
          '-h',
          subnetBroker.address,
          '-t',
          TOPICS,
          '--retained-only',
          '-F',
          '%t %x',
          '-W',
          '2',
        ],
        { encoding: 'utf8' },
      );
      return sub.stdout.split('\n').filter((line) => line.trim() !== '');
    };
    const rendezvousRow = async (agent: AgentProcess) =>
      (await agent.json<ResolverInfo[]>(['resolvers'])).find((row) => row.name === 'rendezvous');

    beforeAll(async () => {
      site.create();
      brokerDir = await mkdtemp(join(tmpdir(), 'nearmesh-site-broker-'));
      broker = new Mosquitto(brokerDir, BROKER_PORT, undefined, [], {
        netns: subnetBroker.ns,
        host: subnetBroker.address,
      });
      await broker.start();
      [alpha, bravo] = await Promise.all([
        startAgent(spec('alpha', subnetA)),
        startAgent(spec('bravo', subnetB)),
      ]);
    }, 40_000);

    afterAll(async () => {
      await stopAllAgents();
      await broker?.stop();
      site.delete();
      await rm(brokerDir, { recursive: true, force: true });
    });

    it('find each other through the broker and link directly across the router', async () => {
      await untilLinked(alpha, bravo, { timeoutMs: 30_000 });
      const peer = (await alpha.json<PeerInfo[]>(['peers'])).find((row) => row.name === 'bravo');
      // Whichever side dialled, the link runs between the two subnets, not through the broker's.
      expect(peer?.address).toMatch(new RegExp(`^${subnetB.address.replaceAll('.', '\\.')}:\\d+$`));
      // Both found the other through the broker; the dial that won made the link (one side's, or both).
      const rows = [await rendezvousRow(alpha), await rendezvousRow(bravo)];
      for (const row of rows) expect(row).toMatchObject({ state: 'running', candidates: 1 });
      expect((rows[0]?.links ?? 0) + (rows[1]?.links ?? 0)).toBeGreaterThanOrEqual(1);
      // mDNS found nobody: the router keeps multicast on each subnet.
      expect(
        (await alpha.json<ResolverInfo[]>(['resolvers'])).find((row) => row.name === 'mdns'),
      ).toMatchObject({
        found: 0,
      });
      await expectDelivered(alpha, bravo, 'across the router');
    });

    it('ignores a record of an earlier run replayed on the broker', async () => {
      const before = retainedRecords();
      expect(before).toHaveLength(2);
      // bravo restarts: its old record is withdrawn, the new run leaves a newer one.
      await bravo.stop();
      bravo = await startAgent({ ...spec('bravo', subnetB), dir: bravo.dir });
      await untilLinked(alpha, bravo, { timeoutMs: 30_000 });
      const after = retainedRecords();
      const old = before.filter((line) => !after.includes(line));
      expect(old).toHaveLength(1);
      const [topic, hex] = (old[0] as string).split(' ') as [string, string];
      const file = join(brokerDir, 'replayed.bin');
      await writeFile(file, Buffer.from(hex, 'hex'));
      const replayed = spawnSync('ip', [
        'netns',
        'exec',
        subnetBroker.ns,
        'mosquitto_pub',
        '-h',
        subnetBroker.address,
        '-t',
        topic,
        '-f',
        file,
        '-r',
        '-q',
        '1',
      ]);
      expect(replayed.status).toBe(0);
      await until('alpha ignored the replay', async () => {
        const status = await alpha.json<AgentStatus>(['status']);
        return status.counters['rendezvous.ignored_replayed'] === 1;
      });
      expect(await rendezvousRow(alpha)).toMatchObject({ candidates: 1 });
    });

    it('keeps the direct link when the broker goes away', async () => {
      const before = (await alpha.json<PeerInfo[]>(['peers'])).find((row) => row.name === 'bravo');
      await broker.stop();
      await until(
        'alpha noticed the broker gone',
        async () => (await rendezvousRow(alpha))?.state === 'connecting',
      );
      const peer = (await alpha.json<PeerInfo[]>(['peers'])).find((row) => row.name === 'bravo');
      // The same link: neither dropped nor made again.
      expect(peer).toMatchObject({
        state: 'connected',
        connected_since: before?.connected_since,
        address: before?.address,
      });
      await expectDelivered(bravo, alpha, 'broker gone, link stays');
    });
  },
);
