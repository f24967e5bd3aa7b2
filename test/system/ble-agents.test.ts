// Two real agents with Wi-Fi disabled and BLE on emulated controllers (a peripheral and a central each, 4 ptys):
// they find each other by advertisement, authenticate over a GATT link and exchange messages via the CLI, while a
// scanner without the key hears neither their names nor their peer ids.
// Also: [ble] enabled = "auto" / true when the adapter is missing.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import type { PeerInfo } from '../../agent/links/peer-directory.js';
import { type BleEmulator, startEmulator } from '../../scripts/ble-emulator/emulator.js';
import {
  AgentProcess,
  type AgentSpec,
  freePorts,
  listenTo,
  startAgent,
  stopAllAgents,
  temporaryDir,
  writeConfig,
} from '../support/agent-process.js';
import { describeWithBleEmulator, JsonChild, stopAllChildren } from '../support/ble-emulator.js';
import { until } from '../support/until.js';

interface BleAgent {
  name: string;
  meshKey: string;
  maxLinks?: number;
}

/** BLE-only agent specs, agent i on emulator controllers 2i (peripheral) and 2i + 1 (central). */
async function bleAgentSpecs(emulator: BleEmulator, agents: BleAgent[]): Promise<AgentSpec[]> {
  const ports = await freePorts(agents.length);
  return agents.map((agent, index) => ({
    name: agent.name,
    meshKey: agent.meshKey,
    port: ports[index]!,
    wifi: false,
    ble: {
      peripheral: `uart:${emulator.ptys[2 * index]}`,
      central: `uart:${emulator.ptys[2 * index + 1]}`,
      ...(agent.maxLinks !== undefined && { maxLinks: agent.maxLinks }),
    },
  }));
}

