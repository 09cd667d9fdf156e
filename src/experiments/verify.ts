import { datasetFingerprint, type Dataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { checkOptions } from '../model-io/model-source.js';
import { checkCommandOptions, checkCountList, checkCounts, settingsApart } from '../options/check.js';
import { paramsSha256 } from '../model/hash.js';
import { modelLayout, type ModelLayout } from '../model/layout.js';
import { fitLayers, loadTrainingData, resolveConfig, type TrainConfig } from '../train/config.js';
import type { SettingsOf } from '../options/table.js';
import { train } from '../train/train.js';
import { heldOut } from '../data/prepare.js';
import { runSteps } from '../optim/schedule.js';
import { describe } from '../words.js';
import {
  firstDifference,
  sharedSteps,
  stepsInCommon,
  traceRunKey,
  tracer,
  type Trace,
  type TracedRun,
  type TraceFile,
} from './trace.js';

/** verify's training settings (src/options/table.ts: those of `lockstep verify`), with the library's names for its lists. */
export interface VerifyOptions extends Omit<SettingsOf<'verify'>, 'threads'> {
  threadCounts: number[];
  steps: number;
  /** Hash each layer after every `every`-th step, locate a run's first difference, and compare with a saved trace. */
  trace?: { every: number; against?: TraceFile; onTrace?: (run: TracedRun) => void };
  /** Once every setting, the data and any trace to compare with are checked, before the first run (awaited); `config.maxSteps` is the steps compared, fewer than `steps` when the run is shorter. */
  onStart?: (config: TrainConfig, dataset: Dataset) => unknown;
}

/** Where a traced run first parted from another trace. */
export interface TraceFinding {
  /** The first traced step whose hashes differ (the difference arose after the traced step before it). */
  step: number;
  /** The layers whose hashes differ at that step, e.g. ["layers.1"]. */
  layers: string[];
  /** Against the reference trainer (rerun to that step): the first differing parameter and its ULP distance, how many differ, and the most. */
  firstParameter?: string;
  firstUlp?: number;
  differing?: number;
  maxUlp?: number;
}

export interface RowTrace {
  /** Traced steps. */
  steps: number;
  /** Against this run's reference trainer: null when every traced step is identical. */
  reference: TraceFinding | null;
  /** With `against`: which run of the file was compared (its same thread count, else its reference), and where they part. */
  againstRun?: number | 'reference';
  against?: TraceFinding | null;
  /** With `against`: how many of this run's traced steps the file holds too, the steps compared. */
  againstSteps?: number;
}

export interface VerifyRow {
  threads: number | 'reference';
  kernels: string;
  paramsSha256: string;
  equal: boolean;
  differing: number;
  maxAbsDiff: number;
  maxUlp: number;
  /** The first differing parameter, e.g. "layers.0.weight[out=3, in=17]", or null. */
  firstDifference: string | null;
  /** The ULP distance of that parameter, or null. */
  firstUlp: number | null;
  /** With `trace`. */
  trace?: RowTrace;
}

/**
 * Determinism check: the same run at several thread counts against the single-thread reference trainer
 * (the specification's arithmetic), compared bit for bit over every parameter; `dataset` is read from the
 * options when not given.
 */
export async function verify(
  options: VerifyOptions,
  given?: Dataset,
  onRow?: (row: VerifyRow) => void,
): Promise<VerifyRow[]> {
  checkOptions(options, null, 'verify', true);
  const { threadCounts, steps: asked, trace, onStart, ...trainOptions } = options;
  checkCommandOptions(trainOptions, 'verify', {
    threads: 'threadCounts, the thread counts to compare (e.g. [1, 2, 4])',
  });
  checkCountList('--threads', threadCounts, '1,2,4');
  checkCounts({ '--steps': asked, ...(trace ? { '--trace-every': trace.every } : {}) });
  if (onStart !== undefined && typeof onStart !== 'function')
    throw new UserError(`verify: onStart must be a function; got ${describe(onStart)}`);
  for (const threads of threadCounts) resolveConfig({ ...trainOptions, threads });
  // The first `steps` steps of the run train would do with these settings: its epochs set its schedule.
  const config = resolveConfig({ ...trainOptions, maxSteps: asked, evaluate: false });
  const dataset = given ?? loadTrainingData(config);
  config.layers = fitLayers(config, dataset);
  // A run shorter than the steps asked is compared whole (config.maxSteps says how far: the CLI says so).
  const steps = Math.min(
    asked,
    runSteps({ ...config, maxSteps: undefined }, dataset.train.count - heldOut(config.valSplit, dataset.train.count)),
  );
  config.maxSteps = steps;
  const base = { ...trainOptions, maxSteps: steps, evaluate: false };
  const layout = modelLayout(config.layers);
  if (trace?.against)
    checkAgainst(trace.against, traceRunKey(config), datasetFingerprint(dataset), { every: trace.every, steps });
  await onStart?.(config, dataset);
  // The reference trainer at an earlier step, to name the parameters where a run first parted from it.
  const referenceAt = new Map<number, Float32Array>();
  const referenceParamsAt = async (step: number) => {
    if (!referenceAt.has(step)) {
      const run = await train(
        { ...base, maxSteps: step, reference: true, threads: 1, kernels: undefined },
        { dataset },
      );
      referenceAt.set(step, run.params);
    }
    return referenceAt.get(step)!;
  };
  let referenceTrace: Trace | null = null;
  const rows: VerifyRow[] = [];
  const runOne = async (threads: number | 'reference') => {
    const runOptions =
      threads === 'reference' ? { ...base, reference: true, threads: 1, kernels: undefined } : { ...base, threads };
    const perturb = testPerturbation(threads);
    const traced = trace ? tracer(layout, trace.every, steps) : null;
    // Set inside the hook, which TypeScript's narrowing does not follow.
    let parted = null as { step: number; layers: number[]; params: Float32Array } | null;
    const run = await train(runOptions, {
      dataset,
      onStep:
        perturb || traced
          ? ({ steps: done }, params) => {
              if (perturb?.step === done) flipLastBit(params, perturb.index);
              const hashes = traced?.onStep(done, params);
              if (!hashes || !referenceTrace || parted) return;
              const at = traced!.trace.steps.length - 1;
              const layers = hashes.flatMap((h, l) => (h === referenceTrace!.hashes[at][l] ? [] : [l]));
              if (layers.length > 0) parted = { step: done, layers, params: Float32Array.from(params) };
            }
          : undefined,
    });
    if (perturb && perturb.step === undefined) flipLastBit(run.params, perturb.index);
    if (threads === 'reference') referenceAt.set(steps, run.params);
    const reference = threads === 'reference' ? run.params : await referenceParamsAt(steps);
    const row = compare(threads, run.config.kernels, run.params, reference, layout);
    if (traced) {
      const tracedRun: TracedRun = { threads, kernels: run.config.kernels, ...traced.trace };
      if (threads === 'reference') referenceTrace = traced.trace;
      row.trace = {
        steps: traced.trace.steps.length,
        reference: parted ? await locate(parted, layout, await referenceParamsAt(parted.step)) : null,
      };
      if (trace!.against) {
        const other =
          trace!.against.runs.find((r) => r.threads === threads) ??
          trace!.against.runs.find((r) => r.threads === 'reference') ??
          trace!.against.runs[0];
        const found = firstDifference(traced.trace, other);
        row.trace.againstRun = other.threads;
        row.trace.againstSteps = sharedSteps(traced.trace, other);
        row.trace.against = found && { step: found.step, layers: found.layers.map((l) => `layers.${l}`) };
      }
      trace!.onTrace?.(tracedRun);
    }
    rows.push(row);
    onRow?.(row);
  };
  await runOne('reference');
  for (const threads of threadCounts) await runOne(threads);
  return rows;
}

/** A run that parted from the reference at `parted.step`: its parameters there against the reference's. */
function locate(
  parted: { step: number; layers: number[]; params: Float32Array },
  layout: ModelLayout,
  reference: Float32Array,
): TraceFinding {
  const diff = compare('reference', '', parted.params, reference, layout);
  return {
    step: parted.step,
    layers: parted.layers.map((l) => `layers.${l}`),
    firstParameter: diff.firstDifference ?? undefined,
    firstUlp: diff.firstUlp ?? undefined,
    differing: diff.differing,
    maxUlp: diff.maxUlp,
  };
}

/**
 * A saved trace compares only with a run of the same settings on the same data, and at least one step that
 * both trace: a comparison that looked at no step would pass without checking anything.
 */
export function checkAgainst(
  file: TraceFile,
  run: string,
  dataSha256: string,
  traced: { every: number; steps: number },
): void {
  if (file.run !== run)
    throw new UserError(`--against: the trace was made with other settings: ${traceSettingsApart(file.run, run)}`);
  if (file.dataSha256 !== dataSha256)
    throw new UserError(
      '--against: the trace was made on other data (its sha256 differs); give the same --data and limits',
    );
  const apart = file.runs.find((run) => stepsInCommon(run, traced.every, traced.steps).length === 0);
  if (apart) {
    const held = apart.steps;
    // Too short a run to reach the file's first traced step, or another spacing of the traced steps.
    const give = traced.steps < held[0] ? `--steps ${held[0]} or more` : `--trace-every ${file.every}`;
    throw new UserError(
      `--against: the trace holds steps ${held[0]}–${held[held.length - 1]} every ${file.every}, and none of them is traced here (--steps ${traced.steps} --trace-every ${traced.every}); give ${give}`,
    );
  }
}

/** The settings two traceRunKey strings (readTraceFile checked both are JSON objects) differ in. */
function traceSettingsApart(there: string, here: string): string {
  const apart = settingsApart(
    JSON.parse(there) as Record<string, unknown>,
    JSON.parse(here) as Record<string, unknown>,
  );
  return apart.length > 0 ? apart.join('; ') : `${there}; here ${here}`;
}

/**
 * Test-only: LOCKSTEP_TEST_PERTURB=threads:index flips the last bit of one parameter of that run's result
 * (one ULP); threads:index:step flips it in the live parameters after that step, so later steps carry it.
 */
function testPerturbation(threads: number | 'reference'): { index: number; step?: number } | null {
  const spec = process.env.LOCKSTEP_TEST_PERTURB;
  if (!spec) return null;
  const [t, index, step] = spec.split(':').map(Number);
  return t === threads ? { index, step: Number.isNaN(step) ? undefined : step } : null;
}

function flipLastBit(params: Float32Array, index: number): void {
  new Uint32Array(params.buffer, params.byteOffset, params.length)[index] ^= 1;
}

export function compare(
  threads: number | 'reference',
  kernels: string,
  params: Float32Array,
  reference: Float32Array,
  layout: ModelLayout,
): VerifyRow {
  const a = new Uint32Array(params.buffer, params.byteOffset, params.length);
  const b = new Uint32Array(reference.buffer, reference.byteOffset, reference.length);
  let differing = 0;
  let maxAbsDiff = 0;
  let maxUlp = 0;
  let first = -1;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    differing++;
    if (first < 0) first = i;
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(params[i] - reference[i]));
    maxUlp = Math.max(maxUlp, ulpDistance(a[i], b[i]));
  }
  return {
    threads,
    kernels,
    paramsSha256: paramsSha256(params),
    equal: differing === 0,
    differing,
    maxAbsDiff,
    maxUlp,
    firstDifference: first < 0 ? null : parameterName(layout, first),
    firstUlp: first < 0 ? null : ulpDistance(a[first], b[first]),
  };
}

/** Distance in representable float32 values: the bit patterns mapped onto one ordered integer line. */
export function ulpDistance(bitsA: number, bitsB: number): number {
  const ordered = (bits: number) => (bits & 0x80000000 ? -(bits & 0x7fffffff) : bits);
  return Math.abs(ordered(bitsA) - ordered(bitsB));
}

/** A parameter's name in the safetensors/PyTorch convention: weight [out, in], bias [out]. */
export function parameterName(layout: ModelLayout, index: number): string {
  for (let l = 0; l < layout.dense.length; l++) {
    const { nOut, weightOffset, biasOffset } = layout.dense[l];
    if (index >= weightOffset && index < biasOffset) {
      const k = Math.floor((index - weightOffset) / nOut);
      const j = (index - weightOffset) % nOut;
      return `layers.${l}.weight[out=${j}, in=${k}] (parameter ${index})`;
    }
    if (index >= biasOffset && index < biasOffset + nOut)
      return `layers.${l}.bias[${index - biasOffset}] (parameter ${index})`;
  }
  throw new RangeError(`parameter index ${index} out of range`);
}
