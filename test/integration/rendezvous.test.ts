// The rendezvous resolver against a real mosquitto on loopback: resolvers in this process (each with its own
// identity and the real upstream bridge) find each other's records; the contract suite runs against it; what
// must be ignored is (another mesh's record, a replay after a goodbye, an expired one, a revoked signer, a
// member's forgery); and two real agent processes with no [[peers]] and no mDNS link through it, show it in
// `nearmesh resolvers`, and the broker withdraws a killed agent's record (its will).
import { hkdfSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { ResolverInfo } from '../../agent/api.js';
import { Counters } from '../../agent/core/counters.js';
import { silentLogger } from '../../agent/core/logger.js';
import { RendezvousResolver } from '../../agent/gateway/rendezvous-resolver.js';
import { UpstreamBridge } from '../../agent/gateway/upstream-bridge.js';
import type { Identity } from '../../agent/identity/identity.js';
import { encodeRendezvousRecord, encodeRendezvousSigned } from '../../agent/protocol/rendezvous.js';
import { aeadEncrypt } from '../../agent/security/noise-crypto.js';
import {
  rendezvousKeys,
  rendezvousSlot,
  sealRendezvousRecord,
} from '../../agent/security/rendezvous-seal.js';
import { identityFromSeed } from '../../scripts/bench/mesh-sim.js';
import type { PeerCandidate } from '../../transports/resolver.js';
import {
  type AgentProcess,
  expectDelivered,
  freePorts,
  startAgent,
  stopAllAgents,
  untilLinked,
} from '../support/agent-process.js';
import { Mosquitto, missingMosquittoTools } from '../support/mosquitto.js';
import { describeWhenAvailable } from '../support/requirements.js';
import { until } from '../support/until.js';
import { describeResolverContract } from '../unit/transports/resolver-contract.js';

const MESH_KEY = new Uint8Array(32).fill(0x5a);
const PREFIX = 'nearmesh/rendezvous/';
let broker: Mosquitto | undefined;
let brokerDir: string;
let brokerPort = 0;
let seeds = 0;

async function startBroker(): Promise<void> {
  if (broker !== undefined) return;
  brokerDir = await mkdtemp(join(tmpdir(), 'nearmesh-rendezvous-broker-'));
  [brokerPort] = (await freePorts(1)) as [number];
  broker = new Mosquitto(brokerDir, brokerPort);
  await broker.start();
}

interface Made {
  resolver: RendezvousResolver;
  identity: Identity;
  counters: Counters;
  found: PeerCandidate[];
  lost: PeerCandidate[];
  warnings: string[];
}

const running: RendezvousResolver[] = [];

function rendezvous(
  options: {
    endpoints?: string[];
    meshKey?: Uint8Array;
    isRevoked?: (peerId: string) => boolean;
    identity?: Identity;
    name?: string;
  } = {},
): Made {
  const seed = new Uint8Array(32);
  seed[31] = ++seeds;
  const identity = options.identity ?? identityFromSeed(seed);
  const counters = new Counters();
  const resolver = new RendezvousResolver({
    connection: {
      url: `mqtt://127.0.0.1:${brokerPort}`,
      clientId: `rv-test-${identity.peerId}`,
      reconnectMinMs: 100,
    },
    prefix: PREFIX,
    identity,
    name: options.name ?? `agent-${seeds}`,
    meshKeys: () => [options.meshKey ?? MESH_KEY],
    hasMesh: () => true,
    endpoints: () => options.endpoints ?? [],
    ttlS: 60,
    isRevoked: options.isRevoked ?? (() => false),
    maxRecords: 16,
    connect: (bridgeOptions) => new UpstreamBridge(bridgeOptions),
    counters,
    log: silentLogger(),
  });
  const made: Made = { resolver, identity, counters, found: [], lost: [], warnings: [] };
  resolver.on('found', (candidate) => made.found.push(candidate));
  resolver.on('lost', (candidate) => made.lost.push(candidate));
  resolver.on('warning', (error) => made.warnings.push(error.message));
  running.push(resolver);
  return made;
}

/** A plain MQTT client on the broker, to see and place retained records as anyone could. */
async function brokerClient(): Promise<MqttClient> {
  return connectAsync(`mqtt://127.0.0.1:${brokerPort}`, { protocolVersion: 5, reconnectPeriod: 0 });
}

describeWhenAvailable('rendezvous through a real mosquitto', missingMosquittoTools(), () => {
  beforeAll(startBroker);
  afterEach(async () => {
    await Promise.all(running.splice(0).map((resolver) => resolver.stop()));
  });
  afterAll(async () => {
    await stopAllAgents();
    await broker?.stop();
    broker = undefined;
    await rm(brokerDir, { recursive: true, force: true });
  });

  it('finds the other agents of its mesh with their peer ids and names, and leaves only opaque hex on the broker', async () => {
    const spy = await brokerClient();
    const seen: { topic: string; payload: Buffer }[] = [];
    spy.on('message', (topic, payload) => seen.push({ topic, payload }));
    await spy.subscribeAsync(`${PREFIX}#`);
    const a = rendezvous({ endpoints: ['10.1.0.5:7450'], name: 'pump' });
    const b = rendezvous({ endpoints: ['10.2.0.6:7450', '10.2.1.6:7450'], name: 'valve' });
    await Promise.all([a.resolver.start(), b.resolver.start()]);
    await until('each finds the other', () => a.found.length === 2 && b.found.length === 1);
    expect(b.found).toEqual([
      {
        medium: 'wifi',
        address: '10.1.0.5:7450',
        peerId: a.identity.peerId,
        name: 'pump',
        source: 'rendezvous',
      },
    ]);
    expect(a.found.map((c) => c.address).sort()).toEqual(['10.2.0.6:7450', '10.2.1.6:7450']);
    await until('both records seen by an outsider', () => seen.length >= 2);
    for (const { topic, payload } of seen) {
      expect(topic).toMatch(/^nearmesh\/rendezvous\/[0-9a-f]{32}\/[0-9a-f]{32}$/);
      const text = payload.toString('latin1');
      for (const secret of ['pump', 'valve', '10.1.0.5', a.identity.peerId])
        expect(text).not.toContain(secret);
    }
    spy.end(true);
  });

  it('loses an agent that says goodbye, and ignores its old record replayed after', async () => {
    const spy = await brokerClient();
    const records = new Map<string, Buffer>();
    spy.on('message', (topic, payload) => {
      if (payload.length > 0) records.set(topic, payload);
    });
    await spy.subscribeAsync(`${PREFIX}#`);
    const a = rendezvous();
    const b = rendezvous({ endpoints: ['10.2.0.6:7450'] });
    await Promise.all([a.resolver.start(), b.resolver.start()]);
    await until('a finds b', () => a.found.length === 1);
    await until('the record captured', () => records.size === 1);
    await b.resolver.stop();
    await until('a loses b', () => a.lost.length === 1);
    const [[topic, payload]] = [...records] as [[string, Buffer]];
    await spy.publishAsync(topic, payload, { retain: true, qos: 1 });
    await until('the replay counted', () => a.counters.get('rendezvous.ignored_replayed') === 1);
    expect(a.found).toHaveLength(1);
    await spy.publishAsync(topic, Buffer.alloc(0), { retain: true, qos: 1 });
    spy.end(true);
  });

  it('ignores records of another mesh, expired ones, revoked signers and a member’s forgery', async () => {
    const revoked = identityFromSeed(new Uint8Array(32).fill(0x77));
    const a = rendezvous({ isRevoked: (peerId) => peerId === revoked.peerId });
    await a.resolver.start();
    const keys = rendezvousKeys(MESH_KEY);
    const spy = await brokerClient();
    const place = (slot: string, payload: Uint8Array, tagHex = keys.tagHex) =>
      spy.publishAsync(`${PREFIX}${tagHex}/${slot}`, Buffer.from(payload), { retain: true, qos: 1 });
    const claims = (issuedAtMs = Date.now()) => ({
      name: 'x',
      endpoints: ['10.9.0.1:7450'],
      issuedAtMs,
      ttlS: 60,
    });
    // Another mesh on the same broker.
    const foreignKeys = rendezvousKeys(new Uint8Array(32).fill(1));
    const stranger = identityFromSeed(new Uint8Array(32).fill(0x66));
    const foreign = sealRendezvousRecord(foreignKeys, stranger, claims());
    await place(foreign.slot, foreign.payload, foreignKeys.tagHex);
    // A member's record from two TTLs ago.
    const old = identityFromSeed(new Uint8Array(32).fill(0x55));
    const expired = sealRendezvousRecord(keys, old, claims(Date.now() - 120_000));
    await place(expired.slot, expired.payload);
    // A revoked member's fresh record.
    const fromRevoked = sealRendezvousRecord(keys, revoked, claims());
    await place(fromRevoked.slot, fromRevoked.payload);
    // A member (holding the mesh key) writing a record in another member's name, in that member's slot.
    const victim = identityFromSeed(new Uint8Array(32).fill(0x44));
    const full = { ...claims(), publicKey: victim.publicKey };
    const forged = encodeRendezvousRecord({
      ...full,
      signature: stranger.sign(encodeRendezvousSigned(keys.tag, full)),
    });
    const salt = new Uint8Array(16).fill(2);
    const victimSlot = rendezvousSlot(keys, victim.publicKey);
    const key = new Uint8Array(hkdfSync('sha256', MESH_KEY, salt, 'nearmesh/2 rendezvous record', 32));
    const sealed = aeadEncrypt(key, 0n, new TextEncoder().encode(`${keys.tagHex}/${victimSlot}`), forged);
    await place(victimSlot, new Uint8Array([...salt, ...sealed]));
    // Another mesh's records never reach it: it subscribes to its own mesh's tag only.
    await until(
      () => `the three counted: ${JSON.stringify(a.counters.snapshot())}`,
      () =>
        ['ignored_expired', 'ignored_revoked', 'ignored_bad'].every(
          (name) => a.counters.get(`rendezvous.${name}`) === 1,
        ),
    );
    expect(a.counters.get('rendezvous.ignored_foreign')).toBe(0);
    expect(a.found).toEqual([]);
    expect(a.warnings).toEqual([expect.stringContaining('signature does not verify')]);
    for (const slot of [expired.slot, fromRevoked.slot, victimSlot]) await place(slot, new Uint8Array(0));
    await place(foreign.slot, new Uint8Array(0), foreignKeys.tagHex);
    spy.end(true);
  });
});

// The contract suite: the resolver under test reads records two other agents leave, one address each;
// losing an address is its agent saying goodbye.
const helpers = new Map<string, RendezvousResolver>();
describeWhenAvailable('rendezvous resolver contract (needs mosquitto)', missingMosquittoTools(), () => {
  beforeAll(startBroker);
  describeResolverContract({
    title: 'rendezvous (real mosquitto)',
    medium: 'wifi',
    addresses: ['10.3.0.1:7450', '10.4.0.1:7450'],
    make: async (addresses) => {
      for (const address of addresses) {
        if (helpers.has(address)) continue;
        const helper = rendezvous({ endpoints: [address] }).resolver;
        running.splice(running.indexOf(helper), 1);
        helpers.set(address, helper);
        await helper.start();
      }
      const { resolver } = rendezvous();
      running.splice(running.indexOf(resolver), 1);
      return {
        resolver,
        lose: async (address) => {
          await helpers.get(address)?.stop();
          helpers.delete(address);
        },
      };
    },
    cleanup: async () => {
      await Promise.all([...helpers.values()].map((helper) => helper.stop()));
      helpers.clear();
    },
  });
});

describeWhenAvailable('agents that meet only through the broker', missingMosquittoTools(), () => {
  let alpha: AgentProcess;
  let bravo: AgentProcess;
  const meshKey = Buffer.from(MESH_KEY).toString('base64url');

  beforeAll(async () => {
    await startBroker();
    const [alphaPort, bravoPort] = (await freePorts(2)) as [number, number];
    // No [[peers]], no mDNS: the rendezvous is the only way they learn of each other.
    const table = (port: number) =>
      [
        '[rendezvous]',
        'enabled = true',
        `url = "mqtt://127.0.0.1:${brokerPort}"`,
        `announce = ["127.0.0.1:${port}"]`,
      ].join('\n');
    [alpha, bravo] = await Promise.all([
      startAgent({ name: 'alpha', meshKey, port: alphaPort, extraToml: table(alphaPort) }),
      startAgent({ name: 'bravo', meshKey, port: bravoPort, extraToml: table(bravoPort) }),
    ]);
  }, 30_000);

  afterAll(() => stopAllAgents());

  it('link directly, and `nearmesh resolvers` says how they met', async () => {
    await untilLinked(alpha, bravo);
    await expectDelivered(alpha, bravo, 'met through the broker');
    const row = (await alpha.json<ResolverInfo[]>(['resolvers'])).find((r) => r.name === 'rendezvous');
    expect(row).toMatchObject({ state: 'running', candidates: 1, found: 1 });
    expect(row?.detail).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+: 1 record, ours left$/);
  });

  it('loses a killed agent’s record: the broker publishes its will', async () => {
    await bravo.stop('SIGKILL');
    await until('alpha lost the record', async () => {
      const row = (await alpha.json<ResolverInfo[]>(['resolvers'])).find((r) => r.name === 'rendezvous');
      return row?.candidates === 0 && row.lost === 1;
    });
  });
});
