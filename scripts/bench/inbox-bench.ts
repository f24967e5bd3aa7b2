// Row 22: the app inbox. Two agents on 127.0.0.1; `send --lines` queues N reliable messages to rx while no
// app listens there (each stored in rx's inbox before rx confirms it), then `listen --json` takes them out,
// one control request per message written (the durable path: each taken once written, so a listen killed
// half way loses none), against `listen --peek --json` reading the same N without taking anything (the
// path an app had before the inbox: handed over, nothing recorded). Each timed from spawn to its last line.
import { cliArgs, type PairAgent, Scope, timedRun } from './agent-pair.js';
import { loopbackPair } from './push-bench.js';
import { distinctLines } from './reliable-bench.js';
import { median } from './stats.js';
import { formatMilliseconds, formatPerSecond, formatTimes, passMark, type ResultRow } from './table.js';

export const INBOX_MESSAGES = 5_000;
const RUNS = 3;
const RUN_TIMEOUT_MS = 60_000;
/**
 * Taking costs a round trip to the agent per message, answered before the next is written: the price of
 * "a listen killed at any point repeats at most the message it had just written". A peek pays none.
 */
const MIN_TAKE_RATIO = 0.1;

async function sendMs(sender: PairAgent, to: string, lines: readonly string[]): Promise<number> {
  const { ms, record } = await timedRun({
    what: 'nearmesh send --lines',
    command: process.execPath,
    args: cliArgs(sender, ['send', to, '-', '--lines', '--json', '--timeout', '50000']),
    stdin: `${lines.join('\n')}\n`,
    timeoutMs: RUN_TIMEOUT_MS,
    done: (result) => 'acknowledged' in result,
  });
  if (record.acknowledged !== true) throw new Error(`send --lines answered ${JSON.stringify(record)}`);
  return ms;
}

/** `listen --json` (with `args`) from its spawn to printing `last`. */
async function listenMs(receiver: PairAgent, args: readonly string[], last: string): Promise<number> {
  const { ms } = await timedRun({
    what: `nearmesh listen ${args.join(' ')}`,
    command: process.execPath,
    args: cliArgs(receiver, ['listen', '--json', ...args]),
    timeoutMs: RUN_TIMEOUT_MS,
    done: (record) => record.payload === last,
  });
  return ms;
}

export async function inboxRows(): Promise<ResultRow[]> {
  const scope = new Scope();
  try {
    const { sender, receiver } = await loopbackPair(scope);
    const into: number[] = [];
    const peek: number[] = [];
    const take: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const lines = distinctLines(INBOX_MESSAGES);
      const last = lines[lines.length - 1] as string;
      into.push(await sendMs(sender, receiver.name, lines));
      peek.push(await listenMs(receiver, ['--peek'], last));
      take.push(await listenMs(receiver, [], last));
    }
    const list = (values: number[]): string => values.map((ms) => ms.toFixed(0)).join('/');
    process.stderr.write(`[runs ms: into ${list(into)}, peek ${list(peek)}, take ${list(take)}] `);
    const rate = (ms: number): number => (INBOX_MESSAGES / ms) * 1000;
    const takeRate = rate(median(take));
    const peekRate = rate(median(peek));
    return [
      {
        benchmark: `22a into the app inbox, ${INBOX_MESSAGES.toLocaleString('en-US')} reliable msgs, nobody listening`,
        nearmesh: `${formatPerSecond(rate(median(into)))} (${formatMilliseconds(median(into))})`,
        baseline: '—',
        ratio: '—',
        goal: '— (info)',
        pass: '—',
      },
      {
        benchmark: '22b out through listen, each taken once written',
        nearmesh: `${formatPerSecond(takeRate)} (${formatMilliseconds(median(take))})`,
        baseline: `--peek ${formatPerSecond(peekRate)} (${formatMilliseconds(median(peek))})`,
        ratio: formatTimes(takeRate / peekRate),
        goal: `≥ ${MIN_TAKE_RATIO}× peek`,
        pass: passMark(takeRate >= MIN_TAKE_RATIO * peekRate),
      },
    ];
  } finally {
    await scope.close();
  }
}
