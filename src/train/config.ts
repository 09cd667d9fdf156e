import { availableParallelism } from 'node:os';
import { extname, resolve } from 'node:path';
import { loadDataset, type Dataset } from '../data/dataset.js';
import { checkScaleKind } from '../data/scaling.js';
import { UserError } from '../errors.js';
import { resolveKernels, type KernelName } from '../kernels/select.js';
import { modelLayout } from '../model/layout.js';
import { checkOptimizerOnResume, defaultLr, resolveOptimizer, stateArrays } from '../optim/optimizer.js';
import { checkKnown, checkValue } from '../options/check.js';
import {
  flagOf,
  OPTIONS,
  optionsIn,
  type OptionSpec,
  type RunFileOptions,
  type RunSettings,
} from '../options/table.js';

/** A training run's settings (src/options/table.ts declares each, with its default) and the files it reads and writes. */
export type TrainOptions = RunSettings & RunFileOptions;

type OptionalKeys =
  | 'data'
  | 'maxSteps'
  | 'trainLimit'
  | 'testLimit'
  | 'labels'
  | 'label'
  | 'testData'
  | 'scale'
  | 'valSplit'
  | 'earlyStop'
  | 'momentum'
  | 'beta1'
  | 'beta2'
  | 'eps'
  | 'lrGamma'
  | 'lrStepEpochs';
/** The settings of a run, every default filled in; `kernels` is the set that runs (native resolved to its ISA). */
export type TrainConfig = Required<Omit<RunSettings, OptionalKeys | 'kernels' | 'threads'>> &
  Pick<RunSettings, OptionalKeys> & {
    kernels: KernelName;
    threads: number;
  };

/** The table's defaults, and what only the machine or the data can say. */
export const DEFAULTS: TrainConfig = {
  ...(Object.fromEntries(
    optionsIn('config').flatMap((name) => ('default' in OPTIONS[name] ? [[name, OPTIONS[name].default]] : [])),
  ) as object),
  // From the data: [its inputs, ...hidden, its classes] (fitLayers); MNIST's make TEXTBOOK_LAYERS.
  layers: [],
  threads: availableParallelism(),
  kernels: 'wasm',
} as unknown as TrainConfig;

/** The options that name data files: resolved to absolute paths wherever a run's settings are stored or read. */
export const DATA_FILE_OPTIONS = ['data', 'labels', 'testData'] as const;

/** Checks every option and names the offending flag; the CLI relies on these messages. */
export function resolveConfig(options: TrainOptions): TrainConfig {
  checkKnown(options, ['config', 'run']);
  for (const name of optionsIn('config')) checkValue(name, (options as Record<string, unknown>)[name]);
  const settings = stripUndefined(pick(options, optionsIn('config')));
  const config: TrainConfig = {
    ...DEFAULTS,
    ...settings,
    threads: settings.threads === 'auto' || settings.threads === undefined ? DEFAULTS.threads : settings.threads,
    kernels: 'js',
  };
  if (options.lr === undefined) config.lr = defaultLr(config.optimizer);
  // Stored in checkpoints: relative to where the run started, it would break a resume from elsewhere.
  for (const key of DATA_FILE_OPTIONS) if (config[key] !== undefined) config[key] = resolve(config[key] as string);
  checkOwnDataOptions(config, options);
  // The reference trainer is one plain thread with its own arithmetic: a thread count or kernels would be silently ignored.
  if (options.reference && options.kernels !== undefined) {
    throw new UserError(
      `--reference and --kernels ${String(options.kernels)}: the reference trainer has its own arithmetic, no kernels; drop one of them`,
    );
  }
  if (options.reference && options.threads !== undefined && options.threads !== 1) {
    throw new UserError(
      `--reference and --threads ${String(options.threads)}: the reference trainer runs on one thread; drop one of them`,
    );
  }
  const { layers, lr } = config;
  if (layers.length === 0 && options.layers === undefined) {
    // Fitted to the data by fitLayers.
  } else if (!Array.isArray(layers) || layers.length < 2) {
    throw new UserError(`--layers ${String(layers)}: needs at least two sizes, input and output (e.g. 784,128,64,10)`);
  }
  for (const n of layers) {
    if (!Number.isSafeInteger(n) || n < 1)
      throw new UserError(`--layers ${layers.join(',')}: every size must be a positive integer`);
  }
  if (layers.length > 0 && layers[layers.length - 1] > 256) {
    throw new UserError(`--layers ${layers.join(',')}: at most 256 output classes (labels are bytes)`);
  }
  if (typeof lr !== 'number' || !Number.isFinite(lr) || lr <= 0)
    throw new UserError(`--lr ${lr}: must be a finite number > 0`);
  // The rate meets the weights as a float32: one that rounds to 0 there would train nothing.
  if (Math.fround(lr) === 0) throw new UserError(`--lr ${lr}: is 0 as a float32 (the smallest rate is about 1.4e-45)`);
  config.kernels = options.reference ? 'js' : resolveKernels(options.kernels);
  resolveOptimizer(config);
  return config;
}

/** Settings that define a run's arithmetic: a resumed run must keep them. */
const KEPT_ON_RESUME = optionsIn('config').filter((name) => (OPTIONS[name] as OptionSpec).keep) as (keyof RunSettings &
  keyof TrainConfig)[];

/**
 * The options of a resumed run: the checkpoint's, with what may change (epochs, max-steps, threads, kernels,
 * data) taken from `overrides`. An override of a setting that defines the arithmetic is refused.
 */
