import type { Dataset } from '../data/dataset.js';
import type { TrainOptions } from '../train/config.js';
import { median, timeRun } from './bench.js';
import { defaultThreadCounts } from './machine.js';

export interface Calibration {
  threads: number;
  /** Median steps/s of each count tried. */
  stepsPerSec: Map<number, number>;
  rounds: number;
  steps: number;
}

/**
 * --threads auto: a short timed run of this model and batch at 1, 2, 4, … threads up to the cores, in
 * alternating rounds (as bench does), and the fastest count by median. Choosing by speed is safe only
 * because the thread count changes no bit of the weights.
 */
export async function chooseThreads(
  options: TrainOptions, dataset: Dataset, { candidates = defaultThreadCounts(), rounds = 2, warmup = 20, steps = 100 } = {},
): Promise<Calibration> {
  const runs = new Map<number, number[]>(candidates.map((t) => [t, []]));
  for (let r = 0; r < rounds; r++) {
    for (const threads of candidates) runs.get(threads)!.push((await timeRun({ ...options, threads }, dataset, warmup, steps)).stepsPerSec);
  }
  const stepsPerSec = new Map(candidates.map((t) => [t, median(runs.get(t)!)]));
  const threads = candidates.reduce((best, t) => (stepsPerSec.get(t)! > stepsPerSec.get(best)! ? t : best));
  return { threads, stepsPerSec, rounds, steps };
}
