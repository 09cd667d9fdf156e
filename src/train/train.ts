/**
 * `train()`, the library's run: the files a run reads and writes besides its data (a checkpoint to write or
 * resume, initial weights, the best epoch's weights, a metrics log) and what protects them (whose checkpoint
 * it is, one writer at a time, no non-finite weights over a good checkpoint), around the core (core.ts).
 */
import type { Dataset } from '../data/dataset.js';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { crowdedThreads } from '../coordinator/threads.js';
import { IDX_FILES } from '../data/dataset.js';
import { checkSavedDataDir } from '../data/saved-data.js';
import { DivergenceError, UserError } from '../errors.js';
import { checkWritable, refuseDirectory, sameFile } from '../fs/atomic-write.js';
import {
  readCheckpoint,
  refuseToOverwriteForeignFile,
  writeCheckpoint,
  type RunFiles,
} from '../model-io/checkpoint.js';
import { exportSafetensors, modelFormat } from '../model-io/export.js';
import { loadModel } from '../model-io/model-file.js';
import { checkOptions, type TrainedModel } from '../model-io/model-source.js';
import { lockCheckpoint, refuseIfLocked } from '../fs/run-lock.js';
import { runSteps } from '../optim/schedule.js';
import { flagOf } from '../flag.js';
import { checkValue } from '../options/check.js';
import { optionsIn } from '../options/table.js';
import { describe, plural } from '../words.js';
import { chooseThreads, type Calibration } from './calibrate.js';
import { loadTrainingData, resolveConfig, resumeOptions, type TrainConfig, type TrainOptions } from './config.js';
import {
  trainCore,
  type SplitRows,
  type TrainHooks as CoreHooks,
  type TrainResult,
  type TrainSnapshot,
} from './core.js';
import { logFormat, MetricsLog } from './metrics-log.js';

export {
  DIVERGED_MEAN_LOSS,
  type EpochReport,
  type SplitRows,
  type StepInfo,
  type TrainResult,
  type TrainSnapshot,
  type TrainState,
} from './core.js';

export interface TrainHooks extends CoreHooks {
  /** threads 'auto': the count chosen, with each count's steps/s, before the first step. */
  onCalibrated?: (calibration: Calibration, batchSize: number) => unknown;
}

type HookKind = [what: string, ok: (value: unknown) => boolean];
const FUNCTION: HookKind = ['a function', (v) => typeof v === 'function'];
const OBJECT: HookKind = ['an object', (v) => typeof v === 'object' && v !== null];

/** Every hook and what it must be (the type makes it complete): a misspelt hook is refused rather than never called. */
const HOOK_KINDS: Record<keyof TrainHooks, HookKind> = {
  onEpoch: FUNCTION,
  onStep: FUNCTION,
  onCheckpoint: FUNCTION,
  onBest: FUNCTION,
  onStart: FUNCTION,
  onNotice: FUNCTION,
  onCalibrated: FUNCTION,
  signal: ['an AbortSignal', (v) => v instanceof AbortSignal],
  dataset: [
    'a Dataset (datasetFromArrays makes one)',
    (v) =>
      typeof v === 'object' &&
      v !== null &&
      typeof (v as Dataset).train === 'object' &&
      (v as Dataset).train !== null &&
      typeof (v as Dataset).test === 'object',
  ],
  initialParams: ['a Float32Array', (v) => v instanceof Float32Array],
  resume: OBJECT,
  profileSteps: ['a positive integer', (v) => Number.isSafeInteger(v) && (v as number) > 0],
};
const HOOKS = Object.keys(HOOK_KINDS);

/** Each hook given is of its kind; a wrong one is refused before any data is read. */
function checkHookValues(hooks: TrainHooks): void {
  for (const [name, value] of Object.entries(hooks)) {
    const [kind, ok] = HOOK_KINDS[name as keyof TrainHooks];
    if (value !== undefined && !ok(value))
      throw new UserError(`train: hooks.${name} must be ${kind}; got ${describe(value)}`);
  }
}

/** Reads a file a flag names; an error about the file (`PATH: …`) names the flag too. */
function namingFlag<T>(flag: string, path: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof UserError && err.message.startsWith(`${path}: `)) throw new UserError(`${flag} ${err.message}`);
    throw err;
  }
}

/**
 * A training run. With `checkpoint` it writes one after every epoch and when interrupted (refusing another
 * run's checkpoint without `force`); with `resume` it continues the checkpointed run, and its hash is the
 * uninterrupted run's. `init` starts from saved weights, `saveBest` keeps the best validation epoch's, `log`
 * writes one row of metrics per epoch. Remarks on the settings go to hooks.onNotice.
 */
