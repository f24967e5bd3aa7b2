// Child process for scripts/bench/duplicate-cache-bench.ts, run with --expose-gc so every heap reading is
// taken after a full collection: the heap a DuplicateCache (dist/agent/mesh) holds under a steady load.
// Drives one cache with a simulated clock (no waiting): RATE distinct (source, id) per simulated second
// from SOURCES sources for SECONDS s, each followed by DUPLICATE_SHARE re-arrivals of a message seen
// shortly before (the other copies of a flood), and samples the heap every SAMPLE_EVERY_S. Then fills a
// second cache past its capacity in one instant (a hostile burst): the most the cache can ever hold.
// The clock starts at Date.now(), as in the agent: timestamps that large are heap numbers, not small ints.
// Prints one JSON line: {event: 'result', emptyHeap, samples: [{second, size, heap}], capacity, fullHeap,
// fullSize, duplicatesMissed, adds}.
import { DEFAULT_DUPLICATE_CAPACITY, DuplicateCache } from '../../../dist/agent/mesh/duplicate-cache.js';
import { MessageType } from '../../../dist/agent/protocol/index.js';
import { env, say } from '../../ble-emulator/child-io.mjs';

const rate = Number(env('RATE', '1000'));
const seconds = Number(env('SECONDS', '120'));
const sources = Number(env('SOURCES', '50'));
const duplicateShare = Number(env('DUPLICATE_SHARE', '1.5'));
const sampleEvery = Number(env('SAMPLE_EVERY_S', '10'));
/** A duplicate is a copy of a message from this recently: copies of one flood arrive within milliseconds. */
const DUPLICATE_LAG_MESSAGES = 100;

if (typeof globalThis.gc !== 'function') throw new Error('run me with --expose-gc');

function heapAfterGc() {
  // Twice: the first pass can leave garbage reachable only from objects it just finalized.
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().heapUsed;
}

/** 16 hex characters, like every peer id. */
const sourceIds = Array.from({ length: sources }, (_, index) =>
  (0x3f9a61c2d04b0000n + BigInt(index) * 7919n).toString(16).padStart(16, '0'),
);
/** Each source counts its own ids up from a random start, as routers do. */
const nextIds = sourceIds.map((_, index) => (index * 2_654_435_761) % 2 ** 31);
let seed = 1;
function random() {
  // A fixed-seed LCG: the same load every run.
  seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
  return seed / 2 ** 31;
}

const data = MessageType.data;
const startMs = Date.now();
const emptyHeap = heapAfterGc();
const cache = new DuplicateCache();
/** The last DUPLICATE_LAG_MESSAGES keys, as [sourceIndex, id] in a ring, for re-arrivals. */
const recent = new Int32Array(DUPLICATE_LAG_MESSAGES * 2);
const samples = [];
let adds = 0;
let duplicatesMissed = 0;
let duplicateDebt = 0;
const total = rate * seconds;
for (let message = 0; message < total; message++) {
  const nowMs = startMs + (message * 1000) / rate;
  const sourceIndex = Math.floor(random() * sources);
  const id = nextIds[sourceIndex];
  nextIds[sourceIndex] = (id + 1) % 2 ** 31;
  if (!cache.add(sourceIds[sourceIndex], data, id, nowMs))
    throw new Error('a fresh message was taken for a duplicate');
  adds++;
  const slot = (message % DUPLICATE_LAG_MESSAGES) * 2;
  recent[slot] = sourceIndex;
  recent[slot + 1] = id;
  duplicateDebt += duplicateShare;
  for (; duplicateDebt >= 1; duplicateDebt--) {
    const back = Math.floor(random() * Math.min(message + 1, DUPLICATE_LAG_MESSAGES)) * 2;
    const earlier = (slot - back + DUPLICATE_LAG_MESSAGES * 2) % (DUPLICATE_LAG_MESSAGES * 2);
    if (cache.add(sourceIds[recent[earlier]], data, recent[earlier + 1], nowMs)) duplicatesMissed++;
    adds++;
  }
  const done = message + 1;
  if (done % (rate * sampleEvery) === 0 || done === rate) {
    samples.push({ second: done / rate, size: cache.size, heap: heapAfterGc() - emptyHeap });
  }
}

// The bound: a burst past the capacity within one instant (nothing old enough to expire by time).
const beforeFull = heapAfterGc();
const full = new DuplicateCache();
const burstMs = Date.now();
for (let index = 0; index < full.capacity + 1_000; index++) {
  const sourceIndex = index % sources;
  full.add(sourceIds[sourceIndex], data, index, burstMs);
}
const fullHeap = heapAfterGc() - beforeFull;

say({
  event: 'result',
  emptyHeap,
  samples,
  windowMs: cache.windowMs,
  capacity: DEFAULT_DUPLICATE_CAPACITY,
  fullSize: full.size,
  fullHeap,
  duplicatesMissed,
  adds,
  // Keep both caches alive until after the last reading.
  keep: cache.size + full.size > 0,
});