describeWithBleEmulator('agents over BLE only (emulated controllers)', () => {
  let emulator: BleEmulator;
  let alpha: AgentProcess;
  let bravo: AgentProcess;
  let charlie: AgentProcess;
  let outsider: JsonChild;
  let startedAtMs = 0;

  beforeAll(async () => {
    emulator = await startEmulator({ controllers: 7 });
    outsider = new JsonChild('ble-raw-scanner.mjs', { BLE_PTY: emulator.ptys[6]! });
    await outsider.waitFor('scanning');
    const meshKey = generateMeshKey();
    const specs = await bleAgentSpecs(emulator, [
      { name: 'alpha', meshKey },
      { name: 'bravo', meshKey },
      // Another mesh in radio range: it hears alpha and bravo and they hear it, but nobody dials.
      { name: 'charlie', meshKey: generateMeshKey() },
    ]);
    startedAtMs = performance.now();
    [alpha, bravo, charlie] = (await Promise.all(specs.map((spec) => startAgent(spec)))) as [
      AgentProcess,
      AgentProcess,
      AgentProcess,
    ];
  }, 30_000);

  afterAll(async () => {
    await stopAllAgents();
    await stopAllChildren();
    await emulator?.stop();
  });

  it('links over BLE, shows the BLE link in peers, exchanges messages both ways, ignores another mesh', async () => {
    const linked = async (agent: AgentProcess, name: string): Promise<PeerInfo | undefined> =>
      (await agent.json<PeerInfo[]>(['peers'])).find(
        (peer) => peer.name === name && peer.state === 'connected',
      );
    const bravoAtAlpha = await until('alpha linked to bravo', () => linked(alpha, 'bravo'), {
      timeoutMs: 20_000,
      intervalMs: 50,
    });
    const alphaAtBravo = await until('bravo linked to alpha', () => linked(bravo, 'alpha'), {
      timeoutMs: 20_000,
      intervalMs: 50,
    });
    const linkedMs = performance.now() - startedAtMs;
    expect(bravoAtAlpha.medium).toBe('ble');
    expect(alphaAtBravo.medium).toBe('ble');
    expect((await alpha.json<{ ble: string }>(['status'])).ble).toBe('on');

    for (const [from, to, toName, fromInfo] of [
      [alpha, bravo, 'bravo', alphaAtBravo],
      [bravo, alpha, 'alpha', bravoAtAlpha],
    ] as const) {
      const listener = await listenTo(to);
      try {
        const sent = await from.cli(['send', toName, `over BLE to ${toName}`, '--json']);
        expect(sent.stderr).toBe('');
        expect(JSON.parse(sent.stdout)).toMatchObject({ acknowledged: true });
        await until('the message', () => listener.messages.length > 0, { timeoutMs: 5_000 });
        expect(listener.messages).toEqual([
          expect.objectContaining({ from: fromInfo.id, payload: `over BLE to ${toName}` }),
        ]);
      } finally {
        listener.stop();
      }
    }
    // By now every scanner has heard every advertiser (the emulator reports them at scan start).
    for (const [agent, other] of [
      [alpha, 'bravo'],
      [bravo, 'alpha'],
    ] as const) {
      expect((await agent.json<PeerInfo[]>(['peers'])).map((peer) => peer.name)).toEqual([other]);
    }
    expect(await charlie.json<PeerInfo[]>(['peers'])).toEqual([]);

    // What a scanner without the key heard of the three: advertising data and scan responses.
    const reports = outsider.messages.filter((m) => m.event === 'report');
    const scanResponses = reports.filter((m) => m.type === 4 && m.data.length === 62);
    expect(new Set(scanResponses.map((m) => m.address)).size).toBeGreaterThanOrEqual(3);
    const ids = await Promise.all(
      [alpha, bravo, charlie].map(async (a) => (await a.json<{ id: string }>(['id'])).id),
    );
    for (const report of reports) {
      // Compared as bytes: a hex string search would also match across byte boundaries.
      const data = Buffer.from(report.data, 'hex');
      for (const name of ['alpha', 'bravo', 'charlie']) {
        expect(data.includes(Buffer.from(name)), `${report.data} holds ${name}`).toBe(false);
      }
      for (const id of ids) {
        const idBytes = Buffer.from(id, 'hex');
        for (let i = 0; i + 3 <= idBytes.length; i++) {
          const window = idBytes.subarray(i, i + 3);
          expect(data.includes(window), `${report.data} holds ${window.toString('hex')}`).toBe(false);
        }
      }
    }
    console.log(
      `[ble-agents] both agents saw an authenticated BLE link ${Math.round(linkedMs)} ms after start`,
    );
  }, 60_000);
});

