// The bandwidth upgrade end to end: two real agents in two network namespaces joined by a veth pair,
// each on its own emulated BLE controllers, with Wi-Fi discovery off and no static peers. They meet over
// BLE, learn each other's Wi-Fi endpoint over it, add a TCP link and move their traffic there; when the
// veth goes down traffic falls back to BLE, and it moves back when the veth returns.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import type { PeerInfo } from '../../agent/links/peer-directory.js';
import {
  type BleEmulator,
  startEmulator,
  whyEmulatorUnavailable,
} from '../../scripts/ble-emulator/emulator.js';
import { type AgentProcess, listenTo, startAgent, stopAllAgents } from '../support/agent-process.js';
import { VethLan, whyNetnsUnavailable } from '../support/netns.js';
import { describeWhenAvailable } from '../support/requirements.js';
import { until } from '../support/until.js';

const lan = new VethLan('upgrade', 91);

/** The time of the agent's "peer traffic fell back to ble" log record after `sinceMs`, if any. */
async function fallbackLoggedAt(agent: AgentProcess, sinceMs: number): Promise<number | undefined> {
  for (const line of agent.output.split('\n')) {
    if (!line.includes('fell back to ble')) continue;
    const record = JSON.parse(line.replace(/^<\d>/, '')) as { time: number };
    if (record.time >= sinceMs) return record.time;
  }
  return undefined;
}

