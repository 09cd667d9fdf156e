/**
 * Learning-rate schedules: the rate of every step is a pure function of the step's index and the run's
 * settings, so a resumed run, and every thread, computes the same rate (docs/optimizers.md).
 */
export const SCHEDULES = ['constant', 'step', 'cosine'] as const;
export type ScheduleName = (typeof SCHEDULES)[number];

export interface ScheduleSettings {
  /** The base rate (--lr). */
  lr: number;
  lrSchedule: ScheduleName;
  /** `step`: the factor applied every lrStepEpochs epochs (--lr-gamma). */
  lrGamma?: number;
  /** `step`: epochs between two factors (--lr-step-epochs). */
  lrStepEpochs?: number;
  /** Steps of linear warm-up from 0 (--warmup-steps); 0: none. */
  warmupSteps: number;
  /** The run's epochs: cosine anneals over all their steps. */
  epochs: number;
}

/** Steps in an epoch of `rows` training rows: the last batch takes what is left. */
export function epochSteps(rows: number, batchSize: number): number {
  return Math.ceil(rows / batchSize);
}

/** A run's steps in all: its epochs' steps on `trainRows` rows, or fewer with maxSteps. */
export function runSteps(s: { epochs: number; batchSize: number; maxSteps?: number }, trainRows: number): number {
  return Math.min(s.epochs * epochSteps(trainRows, s.batchSize), s.maxSteps ?? Number.POSITIVE_INFINITY);
}

/**
 * The rate of the step with 0-based index `step` (steps taken before it), in float64; the trainers use it
 * rounded to float32.
 *   warm-up, step < N:   lr · step / N                           (LambdaLR(lambda s: s / N))
 *   constant:            lr
 *   step:                lr · γ^⌊e / lrStepEpochs⌋, e the step's 0-based epoch   (StepLR stepped per epoch)
 *   cosine:              lr · (1 + cos(π · (step − N) / (T − N))) / 2, T = epochs · stepsPerEpoch
 *                        (CosineAnnealingLR stepped per step, T_max = T − N, after the warm-up)
 */
export function learningRate(s: ScheduleSettings, stepsPerEpoch: number, step: number): number {
  const warmup = s.warmupSteps;
  if (step < warmup) return (s.lr * step) / warmup;
  switch (s.lrSchedule) {
    case 'constant':
      return s.lr;
    case 'step':
      return s.lr * (s.lrGamma as number) ** Math.floor(Math.floor(step / stepsPerEpoch) / (s.lrStepEpochs as number));
    case 'cosine': {
      const span = s.epochs * stepsPerEpoch - warmup;
      return (s.lr * (1 + Math.cos((Math.PI * (step - warmup)) / span))) / 2;
    }
  }
}
