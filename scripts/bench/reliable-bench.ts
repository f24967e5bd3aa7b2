// Row 17: reliable small messages over one link. `nearmesh send <peer> - --lines` queues one durable
// message per stdin line (SQLite) and exits once the peer confirmed the last one end to end; two agents on
// 127.0.0.1. Baseline: a bare Node TCP process sending the same count of 32-byte messages to an echo
// server with the same window (RELIABLE_WINDOW in flight, each answered). Both timed from spawn to their result line.
import { randomBytes } from 'node:crypto';
import { WINDOW_MESSAGES } from '../../agent/messaging/reliable/reliable-delivery.js';
import {
  clearInbox,
  cliArgs,
  cliFloorMs,
  type PairAgent,
  Scope,
  startRawServer,
  timedRawRun,
  timedRun,
} from './agent-pair.js';
import { loopbackPair } from './push-bench.js';
import { median } from './stats.js';
import { formatMilliseconds, formatPerSecond, formatTimes, passMark, type ResultRow } from './table.js';

export const RELIABLE_MESSAGES = 5_000;
export const RELIABLE_MESSAGE_BYTES = 32;
/** QUEUED messages in flight per peer (for 32-byte ones, far below the window in bytes). */
export const RELIABLE_WINDOW = WINDOW_MESSAGES;
export const RELIABLE_RUNS = 3;
export const RELIABLE_WARMUPS = 1;
/** Durable reliable messages a second of 32 B on one link, CLI included: what an app logging readings needs. */
const MIN_DURABLE_PER_S = 10_000;
const RUN_TIMEOUT_MS = 60_000;
const CONFIRM_TIMEOUT_MS = 50_000;

/** `count` distinct lines of exactly RELIABLE_MESSAGE_BYTES (hex) each: messages that do not compress. */
export function distinctLines(count = RELIABLE_MESSAGES): string[] {
  return Array.from({ length: count }, () => randomBytes(RELIABLE_MESSAGE_BYTES / 2).toString('hex'));
}

/** `nearmesh send <to> - --lines --json` against `sender`, from its spawn to the peer's last confirmation. */
async function sendLinesMs(sender: PairAgent, to: string, stdin: string): Promise<number> {
  const { ms, record } = await timedRun({
    what: 'nearmesh send --lines',
    command: process.execPath,
    args: cliArgs(sender, ['send', to, '-', '--lines', '--json', '--timeout', String(CONFIRM_TIMEOUT_MS)]),
    stdin,
    timeoutMs: RUN_TIMEOUT_MS,
    done: (result) => 'acknowledged' in result,
  });
  if (record.acknowledged !== true || record.count !== RELIABLE_MESSAGES)
    throw new Error(`send --lines answered ${JSON.stringify(record)}`);
  return ms;
}

const NAME = `17 send --lines, ${RELIABLE_MESSAGES.toLocaleString('en-US')} × ${RELIABLE_MESSAGE_BYTES} B, one link`;

export async function reliableRows(): Promise<ResultRow[]> {
  const scope = new Scope();
  try {
    const { sender, receiver } = await loopbackPair(scope);
    const echoPort = await startRawServer(scope, undefined, 'echo', ['127.0.0.1', 0]);
    // What `send --lines` reads on stdin: one message a line.
    const stdin = `${distinctLines().join('\n')}\n`;
    const sendMs = async (): Promise<number> => {
      const ms = await sendLinesMs(sender, receiver.name, stdin);
      await clearInbox(receiver);
      return ms;
    };
    const rawMs = async (): Promise<number> => {
      const { ms, record } = await timedRawRun(
        undefined,
        'window',
        ['127.0.0.1', echoPort, RELIABLE_MESSAGES, RELIABLE_MESSAGE_BYTES, RELIABLE_WINDOW],
        RUN_TIMEOUT_MS,
        'count',
      );
      if (record.count !== RELIABLE_MESSAGES)
        throw new Error(`raw window answered ${JSON.stringify(record)}`);
      return ms;
    };
    const send: number[] = [];
    const raw: number[] = [];
    const floor: number[] = [];
    for (let run = 0; run < RELIABLE_WARMUPS + RELIABLE_RUNS; run++) {
      const measured = [await sendMs(), await rawMs(), await cliFloorMs(sender, RUN_TIMEOUT_MS)];
      if (run < RELIABLE_WARMUPS) continue;
      send.push(measured[0] ?? 0);
      raw.push(measured[1] ?? 0);
      floor.push(measured[2] ?? 0);
    }
    const list = (values: number[]): string => values.map((ms) => ms.toFixed(0)).join('/');
    process.stderr.write(
      `[runs ms: send --lines ${list(send)}, raw window ${list(raw)}; \`nearmesh id\` (CLI start-up + one ` +
        `request) ${list(floor)}] `,
    );
    const rate = (ms: number): number => (RELIABLE_MESSAGES / ms) * 1000;
    const sendRate = rate(median(send));
    const rawRate = rate(median(raw));
    return [
      {
        benchmark: NAME,
        nearmesh: `${formatPerSecond(sendRate)} (${formatMilliseconds(median(send))})`,
        baseline: `raw ${formatPerSecond(rawRate)} (${formatMilliseconds(median(raw))})`,
        ratio: formatTimes(sendRate / rawRate),
        goal: `≥ ${formatPerSecond(MIN_DURABLE_PER_S)} (abs)`,
        pass: passMark(sendRate >= MIN_DURABLE_PER_S),
      },
    ];
  } finally {
    await scope.close();
  }
}
