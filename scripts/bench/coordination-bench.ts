// Rows 11-13: remote calls (`nearmesh call`) between real agent processes on loopback, through the
// control socket (ControlClient, no CLI start-up). Every action is an exec of one tiny sh script, so the
// handler costs one fork+exec; that exec is measured on its own, from this process, as a baseline.
// 11: call round trip at 1 and 3 hops (a chain of 4, static peers: each agent links to its neighbours
//     only) vs a reliable `send` round trip over the same path, interleaved.
// 12: `call group:ten` to 10 agents (a star around the caller) vs a call to one of them.
// 13: `call group:five … in_ms 500` on 5 agents of that star: the spread of fired_at_ms per repetition,
//     vs 5 bare node processes started the same way, each waiting for a common instant as the executor does
//     and then running the action's script as it does (13c, which also compares that wait with a plain
//     setTimeout). 13b: the same on 2 members, against the
//     spread on 5 (more spinning agents than cores share them).
import { chmodSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import type { ControlClient } from '../../agent/control/client.js';
import { runProcess } from '../../agent/coordination/run-process.js';
import {
  type BenchAgent,
  clientOf,
  connectControl,
  idOf,
  interleaved,
  type Polling,
  sendMs,
  waitForLinks,
  waitForRoutes,
  waitUntil,
} from './bench-agents.js';
import { type BenchChild, isRunning, startChild } from './bench-child.js';
import { freePorts, type LoopbackAgent, Started } from './loopback-agents.js';
import { median, quantile } from './stats.js';
import { formatMilliseconds, formatTimes, passMark, type ResultRow } from './table.js';
import { elapsedMs, sleep, withTimeout } from './timing.js';

export const CALL_CHAIN_LENGTH = 4;
export const CALL_SAMPLES = 100;
export const CALL_WARMUPS = 10;
export const FANOUT_MEMBERS = 10;
export const FANOUT_SAMPLES = 40;
export const FANOUT_WARMUPS = 5;
export const SPREAD_MEMBERS = 5;
/** 13b: few enough members that, on a 2-core machine, their spins need not take turns on a core. */
export const SPREAD_SMALL_MEMBERS = 2;
export const SPREAD_REPETITIONS = 10;
export const SPREAD_IN_MS = 500;
/**
 * 13 is judged against what this machine allows 5 processes waking at one instant and each starting the action
 * (13c: bare processes waiting and running it as the executor does); 13b, on 2 members (no more spinners
 * than cores), against an absolute bound.
 */
const MAX_SPREAD_RATIO = 1.5;
const MAX_SMALL_SPREAD_MS = 5;
/** The executor's wait for a synchronised instant and its way of running a program, loaded by the bare children (13c). */
const WAIT_UNTIL_MODULE = pathToFileURL(
  resolve(import.meta.dirname, '../../agent/coordination/wait-until.js'),
).href;
const RUN_PROCESS_MODULE = pathToFileURL(
  resolve(import.meta.dirname, '../../agent/coordination/run-process.js'),
).href;
const READY_TIMEOUT_MS = 20_000;
/** Links come up after a dial (redial backoff starts at 1 s) and announcements follow. */
const MESH_TIMEOUT_MS = 30_000;
const POLL_MS = 100;
const CALL_TIMEOUT_MS = 5_000;
const READY: Polling = { timeoutMs: READY_TIMEOUT_MS, pollMs: POLL_MS };
const MESH: Polling = { timeoutMs: MESH_TIMEOUT_MS, pollMs: POLL_MS };
const ACTION = 'noop';
const GROUP_ALL = 'ten';
const GROUP_SPREAD = 'five';
const GROUP_SMALL = 'two';
/** The handler: sh builtins only (no further fork), a constant JSON result. */
const SCRIPT_BODY = '#!/bin/sh\necho \'{"ok":true}\'\n';

const CALL_1_NAME = '11a call rtt, 1 hop (exec action)';
const CALL_3_NAME = '11b call rtt, 3 hops (chain of 4)';
const EXEC_NAME = '11c call − send at 1 hop vs bare exec';
const FANOUT_NAME = `12 call group of ${FANOUT_MEMBERS}, until all results`;
const SPREAD_NAME = `13 --in ${SPREAD_IN_MS}ms spread, group of ${SPREAD_MEMBERS}`;
const SPIN_SPREAD_NAME = `13c ${SPREAD_MEMBERS} bare nodes, the executor's wait + exec, spread`;
const WAIT_SPREAD_NAME = `13d ${SPREAD_MEMBERS} agents vs ${SPREAD_MEMBERS} bare nodes doing the executor's wait alone (no exec)`;
const SMALL_SPREAD_NAME = `13b --in ${SPREAD_IN_MS}ms spread, group of ${SPREAD_SMALL_MEMBERS}`;

/**
 * A bare node that, for each line "<mode> <instant>" (an instant of performance.timeOrigin + now(), the
 * agents' clock), waits for it, reads that clock when it fires and, as the executor does after reading
 * fired_at, runs the script given as its argument (the agent's runProcess, `{}` on stdin); once the script
 * has exited it prints the clock read at the instant, or "failed <outcome>". The agents fork at the instant:
 * on a machine with fewer cores than members, the first forks delay the members still waking, so bare
 * processes that only printed would be a baseline with less to do at that instant than the agents.
 * Mode "timer": one plain setTimeout for the instant; "spin": the executor's own wait
 * (agent/coordination/wait-until.ts).
 */
const TIMER_CHILD = `
const now = () => performance.timeOrigin + performance.now();
const script = process.argv[1];
const executorWait = import(${JSON.stringify(WAIT_UNTIL_MODULE)});
const executorRun = import(${JSON.stringify(RUN_PROCESS_MODULE)});
const fire = (exec) => {
  const firedAt = now();
  if (!exec) {
    process.stdout.write(String(firedAt) + '\\n');
    return;
  }
  executorRun
    .then(({ runProcess }) => runProcess({ argv: [script], stdin: '{}', timeoutMs: ${CALL_TIMEOUT_MS} }))
    .then((outcome) => {
      const ok = outcome.kind === 'exited' && outcome.exitCode === 0;
      process.stdout.write((ok ? String(firedAt) : 'failed ' + outcome.kind) + '\\n');
    });
};
let pending = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  pending += chunk;
  for (let end = pending.indexOf('\\n'); end >= 0; end = pending.indexOf('\\n')) {
    const [mode, instant] = pending.slice(0, end).split(' ');
    const at = Number(instant);
    pending = pending.slice(end + 1);
    if (mode === 'spin' || mode === 'wait') {
      executorWait.then(async ({ sleepUntil, blockUntil }) => {
        await sleepUntil(now, at);
        blockUntil(now, at);
        fire(mode === 'spin');
      });
    } else setTimeout(() => fire(true), at - now());
  }
});
process.stdout.write('ready\\n');
`;

/** One result row of a `call` request (agent.ts #call). */
interface CallRow {
  readonly peer: string;
  readonly name: string;
  readonly status: 'ok' | 'error' | 'timeout';
  readonly error?: { code: string; message: string };
  readonly fired_at_ms: number | null;
}

function writeScript(dir: string): string {
  const path = join(dir, 'noop.sh');
  writeFileSync(path, SCRIPT_BODY);
  chmodSync(path, 0o755);
  return path;
}

interface AgentSpec {
  readonly name: string;
  readonly port: number;
  /** Ports of the agents this one dials (its only links, with those that dial it). */
  readonly dials: readonly number[];
  readonly groups: readonly string[];
}

function startAgent(started: Started, spec: AgentSpec, meshKey: string, script: string): LoopbackAgent {
  return started.agent(
    {
      name: spec.name,
      port: spec.port,
      dials: spec.dials,
      topLevel: [`groups = ${JSON.stringify(spec.groups)}`],
      tables: ['[[actions]]', `name = ${JSON.stringify(ACTION)}`, `exec = [${JSON.stringify(script)}]`],
    },
    meshKey,
  );
}

/** The caller has heard every target announce the action. */
async function waitForActions(caller: BenchAgent, targets: readonly BenchAgent[]): Promise<void> {
  await waitUntil(`${caller.name} knows the actions`, caller, MESH, async () => {
    const rows = (await clientOf(caller).request({ cmd: 'actions' })) as { peer: string; action: string }[];
    return targets.every((target) => rows.some((row) => row.peer === idOf(target) && row.action === ACTION));
  });
}

async function call(client: ControlClient, target: string, inMs?: number): Promise<CallRow[]> {
  const rows = (await withTimeout(
    client.request({
      cmd: 'call',
      target,
      action: ACTION,
      args: {},
      timeout_ms: CALL_TIMEOUT_MS,
      ...(inMs !== undefined && { in_ms: inMs }),
    }),
    CALL_TIMEOUT_MS * 2 + (inMs ?? 0),
    `a call to ${target}`,
  )) as CallRow[];
  const failed = rows.find((row) => row.status !== 'ok');
  if (failed !== undefined)
    throw new Error(`call to ${failed.name}: ${failed.status} ${failed.error?.message ?? ''}`.trim());
  return rows;
}

/** One call, from the request to the agent until every result is back. */
async function callMs(client: ControlClient, target: string, expectedRows: number): Promise<number> {
  const startNs = process.hrtime.bigint();
  const rows = await call(client, target);
  const ms = elapsedMs(startNs);
  if (rows.length !== expectedRows)
    throw new Error(`call to ${target}: ${rows.length} results, expected ${expectedRows}`);
  return ms;
}

/** The handler on its own: the same runProcess the agent's ExecAction uses, from this process. */
async function execMs(script: string): Promise<number> {
  const startNs = process.hrtime.bigint();
  const outcome = await runProcess({ argv: [script], stdin: '{}', timeoutMs: CALL_TIMEOUT_MS });
  const ms = elapsedMs(startNs);
  if (outcome.kind !== 'exited' || outcome.exitCode !== 0)
    throw new Error(`bare exec of ${script}: ${outcome.kind}`);
  return ms;
}

function medianP95(samples: readonly number[]): string {
  return `${formatMilliseconds(median(samples))} (${formatMilliseconds(quantile(samples, 0.95))})`;
}

/** Row 11: a chain c1 - c2 - c3 - c4 (each dials the one before), calls and sends from c1. */
export async function callRoundTripRows(): Promise<ResultRow[]> {
  const started = new Started();
  try {
    const meshKey = generateMeshKey();
    const script = writeScript(started.temporaryDir('nearmesh-bench-actions-'));
    const ports = await freePorts(CALL_CHAIN_LENGTH);
    const specs: AgentSpec[] = ports.map((port, index) => ({
      name: `c${index + 1}`,
      port,
      dials: index === 0 ? [] : [ports[index - 1] as number],
      groups: [],
    }));
    // The first one listening before the others dial it; the rest come up together.
    const [firstSpec, ...restSpecs] = specs;
    if (firstSpec === undefined) throw new Error('an empty chain');
    const first = startAgent(started, firstSpec, meshKey, script);
    await connectControl(first, READY);
    const agents = [first, ...restSpecs.map((spec) => startAgent(started, spec, meshKey, script))];
    await Promise.all(agents.map((agent) => connectControl(agent, READY)));
    for (const [index, agent] of agents.entries()) {
      const neighbours = [agents[index - 1], agents[index + 1]].filter((a) => a !== undefined);
      await waitForLinks(
        agent,
        neighbours.map((neighbour) => neighbour.name),
        MESH,
      );
    }
    const [, oneHop, , threeHops] = agents;
    if (oneHop === undefined || threeHops === undefined) throw new Error('the chain has fewer than 4 agents');
    await waitForRoutes(`routes from ${first.name}`, first, agents.slice(2), MESH);
    await waitForRoutes(`routes from ${threeHops.name}`, threeHops, [first], MESH);
    await waitForActions(first, [oneHop, threeHops]);
    const client = clientOf(first);
    const [call1 = [], send1 = [], call3 = [], send3 = [], exec = []] = await interleaved(
      CALL_SAMPLES,
      CALL_WARMUPS,
      [
        () => callMs(client, idOf(oneHop), 1),
        () => sendMs(client, idOf(oneHop), CALL_TIMEOUT_MS),
        () => callMs(client, idOf(threeHops), 1),
        () => sendMs(client, idOf(threeHops), CALL_TIMEOUT_MS),
        () => execMs(script),
      ],
    );
    process.stderr.write(
      `[median (p95): call 1 hop ${medianP95(call1)}, send 1 hop ${medianP95(send1)}, call 3 hops ` +
        `${medianP95(call3)}, send 3 hops ${medianP95(send3)}, bare exec ${medianP95(exec)}] `,
    );
    const callOverhead = median(call1) - median(send1);
    return [
      {
        benchmark: CALL_1_NAME,
        nearmesh: medianP95(call1),
        baseline: `send ${medianP95(send1)}`,
        ratio: formatTimes(median(call1) / median(send1)),
        goal: '— (info)',
        pass: '—',
      },
      {
        benchmark: CALL_3_NAME,
        nearmesh: medianP95(call3),
        baseline: `send ${medianP95(send3)}`,
        ratio: formatTimes(median(call3) / median(send3)),
        goal: '— (info)',
        pass: '—',
      },
      {
        benchmark: EXEC_NAME,
        nearmesh: `+${formatMilliseconds(callOverhead)}`,
        baseline: `exec ${medianP95(exec)}`,
        ratio: formatTimes(callOverhead / median(exec)),
        goal: '— (info)',
        pass: '—',
      },
    ];
  } finally {
    await started.stopAll();
  }
}

/** A bare node process per member (TIMER_CHILD), each firing and running the action at the instant it is sent. */
interface TimerChild extends BenchChild {
  readonly lines: string[];
}

function startTimerChild(started: Started, script: string): TimerChild {
  const child = startChild(process.execPath, ['-e', TIMER_CHILD, script], 'pipe');
  started.children.push(child);
  const lines: string[] = [];
  let pending = '';
  child.child.stdout?.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n')) {
      lines.push(pending.slice(0, end));
      pending = pending.slice(end + 1);
    }
  });
  return Object.assign(child, { lines });
}

