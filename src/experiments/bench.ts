import type { Dataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { train, type TrainOptions } from '../train/train.js';

/**
 * Thread scaling: the same training run (same engine as `train`, no special path) timed at several thread
 * counts and batch sizes. Each configuration is run `repeats` times after `warmup` untimed steps; the median
 * steps/s is reported, and speedup and efficiency are against 1 thread at the same batch size (measured in
 * the same run, so a noisy machine affects both sides alike).
 */
export interface BenchOptions extends TrainOptions {
  threadCounts: number[];
  batchSizes: number[];
  steps: number;
  warmup?: number;
  repeats?: number;
}

export interface BenchRow {
  threads: number;
  batchSize: number;
  stepsPerSec: number;
  samplesPerSec: number;
  speedup: number;
  efficiency: number;
  paramsSha256: string;
  /** Every repeat's steps/s, for the spread. */
  runs: number[];
}

export async function benchmark(options: BenchOptions, dataset: Dataset, onRow?: (row: BenchRow) => void): Promise<BenchRow[]> {
  const { threadCounts, batchSizes, steps, warmup = 50, repeats = 3, ...trainOptions } = options;
  checkBenchCounts({ steps, warmup, repeats });
  const threadsInOrder = [1, ...new Set(threadCounts.filter((t) => t !== 1))];
  const rows: BenchRow[] = [];
  for (const batchSize of batchSizes) {
    // Repeats go round the thread counts (1, 2, 4, 1, 2, 4, ...), not one count after another, so that a
    // slow spell of this shared machine falls on every count alike and the ratios stay fair.
    const runs = new Map<number, number[]>(threadsInOrder.map((t) => [t, []]));
    const hashes = new Map<number, string>();
    for (let r = 0; r < repeats; r++) {
      for (const threads of threadsInOrder) {
        const { stepsPerSec, paramsSha256 } = await timeRun({ ...trainOptions, threads, batchSize }, dataset, warmup, steps);
        runs.get(threads)!.push(stepsPerSec);
        hashes.set(threads, paramsSha256);
      }
    }
    const base = median(runs.get(1)!);
    // 1 thread is always measured (it is the baseline) but shown only when asked for.
    for (const threads of threadsInOrder.filter((t) => threadCounts.includes(t))) {
      const stepsPerSec = median(runs.get(threads)!);
      const row: BenchRow = {
        threads,
        batchSize,
        stepsPerSec,
        samplesPerSec: stepsPerSec * batchSize,
        speedup: stepsPerSec / base,
        efficiency: stepsPerSec / base / threads,
        paramsSha256: hashes.get(threads)!,
        runs: runs.get(threads)!,
      };
      rows.push(row);
      onRow?.(row);
    }
  }
  return rows;
}

/** steps, warmup and repeats must each be at least 1 (the timing starts after the warm-up's last step). */
export function checkBenchCounts(counts: { steps: number; warmup: number; repeats: number }): void {
  for (const [name, value] of Object.entries(counts)) {
    if (!(value >= 1)) throw new UserError(`--${name} ${value}: must be at least 1`);
  }
}

async function timeRun(options: TrainOptions, dataset: Dataset, warmup: number, steps: number) {
  let timedFrom = 0;
  let timedTo = 0;
  const result = await train(
    { ...options, epochs: Number.MAX_SAFE_INTEGER, maxSteps: warmup + steps, evaluate: false },
    {
      dataset,
      onStep: ({ steps: done }) => {
        if (done === warmup) timedFrom = performance.now();
        if (done === warmup + steps) timedTo = performance.now();
      },
    },
  );
  return { stepsPerSec: steps / ((timedTo - timedFrom) / 1000), paramsSha256: result.paramsSha256 };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
