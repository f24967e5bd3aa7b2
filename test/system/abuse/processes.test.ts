// One member of the mesh floods another with calls, to start as many processes as it can and to park as
// many calls for later as it can. The target keeps to its limits: never more action processes than
// `[coordination] max_running`, the excess answered busy, timed calls refused past the per-caller bound,
// and it still answers `status` within its memory budget throughout.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { CallResultRow } from '../../../agent/api.js';
import { ControlClient } from '../../../agent/control/client.js';
import { expectResponsive } from '../../support/abuse.js';
import {
  type AgentProcess,
  freePorts,
  startAgent,
  stopAllAgents,
  temporaryDir,
} from '../../support/agent-process.js';
import { rssMb } from '../../support/proc-status.js';
import { describeWhenAvailable } from '../../support/requirements.js';
import { writeShScript } from '../../support/sh-script.js';
import { until } from '../../support/until.js';

const MESH_KEY = Buffer.from('abuse-processes-test-mesh-key-32').toString('base64url');
const MAX_RUNNING = 6;
const MAX_SCHEDULED_PER_CALLER = 64;
const RSS_BUDGET_BYTES = 64 * 1024 * 1024;

let target: AgentProcess;
let attacker: AgentProcess;

/** Processes the agent started and that still run (every task's children: Node spawns from any thread). */
function childCount(pid: number): number {
  let count = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    let children: string;
    try {
      children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
    } catch (error) {
      // A thread may end between the listing and the read.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    count += children === '' ? 0 : children.split(/\s+/).length;
  }
  return count;
}

function rssBytes(pid: number): number {
  return rssMb(pid) * 2 ** 20;
}

async function counter(agent: AgentProcess, name: string): Promise<number> {
  const status = await agent.json<{ counters: Record<string, number> }>(['status']);
  return status.counters[name] ?? 0;
}

/** Watches the target's processes and memory until stopped; the highest of each. */
function watchTarget(pid: number): { stop: () => { children: number; rss: number } } {
  let children = 0;
  let rss = 0;
  const sample = (): void => {
    children = Math.max(children, childCount(pid));
    rss = Math.max(rss, rssBytes(pid));
  };
  sample();
  const timer = setInterval(sample, 2);
  return {
    stop: () => {
      clearInterval(timer);
      sample();
      return { children, rss };
    },
  };
}

function codeOf(row: CallResultRow | undefined): string {
  return row?.status === 'ok' ? 'ok' : (row?.error?.code ?? row?.status ?? 'none');
}

function tally(codes: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const code of codes) counts[code] = (counts[code] ?? 0) + 1;
  return counts;
}

const missing = existsSync(`/proc/${process.pid}/task/${process.pid}/children`)
  ? undefined
  : 'no /proc/<pid>/task/<tid>/children (a Linux kernel with CONFIG_PROC_CHILDREN)';

