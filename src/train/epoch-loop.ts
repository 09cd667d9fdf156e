import { performance } from 'node:perf_hooks';
import { DivergenceError } from '../errors.js';
import { Rng, type RngState } from '../random/rng.js';
import { paramsSha256 } from '../model/hash.js';
import type { SplitName, Trainer } from '../model/trainer.js';
import { OPTIMIZER_DEFAULTS, type OptimizerName, type OptimizerSettings } from '../optim/optimizer.js';
import { epochSteps, learningRate } from '../optim/schedule.js';

export interface EpochReport {
  event: 'epoch';
  epoch: number;
  /** Steps taken in all by the end of this epoch (as --log, the done line and every step counter count them). */
  steps: number;
  /** Steps taken in this epoch (fewer than a full epoch when --max-steps stopped it). */
  epochSteps: number;
  trainAccuracy: number;
  testAccuracy: number;
  /** Mean cross-entropy over the examples trained on in this epoch, as each step saw them. */
  trainLoss: number;
  testLoss: number;
  trainSeconds: number;
  evalSeconds: number;
  /** Validation (--val-split) accuracy and mean loss; NaN when the run has none or this epoch was not evaluated. */
  valAccuracy: number;
  valLoss: number;
  /** sha256 of the parameters at the end of this epoch (the --log's last field). */
  paramsSha256: string;
  /** The optimizer (--optimizer), and the learning rate of the epoch's last step as the arithmetic used it (a float32 value). */
  optimizer: OptimizerName;
  lr: number;
}

/**
 * Where a run stands between two steps: enough, with the parameters, to continue it bit for bit
 * (checkpoints store exactly this). The epoch's order is not stored: it is redrawn from rngState.
 */
export interface TrainState {
  /** The epoch in progress, or the next to start (1-based). */
  epoch: number;
  /** Steps of `epoch` already taken; 0 means its shuffle has not been drawn yet. */
  stepInEpoch: number;
  /** Steps taken in all. */
  steps: number;
  /** The generator's state before `epoch`'s shuffle. */
  rngState: RngState;
  /** Running sums of the epoch in progress, so its report equals an uninterrupted run's. */
  epochLossSum: number;
  epochSeen: number;
  epochTrainSeconds: number;
  history: EpochReport[];
  /** The best validation loss so far and its epoch (--val-split): --early-stop and --save-best follow it. */
  best?: { epoch: number; valLoss: number };
  /** --early-stop ended the run after this epoch: a resume has nothing left to train. */
  stoppedEarly?: number;
}

export interface StepInfo {
  epoch: number;
  /** The run's last epoch (--epochs). */
  epochs: number;
  stepInEpoch: number;
  stepsPerEpoch: number;
  steps: number;
  rows: number;
  /** Mean loss of this step's rows. */
  loss: number;
}

/** The settings the loop reads (a TrainConfig has them all). */
export interface EpochLoopSettings extends Partial<Omit<OptimizerSettings, 'lr' | 'epochs'>> {
  epochs: number;
  batchSize: number;
  /** The base rate: named in the divergence message, and the epoch's rate with the schedule's settings (constant without them). */
  lr: number;
  maxSteps?: number;
  evaluate: boolean;
  /** Evaluate every N epochs (and the last, and one --max-steps cut short); never changes the weights. Default 1. */
  evalEvery?: number;
  /** Evaluate the training split too (its accuracy); default true. */
  trainEval?: boolean;
  /** Stop when the validation loss has not improved by minDelta (default 0) for this many epochs. */
  earlyStop?: number;
  minDelta?: number;
  /** Rows of the validation split (none: no validation) and of the test split (0: no test evaluation). */
  valRows?: number;
  testRows?: number;
}

/** A hook may return a promise: the run waits for it, and its error (thrown or rejected) ends the run with that error. */
export interface EpochLoopHooks {
  onEpoch?: (report: EpochReport) => unknown;
  onStep?: (info: StepInfo) => unknown;
  /** After each complete epoch, when `signal` stopped the run ('interrupt'), when --max-steps ended it mid-epoch ('end'). */
  onCheckpoint?: (state: TrainState, reason: 'epoch' | 'interrupt' | 'end') => unknown;
  /** Aborting it stops the run at the next step boundary. */
  signal?: AbortSignal;
  /** An epoch whose validation loss is the best so far (by minDelta), before its checkpoint: --save-best. */
  onBest?: (report: EpochReport, state: TrainState) => unknown;
}

