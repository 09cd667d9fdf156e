/**
 * lockstep's internals, for tools built on its parts (`lockstep/internals`): the engine, the data readers,
 * the file formats, the generator. Unlike the library (src/index.ts), these may change in any release.
 */
export * from './index.js';
export { resolveConfig, resumeOptions, loadTrainingData, DEFAULTS } from './train/config.js';
export type { TrainState, TrainSnapshot } from './train/train.js';
export type { TrainConfig } from './train/config.js';
export type { Trainer, EvalResult } from './model/trainer.js';
export { ReferenceTrainer } from './train/reference-trainer.js';
export { Engine } from './coordinator/engine.js';
export { MAX_THREADS } from './coordinator/threads.js';
export type { StepProfile } from './coordinator/engine.js';
export { readImage, resizeArea } from './inference/image.js';
export type { GrayImage } from './inference/image.js';
export type { ModelSource } from './model-io/model-source.js';
export { sweepRuns } from './experiments/sweep.js';
export type { SweepGrid } from './experiments/sweep.js';
export type { TraceFinding } from './experiments/verify.js';
export { readCurves } from './experiments/plot.js';
export { chooseThreads } from './train/calibrate.js';
export { machineFacts } from './experiments/machine.js';
export type { MachineFacts } from './experiments/machine.js';
export { readCheckpoint, writeCheckpoint } from './model-io/checkpoint.js';
export type { Checkpoint } from './model-io/checkpoint.js';
export { exportSafetensors, exportOnnx } from './model-io/export.js';
export { OPTIONS, COMMANDS, flagOf } from './options/table.js';
export { encodeOnnx, PIXEL_SCALING, ONNX_INPUT, ONNX_OUTPUT } from './model-io/onnx.js';
export type { OnnxOptions } from './model-io/onnx.js';
export type { TensorNaming } from './model-io/safetensors.js';
export { modelInfo, DEFAULT_SERVE_PORT } from './web/serve.js';
export type { ModelInfo } from './web/serve.js';
export { startDashboard } from './web/dashboard.js';
export type { Dashboard, Progress } from './web/dashboard.js';
export { readSafetensors, encodeSafetensors, decodeSafetensors } from './model-io/safetensors.js';
export { loadModel } from './model-io/model-file.js';
export { loadDataset, defaultDataDir, IDX_FILES } from './data/dataset.js';
export type { Dataset, LabeledRows } from './data/dataset.js';
export { readIdxFile, parseIdx, encodeIdx } from './data/idx.js';
export { convertFashionMnist, fashionMnistPackageDir } from './data/fashion-mnist.js';
export type { FashionMnistOptions, FashionMnistSummary } from './data/fashion-mnist.js';
export { modelLayout, initHeNormal, TEXTBOOK_LAYERS } from './model/layout.js';
export type { ModelLayout, LayerLayout } from './model/layout.js';
export { paramsSha256 } from './model/hash.js';
export { Rng } from './random/rng.js';
export { readCsvTable } from './data/csv.js';
export type { CsvTable } from './data/csv.js';
export { readNpyFile, readNpzFile, parseNpy, encodeNpy } from './data/npy.js';
export { prepareDataset } from './data/prepare.js';
export type { InputScaling, ModelInput, ScaleKind } from './data/scaling.js';
export { MetricsLog, LOG_FIELDS } from './train/metrics-log.js';
export { OPTIMIZERS, stateArrays } from './optim/optimizer.js';
export type { OptimizerName, OptimizerSettings } from './optim/optimizer.js';
export { SCHEDULES, learningRate } from './optim/schedule.js';
export type { ScheduleName, ScheduleSettings } from './optim/schedule.js';
// Sweeps across machines (docs/sweeps.md): BullMQ loads only with these.
export { queueSweep, runQueueWorker } from './queue/index.js';
export type { QueueSweepOptions, QueueWorkerOptions } from './queue/index.js';
