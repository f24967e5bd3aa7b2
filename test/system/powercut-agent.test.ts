// Power cuts at random instants, for real: agent x keeps its data_dir on the power-cut file system and loses
// power (SIGKILL and every unsynced write dropped, at the same moment) 100 times while y sends it reliable
// messages and pushes and x sends y its own; a third of the cuts are torn (a prefix of the unsynced writes
// lands). After each cut x starts again. In the end: every message y sent is in x's inbox once (those whose
// receipt y saw confirmed among them), every message x's agent said it had queued reached y once, nothing
// arrived twice, every push y was told arrived is in x's inbox whole, and x kept its identity. The seed is
// printed; NEARMESH_POWERCUT_SEED replays a run.
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ControlClient } from '../../agent/control/client.js';
import type { ListenEvent } from '../../agent/control/wire.js';
import { seededRandom } from '../../scripts/bench/stats.js';
import {
  type AgentProcess,
  freePorts,
  runCli,
  startAgent,
  stopAllAgents,
  temporaryDir,
} from '../support/agent-process.js';
import { PowercutMount, whyPowercutUnavailable } from '../support/powercut.js';
import { describeWhenAvailable } from '../support/requirements.js';
import { until } from '../support/until.js';

const CUTS = Number(process.env.NEARMESH_POWERCUT_CUTS ?? 100);
const MESH_KEY = Buffer.from('powercut-agent-test-mesh-key-32b').toString('base64url');
const seed = Number(process.env.NEARMESH_POWERCUT_SEED ?? Date.now() % 1_000_000);

describeWhenAvailable('power cuts at random instants under traffic', whyPowercutUnavailable(), () => {
  const mount = new PowercutMount();
  let x: AgentProcess;
  let y: AgentProcess;
  let xDir: string;
  let ports: [number, number];
  const spec = () => ({
    name: 'x',
    meshKey: MESH_KEY,
    port: ports[0],
    dir: xDir,
    dataDir: join(mount.path, 'state'),
    peers: [`127.0.0.1:${ports[1]}`],
  });

  beforeAll(async () => {
    console.log(`[powercut] seed ${seed} (NEARMESH_POWERCUT_SEED=${seed} replays this run)`);
    await mount.mount();
    xDir = temporaryDir('nearmesh-powercut-x-');
    ports = (await freePorts(2)) as [number, number];
    y = await startAgent({ name: 'y', meshKey: MESH_KEY, port: ports[1], peers: [`127.0.0.1:${ports[0]}`] });
    x = await startAgent(spec());
  }, 120_000);

  afterAll(async () => {
    await stopAllAgents();
    await mount.unmount();
  });

  it(`loses nothing acknowledged and delivers nothing twice across ${CUTS} cuts`, async () => {
    // The instants of the cuts, from the printed seed.
    const next = seededRandom(seed);
    const xId = (await x.json<{ id: string }>(['id'])).id;
    const ySent: string[] = [];
    const yConfirmed: string[] = [];
    const xQueued: string[] = [];
    const pushesArrived: { name: string; sha256: string }[] = [];
    const pushing: Promise<void>[] = [];
    let running = true;

    // y → x: reliable sends, each waiting for x's receipt (up to 2 s; unconfirmed ones stay queued on y).
    const yTraffic = (async () => {
      const client = await ControlClient.connect(y.socketPath);
      for (let n = 0; running; n++) {
        const text = `y${n}`;
        ySent.push(text);
        const result = await client
          .request({
            cmd: 'send',
            peer: 'x',
            payload: Buffer.from(text).toString('base64'),
            wait: true,
            timeout_ms: 2000,
          })
          .catch(() => undefined);
        if (result?.acknowledged === true) yConfirmed.push(text);
        // About 50 a second: x's inbox (10,000 by default) must hold the whole run.
        await new Promise((resolve) => setTimeout(resolve, result === undefined ? 50 : 15));
      }
      client.close();
    })();

    // x → y: queued durably on x (answered once stored); x's agent dies under it again and again.
    const xTraffic = (async () => {
      for (let n = 0; running; ) {
        const client = await ControlClient.connect(x.socketPath).catch(() => undefined);
        if (client === undefined) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          continue;
        }
        while (running) {
          const text = `x${n++}`;
          const result = await client
            .request({ cmd: 'send', peer: 'y', payload: Buffer.from(text).toString('base64'), wait: false })
            .catch(() => undefined);
          if (result === undefined) break;
          xQueued.push(text);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        client.close();
      }
    })();

    const files = temporaryDir('nearmesh-powercut-files-');
    for (let cut = 1; cut <= CUTS; cut++) {
      if (cut % 10 === 1) {
        // A push of 192 KiB from y to x, under its own name; y says `sent` only once x verified it.
        const name = `photo-${cut}.bin`;
        const bytes = randomBytes(192 * 1024);
        writeFileSync(join(files, name), bytes);
        const sha256 = createHash('sha256').update(bytes).digest('hex');
        pushing.push(
          runCli(['push', 'x', join(files, name), '--socket', y.socketPath], 120_000).then((result) => {
            if (result.code === 0) pushesArrived.push({ name, sha256 });
          }),
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100 + next() * 400));
      x.child.kill('SIGKILL');
      await x.exited;
      // A third of the cuts are torn: a random prefix of the unsynced writes reached the card first.
      mount.cut(next() < 1 / 3 ? Math.floor(next() * 2 ** 31) : undefined);
      x = await startAgent(spec());
    }
    running = false;
    await Promise.all([yTraffic, xTraffic]);
    await Promise.all(pushing);

    // Everything still queued on either side drains.
    await until(
      'both queues empty',
      async () => {
        const [xStatus, yStatus] = await Promise.all([
          x.json<{ queued: { messages: number } }>(['status']),
          y.json<{ queued: { messages: number } }>(['status']),
        ]);
        return xStatus.queued.messages === 0 && yStatus.queued.messages === 0;
      },
      { timeoutMs: 60_000 },
    );
    const inbox = async (agent: AgentProcess) =>
      (await agent.json<ListenEvent[]>(['inbox', 'list', '--limit', '100000'])).map(
        (message) => message.payload as string,
      );
    const atX = await inbox(x);
    const atY = await inbox(y);
    console.log(
      `[powercut] ${CUTS} cuts: y sent ${ySent.length} (${yConfirmed.length} confirmed), x queued ${xQueued.length}, ` +
        `${pushesArrived.length}/${pushing.length} pushes reported arrived`,
    );

    const twice = (list: string[]) => list.filter((text, i) => list.indexOf(text) !== i);
    expect(twice(atX), 'delivered twice at x').toEqual([]);
    expect(twice(atY), 'delivered twice at y').toEqual([]);
    expect(new Set(atX)).toEqual(new Set(ySent));
    const missingAtY = xQueued.filter((text) => !atY.includes(text));
    expect(missingAtY, 'queued by x, never at y').toEqual([]);
    // x: the same identity throughout, its queue and inbox open (it answered every status above).
    expect((await x.json<{ id: string }>(['id'])).id).toBe(xId);
    const inboxDir = join(mount.path, 'state', 'inbox');
    for (const push of pushesArrived) {
      const bytes = readFileSync(join(inboxDir, push.name));
      expect(createHash('sha256').update(bytes).digest('hex'), push.name).toBe(push.sha256);
    }
    expect(readdirSync(inboxDir).filter((name) => !name.startsWith('.'))).toEqual(
      expect.arrayContaining(pushesArrived.map((push) => push.name)),
    );
  }, 900_000);
});
