import { resolve } from 'node:path';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { IDX_FILES } from '../data/dataset.js';
import { DivergenceError, UserError } from '../errors.js';
import { readCheckpoint, refuseToOverwriteForeignFile, writeCheckpoint, type RunFiles } from '../model-io/checkpoint.js';
import { checkWritable, refuseDirectory, sameFile } from '../model-io/atomic-write.js';
import { loadModel } from '../model-io/model-file.js';
import { exportSafetensors } from '../model-io/export.js';
import type { TrainedModel } from '../model-io/model-source.js';
import { MetricsLog } from '../train/metrics-log.js';
import { lockCheckpoint } from '../model-io/run-lock.js';
import { epochSteps } from '../optim/schedule.js';
import { formatDone, formatEpoch, plural } from '../report/format.js';
import { historyChart, ProgressLine, progressEnabled } from '../report/progress.js';
import { readRunConfig, withRunConfig } from '../experiments/run-config.js';
import { chooseThreads } from '../experiments/calibrate.js';
import { loadTrainingData, resolveConfig, resumeOptions, type TrainConfig, type TrainOptions } from '../train/config.js';
import { train, type EpochReport, type SplitRows, type TrainHooks, type TrainResult, type TrainSnapshot } from '../train/train.js';
import { evaluationDue } from '../train/epoch-loop.js';
import { startDashboard } from '../web/dashboard.js';
import { crowdedThreadsNotice, print, toTrainOptions, type TrainingArgs } from './flags.js';
import { checkSavedDataDir } from './saved-data.js';
import { onStopSignals } from './signals.js';

export const EXIT_INTERRUPTED = 130;

export interface TrainCommandArgs extends TrainingArgs {
  checkpoint?: string;
  resume?: string;
  init?: string;
  force: boolean;
  config?: string;
  'save-best'?: string;
  log?: string;
  /** --dashboard PORT: a live page of the run (src/web/dashboard.ts). */
  dashboard?: number;
  /** --quiet: stdout gets the Done line (or its JSON object) only. */
  quiet?: boolean;
}

export async function trainCommand(args: TrainCommandArgs): Promise<number> {
  refuseIgnoredByReference(args);
  let options: TrainOptions = toTrainOptions(args);
  if (args.config !== undefined) options = withRunConfig(readRunConfig(args.config), options);
  const hooks: TrainHooks = {};
  if (args.resume !== undefined && args.init !== undefined) throw new UserError('--init and --resume: give one or the other');
  if (args.resume !== undefined) {
    const checkpoint = readCheckpoint(args.resume);
    if (args.data === undefined) checkSavedDataDir(args.resume, checkpoint.config.data, Object.values(IDX_FILES));
    options = resumeOptions(checkpoint.config, options, args.resume);
    hooks.resume = { params: checkpoint.params, state: checkpoint.state, dataSha256: checkpoint.dataSha256, optimizerState: checkpoint.optimizerState };
    // A run that stopped early trains nothing more: no best weights to keep or lose.
    args = continueRunFiles(args, checkpoint.files, checkpoint.config.valSplit !== undefined && checkpoint.state.stoppedEarly === undefined);
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
    refuseDirectory(checkpointPath, '--checkpoint');
    refuseToOverwriteForeignFile(checkpointPath, `--checkpoint ${checkpointPath}`);
    if (!args.force) refuseToReplaceOtherRun(checkpointPath, args.resume);
    checkWritable(checkpointPath, '--checkpoint');
  }
  const lock = checkpointPath === undefined ? undefined : lockCheckpoint(checkpointPath, args.resume !== undefined && args.checkpoint === undefined ? '--resume' : '--checkpoint');
  try {
    return await trainLocked(args, options, hooks, checkpointPath);
  } finally {
    lock?.release();
  }
}

