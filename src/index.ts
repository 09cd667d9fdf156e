/** lockstep's library API: what the CLI, the tests and the benchmarks call. */
export { train, resolveConfig, loadTrainingData, DEFAULTS } from './train/train.js';
export type { TrainOptions, TrainConfig, TrainResult, EpochReport, TrainHooks } from './train/train.js';
export type { Trainer, EvalResult } from './train/trainer.js';
export { ReferenceTrainer } from './train/reference-trainer.js';
export { loadDataset, defaultDataDir, IDX_FILES } from './data/dataset.js';
export type { Dataset, LabeledImages } from './data/dataset.js';
export { readIdxFile, parseIdx, encodeIdx } from './data/idx.js';
export { modelLayout, initHeNormal, TEXTBOOK_LAYERS } from './model/layout.js';
export type { ModelLayout, LayerLayout } from './model/layout.js';
export { paramsSha256 } from './model/hash.js';
export { Rng } from './random/rng.js';
export { UserError } from './errors.js';
