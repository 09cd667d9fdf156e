import { existsSync } from 'node:fs';
import { IDX_FILES } from '../data/dataset.js';
import { DivergenceError, UserError } from '../errors.js';
import { readCheckpoint, refuseToOverwriteForeignFile, writeCheckpoint } from '../model-io/checkpoint.js';
import { checkWritable, sameFile } from '../model-io/atomic-write.js';
import { loadModel } from '../model-io/model-file.js';
import { formatDone, formatEpoch, plural } from '../report/format.js';
import { historyChart, ProgressLine, progressEnabled } from '../report/progress.js';
import { resumeOptions, type TrainOptions } from '../train/config.js';
import { train, type TrainHooks, type TrainResult, type TrainSnapshot } from '../train/train.js';
import { print, toTrainOptions, type TrainingArgs } from './flags.js';
import { checkSavedDataDir } from './saved-data.js';
import { onStopSignals } from './signals.js';

export const EXIT_INTERRUPTED = 130;

export interface TrainCommandArgs extends TrainingArgs {
  checkpoint?: string;
  resume?: string;
  init?: string;
  force: boolean;
}

export async function trainCommand(args: TrainCommandArgs): Promise<number> {
  refuseIgnoredByReference(args);
  let options: TrainOptions = toTrainOptions(args);
  const hooks: TrainHooks = {};
  if (args.resume !== undefined && args.init !== undefined) throw new UserError('--init and --resume: give one or the other');
  if (args.resume !== undefined) {
    const checkpoint = readCheckpoint(args.resume);
    if (args.data === undefined) checkSavedDataDir(args.resume, checkpoint.config.data, Object.values(IDX_FILES));
    options = resumeOptions(checkpoint.config, options, args.resume);
    hooks.resume = { params: checkpoint.params, state: checkpoint.state, dataSha256: checkpoint.dataSha256, optimizerState: checkpoint.optimizerState };
  }
  if (args.init !== undefined) {
    const model = loadModel(args.init);
    if (options.layers && options.layers.join(',') !== model.layout.sizes.join(',')) {
      throw new UserError(`--layers ${options.layers.join(',')}: ${args.init} holds a ${model.layout.sizes.join('-')} network`);
    }
    options.layers = model.layout.sizes;
    hooks.initialParams = model.params;
  }
  const checkpointPath = args.checkpoint ?? args.resume;
  if (checkpointPath !== undefined) {
    refuseToOverwriteForeignFile(checkpointPath, `--checkpoint ${checkpointPath}`);
    if (!args.force) refuseToReplaceOtherRun(checkpointPath, args.resume);
    checkWritable(checkpointPath, '--checkpoint');
  }

  const stop = onStopSignals();
  const progress = progressEnabled(process.stdout, args.json) ? new ProgressLine(process.stdout) : null;
  const signalHook = testSignalHook();
  try {
    const result = await train(options, {
      ...hooks,
      signal: stop.signal,
      onEpoch: (r) => {
        progress?.clear();
        print(args.json ? JSON.stringify(r) : formatEpoch(r));
      },
      onStep: (info) => {
        progress?.step(info);
        signalHook?.(info);
      },
      onCheckpoint: checkpointPath === undefined ? undefined : (snapshot) => saveCheckpoint(checkpointPath, snapshot),
    });
    const { params: _p, layout: _l, history: _h, state: _s, config: _c, ...done } = result;
    progress?.clear();
    if (progress) print(historyChart(result.history));
    print(args.json ? JSON.stringify(done) : formatDone(result));
    if (args.resume !== undefined && !result.interrupted && result.steps === hooks.resume?.state.steps) {
      noticeNothingToTrain(args.resume, result, options);
    }
    if (result.interrupted) {
      const saved = checkpointPath === undefined ? '' : `; checkpoint written to ${checkpointPath}`;
      process.stderr.write(
        `lockstep: interrupted by ${stop.reason()} at epoch ${result.state.epoch}, step ${result.state.stepInEpoch} (${result.steps} steps in all)${saved}\n`,
      );
      return EXIT_INTERRUPTED;
    }
    return 0;
  } finally {
    stop.dispose();
  }
}

/** A resume of a finished run succeeds without a step: say so, or it looks like training that went wrong. */
function noticeNothingToTrain(path: string, result: TrainResult, options: TrainOptions): void {
  const flag = options.maxSteps !== undefined && result.steps >= options.maxSteps ? '--max-steps' : '--epochs';
  process.stderr.write(
    `lockstep: notice: ${path} has already taken ${plural(result.steps, 'step')} (${plural(result.epochs, 'epoch')}): nothing to train; give a larger ${flag} to go on\n`,
  );
}

/** The reference trainer is one plain thread with its own arithmetic: --threads and --kernels would be ignored. */
function refuseIgnoredByReference(args: TrainCommandArgs): void {
  if (!args.reference) return;
  if (args.threads !== undefined && args.threads !== 1) {
    throw new UserError(`--reference and --threads ${args.threads}: the reference trainer runs on one thread; drop one of them`);
  }
  if (args.kernels !== undefined) {
    throw new UserError(`--reference and --kernels ${args.kernels}: the reference trainer has its own arithmetic, no kernels; drop one of them`);
  }
}

/**
 * A checkpoint that exists at `path` belongs to another run unless it is the one being resumed: replacing
 * it would lose that run (a 10-step typo over a 20-epoch model), so it takes --force. Checked before the
 * data is read and before any thread starts.
 */
function refuseToReplaceOtherRun(path: string, resume: string | undefined): void {
  if (!existsSync(path) || (resume !== undefined && sameFile(path, resume))) return;
  throw new UserError(
    `--checkpoint ${path}: holds the checkpoint of another run; continue that run with --resume ${path}, or pass --force to replace it`,
  );
}

/** Never replaces a good checkpoint with non-finite weights. */
function saveCheckpoint(path: string, snapshot: TrainSnapshot): void {
  if (!snapshot.params.every(Number.isFinite)) {
    throw new DivergenceError(
      `training diverged: non-finite weights after epoch ${snapshot.state.epoch - 1}; ${path} keeps the last good checkpoint`,
    );
  }
  writeCheckpoint(path, snapshot);
}

/** Test-only: LOCKSTEP_TEST_SIGNAL_AT_STEP=N sends this process a real SIGINT after step N. */
function testSignalHook(): ((info: { steps: number }) => void) | undefined {
  const at = Number(process.env.LOCKSTEP_TEST_SIGNAL_AT_STEP);
  if (!Number.isSafeInteger(at) || at < 1) return undefined;
  return ({ steps }) => {
    if (steps === at) process.kill(process.pid, 'SIGINT');
  };
}
