/**
 * lockstep's library: train, evaluate, predict, export, verify, bench, sweep and serve, their options and
 * results, and the errors they throw (docs/library.md has an example of each). Everything else the CLI and
 * the tests use is in `lockstep/internals` (src/internals.ts), with no promise that it stays.
 */
export { train } from './train/train.js';
export type { TrainHooks, TrainResult, EpochReport, StepInfo } from './train/train.js';
export type { TrainOptions } from './train/config.js';
export { evaluate } from './inference/evaluate.js';
export type { Evaluation, EvaluateOptions } from './inference/evaluate.js';
export { predict, predictCsv } from './inference/predict.js';
export type { Prediction, PredictOptions, RowPrediction } from './inference/predict.js';
export { exportModel } from './model-io/export.js';
export type { TrainedModel } from './model-io/model-source.js';
export { verify } from './experiments/verify.js';
export type { VerifyOptions, VerifyRow } from './experiments/verify.js';
export { benchmark } from './experiments/bench.js';
export type { BenchOptions, BenchRow } from './experiments/bench.js';
export { sweep } from './experiments/sweep.js';
export type { SweepOptions, SweepResult, SweepOutcome } from './experiments/sweep.js';
export { serveModel } from './web/serve.js';
export type { ServeOptions } from './web/serve.js';
export { UserError, DivergenceError, WorkerFailure } from './errors.js';