/** The run itself, once its checkpoint (if any) is this run's alone. */
async function trainLocked(args: TrainCommandArgs, options: TrainOptions, hooks: TrainHooks, checkpointPath: string | undefined): Promise<number> {
  const outputs = ownDataOutputs(args, options, hooks);

  if (args.threads === 'auto') options = { ...options, threads: await calibrate(options, hooks) };

  const dashboard = args.dashboard === undefined ? undefined : await startDashboard(args.dashboard, resolveConfig(options));
  if (dashboard) print(args.json ? JSON.stringify({ event: 'dashboard', url: dashboard.url }) : `dashboard: ${dashboard.url}`);
  const stop = onStopSignals();
  const progress = progressEnabled(process.stdout, args.json) && !args.quiet ? new ProgressLine(process.stdout) : null;
  let shownEpoch: ((r: EpochReport) => boolean) | undefined;
  const signalHook = testSignalHook();
  let outcome: Record<string, unknown> = { error: 'the run failed' };
  try {
    const result = await train(options, {
      ...hooks,
      signal: stop.signal,
      onNotice: (line) => process.stderr.write(`lockstep: notice: ${line}\n`),
      onStart: (config, rows) => {
        noticeUnusedSettings(config, rows);
        shownEpoch = epochLineShown(config, rows, args);
        dashboard?.hooks.onStart(config, rows);
      },
      onEpoch: (r) => {
        progress?.clear();
        if (shownEpoch?.(r) !== false) print(args.json ? JSON.stringify(r) : formatEpoch(r));
        outputs.log?.epoch(r);
        dashboard?.hooks.onEpoch(r);
      },
      onStep: (info, params) => {
        progress?.step(info);
        signalHook?.(info);
        dashboard?.hooks.onStep(info, params);
      },
      onCheckpoint: checkpointPath === undefined ? undefined : (snapshot) => saveCheckpoint(checkpointPath, snapshot, runFiles(args)),
    });
    const { params: _p, layout: _l, history: _h, state: _s, config: _c, ...done } = result;
    outcome = done;
    progress?.clear();
    if (progress) print(historyChart(result.history));
    print(args.json ? JSON.stringify(done) : formatDone(result));
    if (args.resume !== undefined && !result.interrupted && result.steps === hooks.resume?.state.steps) {
      noticeNothingToTrain(args.resume, result, options);
    }
    if (result.state.stoppedEarly !== undefined && result.steps !== hooks.resume?.state.steps) {
      const best = result.state.best;
      process.stderr.write(
        `lockstep: early stop after epoch ${result.state.stoppedEarly}: no validation loss better than ${best?.valLoss.toFixed(4)} (epoch ${best?.epoch}) for ${options.earlyStop ?? '?'} epochs` +
          `${args['save-best'] ? `; its weights are in ${args['save-best']}` : ''}\n`,
      );
    }
    if (result.interrupted) {
      const saved = checkpointPath === undefined ? '' : `; checkpoint written to ${checkpointPath}`;
      process.stderr.write(
        `lockstep: interrupted by ${stop.reason()} at epoch ${result.state.epoch}, step ${result.state.stepInEpoch} (${result.steps} steps in all)${saved}\n`,
      );
      return EXIT_INTERRUPTED;
    }
    return 0;
  } catch (err) {
    outcome = { error: (err as Error)?.message ?? String(err) };
    throw err;
  } finally {
    stop.dispose();
    outputs.log?.close();
    await dashboard?.finish(outcome);
  }
}

/**
 * Which epochs get a line on stdout: none with --quiet; in text, only those --eval-every evaluates (200
 * lines of loss alone would bury them); in JSON, every epoch (a program reads them, as --log writes them).
 */
function epochLineShown(config: TrainConfig, rows: SplitRows, args: TrainCommandArgs): (r: EpochReport) => boolean {
  if (args.quiet) return () => false;
  if (args.json || config.evalEvery === 1) return () => true;
  const stepsPerEpoch = epochSteps(rows.train, config.batchSize);
  return (r) => evaluationDue(r.epoch, config.evalEvery, config.epochs, r.steps === stepsPerEpoch);
}