describeWhenAvailable(
  'bandwidth upgrade from BLE to Wi-Fi and back (network namespaces, emulated BLE)',
  whyNetnsUnavailable() ?? whyEmulatorUnavailable(),
  () => {
    let emulator: BleEmulator;
    let alpha: AgentProcess;
    let bravo: AgentProcess;

    const peerAt = async (agent: AgentProcess, name: string): Promise<PeerInfo | undefined> =>
      (await agent.json<PeerInfo[]>(['peers'])).find((peer) => peer.name === name);
    const setVeth = (state: 'up' | 'down'): void => {
      execFileSync('ip', ['-n', lan.a, 'link', 'set', 'veth0', state]);
    };

    beforeAll(async () => {
      lan.create();
      emulator = await startEmulator({ controllers: 4 });
      const meshKey = generateMeshKey();
      const agent = (name: string, netns: string, index: number) =>
        startAgent({
          name,
          meshKey,
          port: 7450,
          listenHost: '0.0.0.0',
          discovery: [],
          netns,
          ble: {
            peripheral: `uart:${emulator.ptys[2 * index]}`,
            central: `uart:${emulator.ptys[2 * index + 1]}`,
          },
        });
      [alpha, bravo] = await Promise.all([agent('up-alpha', lan.a, 0), agent('up-bravo', lan.b, 1)]);
    }, 40_000);

    afterAll(async () => {
      await stopAllAgents();
      await emulator?.stop();
      lan.delete();
    });

    it('links over BLE, learns the endpoint over it and moves traffic to TCP (peers --json)', async () => {
      const upgraded = await until(
        'alpha on Wi-Fi to bravo with BLE on standby',
        async () => {
          const peer = await peerAt(alpha, 'up-bravo');
          return peer?.medium === 'wifi' && peer.media.includes('ble') ? peer : undefined;
        },
        { timeoutMs: 40_000, intervalMs: 250 },
      );
      expect(upgraded.address).toMatch(/^10\.77\.91\.2:7450$|^10\.77\.91\.2:\d+$/);
      const atBravo = await until('bravo on Wi-Fi too', async () => {
        const peer = await peerAt(bravo, 'up-alpha');
        return peer?.medium === 'wifi' ? peer : undefined;
      });
      expect(atBravo.media).toEqual(['wifi', 'ble']);
      const sent = await alpha.cli(['send', 'up-bravo', 'over the upgraded link', '--json']);
      expect(JSON.parse(sent.stdout)).toMatchObject({ acknowledged: true });
    }, 60_000);

    it('falls back to BLE when the LAN goes, keeps delivering, and upgrades again when it returns', async () => {
      setVeth('down');
      const cutAt = Date.now();
      await until('traffic on BLE', async () => (await peerAt(alpha, 'up-bravo'))?.medium === 'ble', {
        timeoutMs: 15_000,
        intervalMs: 100,
      });
      // When the agent itself moved the traffic, from its log (the CLI polling above adds its own delay).
      const fellBackAt = await until('the fallback in the log', () => fallbackLoggedAt(alpha, cutAt));
      const noticedMs = fellBackAt - cutAt;
      console.log(`[upgrade] Wi-Fi loss noticed and traffic on BLE after ${noticedMs} ms`);
      // The promise to users: a lost Wi-Fi link is noticed, and traffic is on BLE, within 3 s.
      expect(noticedMs).toBeLessThan(3_000);
      const sent = await alpha.cli(['send', 'up-bravo', 'over BLE while the LAN is down', '--json']);
      expect(JSON.parse(sent.stdout)).toMatchObject({ acknowledged: true });

      setVeth('up');
      await until('traffic back on Wi-Fi', async () => (await peerAt(alpha, 'up-bravo'))?.medium === 'wifi', {
        timeoutMs: 30_000,
        intervalMs: 250,
      });
    }, 60_000);

    it('carries 5,000 numbered reliable messages across two cuts of the LAN, each once and in order', async () => {
      const COUNT = 5_000;
      const BATCH = 100;
      const BATCH_EVERY_MS = 250;
      const alphaId = (await alpha.json<{ id: string }>(['id'])).id;
      const listener = await listenTo(bravo);
      const arrived = (): string[] =>
        listener.messages
          .filter((message) => message.from === alphaId && message.payload.startsWith('n-'))
          .map((message) => message.payload);
      const medium = async (): Promise<string | null | undefined> =>
        (await peerAt(alpha, 'up-bravo'))?.medium;
      const fallbacksBefore = alpha.output
        .split('\n')
        .filter((line) => line.includes('fell back to ble')).length;
      try {
        // Sent as an app would, in batches over ~12 s, so both cuts fall in the middle of the stream
        // however fast the links are; the last batch waits for the confirmation of everything.
        const sending = (async () => {
          const results = [];
          for (let from = 0; from < COUNT; from += BATCH) {
            const last = from + BATCH >= COUNT;
            const lines = Buffer.from(
              `${Array.from({ length: BATCH }, (_, index) => `n-${from + index}`).join('\n')}\n`,
            );
            const args = [
              'send',
              'up-bravo',
              '-',
              '--lines',
              '--json',
              ...(last ? ['--timeout', '240000'] : ['--no-wait']),
            ];
            results.push(await alpha.cli(args, 300_000, lines));
            if (!last) await sleep(BATCH_EVERY_MS); // Kept: pacing, an app sending in batches
          }
          return results;
        })();
        for (let cut = 1; cut <= 2; cut++) {
          await until(`the stream past ${cut * 400}`, () => arrived().length >= cut * 400, {
            timeoutMs: 60_000,
            intervalMs: 50,
          });
          setVeth('down');
          await until(`traffic on BLE (cut ${cut})`, async () => (await medium()) === 'ble', {
            timeoutMs: 15_000,
            intervalMs: 100,
          });
          const duringCut = arrived().length;
          await until(`messages over BLE (cut ${cut})`, () => arrived().length > duringCut, {
            timeoutMs: 30_000,
          });
          setVeth('up');
          await until(`traffic back on Wi-Fi (cut ${cut})`, async () => (await medium()) === 'wifi', {
            timeoutMs: 30_000,
            intervalMs: 250,
          });
          console.log(`[upgrade] cut ${cut}: ${duringCut} of ${COUNT} arrived when traffic moved to BLE`);
          // The cut happened mid-stream, not after it.
          expect(duringCut).toBeLessThan(COUNT);
        }
        const results = await sending;
        for (const result of results) expect(result.stderr).toBe('');
        expect(JSON.parse(results.at(-1)?.stdout ?? '{}')).toMatchObject({
          acknowledged: true,
          count: BATCH,
        });
        expect(
          results.reduce((sum, result) => sum + (JSON.parse(result.stdout) as { count: number }).count, 0),
        ).toBe(COUNT);
        await until('every message at bravo', () => arrived().length >= COUNT, { timeoutMs: 30_000 });
        // One more, sent after them all: once it is at bravo, no late copy of theirs is still coming.
        expect((await alpha.cli(['send', 'up-bravo', 'after-the-stream'])).code).toBe(0);
        await until('the message after the stream', () =>
          listener.messages.some((message) => message.payload === 'after-the-stream'),
        );
        expect(arrived()).toEqual(Array.from({ length: COUNT }, (_, index) => `n-${index}`));
        const fallbacks = alpha.output.split('\n').filter((line) => line.includes('fell back to ble')).length;
        expect(fallbacks - fallbacksBefore).toBe(2);
      } finally {
        listener.stop();
        setVeth('up');
      }
    }, 300_000);

    it('pushes 50 MiB across a cut of the LAN and a restart of the receiver, and the hash matches', async () => {
      const bytes = randomBytes(50 * 1024 * 1024);
      const path = join(tmpdir(), `nearmesh-upgrade-push-${process.pid}.bin`);
      writeFileSync(path, bytes);
      // 20 Mbit/s, so the push takes ~21 s and the cut and the restart land in the middle of it.
      execFileSync('ip', [
        'netns',
        'exec',
        lan.a,
        'tc',
        'qdisc',
        'add',
        'dev',
        'veth0',
        'root',
        'tbf',
        'rate',
        '20mbit',
        'burst',
        '32kbit',
        'latency',
        '50ms',
      ]);
      const medium = async (): Promise<string | null | undefined> =>
        (await peerAt(alpha, 'up-bravo'))?.medium;
      const push = alpha.spawnCli(['push', 'up-bravo', path, '--json']);
      let stdout = '';
      let stderr = '';
      push.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      push.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const exited = new Promise<number | null>((resolveExit) => push.once('exit', resolveExit));
      type PushEvent = { type: string; bytesAcked?: number };
      const events = (): PushEvent[] =>
        stdout
          .split('\n')
          .slice(0, -1)
          .map((line) => JSON.parse(line) as PushEvent);
      const acked = (from = 0): number =>
        Math.max(
          0,
          ...events()
            .slice(from)
            .map((event) => event.bytesAcked ?? 0),
        );
      try {
        // Cut once the push is well under way (5 MiB of 50 acknowledged), so it lands in the middle of it.
        await until('the push under way', () => acked() >= 5 * 1024 * 1024, { timeoutMs: 60_000 });
        setVeth('down');
        await until('traffic on BLE', async () => (await medium()) === 'ble', {
          timeoutMs: 15_000,
          intervalMs: 100,
        });
        await until(
          'the push waiting for the LAN',
          () => events().some((event) => event.type === 'waiting'),
          {
            timeoutMs: 30_000,
          },
        );
        const waitedAt = events().length;
        const ackedBeforeCut = acked();
        setVeth('up');
        await until('traffic back on Wi-Fi', async () => (await medium()) === 'wifi', {
          timeoutMs: 30_000,
          intervalMs: 250,
        });
        // Restart the receiver once the push has moved on over the LAN again, so it has more to keep.
        await until('the push going again', () => acked(waitedAt) > ackedBeforeCut, { timeoutMs: 60_000 });
        await bravo.stop('SIGTERM');
        bravo = await startAgent({ ...bravo.spec, dir: bravo.dir });
        expect(await exited).toBe(0);
        expect(stderr).toBe('');
        const waits = events().filter((event) => event.type === 'waiting');
        const sent = events().at(-1) as unknown as { type: string; size: number; resumedFrom: number };
        console.log(
          `[upgrade] push: ${waits.length} interruption(s), last attempt resumed from byte ${sent.resumedFrom}`,
        );
        // Interrupted, then resumed from what the restarted receiver had kept (not from zero), and verified.
        expect(waits.length).toBeGreaterThanOrEqual(1);
        expect(sent).toMatchObject({ type: 'sent', size: bytes.length });
        expect(sent.resumedFrom).toBeGreaterThan(0);
        const digest = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
        expect(digest(readFileSync(join(bravo.dir, 'inbox', basename(path))))).toBe(digest(bytes));
      } finally {
        push.kill('SIGKILL');
        execFileSync('ip', ['netns', 'exec', lan.a, 'tc', 'qdisc', 'del', 'dev', 'veth0', 'root']);
        rmSync(path, { force: true });
      }
    }, 300_000);
  },
);