export async function train(options: TrainOptions = {}, hooks: TrainHooks = {}): Promise<TrainResult> {
  checkOptions(options, null, 'train');
  checkOptions(hooks, HOOKS, 'train: hooks');
  checkHookValues(hooks);
  for (const name of optionsIn('run')) checkValue(name, (options as Record<string, unknown>)[name]);
  const { checkpoint, resume, init, saveBest, log, force = false, ...settings } = options;
  const notice = (line: string) => hooks.onNotice?.(line);
  let run: TrainOptions = settings;
  const core: CoreHooks = { ...hooks };
  // Named as given while they are checked by name alone.
  if (log !== undefined) logFormat(log);
  if (saveBest !== undefined && modelFormat(saveBest) !== 'safetensors')
    throw new UserError(`--save-best ${saveBest}: writes safetensors; name a .safetensors (or .st) file`);
  const files: RunFiles = {
    ...(log === undefined ? {} : { log: resolve(log) }),
    ...(saveBest === undefined ? {} : { saveBest: resolve(saveBest) }),
  };
  if (resume !== undefined && init !== undefined) throw new UserError('--init and --resume: give one or the other');
  if (resume !== undefined) {
    const saved = namingFlag('--resume', resume, () => readCheckpoint(resume));
    if (settings.data === undefined) checkSavedDataDir(resume, saved.config.data, Object.values(IDX_FILES));
    run = resumeOptions(saved.config, settings, resume);
    core.resume = {
      params: saved.params,
      state: saved.state,
      dataSha256: saved.dataSha256,
      optimizerState: saved.optimizerState,
    };
    // A run that stopped early trains nothing more: no best weights to keep or lose.
    continueRunFiles(
      files,
      saved.files,
      { log, saveBest, resume },
      saved.config.valSplit !== undefined && saved.state.stoppedEarly === undefined,
      notice,
    );
  }
  if (init !== undefined) {
    const model = namingFlag('--init', init, () => loadModel(init));
    const held = model.layout.layers;
    if (run.layers && run.layers.join(',') !== held.join(',')) {
      throw new UserError(`--layers ${run.layers.join(',')}: ${init} holds a ${held.join('-')} network`);
    }
    if (run.hidden && run.hidden.join(',') !== held.slice(1, -1).join(',')) {
      throw new UserError(`--hidden ${run.hidden.join(',')}: ${init} holds a ${held.join('-')} network`);
    }
    run = { ...run, layers: model.layout.layers };
    core.initialParams = model.params;
  }
  const checkpointPath = checkpoint ?? resume;
  const checkpointFlag = resume !== undefined && checkpoint === undefined ? '--resume' : '--checkpoint';
  if (checkpointPath !== undefined) {
    refuseDirectory(checkpointPath, '--checkpoint');
    // A run still writing the file is said first: what else it holds may change under it.
    refuseIfLocked(checkpointPath, checkpointFlag);
    refuseToOverwriteForeignFile(checkpointPath, `--checkpoint ${checkpointPath}`, force);
    if (!force) refuseToReplaceOtherRun(checkpointPath, resume);
    checkWritable(checkpointPath, '--checkpoint');
  }
  const lock = checkpointPath === undefined ? undefined : lockCheckpoint(checkpointPath, checkpointFlag);
  let metrics: MetricsLog | undefined;
  try {
    checkOutputs(
      { ...options, log: log ?? files.log, saveBest: saveBest ?? files.saveBest },
      run,
      resume !== undefined,
    );
    if (files.saveBest !== undefined) {
      const path = files.saveBest;
      core.onBest = (snapshot, report) => {
        const { params, layout, config, state, input } = snapshot;
        exportSafetensors({ params: Float32Array.from(params), layout, config, state, input } as TrainedModel, path, {
          force: true,
        });
        return hooks.onBest?.(snapshot, report);
      };
    }
    if (run.threads === 'auto') {
      const config = resolveConfig(run);
      core.dataset ??= loadTrainingData(config);
      const calibration = await chooseThreads(run, core.dataset, { signal: hooks.signal });
      if (calibration) await hooks.onCalibrated?.(calibration, config.batchSize);
      // Stopped while timing: 1 thread, and the run stops before its first step.
      run = { ...run, threads: calibration?.threads ?? 1 };
    }
    if (files.log !== undefined) metrics = new MetricsLog(files.log, core.resume?.state.epoch);
    const metricsLog = metrics;
    if (metricsLog)
      core.onEpoch = (report) => {
        metricsLog.epoch(report);
        return hooks.onEpoch?.(report);
      };
    core.onStart = (config, rows) => {
      for (const line of unusedSettings(config, rows)) notice(line);
      return hooks.onStart?.(config, rows);
    };
    if (checkpointPath !== undefined)
      core.onCheckpoint = (snapshot, reason) => {
        saveCheckpoint(checkpointPath, snapshot, files);
        return hooks.onCheckpoint?.(snapshot, reason);
      };
    const result = await trainCore(run, core);
    if (resume !== undefined && !result.interrupted && result.steps === core.resume?.state.steps)
      notice(nothingToTrain(resume, result));
    return result;
  } finally {
    metrics?.close();
    lock?.release();
  }
}

/**
 * --log and --save-best: checked before the data is read; a new run does not replace an existing file
 * without --force, a resumed run appends to its log and replaces its best model.
 */