describeWhenAvailable('abuse: a peer floods an agent with calls', missing, () => {
  beforeAll(async () => {
    const scripts = temporaryDir('nearmesh-abuse-processes-');
    // `exec`: one process per run, the one the agent started.
    const slow = writeShScript(join(scripts, 'slow'), 'exec sleep 1');
    const ports = await freePorts(2);
    target = await startAgent({
      name: 'ab-target',
      meshKey: MESH_KEY,
      port: ports[0] as number,
      extraToml: [
        '[coordination]',
        `max_running = ${MAX_RUNNING}`,
        'max_queued = 16',
        `max_scheduled_per_caller = ${MAX_SCHEDULED_PER_CALLER}`,
        ...['slow.a', 'slow.b'].flatMap((name) => [
          '[[actions]]',
          `name = "${name}"`,
          `exec = [${JSON.stringify(slow)}]`,
          'concurrency = 4',
          'queue = 16',
        ]),
      ].join('\n'),
    });
    attacker = await startAgent({
      name: 'ab-attacker',
      meshKey: MESH_KEY,
      port: ports[1] as number,
      peers: [`127.0.0.1:${ports[0]}`],
    });
    await until(
      "the target's actions, announced to the attacker",
      async () => {
        const rows = await attacker.json<{ name: string }[]>(['actions']);
        return rows.filter((row) => row.name === 'ab-target').length === 2;
      },
      { timeoutMs: 20_000 },
    );
  }, 60_000);

  afterAll(stopAllAgents);

  it('500 calls at once: never more than max_running processes, the excess busy, status answers', async () => {
    const pid = target.child.pid as number;
    const idleRss = rssBytes(pid);
    const busyBefore = await counter(target, 'coordination.calls_busy');
    const watch = watchTarget(pid);
    const client = await ControlClient.connect(attacker.socketPath);
    try {
      const calls = Array.from({ length: 500 }, (_, i) =>
        client.request({
          cmd: 'call',
          target: 'ab-target',
          action: i % 2 === 0 ? 'slow.a' : 'slow.b',
          args: {},
          timeout_ms: 20_000,
        }),
      );
      // While the flood runs, the target answers its own user.
      await until('the first action processes', () => childCount(pid) > 0);
      await expectResponsive(target);
      const rows = (await Promise.all(calls)).flat();
      const seen = watch.stop();
      const codes = tally(rows.map(codeOf));
      console.log(
        `500 calls: ${JSON.stringify(codes)}; at most ${seen.children} processes; ` +
          `RSS ${(idleRss / 2 ** 20).toFixed(1)} MB idle, ${(seen.rss / 2 ** 20).toFixed(1)} MB at most`,
      );
      expect(rows).toHaveLength(500);
      expect(seen.children).toBeLessThanOrEqual(MAX_RUNNING);
      expect(seen.children).toBeGreaterThan(0);
      expect(codes.ok ?? 0).toBeGreaterThanOrEqual(MAX_RUNNING);
      expect(codes.busy ?? 0).toBeGreaterThan(0);
      expect((codes.ok ?? 0) + (codes.busy ?? 0)).toBe(500);
      expect(await counter(target, 'coordination.calls_busy')).toBe(busyBefore + (codes.busy ?? 0));
      expect(seen.rss).toBeLessThanOrEqual(idleRss + RSS_BUDGET_BYTES);
    } finally {
      client.close();
      watch.stop();
    }
    await expectResponsive(target);
  }, 60_000);

  it('2,000 calls an hour ahead: the target keeps 64, refuses the rest at once, and stays small', async () => {
    const pid = target.child.pid as number;
    const idleRss = rssBytes(pid);
    const refusedBefore = await counter(target, 'coordination.calls_refused_too_many_scheduled');
    const watch = watchTarget(pid);
    const client = await ControlClient.connect(attacker.socketPath);
    const answered: CallResultRow[] = [];
    try {
      for (let i = 0; i < 2_000; i++) {
        void client
          .request({
            cmd: 'call',
            target: 'ab-target',
            action: 'slow.a',
            args: {},
            timeout_ms: 10_000,
            in_ms: 3_600_000,
          })
          .then((rows) => answered.push(...rows))
          .catch(() => {});
      }
      const refused = 2_000 - MAX_SCHEDULED_PER_CALLER;
      await until(
        () => `${refused} refusals (answered: ${JSON.stringify(tally(answered.map(codeOf)))})`,
        () => answered.length >= refused,
        { timeoutMs: 60_000, intervalMs: 100 },
      );
      expect((await target.cli(['status'])).code).toBe(0);
      const seen = watch.stop();
      console.log(
        `2000 timed calls: ${JSON.stringify(tally(answered.map(codeOf)))}; RSS ${(idleRss / 2 ** 20).toFixed(1)} MB idle, ${(seen.rss / 2 ** 20).toFixed(1)} MB at most`,
      );
      expect(answered).toHaveLength(refused);
      expect(answered.every((row) => codeOf(row) === 'too-many-scheduled')).toBe(true);
      expect(await counter(target, 'coordination.calls_refused_too_many_scheduled')).toBe(
        refusedBefore + refused,
      );
      expect(seen.children).toBe(0);
      expect(seen.rss).toBeLessThanOrEqual(idleRss + RSS_BUDGET_BYTES);
    } finally {
      client.close();
      watch.stop();
    }
  }, 90_000);
});