export function resumeOptions(saved: TrainConfig, overrides: TrainOptions, checkpointPath: string): TrainOptions {
  checkOptimizerOnResume(saved, overrides, checkpointPath);
  for (const key of KEPT_ON_RESUME) {
    const given = overrides[key];
    if (given === undefined) continue;
    const same = Array.isArray(given)
      ? given.join(',') === (saved[key] as number[] | undefined)?.join(',')
      : given === saved[key];
    if (!same) {
      const trained =
        saved[key] === undefined
          ? `without ${flagOf(key)}; a resumed run cannot add it`
          : `with ${String(saved[key])}; a resumed run keeps it`;
      throw new UserError(`${flagOf(key)} ${String(given)}: ${checkpointPath} was trained ${trained}`);
    }
  }
  // Other data of the same kind is caught by its sha256; data of another kind would be refused for a flag the
  // user did not give (the checkpoint's --test-data beside .npy files, say).
  const kind = (path: string) => extname(path).toLowerCase() || 'a directory';
  if (overrides.data !== undefined && saved.data !== undefined && kind(overrides.data) !== kind(saved.data))
    throw new UserError(
      `--data ${overrides.data}: ${checkpointPath} was trained on ${saved.data}; a resumed run trains on the same data`,
    );
  // Where the run computes, and where the earlier invocation was told to stop, are not part of the run.
  const { threads: _t, kernels: _k, reference: _r, maxSteps: _m, ...arithmetic } = saved;
  return { ...arithmetic, ...stripUndefined(overrides) };
}

/** The own-data options (docs/data.md), each checked and named by its flag. */
function checkOwnDataOptions(config: TrainConfig, options: TrainOptions): void {
  const { hidden, valSplit, earlyStop, minDelta } = config;
  if (!Array.isArray(hidden) || !hidden.every((n) => Number.isSafeInteger(n) && n >= 1)) {
    throw new UserError(`--hidden ${String(hidden)}: must be positive integers separated by commas, e.g. 128,64`);
  }
  if (
    options.hidden !== undefined &&
    options.layers !== undefined &&
    options.hidden.join(',') !== options.layers.slice(1, -1).join(',')
  ) {
    throw new UserError(
      `--hidden ${options.hidden.join(',')} and --layers ${options.layers.join(',')}: give one or the other`,
    );
  }
  if (config.scale !== undefined) checkScaleKind(config.scale);
  if (valSplit !== undefined && !(typeof valSplit === 'number' && valSplit > 0 && valSplit < 1)) {
    throw new UserError(`--val-split ${String(valSplit)}: must be a fraction between 0 and 1, e.g. 0.2`);
  }
  if (earlyStop !== undefined) {
    if (valSplit === undefined)
      throw new UserError(`--early-stop ${earlyStop}: needs a validation set; give --val-split F (e.g. 0.2)`);
  }
  if (typeof minDelta !== 'number' || !Number.isFinite(minDelta) || minDelta < 0)
    throw new UserError(`--min-delta ${String(minDelta)}: must be a number ≥ 0`);
  if (minDelta !== DEFAULTS.minDelta && earlyStop === undefined)
    throw new UserError(`--min-delta ${minDelta}: goes with --early-stop N`);
}

/**
 * The layers of a run on this data: --layers as given, checked against the data (its first size the rows'
 * width, its last at least the classes), or [the rows' width, ...--hidden, the classes].
 */
export function fitLayers(config: TrainConfig, dataset: Dataset): number[] {
  const width = dataset.train.featureCount;
  if (dataset.classes < 2 && dataset.train.count > 0) {
    throw new UserError(
      `--data ${dataset.dir}: every training label is ${dataset.train.labels[0]}: one class only; a classifier needs at least two`,
    );
  }
  if (config.layers.length === 0)
    return checkModelSize([width, ...config.hidden, dataset.classes], `--hidden ${config.hidden.join(',')}`, config);
  const { layers } = config;
  if (layers[0] !== width)
    throw new UserError(`--layers ${layers.join(',')}: the data has ${width} inputs per example, not ${layers[0]}`);
  if (layers[layers.length - 1] < dataset.classes) {
    throw new UserError(
      `--layers ${layers.join(',')}: the data has ${dataset.classes} classes, more than the ${layers[layers.length - 1]} outputs`,
    );
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
export function stepBatchSize(
  batchSize: number,
  dataset: Dataset,
  valSplit: number | undefined,
  notice?: (line: string) => void,
): number {
  const rows = dataset.train.count;
  if (rows === 0) checkBatchSize(batchSize, dataset, valSplit);
  if (batchSize <= rows) return batchSize;
  notice?.(`--batch-size ${batchSize}: larger than the ${trainingRows(rows, valSplit)}; each step uses all ${rows}`);
  return rows;
}

function trainingRows(count: number, valSplit: number | undefined): string {
  return `${count} training example${count === 1 ? '' : 's'}${valSplit === undefined ? '' : ` that --val-split ${valSplit} leaves to train on`}`;
}

/** The options without those left undefined: a default is not a choice. */
export function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function pick<T extends object, K extends string>(o: T, keys: readonly K[]): Pick<T, K & keyof T> {
  return Object.fromEntries(keys.filter((k) => k in o).map((k) => [k, (o as Record<string, unknown>)[k]])) as Pick<
    T,
    K & keyof T
  >;
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
