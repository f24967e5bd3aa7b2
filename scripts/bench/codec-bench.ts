// Rows 1 and 2: wire size of the CBOR envelope against JSON of the same content, and encode+decode
// round trips per second against JSON.stringify+JSON.parse, measured with tinybench in the same run.
import { Bench } from 'tinybench';
import { decodeMessage, encodeMessage } from '../../agent/protocol/index.js';
import { type JsonDataMessage, LINK_LOCAL_SAMPLE, ROUTED_SAMPLE, type SampleContent } from './fixtures.js';
import { median } from './stats.js';
import { formatPercent, formatPerSecond, formatTimes, passMark, type ResultRow } from './table.js';

const MAX_SIZE_RATIO = 0.4;
const MIN_ROUND_TRIP_RATIO = 1.0;
/** Round trips per tinybench sample: one ~2 µs call is too close to the timer's own cost. */
const ROUND_TRIPS_PER_SAMPLE = 64;
/** Rounds alternate the task order; the median of rounds resists a noisy neighbour on 2 cores. */
const ROUNDS = 3;
const TIME_PER_TASK_MS = 350;
const WARMUP_PER_TASK_MS = 100;

const utf8 = new TextEncoder();

export function sizeRows(): ResultRow[] {
  return [LINK_LOCAL_SAMPLE, ROUTED_SAMPLE].map((sample, index) => sizeRow(sample, index));
}

function sizeRow(sample: SampleContent, index: number): ResultRow {
  const cborBytes = encodeMessage(sample.message).length;
  const jsonBytes = utf8.encode(JSON.stringify(sample.json)).length;
  const ratio = cborBytes / jsonBytes;
  return {
    benchmark: `1${index === 0 ? 'a' : 'b'} bytes, ${sample.label} vs JSON`,
    nearmesh: `${cborBytes} B`,
    baseline: `${jsonBytes} B`,
    ratio: formatPercent(ratio),
    goal: `≤ ${formatPercent(MAX_SIZE_RATIO)}`,
    pass: passMark(ratio <= MAX_SIZE_RATIO),
  };
}

interface RoundTripTask {
  readonly name: string;
  /** Runs ROUND_TRIPS_PER_SAMPLE round trips; returns a checksum so nothing is optimised away. */
  readonly run: () => number;
}

function roundTripTasks(): { nearmesh: RoundTripTask; jsonText: RoundTripTask; jsonBase64: RoundTripTask } {
  const { message, json } = LINK_LOCAL_SAMPLE;
  if (message.type !== 'data') throw new Error('the codec sample must be a DATA message');
  return {
    nearmesh: {
      name: 'nearmesh encodeMessage+decodeMessage',
      run: () => {
        let checksum = 0;
        for (let i = 0; i < ROUND_TRIPS_PER_SAMPLE; i++) {
          const result = decodeMessage(encodeMessage(message));
          if (result.kind !== 'message' || result.message.type !== 'data') {
            throw new Error('decodeMessage refused what encodeMessage wrote');
          }
          checksum += result.message.payload.length;
        }
        return checksum;
      },
    },
    jsonText: {
      name: 'JSON payload as text',
      run: () => {
        let checksum = 0;
        for (let i = 0; i < ROUND_TRIPS_PER_SAMPLE; i++) {
          const parsed = JSON.parse(JSON.stringify(json)) as JsonDataMessage;
          checksum += parsed.payload.length;
        }
        return checksum;
      },
    },
    jsonBase64: {
      name: 'JSON payload as base64',
      run: () => {
        let checksum = 0;
        for (let i = 0; i < ROUND_TRIPS_PER_SAMPLE; i++) {
          // Both directions convert, as a JSON protocol carrying binary payloads has to.
          const text = JSON.stringify({ ...json, payload: Buffer.from(message.payload).toString('base64') });
          const parsed = JSON.parse(text) as JsonDataMessage;
          checksum += Buffer.from(parsed.payload, 'base64').length;
        }
        return checksum;
      },
    },
  };
}

/** Median over rounds of each task's round trips per second (from tinybench's median sample latency). */
async function measureRoundTripsPerSecond(tasks: readonly RoundTripTask[]): Promise<Map<string, number>> {
  const perRound = new Map<string, number[]>(tasks.map((task) => [task.name, []]));
  let sink = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const bench = new Bench({
      time: TIME_PER_TASK_MS,
      warmupTime: WARMUP_PER_TASK_MS,
      iterations: 32,
      throws: true,
    });
    const ordered = round % 2 === 0 ? tasks : [...tasks].reverse();
    for (const task of ordered) {
      bench.add(task.name, () => {
        sink += task.run();
      });
    }
    await bench.run();
    for (const task of bench.tasks) {
      const result = task.result;
      if (result.state !== 'completed') throw new Error(`tinybench task ${task.name} ended ${result.state}`);
      perRound.get(task.name)?.push((ROUND_TRIPS_PER_SAMPLE * 1000) / result.latency.p50);
    }
  }
  if (sink <= 0) throw new Error('round trips produced nothing');
  return new Map([...perRound].map(([name, rates]) => [name, median(rates)]));
}

export async function roundTripRows(): Promise<ResultRow[]> {
  const tasks = roundTripTasks();
  const rates = await measureRoundTripsPerSecond([tasks.nearmesh, tasks.jsonText, tasks.jsonBase64]);
  const rate = (task: RoundTripTask): number => {
    const value = rates.get(task.name);
    if (value === undefined) throw new Error(`no result for ${task.name}`);
    return value;
  };
  const nearmeshPerSecond = rate(tasks.nearmesh);
  return [
    { label: '2a', task: tasks.jsonText, note: 'text' },
    { label: '2b', task: tasks.jsonBase64, note: 'base64' },
  ].map(({ label, task, note }) => {
    const baselinePerSecond = rate(task);
    const ratio = nearmeshPerSecond / baselinePerSecond;
    return {
      benchmark: `${label} encode+decode msg/s vs JSON (${note} payload)`,
      nearmesh: formatPerSecond(nearmeshPerSecond),
      baseline: formatPerSecond(baselinePerSecond),
      ratio: formatTimes(ratio),
      goal: `≥ ${formatTimes(MIN_ROUND_TRIP_RATIO)}`,
      pass: passMark(ratio >= MIN_ROUND_TRIP_RATIO),
    };
  });
}
