// One member of the mesh pushes files into another's inbox until it may push no more: the receiver takes
// them up to `[transfer] max_bytes_per_peer`, then refuses every further OFFER from that member with
// disk-full and a "peer quota" message (counted as transfers.rejected_peer_quota), a burst of offers
// changes nothing, another member can still push, and the receiver answers `status` within its memory
// budget throughout. Who pushed what survives a restart of the receiver. A name the receiver would refuse
// (a right-to-left override) is refused by `nearmesh push` itself, before anything is sent.
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateMeshKey } from '../../../agent/config/mesh-key.js';
import { ControlClient } from '../../../agent/control/client.js';
import type { PeerInfo } from '../../../agent/links/peer-directory.js';
import type { PushEvent } from '../../../agent/messaging/transfer/manager.js';
import { countersOf, expectResponsive } from '../../support/abuse.js';
import {
  type AgentProcess,
  freePorts,
  startAgent,
  stopAllAgents,
  temporaryDir,
} from '../../support/agent-process.js';
import { rssMb } from '../../support/proc-status.js';
import { until } from '../../support/until.js';

const MiB = 1024 * 1024;
const QUOTA_FILES = 4;
const RSS_BUDGET_MB = 64;
const meshKey = generateMeshKey();

async function linked(agent: AgentProcess, name: string): Promise<void> {
  await until(`${agent.spec.name} linked to ${name}`, async () => {
    const peers = await agent.json<PeerInfo[]>(['peers']);
    return peers.some((peer) => peer.name === name && peer.state === 'connected');
  });
}

/** Pushes `path` from `agent` to bravo; the last event: sent or failed. */
async function push(agent: AgentProcess, path: string): Promise<PushEvent> {
  const client = await ControlClient.connect(agent.socketPath);
  try {
    return await new Promise<PushEvent>((resolve, reject) => {
      client
        .stream({ cmd: 'push', peer: 'bravo', path }, (event) => {
          if (event.type === 'sent' || event.type === 'failed') resolve(event);
        })
        .catch(reject);
    });
  } finally {
    client.close();
  }
}

describe('abuse: one member fills another’s inbox', () => {
  let bravo: AgentProcess;
  let alice: AgentProcess;
  let carol: AgentProcess;
  const inbox = temporaryDir('nearmesh-quota-inbox-');
  const files = temporaryDir('nearmesh-quota-files-');
  const bravoDir = temporaryDir('nearmesh-quota-bravo-');
  let bravoPort: number;

  function fileOf(name: string): string {
    const path = join(files, name);
    writeFileSync(path, Buffer.alloc(MiB, name));
    return path;
  }

  async function startBravo(): Promise<AgentProcess> {
    return startAgent({
      name: 'bravo',
      meshKey,
      port: bravoPort,
      dir: bravoDir,
      extraToml: [
        '[transfer]',
        `inbox = ${JSON.stringify(inbox)}`,
        `max_bytes_per_peer = ${QUOTA_FILES * MiB}`,
      ].join('\n'),
    });
  }

  beforeAll(async () => {
    const [b, a, c] = (await freePorts(3)) as [number, number, number];
    bravoPort = b;
    bravo = await startBravo();
    const peers = [`127.0.0.1:${bravoPort}`];
    alice = await startAgent({ name: 'alice', meshKey, port: a, peers });
    carol = await startAgent({ name: 'carol', meshKey, port: c, peers });
    await linked(alice, 'bravo');
    await linked(carol, 'bravo');
  }, 60_000);

  afterAll(stopAllAgents);

  it('takes a member’s files up to its quota, then refuses it; another member still pushes', async () => {
    const pid = bravo.child.pid as number;
    const idleRss = rssMb(pid);
    let peakRss = idleRss;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, rssMb(pid));
    }, 5);
    try {
      // Until the first refusal (and no further than a few files past where it must come).
      const outcomes: PushEvent[] = [];
      for (let n = 0; n < QUOTA_FILES + 3; n++) {
        const outcome = await push(alice, fileOf(`alice-${n}.bin`));
        outcomes.push(outcome);
        if (outcome.type === 'failed') break;
      }
      expect(outcomes.map((outcome) => outcome.type)).toEqual([
        ...Array<string>(QUOTA_FILES).fill('sent'),
        'failed',
      ]);
      expect(outcomes.at(-1)).toMatchObject({
        code: 'transfer-rejected',
        message: expect.stringMatching(/disk-full: peer quota: 4194304 bytes from you/),
      });

      // A burst of offers from the same member: every one refused, none slips through.
      const burst = Promise.all(Array.from({ length: 8 }, (_, n) => push(alice, fileOf(`burst-${n}.bin`))));
      // The receiver answers its own user meanwhile.
      await expectResponsive(bravo);
      expect((await burst).map((outcome) => outcome.type)).toEqual(Array<string>(8).fill('failed'));

      // Another member is not affected.
      expect(await push(carol, fileOf('carol.bin'))).toMatchObject({ type: 'sent' });
    } finally {
      clearInterval(sampler);
    }
    const received = readdirSync(inbox).filter((name) => !name.startsWith('.'));
    expect(received.sort()).toEqual([
      ...Array.from({ length: QUOTA_FILES }, (_, n) => `alice-${n}.bin`),
      'carol.bin',
    ]);
    const seen = await countersOf(bravo);
    expect(seen['transfers.rejected_peer_quota']).toBe(9);
    expect(seen['transfers.refused']).toBe(9);
    expect(seen['transfers.received']).toBe(QUOTA_FILES + 1);
    console.log(`RSS of the receiver: ${idleRss.toFixed(1)} MB idle, ${peakRss.toFixed(1)} MB at most`);
    expect(peakRss).toBeLessThanOrEqual(idleRss + RSS_BUDGET_MB);
  }, 120_000);

  it('remembers who pushed the files across a restart; a file taken away frees its share', async () => {
    await bravo.stop();
    bravo = await startBravo();
    await linked(alice, 'bravo');
    expect(await push(alice, fileOf('after-restart.bin'))).toMatchObject({
      type: 'failed',
      message: expect.stringMatching(/peer quota/),
    });
    expect((await countersOf(bravo))['transfers.rejected_peer_quota']).toBe(1);
    // The user takes one of alice's files away: there is room for one more.
    rmSync(join(inbox, 'alice-0.bin'));
    expect(await push(alice, fileOf('after-restart.bin'))).toMatchObject({ type: 'sent' });
  }, 60_000);

  it('`nearmesh push` refuses a name the receiver would refuse, before sending anything', async () => {
    const before = await countersOf(bravo);
    const result = await alice.cli(['push', 'bravo', fileOf('plain.bin'), '--name', 'invoice\u202efdp.exe']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/bidirectional override/);
    expect(result.stdout).toBe('');
    const after = await countersOf(bravo);
    expect(after['transfers.refused'] ?? 0).toBe(before['transfers.refused'] ?? 0);
    expect((await alice.cli(['status'])).code).toBe(0);
  });
});
