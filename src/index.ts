/**
 * lockstep's library: train, evaluate, predict, export, verify, bench, sweep and serve, their options and
 * results, and the errors they throw (docs/library.md has an example of each). Everything else the CLI and
 * the tests use is in `lockstep/internals` (src/internals.ts), with no promise that it stays.
 */
export { train } from './train/train.js';
export type {
  TrainHooks,
  TrainResult,
  EpochReport,
  StepInfo,
  TrainSnapshot,
  TrainState,
  SplitRows,
} from './train/train.js';
export type { TrainOptions, TrainConfig } from './train/config.js';
export type { Calibration } from './train/calibrate.js';
export { evaluate } from './inference/evaluate.js';
export type { Evaluation, EvaluateOptions } from './inference/evaluate.js';
export { predict, predictCsv, predictRows } from './inference/predict.js';
export type { Prediction, PredictOptions, RowPrediction, InputPrediction, InputHooks } from './inference/predict.js';
export { exportModel } from './model-io/export.js';
export type { TrainedModel, ModelSource } from './model-io/model-source.js';
export type { TensorNaming } from './model-io/safetensors.js';
export type { ModelInput } from './data/scaling.js';
export { datasetFromArrays } from './data/arrays.js';
export type { ArrayData, ArraySplit } from './data/arrays.js';
export type { Dataset } from './data/dataset.js';
export type { KernelName, KernelChoice } from './kernels/select.js';
export type { OptimizerName } from './optim/optimizer.js';
export type { StepProfile } from './coordinator/engine.js';
export { verify } from './experiments/verify.js';
export type { VerifyOptions, VerifyRow, RowTrace, TraceFinding } from './experiments/verify.js';
export type { TraceFile, TracedRun } from './experiments/trace.js';
export { benchmark } from './experiments/bench.js';
export type { BenchOptions, BenchRow, PhaseStats } from './experiments/bench.js';
export { sweep } from './experiments/sweep.js';
export type { SweepOptions, SweepResult, SweepOutcome, SweepGrid } from './experiments/sweep.js';
export { serveModel } from './web/serve.js';
export type { ServeOptions, ModelInfo } from './web/serve.js';
export type { Listening } from './web/http.js';
export { UserError, DivergenceError, WorkerFailure } from './errors.js';
export type { Divergence } from './errors.js';