/** --threads auto: the fastest count for this run's model and batch, said on stderr; the data is loaded once, for both. */
async function calibrate(options: TrainOptions, hooks: TrainHooks): Promise<number> {
  hooks.dataset = loadTrainingData(resolveConfig(options));
  const c = await chooseThreads(options, hooks.dataset);
  const rates = [...c.stepsPerSec].map(([t, rate]) => `${t}: ${rate.toFixed(0)}`).join(', ');
  process.stderr.write(
    `lockstep: --threads auto: ${plural(c.threads, 'thread')} (steps/s ${rates}; median of ${c.rounds} rounds of ${c.steps} steps at batch ${resolveConfig(options).batchSize})\n`,
  );
  return c.threads;
}

/**
 * --log and --save-best: checked before the data is read; a new run does not replace an existing file
 * without --force, a resumed run appends to its log and replaces its best model.
 */
function ownDataOutputs(args: TrainCommandArgs, options: TrainOptions, hooks: TrainHooks): { log?: MetricsLog } {
  const resuming = args.resume !== undefined;
  // Every file the run reads or writes, by flag: --log and --save-best must name none of the others.
  const files: [string, string | undefined][] = [
    ['--log', args.log], ['--save-best', args['save-best']], ['--checkpoint', args.checkpoint], ['--resume', args.resume],
    ['--init', args.init], ['--data', args.data], ['--test-data', args['test-data']], ['--labels', args.labels],
  ];
  const same = (a: string, b: string) => resolve(a) === resolve(b) || (existsSync(a) && existsSync(b) && sameFile(a, b));
  for (const [flagName, path] of files.slice(0, 2)) {
    if (path === undefined) continue;
    refuseDirectory(path, flagName);
    const clash = files.find(([other, p]) => other !== flagName && p !== undefined && same(p, path));
    if (clash) throw new UserError(`${flagName} ${path}: is also ${clash[0]}'s file; name another file`);
    if (existsSync(path) && !resuming && !args.force) throw new UserError(`${flagName} ${path}: exists; pass --force to replace it`);
  }
  const bestPath = args['save-best'];
  if (bestPath !== undefined) {
    if (options.valSplit === undefined) throw new UserError(`--save-best ${bestPath}: needs a validation set; give --val-split F (e.g. 0.2)`);
    checkWritable(bestPath, '--save-best');
    hooks.onBest = (snapshot) => {
      const { params, layout, config, state, input } = snapshot;
      exportSafetensors({ params: Float32Array.from(params), layout, config, state, input } as TrainedModel, bestPath, { force: true });
    };
  }
  return args.log === undefined ? {} : { log: new MetricsLog(args.log, hooks.resume?.state.epoch) };
}

/**
 * Settings that cannot do what they say, said before the first step: more threads than cores (they take
 * turns), a limit above the rows there are, or a warm-up longer than the run (its rate never reaches --lr).
 */
function noticeUnusedSettings(config: TrainConfig, rows: SplitRows): void {
  if (!config.reference) crowdedThreadsNotice([config.threads], availableParallelism(), 'the run is slower than on fewer threads (its weights are the same)');
  const notice = (line: string) => process.stderr.write(`lockstep: notice: ${line}\n`);
  if (config.trainLimit !== undefined && config.trainLimit > rows.train + rows.val) {
    notice(`--train-limit ${config.trainLimit}: the data has ${plural(rows.train + rows.val, 'training row')}; all of them are used`);
  }
  if (config.testLimit !== undefined && config.testLimit > rows.test) {
    notice(`--test-limit ${config.testLimit}: the data has ${plural(rows.test, 'test row')}; all of them are used`);
  }
  const steps = Math.min(config.epochs * epochSteps(rows.train, config.batchSize), config.maxSteps ?? Infinity);
  if (config.warmupSteps > 0 && config.warmupSteps >= steps) {
    notice(`--warmup-steps ${config.warmupSteps}: the run has ${plural(steps, 'step')}, so its rate never reaches --lr ${config.lr}`);
  }
}

