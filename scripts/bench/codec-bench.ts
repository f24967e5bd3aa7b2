// Rows 1 and 2: wire size of the CBOR envelope against JSON of the same content, and encode+decode
// round trips per second against JSON.stringify+JSON.parse, measured with tinybench in the same run.
import { decodeMessage, encodeMessage } from '../../agent/protocol/index.js';
import { type JsonDataMessage, LINK_LOCAL_SAMPLE, ROUTED_SAMPLE, type SampleContent } from './fixtures.js';
import { measureOpsPerSecond, type RateTask, rateOf } from './ops-rate.js';
import { formatPercent, formatPerSecond, formatTimes, passMark, type ResultRow } from './table.js';

const MAX_SIZE_RATIO = 0.4;
const MIN_ROUND_TRIP_RATIO = 1.0;
/** Round trips per tinybench sample: one ~2 µs call is too close to the timer's own cost. */
const ROUND_TRIPS_PER_SAMPLE = 64;

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

/** Runs ROUND_TRIPS_PER_SAMPLE round trips. */
type RoundTripTask = RateTask;

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

export async function roundTripRows(): Promise<ResultRow[]> {
  const tasks = roundTripTasks();
  const rates = await measureOpsPerSecond([tasks.nearmesh, tasks.jsonText, tasks.jsonBase64], {
    opsPerSample: ROUND_TRIPS_PER_SAMPLE,
  });
  const rate = (task: RoundTripTask): number => rateOf(rates, task);
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