export interface EpochLoopOutcome {
  /** Where the run stopped: resuming from it continues the same run. */
  state: TrainState;
  interrupted: boolean;
  /** The finished epochs' reports, and the report of an epoch that --max-steps cut short. */
  history: EpochReport[];
}

/**
 * A step whose mean loss is NaN, infinite or above this has diverged. The loss is clamped by the textbook's
 * 1e-12 (at most 27.6 nats), so a blown-up network shows as a loss near that clamp rather than as
 * infinity: above 20 nats the true class gets, on average, a probability below 2e-9, which no learning
 * network does (an untrained one scores ln(classes), 2.3 for MNIST).
 */
export const DIVERGED_MEAN_LOSS = 20;

/** Yield to the event loop this often, so signals and worker failures are heard between steps. */
const YIELD_EVERY_MS = 25;

/** A new run's state: epoch 1 not started, its shuffle drawn from `rng` (the generator after the init). */
export function startState(rng: Rng): TrainState {
  return {
    epoch: 1,
    stepInEpoch: 0,
    steps: 0,
    rngState: rng.state(),
    epochLossSum: 0,
    epochSeen: 0,
    epochTrainSeconds: 0,
    history: [],
  };
}

/** Whether --eval-every evaluates this epoch: every N-th, the last, and one cut short (by --max-steps or a stop). */
export function evaluationDue(epoch: number, evalEvery: number, epochs: number, complete: boolean): boolean {
  return epoch % evalEvery === 0 || epoch === epochs || !complete;
}

/**
 * The textbook's epoch loop over `examples` training examples, from `start` on: each epoch a fresh
 * permutation of 0..examples-1 into trainer.order, minibatches of `batchSize` in that order (the last one
 * the remainder), then train and test evaluation. It knows the trainer only through the Trainer interface.
 */