async function nextLine(child: TimerChild, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = child.lines.shift();
    if (line !== undefined) return line;
    if (!isRunning(child)) throw new Error(`timer child exited: ${child.output.trim().slice(-300)}`);
    if (Date.now() > deadline) throw new Error(`timer child silent for ${timeoutMs} ms`);
    await sleep(5);
  }
}

/** One repetition of a baseline: every child fires at now + SPREAD_IN_MS; max − min of their clocks. */
async function timerSpreadMs(
  children: readonly TimerChild[],
  mode: 'timer' | 'spin' | 'wait',
): Promise<number> {
  const at = clockMs() + SPREAD_IN_MS;
  for (const child of children) child.child.stdin?.write(`${mode} ${at}\n`);
  const fired = await Promise.all(
    children.map(async (child) => {
      const line = await nextLine(child, SPREAD_IN_MS + CALL_TIMEOUT_MS);
      const ms = Number(line);
      if (!Number.isFinite(ms)) throw new Error(`timer child: ${line}`);
      return ms;
    }),
  );
  return Math.max(...fired) - Math.min(...fired);
}

/** The agents' clock (time-sync.ts systemClock): wall time with sub-millisecond resolution. */
function clockMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * One repetition: the group fires at its instant (or at once); max − min of fired_at_ms. With `in_ms`,
 * each member's lateness (fired_at_ms − the instant asked for, this process's clock: all share one) goes
 * to `lateness`: its late wake-up plus the request's way to the hub (which sets the instant on arrival).
 * fired_at_ms comes through the member's own offset estimate, as its instant did, so an estimate's error
 * cancels out of it.
 */
