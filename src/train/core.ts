import { performance } from 'node:perf_hooks';
import { Engine, type StepProfile } from '../coordinator/engine.js';
import { checkInferredClasses, datasetFingerprint, type Dataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import type { KernelName } from '../kernels/kernels.js';
import { checkParamsFit, type Model } from '../model-io/model.js';
import { paramsSha256 } from '../model/hash.js';
import { initHeNormal, modelLayout } from '../model/layout.js';
import { stateArrays } from '../optim/optimizer.js';
import { Rng } from '../random/rng.js';
import {
  fitLayers,
  stepBatchSize,
  loadTrainingData,
  resolveConfig,
  type TrainConfig,
  type TrainOptions,
} from './config.js';
import { prepareDataset } from '../data/prepare.js';
import { BYTE_SCALING, type ModelInput } from '../data/scaling.js';
import {
  runEpochs,
  startState,
  type EpochLoopHooks,
  type EpochReport,
  type StepInfo,
  type TrainState,
} from './epoch-loop.js';
import { ReferenceTrainer } from './reference-trainer.js';
import type { Trainer } from '../model/trainer.js';

export { DIVERGED_MEAN_LOSS, type EpochReport, type StepInfo, type TrainState } from './epoch-loop.js';

/** A finished (or interrupted) run: its model and what the run did. */
export interface TrainResult extends Model {
  event: 'done';
  epochs: number;
  steps: number;
  /** The steps a resumed run's checkpoint had already taken (0 for a fresh run): `steps - resumedAt` ran here. */
  resumedAt: number;
  testAccuracy: number;
  /** This run's wall time, from the data's loading on (a resumed run: not the time before its checkpoint). */
  seconds: number;
  paramsSha256: string;
  /** The kernel set that ran the steps (the reference trainer's arithmetic is js's). */
  kernels: KernelName;
  /** The threads that ran the steps (--threads auto: the count it chose; the reference trainer: 1). */
  threads: number;
  /** True when the signal stopped the run early. */
  interrupted: boolean;
  history: EpochReport[];
  state: TrainState;
  config: TrainConfig;
  /** With hooks.profileSteps on the engine: each thread's step timestamps. */
  profile: StepProfile | null;
}

/** A run at a step boundary: its model and what a checkpoint records. `params` is live: copy it to keep it. */
export interface TrainSnapshot extends Model {
  config: TrainConfig;
  /** sha256 of the training and test data (datasetFingerprint). */
  dataSha256: string;
  state: TrainState;
  /** The optimizer's state (Trainer.optimizerState), live like params; absent or empty for sgd. */
  optimizerState?: Float32Array;
}

/** The epoch loop's hooks (onEpoch, onStep, signal), with checkpoints and the best epoch given the whole snapshot, and the run's inputs. */
export interface TrainHooks extends Omit<EpochLoopHooks, 'onCheckpoint' | 'onBest' | 'onStep'> {
  /** As EpochLoopHooks.onStep, with the parameters after the step (live: copy them to keep them; verify --trace hashes them). */
  onStep?: (info: StepInfo, params: Float32Array) => unknown;
  /** As EpochLoopHooks.onCheckpoint, at the same moments, with what a checkpoint records. */
  onCheckpoint?: (snapshot: TrainSnapshot, reason: 'epoch' | 'interrupt' | 'end') => unknown;
  /** An already loaded dataset (tests and benchmarks reuse one); otherwise options.data is read. */
  dataset?: Dataset;
  /** Start from these parameters instead of He-normal init (the generator still starts from the seed). */
  initialParams?: Float32Array;
  /** Continue a run: its parameters and state, its optimizer's state, and the fingerprint of its data (from a checkpoint). */
  resume?: { params: Float32Array; state: TrainState; dataSha256?: string; optimizerState?: Float32Array };
  /** Keep each thread's timestamps of the last N steps (bench --profile): TrainResult.profile. */
  profileSteps?: number;
  /** The run's settings once the data has fixed what the options left open (the layers, the scaling), and the rows of each split, before the first step. */
  onStart?: (config: TrainConfig, rows: SplitRows) => unknown;
  /** --save-best: an epoch whose validation loss is the best so far, with the model as it is then. */
  onBest?: (snapshot: TrainSnapshot, report: EpochReport) => unknown;
  /** A one-line remark on how the data was read (classes counted from the labels, a label column read as names), before the first step. */
  onNotice?: (line: string) => void;
}

/** The classes the labels name, those no training row has, and the --layers that would refuse the labels above the first gap. */
function emptyClassesNotice(classes: number, empty: number[], layers: number[]): string {
  const first = empty[0];
  const these = empty.length === 1 ? `class ${first} has` : `classes ${empty.join(', ')} have`;
  const named = `the labels name ${classes} classes (0–${classes - 1}); ${these} no training rows`;
  // A gap at 0 or 1 (labels counted from 1, say) leaves no classifier below it to suggest.
  return first < 2
    ? named
    : `${named} — give --layers ${[...layers.slice(0, -1), first].join(',')} to refuse labels above ${first - 1}`;
}

/** The rows of each split of a run's data, as it trains on them (after --train-limit, --test-limit and --val-split). */
export interface SplitRows {
  train: number;
  val: number;
  test: number;
}

/** A training run: checks, data, He init (or a resumed state), then the epoch loop on the engine or the reference trainer. */
export async function trainCore(options: TrainOptions = {}, hooks: TrainHooks = {}): Promise<TrainResult> {
  const started = performance.now();
  const config = resolveConfig(options);
  const raw = hooks.dataset ?? loadTrainingData(config);
  // Hashing the data costs ~50 ms for MNIST: only runs that checkpoint or resume pay it.
  const dataSha256 = hooks.onCheckpoint || hooks.resume?.dataSha256 ? datasetFingerprint(raw) : '';
  if (hooks.resume?.dataSha256 && hooks.resume.dataSha256 !== dataSha256) {
    throw new UserError(`--data ${raw.dir}: not the data this checkpoint was trained on (its sha256 differs)`);
  }
  // The one generator: the validation rows first (none drawn without --val-split), then the init, then the shuffles.
  const rng = new Rng(config.seed);
  const dataset = prepareDataset(
    raw,
    { scale: config.scale, valSplit: config.valSplit, inPlace: hooks.dataset === undefined },
    rng,
  );
  // Classes counted from the labels rather than given by --layers: a test label beyond them is refused, and gaps are said.
  const emptyClasses = config.layers.length === 0 ? checkInferredClasses(raw) : [];
  config.layers = fitLayers(config, dataset);
  for (const line of raw.notices ?? []) hooks.onNotice?.(line);
  if (emptyClasses.length > 0) hooks.onNotice?.(emptyClassesNotice(dataset.classes, emptyClasses, config.layers));
  // Stored in checkpoints: a resume gives both, and they must agree.
  config.hidden = config.layers.slice(1, -1);
  config.scale = dataset.scaling?.kind;
  const input: ModelInput = {
    scaling: dataset.scaling ?? BYTE_SCALING,
    classNames: dataset.classNames,
    featureNames: dataset.featureNames,
    labelName: dataset.labelName,
  };
  // After the data check: a resumed run's batch size is the checkpoint's, which other data may not fit.
  const batchSize = stepBatchSize(config.batchSize, dataset, config.valSplit, hooks.onNotice);
  if (hooks.resume && config.epochs < hooks.resume.state.epoch - 1) {
    throw new UserError(
      `--epochs ${config.epochs}: the checkpoint has already finished ${hooks.resume.state.epoch - 1} epochs`,
    );
  }
  const layout = modelLayout(config.layers);
  await hooks.onStart?.(config, { train: dataset.train.count, val: dataset.val?.count ?? 0, test: dataset.test.count });
  let initial: Float32Array;
  let start: TrainState;
  if (hooks.resume) {
    initial = hooks.resume.params;
    start = hooks.resume.state;
    if (initial.length !== layout.paramCount) throw new RangeError('the checkpoint parameters do not fit the layers');
  } else {
    initial = hooks.initialParams ?? new Float32Array(layout.paramCount);
    if (hooks.initialParams)
      checkParamsFit(layout, initial, 'train: hooks.initialParams', 'train: hooks.initialParams');
    else initHeNormal(layout, initial, rng);
    start = startState(rng);
  }
  const optimizerState = hooks.resume?.optimizerState;
  if (optimizerState && optimizerState.length !== stateArrays(config.optimizer) * layout.paramCount) {
    throw new RangeError(`the optimizer state does not fit --optimizer ${config.optimizer} and the layers`);
  }

  const trainer: Trainer = config.reference
    ? new ReferenceTrainer(layout, initial, dataset.train, dataset.test, batchSize, config, optimizerState, dataset.val)
    : await Engine.create(config.layers, initial, dataset, {
        threads: config.threads,
        kernels: config.kernels,
        batchSize,
        optimizer: config,
        optimizerState,
        profileSteps: hooks.profileSteps,
      });
  const save = hooks.onCheckpoint;
  const best = hooks.onBest;
  // What a checkpoint or a best model records at `state`: the weights and optimizer state as they are now.
  const snapshot = (state: TrainState): TrainSnapshot => ({
    config,
    dataSha256,
    layout,
    params: trainer.params,
    state,
    input,
    optimizerState: trainer.optimizerState,
  });
  const settings = { ...config, batchSize, valRows: dataset.val?.count ?? 0, testRows: dataset.test.count };
  try {
    const { state, interrupted, history } = await runEpochs(trainer, dataset.train.count, settings, start, {
      onEpoch: hooks.onEpoch,
      onStep: hooks.onStep && ((info) => hooks.onStep!(info, trainer.params)),
      signal: hooks.signal,
      onCheckpoint: save && ((state, reason) => save(snapshot(state), reason)),
      onBest: best && ((report, state) => best(snapshot(state), report)),
    });
    const params = Float32Array.from(trainer.params);
    return {
      event: 'done',
      epochs: history.length,
      steps: state.steps,
      resumedAt: start.steps,
      testAccuracy: history.length > 0 ? history[history.length - 1].testAccuracy : NaN,
      seconds: (performance.now() - started) / 1000,
      paramsSha256: paramsSha256(params),
      kernels: config.kernels,
      threads: config.reference ? 1 : config.threads,
      interrupted,
      params,
      layout,
      history,
      state,
      config,
      profile: trainer instanceof Engine ? trainer.profile() : null,
      input,
    };
  } finally {
    await trainer.close();
  }
}