function checkOutputs(options: TrainOptions, run: TrainOptions, resuming: boolean): void {
  // Every file the run reads or writes: --log and --save-best must name none of the others.
  const files = (['log', 'saveBest', 'checkpoint', 'resume', 'init', 'data', 'testData', 'labels'] as const).map(
    (key) => [flagOf(key), options[key]] as const,
  );
  const same = (a: string, b: string) =>
    resolve(a) === resolve(b) || (existsSync(a) && existsSync(b) && sameFile(a, b));
  for (const [flag, path] of files.slice(0, 2)) {
    if (path === undefined) continue;
    refuseDirectory(path, flag);
    const clash = files.find(([other, p]) => other !== flag && p !== undefined && same(p, path));
    if (clash) throw new UserError(`${flag} ${path}: is also ${clash[0]}'s file; name another file`);
    if (existsSync(path) && !resuming && !options.force)
      throw new UserError(`${flag} ${path}: exists; pass --force to replace it`);
  }
  if (options.saveBest !== undefined) {
    if (run.valSplit === undefined)
      throw new UserError(`--save-best ${options.saveBest}: needs a validation set; give --val-split F (e.g. 0.2)`);
    checkWritable(options.saveBest, '--save-best');
  }
}

/**
 * A resumed run goes on writing the files its checkpoint names, unless given others, and says so: a log
 * with a hole, or best weights that stop following the run, would look like the run's whole record.
 */
function continueRunFiles(
  files: RunFiles,
  saved: RunFiles,
  given: { log?: string; saveBest?: string; resume: string },
  validating: boolean,
  notice: (line: string) => void,
): void {
  for (const key of ['log', 'saveBest'] as const) {
    if (saved[key] === undefined || given[key] !== undefined) continue;
    files[key] = saved[key];
    notice(
      `${flagOf(key)} ${saved[key]}: continued from ${given.resume} (give ${flagOf(key)} FILE to write elsewhere)`,
    );
  }
  if (validating && files.saveBest === undefined)
    notice('no --save-best: this resumed run keeps no best weights (give --save-best FILE to keep them)');
}

/**
 * Settings that cannot do what they say, said before the first step: more threads than cores (they take
 * turns), a limit above the rows there are, or a warm-up longer than the run (its rate never reaches --lr).
 */
function unusedSettings(config: TrainConfig, rows: SplitRows): string[] {
  const lines: string[] = [];
  const crowded = config.reference
    ? null
    : crowdedThreads(
        [config.threads],
        availableParallelism(),
        'the run is slower than on fewer threads (its weights are the same)',
      );
  if (crowded) lines.push(crowded);
  if (config.trainLimit !== undefined && config.trainLimit > rows.train + rows.val) {
    lines.push(
      `--train-limit ${config.trainLimit}: the data has ${plural(rows.train + rows.val, 'training row')}; all of them are used`,
    );
  }
  if (config.testLimit !== undefined && config.testLimit > rows.test) {
    lines.push(`--test-limit ${config.testLimit}: the data has ${plural(rows.test, 'test row')}; all of them are used`);
  }
  const steps = runSteps(config, rows.train);
  if (config.warmupSteps > 0 && config.warmupSteps >= steps) {
    lines.push(
      `--warmup-steps ${config.warmupSteps}: the run has ${plural(steps, 'step')}, so its rate never reaches --lr ${config.lr}`,
    );
  }
  return lines;
}

/** A resume of a finished run succeeds without a step: say so, or it looks like training that went wrong. */
function nothingToTrain(path: string, result: TrainResult): string {
  if (result.state.stoppedEarly !== undefined)
    return `${path} stopped early after epoch ${result.state.stoppedEarly} (--early-stop): nothing to train`;
  const flag =
    result.config.maxSteps !== undefined && result.steps >= result.config.maxSteps ? '--max-steps' : '--epochs';
  const done = `${path} has already taken ${plural(result.steps, 'step')} (${plural(result.epochs, 'epoch')}): nothing to train`;
  // A cosine schedule has annealed to its end over the run's epochs, which a resumed run keeps.
  if (flag === '--epochs' && result.config.lrSchedule === 'cosine')
    return `${done}; its cosine schedule has ended (train anew with a larger --epochs to go further)`;
  return `${done}; give a larger ${flag} to go on`;
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

/** A copy of the checkpoint being resumed is the same run at the same point: continuing into it loses nothing. */
function sameBytes(a: string, b: string): boolean {
  return statSync(a).size === statSync(b).size && readFileSync(a).equals(readFileSync(b));
}

/** Never replaces a good checkpoint with non-finite weights. */
function saveCheckpoint(path: string, snapshot: TrainSnapshot, files: RunFiles): void {
  if (!snapshot.params.every(Number.isFinite)) {
    throw new DivergenceError(
      `training diverged: non-finite weights after epoch ${snapshot.state.epoch - 1}; ${path} keeps the last good checkpoint`,
      { step: snapshot.state.steps, epoch: snapshot.state.epoch - 1 },
    );
  }
  writeCheckpoint(path, snapshot, files);
}
