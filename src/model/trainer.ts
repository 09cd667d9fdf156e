/**
 * What the epoch loop needs from a trainer. The reference trainer (one thread, reference arithmetic) and
 * the data-parallel engine both provide it, so the same loop, reports and hashes serve both.
 */
export interface EvalResult {
  count: number;
  correct: number;
  /** The predicted class of every example, in example order. */
  predictions: Uint8Array;
  /** Sum of per-example cross-entropy, added in example order. */
  lossSum: number;
}

/** The splits a trainer evaluates: validation is the training rows --val-split held out. */
export type SplitName = 'train' | 'test' | 'val';
/** Each split's number where a command word carries it. */
export const SPLITS: readonly SplitName[] = ['train', 'test', 'val'];

export interface Trainer {
  /** The live parameters, layer by layer, weight then bias (src/model/layout.ts). */
  readonly params: Float32Array;
  /** The epoch's order of training examples; the epoch loop fills it from the seeded generator. */
  readonly order: Uint32Array;
  /** The optimizer's state: its arrays (src/optim/optimizer.ts, stateArrays) one after another, each laid out like params. */
  readonly optimizerState: Float32Array;
  /**
   * One training step on the examples order[start .. start+rows), the run's step with 0-based index `step`
   * (its learning rate and Adam's bias corrections depend on it); returns the sum of their losses.
   */
  trainStep(start: number, rows: number, step: number): number | Promise<number>;
  evaluate(split: SplitName): EvalResult | Promise<EvalResult>;
  close(): Promise<void>;
}

/** Counts and sums in example order, so the result is the same whichever threads computed the rows. */
export function summarizeEvaluation(predictions: Uint8Array, labels: Uint8Array, losses: Float64Array): EvalResult {
  let correct = 0;
  let lossSum = 0;
  for (let i = 0; i < predictions.length; i++) {
    if (predictions[i] === labels[i]) correct++;
    lossSum += losses[i];
  }
  return { count: predictions.length, correct, predictions, lossSum };
}
