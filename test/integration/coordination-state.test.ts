// Sensors, rules and leases between real agent processes: a sensor agent (its value comes from a file
// the test writes), a rule agent, a fan agent whose action records each call, and a holder agent.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LeaseInfo, SensorInfo } from '../../agent/coordination/coordinator.js';
import {
  type AgentProcess,
  CLI_PATH,
  cliCall as call,
  freePorts,
  startAgent,
  stopAllAgents,
  temporaryDir,
} from '../support/agent-process.js';
import { writeShScript } from '../support/sh-script.js';
import { until } from '../support/until.js';

const MESH_KEY = Buffer.from('coordination-state-test-key-32b!').toString('base64url');
let dir: string;
let sensorAgent: AgentProcess;
let ruleAgent: AgentProcess;
let holderAgent: AgentProcess;
let fanAgent: AgentProcess;

function script(name: string, body: string): string {
  return writeShScript(join(dir, name), body);
}

const temperature = (value: number): void => writeFileSync(join(dir, 'temp'), `${value}\n`);
const fanCalls = (): number => {
  const log = join(dir, 'fan.log');
  return existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).length : 0;
};

beforeAll(async () => {
  dir = temporaryDir('nearmesh-state-');
  temperature(20);
  const readTemp = script('read-temp', `cat ${dir}/temp`);
  const fan = script('fan', `cat >> ${dir}/fan.log; echo >> ${dir}/fan.log; echo '"ok"'`);
  const ports = (await freePorts(4)) as [number, number, number, number];
  const peersBefore = (i: number) => ports.slice(0, i).map((port) => `127.0.0.1:${port}`);
  sensorAgent = await startAgent({
    name: 'st-sensor',
    meshKey: MESH_KEY,
    port: ports[0],
    extraToml: ['[[sensors]]', 'name = "temp"', `exec = [${JSON.stringify(readTemp)}]`, 'unit = "Cel"'].join(
      '\n',
    ),
  });
  fanAgent = await startAgent({
    name: 'st-fan',
    meshKey: MESH_KEY,
    port: ports[1],
    peers: peersBefore(1),
    extraToml: ['[[actions]]', 'name = "fan.set"', `exec = [${JSON.stringify(fan)}]`].join('\n'),
  });
  ruleAgent = await startAgent({
    name: 'st-rule',
    meshKey: MESH_KEY,
    port: ports[2],
    peers: peersBefore(2),
    extraToml: [
      '[[rules]]',
      'name = "fan on when hot"',
      'when = "st-sensor/temp > 30"',
      `then = 'call st-fan fan.set {"on":true}'`,
      'hysteresis = 2',
      'every = "200ms"',
    ].join('\n'),
  });
  holderAgent = await startAgent({
    name: 'st-holder',
    meshKey: MESH_KEY,
    port: ports[3],
    peers: peersBefore(3),
  });
  await until(
    'every agent to know the fan',
    async () => {
      const rows = JSON.parse((await holderAgent.cli(['actions', '--json'])).stdout || '[]') as {
        action: string;
      }[];
      const ruleRows = JSON.parse((await ruleAgent.cli(['sensors', '--json'])).stdout || '[]') as {
        sensor: string;
      }[];
      return rows.some((row) => row.action === 'fan.set') && ruleRows.some((row) => row.sensor === 'temp');
    },
    { timeoutMs: 30_000 },
  );
}, 60_000);

afterAll(stopAllAgents);