async function firedSpreadMs(
  client: ControlClient,
  group: string,
  size: number,
  inMs: number | undefined,
  lateness: number[] = [],
): Promise<number> {
  const instant = clockMs() + (inMs ?? 0);
  const rows = await call(client, `group:${group}`, inMs);
  if (rows.length !== size) throw new Error(`group:${group}: ${rows.length} results, expected ${size}`);
  const fired = rows.map((row) => {
    if (row.fired_at_ms === null) throw new Error(`${row.name} reported no fired_at_ms`);
    return row.fired_at_ms;
  });
  if (inMs !== undefined) lateness.push(...fired.map((ms) => ms - instant));
  return Math.max(...fired) - Math.min(...fired);
}

/** Rows 12-13: a star, the caller `hub` in the middle (in no group), 10 members dialing it. */
export async function callGroupRows(): Promise<ResultRow[]> {
  const started = new Started();
  try {
    const meshKey = generateMeshKey();
    const script = writeScript(started.temporaryDir('nearmesh-bench-actions-'));
    const [hubPort = 0, ...memberPorts] = await freePorts(FANOUT_MEMBERS + 1);
    const hub = startAgent(started, { name: 'hub', port: hubPort, dials: [], groups: [] }, meshKey, script);
    await connectControl(hub, READY);
    const members = memberPorts.map((port, index) =>
      startAgent(
        started,
        {
          name: `m${String(index + 1).padStart(2, '0')}`,
          port,
          dials: [hubPort],
          groups: [
            GROUP_ALL,
            ...(index < SPREAD_MEMBERS ? [GROUP_SPREAD] : []),
            ...(index < SPREAD_SMALL_MEMBERS ? [GROUP_SMALL] : []),
          ],
        },
        meshKey,
        script,
      ),
    );
    // The timer baseline's children start with the members, the same way (node, piped output).
    const timers = Array.from({ length: SPREAD_MEMBERS }, () => startTimerChild(started, script));
    await Promise.all(members.map((member) => connectControl(member, READY)));
    await Promise.all(timers.map((timer) => nextLine(timer, READY_TIMEOUT_MS)));
    await waitForLinks(
      hub,
      members.map((member) => member.name),
      MESH,
    );
    await waitForActions(hub, members);
    const client = clientOf(hub);
    // Announcements carry the groups: wait until the hub resolves both groups in full.
    await waitUntil('the groups resolved at the hub', hub, MESH, async () => {
      const all = await call(client, `group:${GROUP_ALL}`);
      const some = await call(client, `group:${GROUP_SPREAD}`);
      const few = await call(client, `group:${GROUP_SMALL}`);
      return (
        all.length === FANOUT_MEMBERS && some.length === SPREAD_MEMBERS && few.length === SPREAD_SMALL_MEMBERS
      );
    });
    const single = members[0];
    if (single === undefined) throw new Error('no members');
    const [group = [], one = []] = await interleaved(FANOUT_SAMPLES, FANOUT_WARMUPS, [
      () => callMs(client, `group:${GROUP_ALL}`, FANOUT_MEMBERS),
      () => callMs(client, idOf(single), 1),
    ]);
    // Warm-up: the first synchronised call makes each member estimate its offset to the hub's clock.
    await firedSpreadMs(client, GROUP_SPREAD, SPREAD_MEMBERS, SPREAD_IN_MS);
    await firedSpreadMs(client, GROUP_SMALL, SPREAD_SMALL_MEMBERS, SPREAD_IN_MS);
    await timerSpreadMs(timers, 'timer');
    const lateness: number[] = [];
    const [spread = [], timerSpread = [], small = [], spinSpread = [], immediate = [], waitSpread = []] =
      await interleaved(SPREAD_REPETITIONS, 0, [
        () => firedSpreadMs(client, GROUP_SPREAD, SPREAD_MEMBERS, SPREAD_IN_MS, lateness),
        () => timerSpreadMs(timers, 'timer'),
        () => firedSpreadMs(client, GROUP_SMALL, SPREAD_SMALL_MEMBERS, SPREAD_IN_MS),
        () => timerSpreadMs(timers, 'spin'),
        () => firedSpreadMs(client, GROUP_SPREAD, SPREAD_MEMBERS, undefined),
        () => timerSpreadMs(timers, 'wait'),
      ]);
    const list = (values: readonly number[]): string => values.map((ms) => ms.toFixed(2)).join(' ');
    process.stderr.write(
      `[median (p95): group of ${FANOUT_MEMBERS} ${medianP95(group)}, one member ${medianP95(one)}; ` +
        `spread per repetition, --in on ${SPREAD_MEMBERS}: ${list(spread)}; setTimeout: ${list(timerSpread)}; ` +
        `--in on ${SPREAD_SMALL_MEMBERS}: ${list(small)}; sleep+spin: ${list(spinSpread)}; without --in on ${SPREAD_MEMBERS}: ${list(immediate)}; ` +
        `fired_at − instant asked for (${SPREAD_MEMBERS}): min ${Math.min(...lateness).toFixed(2)}, median ` +
        `${median(lateness).toFixed(2)}, max ${Math.max(...lateness).toFixed(2)} ms] `,
    );
    const perMember = (median(group) - median(one)) / (FANOUT_MEMBERS - 1);
    const medianMax = (values: readonly number[]): string =>
      `${formatMilliseconds(median(values))} (max ${formatMilliseconds(Math.max(...values))})`;
    return [
      {
        benchmark: FANOUT_NAME,
        nearmesh: `${medianP95(group)}, +${formatMilliseconds(perMember)}/member`,
        baseline: `1 member ${medianP95(one)}`,
        ratio: formatTimes(median(group) / median(one)),
        goal: '— (info)',
        pass: '—',
      },
      {
        benchmark: SPREAD_NAME,
        nearmesh: medianMax(spread),
        baseline: `wait + exec ${medianMax(spinSpread)}`,
        ratio: formatTimes(median(spread) / median(spinSpread)),
        goal: `≤ ${MAX_SPREAD_RATIO}× (median)`,
        pass: passMark(median(spread) <= MAX_SPREAD_RATIO * median(spinSpread)),
      },
      {
        benchmark: SMALL_SPREAD_NAME,
        nearmesh: medianMax(small),
        baseline: `group of ${SPREAD_MEMBERS} ${medianMax(spread)}`,
        ratio: formatTimes(median(small) / median(spread)),
        goal: `≤ ${MAX_SMALL_SPREAD_MS} ms (abs, max)`,
        pass: passMark(Math.max(...small) <= MAX_SMALL_SPREAD_MS),
      },
      {
        benchmark: SPIN_SPREAD_NAME,
        nearmesh: medianMax(spinSpread),
        baseline: `setTimeout ${medianMax(timerSpread)}`,
        ratio: formatTimes(median(spinSpread) / median(timerSpread)),
        goal: '— (info)',
        pass: '—',
      },
      {
        benchmark: WAIT_SPREAD_NAME,
        nearmesh: medianMax(spread),
        baseline: `wait alone ${medianMax(waitSpread)}`,
        ratio: formatTimes(median(spread) / median(waitSpread)),
        goal: '— (info: the first form of 13)',
        pass: '—',
      },
    ];
  } finally {
    await started.stopAll();
  }
}