export async function runEpochs(
  trainer: Trainer,
  examples: number,
  settings: EpochLoopSettings,
  start: TrainState,
  hooks: EpochLoopHooks = {},
): Promise<EpochLoopOutcome> {
  const { epochs, batchSize, maxSteps } = settings;
  const { evalEvery = 1, trainEval = true, minDelta = 0, valRows = 0, testRows } = settings;
  const evaluated: Record<SplitName, boolean> = {
    train: trainEval && examples > 0,
    test: testRows !== 0,
    val: valRows > 0,
  };
  let state = structuredClone(start);
  let interrupted = false;
  let partial: EpochReport | null = null;
  const stepsPerEpoch = epochSteps(examples, batchSize);
  const atStepLimit = () => maxSteps !== undefined && state.steps >= maxSteps;
  let lastYield = performance.now();
  while (state.epoch <= epochs && !atStepLimit() && state.stoppedEarly === undefined) {
    const t0 = performance.now();
    // Redrawing the order from the saved state makes a resumed epoch use the same order.
    const rng = Rng.fromState(state.rngState);
    rng.permutation(trainer.order);
    while (state.stepInEpoch < stepsPerEpoch && !atStepLimit()) {
      if (performance.now() - lastYield > YIELD_EVERY_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        lastYield = performance.now();
      }
      if (hooks.signal?.aborted) {
        interrupted = true;
        break;
      }
      const first = state.stepInEpoch * batchSize;
      const rows = Math.min(batchSize, examples - first);
      // Not a plain await: the engine usually finishes a step synchronously, and an await costs microseconds.
      const stepped = trainer.trainStep(first, rows, state.steps);
      const loss = typeof stepped === 'number' ? stepped : await stepped;
      if (!(loss / rows <= DIVERGED_MEAN_LOSS)) {
        // The first step's loss is the initial weights' on the inputs: no rate has acted yet.
        const advice =
          state.steps === 0
            ? 'before any update, so the inputs are too large for the network, whatever --lr; scale them (--scale standard)'
            : `try a smaller --lr than ${settings.lr}`;
        throw new DivergenceError(
          `training diverged at epoch ${state.epoch}, step ${state.stepInEpoch + 1} (step ${state.steps + 1} in all): ` +
            `mean loss ${(loss / rows).toPrecision(4)}; ${advice}`,
          { step: state.steps + 1, epoch: state.epoch, loss: loss / rows },
        );
      }
      state.epochLossSum += loss;
      state.epochSeen += rows;
      state.stepInEpoch++;
      state.steps++;
      const hooked = hooks.onStep?.({
        epoch: state.epoch,
        epochs,
        stepInEpoch: state.stepInEpoch,
        stepsPerEpoch,
        steps: state.steps,
        rows,
        loss: loss / rows,
      });
      // Awaited only when it is a promise: a plain hook costs the step loop nothing.
      if (typeof (hooked as PromiseLike<unknown> | undefined)?.then === 'function') await hooked;
    }
    state.epochTrainSeconds += (performance.now() - t0) / 1000;
    if (interrupted) break;
    const t1 = performance.now();
    const complete = state.stepInEpoch === stepsPerEpoch;
    const due = settings.evaluate && evaluationDue(state.epoch, evalEvery, epochs, complete);
    const evaluate = async (split: SplitName) => (due && evaluated[split] ? trainer.evaluate(split) : null);
    const valEval = await evaluate('val');
    const trainEval = await evaluate('train');
    const testEval = await evaluate('test');
    const report: EpochReport = {
      event: 'epoch',
      epoch: state.epoch,
      epochSteps: state.stepInEpoch,
      trainAccuracy: trainEval ? trainEval.correct / trainEval.count : NaN,
      testAccuracy: testEval ? testEval.correct / testEval.count : NaN,
      trainLoss: state.epochSeen > 0 ? state.epochLossSum / state.epochSeen : NaN,
      testLoss: testEval ? testEval.lossSum / testEval.count : NaN,
      trainSeconds: state.epochTrainSeconds,
      evalSeconds: (performance.now() - t1) / 1000,
      valAccuracy: valEval ? valEval.correct / valEval.count : NaN,
      valLoss: valEval ? valEval.lossSum / valEval.count : NaN,
      steps: state.steps,
      paramsSha256: paramsSha256(trainer.params),
      optimizer: settings.optimizer ?? 'sgd',
      lr: Math.fround(
        learningRate({ ...OPTIMIZER_DEFAULTS, ...settings }, stepsPerEpoch, Math.max(0, state.steps - 1)),
      ),
    };
    await hooks.onEpoch?.(report);
    if (complete && valEval) {
      // Only complete epochs compete: an epoch cut short by --max-steps goes on when resumed.
      if (state.best === undefined || report.valLoss < state.best.valLoss - minDelta) {
        state.best = { epoch: state.epoch, valLoss: report.valLoss };
        // The state as of this epoch's end, its report in the history (the checkpoint's comes after).
        await hooks.onBest?.(report, { ...state, history: [...state.history, report] });
      } else if (settings.earlyStop !== undefined && state.epoch - state.best.epoch >= settings.earlyStop) {
        state.stoppedEarly = state.epoch;
      }
    }
    if (state.stepInEpoch < stepsPerEpoch) {
      // --max-steps ended the run mid-epoch: report it, but the epoch goes on if the run is resumed.
      partial = report;
      break;
    }
    state = {
      ...state,
      epoch: state.epoch + 1,
      stepInEpoch: 0,
      rngState: rng.state(),
      epochLossSum: 0,
      epochSeen: 0,
      epochTrainSeconds: 0,
      history: [...state.history, report],
    };
    await hooks.onCheckpoint?.(state, 'epoch');
  }
  if (interrupted) await hooks.onCheckpoint?.(state, 'interrupt');
  else if (partial) await hooks.onCheckpoint?.(state, 'end');
  return { state, interrupted, history: partial ? [...state.history, partial] : state.history };
}