describe('sensors', () => {
  it('`nearmesh watch` streams a remote sensor at the asked rate; `sensors` then shows the latest value', async () => {
    temperature(21.5);
    const child = spawn(
      process.execPath,
      [
        CLI_PATH,
        'watch',
        'st-sensor',
        'temp',
        '--every',
        '200ms',
        '--json',
        '--socket',
        holderAgent.socketPath,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    try {
      await until('three readings', () => output.split('\n').filter(Boolean).length >= 3);
    } finally {
      child.kill('SIGTERM');
    }
    const readings = output
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { name: string; sensor: string; value: unknown; unit: string });
    expect(readings[0]).toMatchObject({ name: 'st-sensor', sensor: 'temp', value: 21.5, unit: 'Cel' });
    const rows = JSON.parse((await holderAgent.cli(['sensors', '--json'])).stdout) as {
      name: string;
      sensor: string;
      value: unknown;
    }[];
    expect(rows).toContainEqual(expect.objectContaining({ name: 'st-sensor', sensor: 'temp', value: 21.5 }));
  });
});

describe('rules', () => {
  /**
   * Waits until the rule agent has had `count` different readings of `value` (at least): it judges each
   * reading as it arrives, before `sensors` can show it, so by then the rule has judged `value` that often.
   */
  const ruleJudged = async (value: number, count: number): Promise<void> => {
    const readAt = new Set<string>();
    await until(
      () => `${count} readings of ${value} at the rule agent (saw ${readAt.size})`,
      async () => {
        const rows = await ruleAgent.json<SensorInfo[]>(['sensors']);
        const row = rows.find((candidate) => candidate.name === 'st-sensor' && candidate.sensor === 'temp');
        if (row?.value === value && row.read_at !== null) readAt.add(row.read_at);
        return readAt.size >= count;
      },
    );
  };
  /** Counted as the rule fires, before its call goes out: a wrong call shows here at once. */
  const rulesFired = async (): Promise<number> =>
    (await ruleAgent.json<{ counters: Record<string, number> }>(['status'])).counters[
      'coordination.rules_fired'
    ] ?? 0;

  it('fire across agents when the value crosses the threshold, and not again until it clearly recrosses', async () => {
    temperature(25);
    await ruleJudged(25, 2);
    expect(await rulesFired()).toBe(0);
    expect(fanCalls()).toBe(0);

    temperature(35);
    await until('the rule to fire', () => fanCalls() === 1);
    await ruleJudged(35, 3); // still hot, judged again (at least twice after the one that fired): no second call
    expect(await rulesFired()).toBe(1);
    expect(fanCalls()).toBe(1);

    temperature(29); // below 30, but within the hysteresis of 2: not re-armed
    await ruleJudged(29, 2);
    temperature(35);
    await ruleJudged(35, 2);
    expect(await rulesFired()).toBe(1);
    expect(fanCalls()).toBe(1);

    temperature(25); // clearly back: re-armed
    await ruleJudged(25, 1);
    temperature(36);
    await until('the rule to fire again', () => fanCalls() === 2);
    expect(readFileSync(join(dir, 'fan.log'), 'utf8')).toContain('{"on":true}');
  });
});

describe('leases', () => {
  it("a lease makes others' calls busy; it is released when the holder is killed", async () => {
    const taken = await holderAgent.cli([
      'lease',
      'st-fan',
      'fan.set',
      '--ttl',
      '3s',
      '--for',
      '60s',
      '--json',
    ]);
    expect(taken.code).toBe(0);
    expect(JSON.parse(taken.stdout)).toMatchObject({ granted: true, holder_name: 'st-holder' });

    const [busy] = await call(sensorAgent, ['st-fan', 'fan.set', '{}']);
    expect(busy).toMatchObject({ status: 'error', error: { code: 'busy' } });
    expect(busy?.error?.message).toContain('st-holder');
    const [own] = await call(holderAgent, ['st-fan', 'fan.set', '{}']);
    expect(own?.status).toBe('ok');

    // Renewed while the holder lives (ttl 3 s, --for 60 s)... Kept: time is the subject, past the 3 s ttl.
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    const [stillBusy] = await call(sensorAgent, ['st-fan', 'fan.set', '{}']);
    expect(stillBusy?.error?.code).toBe('busy');

    // ...and gone within one lease time once it is killed.
    await holderAgent.stop('SIGKILL');
    const freed = Date.now();
    await until(
      'the lease to expire',
      async () => (await call(sensorAgent, ['st-fan', 'fan.set', '{}']))[0]?.status === 'ok',
      { timeoutMs: 10_000, intervalMs: 250 },
    );
    expect(Date.now() - freed).toBeLessThan(8_000);
  }, 30_000);

  it('a lease is given back with --release, and only its holder can', async () => {
    const first = await ruleAgent.cli([
      'lease',
      'st-fan',
      'fan.set',
      '--ttl',
      '5s',
      '--for',
      '60s',
      '--json',
    ]);
    expect(JSON.parse(first.stdout)).toMatchObject({ granted: true });
    // `nearmesh leases`: the fan grants it, the rule agent holds it and renews it.
    const lease = { name: 'st-fan', resource: 'fan.set', holder_name: 'st-rule' };
    expect(await fanAgent.json<LeaseInfo[]>(['leases'])).toEqual([
      expect.objectContaining({ ...lease, remaining_ms: expect.any(Number) }),
    ]);
    expect(await ruleAgent.json<LeaseInfo[]>(['leases'])).toEqual([
      expect.objectContaining({ ...lease, remaining_ms: null }),
    ]);
    const other = await sensorAgent.cli(['lease', 'st-fan', 'fan.set', '--release', '--json']);
    expect(JSON.parse(other.stdout)).toMatchObject({ granted: false, holder_name: 'st-rule' });
    expect(other.code).toBe(1);
    const released = await ruleAgent.cli(['lease', 'st-fan', 'fan.set', '--release', '--json']);
    expect(JSON.parse(released.stdout)).toMatchObject({ granted: true, holder: null });
    const [free] = await call(sensorAgent, ['st-fan', 'fan.set', '{}']);
    expect(free?.status).toBe('ok');
    expect(await fanAgent.json<LeaseInfo[]>(['leases'])).toEqual([]);
    expect(await ruleAgent.json<LeaseInfo[]>(['leases'])).toEqual([]);
    expect((await ruleAgent.cli(['leases'])).stdout).toBe('no leases\n');
  });
});