/** A resume of a finished run succeeds without a step: say so, or it looks like training that went wrong. */
function noticeNothingToTrain(path: string, result: TrainResult, options: TrainOptions): void {
  const flag = options.maxSteps !== undefined && result.steps >= options.maxSteps ? '--max-steps' : '--epochs';
  if (result.state.stoppedEarly !== undefined) {
    process.stderr.write(`lockstep: notice: ${path} stopped early after epoch ${result.state.stoppedEarly} (--early-stop): nothing to train\n`);
    return;
  }
  process.stderr.write(
    `lockstep: notice: ${path} has already taken ${plural(result.steps, 'step')} (${plural(result.epochs, 'epoch')}): nothing to train; give a larger ${flag} to go on\n`,
  );
}

/** The reference trainer has its own arithmetic: --kernels would be ignored (a thread count resolveConfig refuses). */
function refuseIgnoredByReference(args: TrainCommandArgs): void {
  if (!args.reference) return;
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
  if (!existsSync(path) || (resume !== undefined && (sameFile(path, resume) || sameBytes(path, resume)))) return;
  throw new UserError(
    `--checkpoint ${path}: holds the checkpoint of another run; continue that run with --resume ${path}, or pass --force to replace it`,
  );
}

/** Never replaces a good checkpoint with non-finite weights. */
function saveCheckpoint(path: string, snapshot: TrainSnapshot, files: RunFiles): void {
  if (!snapshot.params.every(Number.isFinite)) {
    throw new DivergenceError(
      `training diverged: non-finite weights after epoch ${snapshot.state.epoch - 1}; ${path} keeps the last good checkpoint`,
    );
  }
  writeCheckpoint(path, snapshot, files);
}

/** The run's --log and --save-best as its checkpoint keeps them: absolute, so a resume from elsewhere finds them. */
function runFiles(args: TrainCommandArgs): RunFiles {
  return {
    ...(args.log === undefined ? {} : { log: resolve(args.log) }),
    ...(args['save-best'] === undefined ? {} : { saveBest: resolve(args['save-best']) }),
  };
}

/**
 * A resumed run goes on writing the files its checkpoint names, unless given others, and says so: a log
 * with a hole, or best weights that stop following the run, would look like the run's whole record.
 */
function continueRunFiles(args: TrainCommandArgs, files: RunFiles, validating: boolean): TrainCommandArgs {
  const continued = { ...args };
  for (const [flag, key, path] of [['--log', 'log', files.log], ['--save-best', 'save-best', files.saveBest]] as const) {
    if (path === undefined || args[key] !== undefined) continue;
    continued[key] = path;
    process.stderr.write(`lockstep: notice: ${flag} ${path}: continued from ${args.resume} (give ${flag} FILE to write elsewhere)\n`);
  }
  if (validating && continued['save-best'] === undefined) {
    process.stderr.write(`lockstep: notice: no --save-best: this resumed run keeps no best weights (give --save-best FILE to keep them)\n`);
  }
  return continued;
}

/** A copy of the checkpoint being resumed is the same run at the same point: continuing into it loses nothing. */
function sameBytes(a: string, b: string): boolean {
  return statSync(a).size === statSync(b).size && readFileSync(a).equals(readFileSync(b));
}

/** Test-only: LOCKSTEP_TEST_SIGNAL_AT_STEP=N sends this process a real SIGINT after step N. */
function testSignalHook(): ((info: { steps: number }) => void) | undefined {
  const at = Number(process.env.LOCKSTEP_TEST_SIGNAL_AT_STEP);
  if (!Number.isSafeInteger(at) || at < 1) return undefined;
  return ({ steps }) => {
    if (steps === at) process.kill(process.pid, 'SIGINT');
  };
}
