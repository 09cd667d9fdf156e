import { UserError } from '../errors.js';
import { readCheckpoint, refuseToOverwriteForeignFile, writeCheckpoint } from '../model-io/checkpoint.js';
import { checkWritable } from '../model-io/atomic-write.js';
import { loadModel } from '../model-io/model-file.js';
import { formatDone, formatEpoch } from '../report/format.js';
import { historyChart, ProgressLine, progressEnabled } from '../report/progress.js';
import { DivergenceError, resumeOptions, train, type TrainHooks, type TrainOptions, type TrainSnapshot } from '../train/train.js';
import { print, toTrainOptions, type TrainingArgs } from './flags.js';
import { onStopSignals } from './signals.js';

export const EXIT_INTERRUPTED = 130;

export interface TrainCommandArgs extends TrainingArgs {
  checkpoint?: string;
  resume?: string;
  init?: string;
}

export async function trainCommand(args: TrainCommandArgs): Promise<number> {
  let options: TrainOptions = toTrainOptions(args);
  const hooks: TrainHooks = {};
  if (args.resume !== undefined && args.init !== undefined) throw new UserError('--init and --resume: give one or the other');
  if (args.resume !== undefined) {
    const checkpoint = readCheckpoint(args.resume);
    options = resumeOptions(checkpoint.config, options, args.resume);
    hooks.resume = { params: checkpoint.params, state: checkpoint.state, dataSha256: checkpoint.dataSha256 };
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
