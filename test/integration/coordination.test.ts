// Remote calls between real agent processes, through the CLI: exec actions on one peer and on a group,
// handlers that fail in every way, synchronised firing, idempotency keys, and the mesh-wide listings.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentProcess,
  cliCall as call,
  freePorts,
  startAgent,
  stopAllAgents,
  temporaryDir,
} from '../support/agent-process.js';
import { writeShScript } from '../support/sh-script.js';
import { until } from '../support/until.js';

const MESH_KEY = Buffer.from('coordination-test-mesh-key-32b!!').toString('base64url');
const NAMES = ['co-a', 'co-b', 'co-c', 'co-d', 'co-e'];
let agents: AgentProcess[];
let scripts: string;

function script(name: string, body: string): string {
  return writeShScript(join(scripts, name), body);
}

function actionsToml(agentName: string): string {
  const record = script(
    `record-${agentName}`,
    // Its own clock at the moment it runs, its stdin and the caller, appended to a file; the args back as JSON.
    `now=$(date +%s%N); args=$(cat); echo "$now $NEARMESH_CALLER $args" >> ${scripts}/${agentName}.log; printf '{"agent":"${agentName}","args":%s}' "$args"`,
  );
  return [
    '[[actions]]',
    'name = "record"',
    `exec = [${JSON.stringify(record)}]`,
    '[[actions]]',
    'name = "hang"',
    `exec = [${JSON.stringify(script('hang', 'sleep 30'))}]`,
    'timeout = "1s"',
    '[[actions]]',
    'name = "crash"',
    `exec = [${JSON.stringify(script('crash', 'kill -SEGV $$'))}]`,
    '[[actions]]',
    'name = "garbage"',
    `exec = [${JSON.stringify(script('garbage', "printf '\\377\\376{not json'"))}]`,
    '[[actions]]',
    'name = "fail"',
    `exec = [${JSON.stringify(script('fail', 'echo broken >&2; exit 3'))}]`,
    '[[actions]]',
    'name = "private"',
    `exec = [${JSON.stringify(record)}]`,
    'allow = ["co-c"]',
  ].join('\n');
}

beforeAll(async () => {
  scripts = temporaryDir('nearmesh-actions-');
  const ports = await freePorts(NAMES.length);
  agents = await Promise.all(
    NAMES.map((name, i) =>
      startAgent({
        name,
        meshKey: MESH_KEY,
        port: ports[i] as number,
        peers: ports.filter((_, j) => j < i).map((port) => `127.0.0.1:${port}`),
        groups: ['hall'],
        extraToml: actionsToml(name),
      }),
    ),
  );
  // Every agent has heard every other one announce its actions.
  await until(
    'the announcements',
    async () => {
      const rows = JSON.parse((await agents[0]?.cli(['actions', '--json']))?.stdout ?? '[]') as unknown[];
      return rows.length === NAMES.length * 6;
    },
    { timeoutMs: 30_000 },
  );
}, 60_000);

afterAll(stopAllAgents);

