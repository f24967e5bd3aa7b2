// Operations per second of small synchronous tasks, measured with tinybench in the same process: each
// tinybench sample runs a batch of operations (one call of a few µs is too close to the timer's own cost),
// rounds alternate the task order, and the median of rounds resists a noisy neighbour on 2 cores.
import { Bench } from 'tinybench';
import { median } from './stats.js';

export interface RateTask {
  readonly name: string;
  /** Runs one batch of operations; returns a checksum so nothing is optimised away. */
  readonly run: () => number;
}

export interface RateOptions {
  /** Operations one call of a task's run() performs. */
  readonly opsPerSample: number;
  readonly rounds?: number;
  readonly timePerTaskMs?: number;
  readonly warmupPerTaskMs?: number;
}

/** Median over rounds of each task's operations per second (from tinybench's median sample latency). */
export async function measureOpsPerSecond(
  tasks: readonly RateTask[],
  options: RateOptions,
): Promise<Map<string, number>> {
  const { opsPerSample, rounds = 3, timePerTaskMs = 350, warmupPerTaskMs = 100 } = options;
  const perRound = new Map<string, number[]>(tasks.map((task) => [task.name, []]));
  let sink = 0;
  for (let round = 0; round < rounds; round++) {
    const bench = new Bench({
      time: timePerTaskMs,
      warmupTime: warmupPerTaskMs,
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
      perRound.get(task.name)?.push((opsPerSample * 1000) / result.latency.p50);
    }
  }
  if (sink <= 0) throw new Error('the measured tasks produced nothing');
  return new Map([...perRound].map(([name, rates]) => [name, median(rates)]));
}

/** The rate measured for `task`; throws when there is none (a bench bug). */
export function rateOf(rates: ReadonlyMap<string, number>, task: RateTask): number {
  const value = rates.get(task.name);
  if (value === undefined) throw new Error(`no result for ${task.name}`);
  return value;
}
