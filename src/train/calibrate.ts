import { performance } from 'node:perf_hooks';
import { defaultThreadCounts } from '../coordinator/threads.js';
import type { StepProfile } from '../coordinator/engine.js';
import type { Dataset } from '../data/dataset.js';
import type { TrainOptions } from './config.js';
import { trainCore } from './core.js';

export interface Calibration {
  threads: number;
  /** Median steps/s of each count tried. */
  stepsPerSec: Map<number, number>;
  rounds: number;
  steps: number;
}

/**
 * --threads auto (null when `signal` stopped it): a short timed run of this model and batch at 1, 2, 4, … threads up to the cores, in
 * alternating rounds (as bench does), and the fastest count by median. Choosing by speed is safe only
 * because the thread count changes no bit of the weights.
 */
export async function chooseThreads(
  options: TrainOptions,
  dataset: Dataset,
  {
    candidates = defaultThreadCounts(),
    rounds = 2,
    warmup = 20,
    steps = 100,
    signal,
  }: { candidates?: number[]; rounds?: number; warmup?: number; steps?: number; signal?: AbortSignal } = {},
): Promise<Calibration | null> {
  const runs = new Map<number, number[]>(candidates.map((t) => [t, []]));
  for (let r = 0; r < rounds; r++) {
    for (const threads of candidates) {
      const timed = await timeRun({ ...options, threads }, dataset, warmup, steps, false, signal);
      // Stopped (Ctrl-C): no count is chosen, and the run that follows stops before its first step.
      if (signal?.aborted) return null;
      runs.get(threads)!.push(timed.stepsPerSec);
    }
  }
  const stepsPerSec = new Map(candidates.map((t) => [t, median(runs.get(t)!)]));
  const threads = candidates.reduce((best, t) => (stepsPerSec.get(t)! > stepsPerSec.get(best)! ? t : best));
  return { threads, stepsPerSec, rounds, steps };
}

/** Steps/s of `steps` steps after `warmup` untimed ones (and their profile): the timing bench and --threads auto share. */
export async function timeRun(
  options: TrainOptions,
  dataset: Dataset,
  warmup: number,
  steps: number,
  profile = false,
  signal?: AbortSignal,
): Promise<{ stepsPerSec: number; paramsSha256: string; profile: StepProfile | null }> {
  let timedFrom = 0;
  let timedTo = 0;
  const result = await trainCore(
    { ...options, epochs: Number.MAX_SAFE_INTEGER, maxSteps: warmup + steps, evaluate: false },
    {
      dataset,
      signal,
      profileSteps: profile ? steps : 0,
      onStep: ({ steps: done }) => {
        if (done === warmup) timedFrom = performance.now();
        if (done === warmup + steps) timedTo = performance.now();
      },
    },
  );
  return {
    stepsPerSec: steps / ((timedTo - timedFrom) / 1000),
    paramsSha256: result.paramsSha256,
    profile: result.profile,
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