describe('remote calls', () => {
  it('calls an exec action on another agent: JSON args in, JSON result out, caller in the environment', async () => {
    const [a] = agents as [AgentProcess];
    const aId = (await a.json<{ id: string }>(['id'])).id;
    const rows = await call(a, ['co-b', 'record', '{"on":true}']);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      name: 'co-b',
      status: 'ok',
      result: { agent: 'co-b', args: { on: true } },
    });
    expect(rows[0]?.fired_at).not.toBeNull();
    expect(readFileSync(join(scripts, 'co-b.log'), 'utf8')).toContain(`${aId} {"on":true}`);
  });

  it('calls a group of 5 (itself included): one result per member', async () => {
    const rows = await call(agents[1] as AgentProcess, ['group:hall', 'record', '{"n":1}']);
    expect(rows.map((row) => row.name).sort()).toEqual(NAMES);
    expect(rows.every((row) => row.status === 'ok')).toBe(true);
  });

  it('a handler that hangs, crashes, prints garbage or exits non-zero gives an error result; the agent carries on', async () => {
    const a = agents[0] as AgentProcess;
    const [hang] = await call(a, ['co-b', 'hang']);
    expect(hang).toMatchObject({ status: 'error', error: { code: 'timeout' } });
    const [crash] = await call(a, ['co-b', 'crash']);
    expect(crash).toMatchObject({ status: 'error', error: { code: 'crashed' } });
    const [garbage] = await call(a, ['co-b', 'garbage']);
    expect(garbage).toMatchObject({ status: 'error', error: { code: 'bad-output' } });
    const [fail] = await call(a, ['co-b', 'fail']);
    expect(fail).toMatchObject({ status: 'error', error: { code: 'exit' } });
    expect(fail?.error?.message).toContain('broken');
    const [unknown] = await call(a, ['co-b', 'no.such.action']);
    expect(unknown).toMatchObject({ status: 'error', error: { code: 'unknown-action' } });
    const [again] = await call(a, ['co-b', 'record', '{}']);
    expect(again?.status).toBe('ok');
  });

  it('an action limited to certain peers refuses the others', async () => {
    const [refused] = await call(agents[0] as AgentProcess, ['co-b', 'private']);
    expect(refused).toMatchObject({ status: 'error', error: { code: 'forbidden' } });
    const [allowed] = await call(agents[2] as AgentProcess, ['co-b', 'private']);
    expect(allowed?.status).toBe('ok');
  });

  it('a call retried with the same idempotency key runs once and gets the same result', async () => {
    const log = join(scripts, 'co-c.log');
    const before = readFileSync(log, 'utf8').split('\n').length;
    const first = await call(agents[0] as AgentProcess, ['co-c', 'record', '{"k":1}', '--key', 'once-only']);
    const second = await call(agents[0] as AgentProcess, ['co-c', 'record', '{"k":1}', '--key', 'once-only']);
    expect(second).toEqual(first);
    expect(readFileSync(log, 'utf8').split('\n').length).toBe(before + 1);
  });

  it('--in 500ms fires all 5 members of the group at the same instant', async () => {
    const logs = NAMES.map((name) => join(scripts, `${name}.log`));
    const sizes = logs.map((log) => readFileSync(log, 'utf8').length);
    const rows = await call(agents[0] as AgentProcess, [
      'group:hall',
      'record',
      '{"sync":true}',
      '--in',
      '500ms',
    ]);
    expect(rows.every((row) => row.status === 'ok')).toBe(true);
    // Each handler recorded its own clock (date +%s%N) when it ran.
    const firedNs = logs.map((log, i) =>
      BigInt(readFileSync(log, 'utf8').slice(sizes[i]).trim().split(' ')[0] as string),
    );
    // BigInt: nanoseconds since the epoch are beyond a double's exact integers.
    const earliestNs = [...firedNs].sort((a, b) => Number(a - b))[0] as bigint;
    const firedMs = firedNs.map((ns) => Number(ns - earliestNs) / 1e6);
    const spreadMs = Math.max(...firedMs);
    // The instants the agents fired at, in the caller's clock. The 5 ms goal is a benchmark's business; this
    // bound only proves the firing is synchronised rather than one after another.
    const fired = rows.map((row) => row.fired_at_ms ?? Number.NaN);
    const firedSpreadMs = Math.max(...fired) - Math.min(...fired);
    console.log(
      `--in 500ms on ${NAMES.length} agents: fired_at spread ${firedSpreadMs.toFixed(2)} ms, handler clocks ${spreadMs.toFixed(2)} ms`,
    );
    expect(firedSpreadMs).toBeLessThan(25);
    // The handlers' own start-up (fork + exec + date) adds noise on top of the agents' firing spread.
    expect(spreadMs).toBeLessThan(50);
  });
});

describe('listings and sensors', () => {
  it('`nearmesh actions` and `nearmesh sensors` list every agent of the mesh', async () => {
    const actions = JSON.parse((await (agents[2] as AgentProcess).cli(['actions', '--json'])).stdout) as {
      name: string;
      action: string;
    }[];
    expect(actions).toContainEqual(expect.objectContaining({ name: 'co-a', action: 'record' }));
    const sensors = JSON.parse((await (agents[2] as AgentProcess).cli(['sensors', '--json'])).stdout) as {
      name: string;
      sensor: string;
    }[];
    expect(sensors).toContainEqual(expect.objectContaining({ name: 'co-a', sensor: 'cpu.load' }));
  });

  it('`nearmesh read` reads a device sensor of another agent', async () => {
    const result = await (agents[0] as AgentProcess).cli(['read', 'co-b', 'cpu.load', '--json']);
    expect(result.code).toBe(0);
    const reading = JSON.parse(result.stdout) as { value: unknown; read_at: string };
    expect(typeof reading.value).toBe('number');
  });
});