describeWithBleEmulator('a BLE peer that is killed and comes back (per-open controllers)', () => {
  let emulator: BleEmulator;

  afterAll(async () => {
    await stopAllAgents();
    await emulator?.stop();
  });

  it('is noticed, and re-linked when it restarts with the same identity', async () => {
    // per-open: a controller dies with its host's pty, so the survivor is told at once (no supervision timeout).
    emulator = await startEmulator({ controllers: 4, lifetime: 'per-open' });
    const meshKey = generateMeshKey();
    const [alphaSpec, bravoSpec] = await bleAgentSpecs(emulator, [
      { name: 'alpha', meshKey },
      { name: 'bravo', meshKey },
    ]);
    const [alpha, bravo] = await Promise.all([startAgent(alphaSpec!), startAgent(bravoSpec!)]);
    const bravoState = async () =>
      (await alpha.json<PeerInfo[]>(['peers'])).find((peer) => peer.name === 'bravo')?.state;
    await until('alpha linked to bravo', async () => (await bravoState()) === 'connected');

    await bravo.stop('SIGKILL');
    const killedAt = performance.now();
    await until('alpha noticed', async () => (await bravoState()) !== 'connected', {
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    const noticedMs = performance.now() - killedAt;

    const restartedAt = performance.now();
    await startAgent({ ...bravoSpec!, dir: bravo.dir });
    await until('alpha re-linked to bravo', async () => (await bravoState()) === 'connected', {
      timeoutMs: 20_000,
      intervalMs: 50,
    });
    // An orderly stop releases both libraries and exits.
    const stoppingAt = performance.now();
    expect(await alpha.stop('SIGTERM')).toBe(0);
    const stopMs = performance.now() - stoppingAt;
    console.log(
      `[ble-agents] SIGTERM to exit ${Math.round(stopMs)} ms; killed peer noticed after ${Math.round(noticedMs)} ms; re-linked ` +
        `${Math.round(performance.now() - restartedAt)} ms after its restart began`,
    );
  }, 60_000);
});

describeWithBleEmulator('an agent at its BLE link limit (ble.max_links)', () => {
  let emulator: BleEmulator;

  afterAll(async () => {
    await stopAllAgents();
    await emulator?.stop();
  });

  it('keeps at most max_links BLE links while the others still link among themselves', async () => {
    emulator = await startEmulator({ controllers: 6 });
    const meshKey = generateMeshKey();
    const specs = await bleAgentSpecs(emulator, [
      { name: 'hub', meshKey, maxLinks: 1 },
      { name: 'left', meshKey },
      { name: 'right', meshKey },
    ]);
    const [hub, left, right] = (await Promise.all(specs.map((spec) => startAgent(spec)))) as [
      AgentProcess,
      AgentProcess,
      AgentProcess,
    ];
    const connected = async (agent: AgentProcess): Promise<string[]> =>
      (await agent.json<PeerInfo[]>(['peers']))
        .filter((peer) => peer.state === 'connected')
        .map((p) => p.name);
    await until('left and right linked', async () => (await connected(left)).includes('right'), {
      timeoutMs: 20_000,
    });
    expect(await connected(right)).toContain('left');
    await until('the hub linked once', async () => (await connected(hub)).length === 1, {
      timeoutMs: 20_000,
    });
    // The hub now advertises that it is not accepting links, and turns away any central that dials anyway.
    // Kept: time is the subject (it stays at one link for 3 s while the others scan); no event marks a
    // dial that did not happen.
    for (let check = 0; check < 6; check++) {
      expect((await connected(hub)).length).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }, 60_000);
});

describeWithBleEmulator('an agent whose BLE adapters are unplugged and plugged back', () => {
  let emulator: BleEmulator;

  afterAll(async () => {
    await stopAllAgents();
    await emulator?.stop();
  });

  it('keeps running, reports the loss, reopens both adapters and links again', async () => {
    emulator = await startEmulator({ controllers: 4 });
    const meshKey = generateMeshKey();
    const specs = await bleAgentSpecs(emulator, [
      { name: 'alpha', meshKey },
      { name: 'bravo', meshKey },
    ]);
    const [alpha] = (await Promise.all(specs.map((spec) => startAgent(spec)))) as [
      AgentProcess,
      AgentProcess,
    ];
    const bravoState = async () =>
      (await alpha.json<PeerInfo[]>(['peers'])).find((peer) => peer.name === 'bravo')?.state;
    await until('alpha linked to bravo', async () => (await bravoState()) === 'connected');

    await Promise.all([emulator.unplug(0), emulator.unplug(1)]);
    await until('alpha lost bravo', async () => (await bravoState()) !== 'connected', {
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    await until(
      'alpha reported both adapters lost',
      () => (alpha.output.match(/adapter lost/g) ?? []).length >= 2,
    );
    // Unplugged for a while: the agent keeps answering and keeps retrying. Kept: time is the subject, past
    // the first retry (1 s), so reopening must outlive a failed attempt (which nothing logs or counts).
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect((await alpha.json<{ ble: string }>(['status'])).ble).toBe('on');

    const pluggedAt = performance.now();
    await Promise.all([emulator.replug(0), emulator.replug(1)]);
    await until('alpha re-linked to bravo', async () => (await bravoState()) === 'connected', {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    // One adapter back may be enough to relink (the dialler's central); wait for the other too.
    await until('both adapters back', () => (alpha.output.match(/adapter back/g) ?? []).length >= 2);
    expect((alpha.output.match(/adapter back/g) ?? []).length).toBe(2);
    const counters = (await alpha.json<{ counters: Record<string, number> }>(['status'])).counters;
    expect(counters['ble.adapters_lost']).toBe(2);
    expect(counters['ble.adapters_reopened']).toBe(2);
    console.log(
      `[ble-agents] re-linked ${Math.round(performance.now() - pluggedAt)} ms after the adapters came back`,
    );
  }, 60_000);
});

describeWithBleEmulator('agents with one controller each for both roles (shared adapter)', () => {
  let emulator: BleEmulator;

  afterAll(async () => {
    await stopAllAgents();
    await emulator?.stop();
  });

  it('link all three pairs, one agent in both roles at once, and carry 48 KiB messages both ways', async () => {
    emulator = await startEmulator({ controllers: 3 });
    const meshKey = generateMeshKey();
    const ports = await freePorts(3);
    const agents = (await Promise.all(
      ['alpha', 'bravo', 'charlie'].map((name, index) =>
        startAgent({
          name,
          meshKey,
          port: ports[index]!,
          wifi: false,
          // One adapter for both roles: one multi-role controller, as the default "hci0" on a Pi.
          ble: { peripheral: `uart:${emulator.ptys[index]}`, central: `uart:${emulator.ptys[index]}` },
        }),
      ),
    )) as [AgentProcess, AgentProcess, AgentProcess];
    const linkedPeers = async (agent: AgentProcess) =>
      (await agent.json<PeerInfo[]>(['peers'])).filter((peer) => peer.state === 'connected');
    for (const agent of agents) {
      await until(
        `${agent.spec.name} linked to both others`,
        async () => (await linkedPeers(agent)).length === 2,
        { timeoutMs: 20_000 },
      );
    }
    const directions = await Promise.all(
      agents.map(async (agent) => new Set((await linkedPeers(agent)).map((peer) => peer.direction))),
    );
    // The agent with the middle peer id dials one and is dialled by the other, on one controller.
    expect(directions.some((seen) => seen.has('inbound') && seen.has('outbound'))).toBe(true);

    const [alpha, bravo] = agents;
    for (const [from, to, toName] of [
      [alpha, bravo, 'bravo'],
      [bravo, alpha, 'alpha'],
    ] as const) {
      const payload = randomBytes(48 * 1024);
      const listener = await listenTo(to);
      const sent = await from.cli(['send', toName, '-'], 30_000, payload);
      expect(sent.code, sent.stderr).toBe(0);
      const received = await until(`${toName} to receive`, () => listener.messages[0], {
        timeoutMs: 10_000,
        intervalMs: 50,
      });
      listener.stop();
      expect(Buffer.from(received.payload_base64, 'base64').equals(payload)).toBe(true);
    }
  }, 60_000);
});

describeWithBleEmulator('a mesh across media: BLE only, both, Wi-Fi only', () => {
  let emulator: BleEmulator;

  afterAll(async () => {
    await stopAllAgents();
    await emulator?.stop();
  });

  it('carries messages both ways between a BLE-only and a Wi-Fi-only agent through one with both', async () => {
    emulator = await startEmulator({ controllers: 4 });
    const meshKey = generateMeshKey();
    const [alphaSpec, bravoBleSpec] = await bleAgentSpecs(emulator, [
      { name: 'alpha', meshKey },
      { name: 'bravo', meshKey },
    ]);
    const { wifi: _bleOnly, ...bravoBothMedia } = bravoBleSpec!;
    const bravoSpec: AgentSpec = { ...bravoBothMedia, listenHost: '127.0.0.1', discovery: [] };
    const [charliePort] = await freePorts(1);
    const charlieSpec: AgentSpec = {
      name: 'charlie',
      meshKey,
      port: charliePort!,
      listenHost: '127.0.0.1',
      discovery: [],
      peers: [`127.0.0.1:${bravoSpec.port}`],
    };
    const [alpha, bravo, charlie] = (await Promise.all(
      [alphaSpec!, bravoSpec, charlieSpec].map((spec) => startAgent(spec)),
    )) as [AgentProcess, AgentProcess, AgentProcess];
    const routedPeer = (agent: AgentProcess, name: string) => async () =>
      (await agent.json<PeerInfo[]>(['peers'])).find((peer) => peer.name === name && peer.state === 'routed');
    const charlieAtAlpha = await until('alpha to reach charlie through bravo', routedPeer(alpha, 'charlie'), {
      timeoutMs: 20_000,
    });
    const alphaAtCharlie = await until('charlie to reach alpha through bravo', routedPeer(charlie, 'alpha'), {
      timeoutMs: 20_000,
    });
    const bravoId = (await bravo.json<{ id: string }>(['id'])).id;
    expect(charlieAtAlpha).toMatchObject({ hops: 2, next_hop: bravoId });
    expect(alphaAtCharlie).toMatchObject({ hops: 2, next_hop: bravoId });
    const media = Object.fromEntries(
      (await bravo.json<PeerInfo[]>(['peers'])).map((peer) => [peer.name, peer.medium]),
    );
    expect(media).toEqual({ alpha: 'ble', charlie: 'wifi' });

    for (const [from, to, toName, fromName] of [
      [alpha, charlie, 'charlie', 'alpha'],
      [charlie, alpha, 'alpha', 'charlie'],
    ] as const) {
      const listener = await listenTo(to);
      const sent = await from.cli(['send', toName, `from ${fromName} across media`]);
      expect(sent.code, sent.stderr).toBe(0);
      const received = await until(`${toName} to receive`, () => listener.messages[0], {
        timeoutMs: 10_000,
        intervalMs: 50,
      });
      listener.stop();
      expect(received).toMatchObject({
        from_name: fromName,
        payload: `from ${fromName} across media`,
        hops: 2,
      });
    }
  }, 60_000);
});

// No emulator needed: adapters that do not exist.
describe('an agent whose BLE adapter is missing', () => {
  const missing = {
    peripheral: 'uart:/nonexistent/nearmesh-pty-0',
    central: 'uart:/nonexistent/nearmesh-pty-1',
  };

  afterAll(async () => {
    await stopAllAgents();
  });

  it('with enabled = "auto" logs one line and runs without BLE', async () => {
    const [port] = await freePorts(1);
    const agent = await startAgent({
      name: 'no-radio',
      meshKey: generateMeshKey(),
      port: port!,
      ble: { ...missing, enabled: 'auto' },
    });
    expect((await agent.json<{ ble: string }>(['status'])).ble).toBe('unavailable');
    expect(agent.output.match(/BLE: not available, running without it/g)).toHaveLength(1);
  }, 20_000);

  it('with a kernel adapter (hciN) that does not exist, keeps running long after giving up on BLE', async () => {
    const [port] = await freePorts(1);
    const agent = await startAgent({
      name: 'no-kernel-radio',
      meshKey: generateMeshKey(),
      port: port!,
      ble: { peripheral: 'hci9', central: 'hci9', enabled: 'auto' },
    });
    // The BLE libraries' kernel driver used to throw from a 1 s poll timer after a failed start. Kept: time
    // is the subject, that timer's two rounds and more.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(agent.child.exitCode).toBeNull();
    expect((await agent.json<{ ble: string }>(['status'])).ble).toBe('unavailable');
    expect(agent.output).toMatch(/BLE: not available, running without it .*hci9: no such adapter/);
  }, 20_000);

  it('with enabled = true refuses to start, naming the adapter', async () => {
    const [port] = await freePorts(1);
    const spec = { name: 'needs-radio', meshKey: generateMeshKey(), port: port!, ble: missing };
    const dir = temporaryDir();
    const agent = new AgentProcess(spec, dir, writeConfig(spec, dir));
    expect(await agent.exited).not.toBe(0);
    expect(agent.output).toContain('BLE unavailable: uart:/nonexistent/nearmesh-pty-');
  }, 30_000);
});
