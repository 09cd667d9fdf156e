import { stableJson } from '../stable-json.js';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { invalidJson, unreadableFile, UserError } from '../errors.js';
import type { ModelLayout } from '../model/layout.js';
import type { TrainConfig } from '../train/config.js';
import type { MachineFacts } from './machine.js';

/**
 * verify --trace: each layer's hash after every `every`-th step of a run, so that two runs that end apart
 * can be told where they first parted: the step, and the layer.
 */
export interface Trace {
  /** The traced steps (every `every`-th, and the last). */
  steps: number[];
  /** Per traced step, per layer: the first 16 hex digits of the sha256 of its weight and bias float32 bytes. */
  hashes: string[][];
}

export interface TracedRun extends Trace {
  threads: number | 'reference';
  kernels: string;
}

/** --save-trace's file: the runs' traces and what they depend on, to compare with on another machine. */
export interface TraceFile {
  format: 'lockstep-trace';
  version: 1;
  /** The settings that define the arithmetic (threads, kernels and the reference trainer aside). */
  run: string;
  dataSha256: string;
  every: number;
  machine: MachineFacts;
  runs: TracedRun[];
}

const TRACE_FORMAT = 'lockstep-trace';

/** Collects a run's trace from train()'s onStep hook. */
export function tracer(
  layout: ModelLayout,
  every: number,
  lastStep: number,
): { trace: Trace; onStep: (steps: number, params: Float32Array) => string[] | null } {
  const trace: Trace = { steps: [], hashes: [] };
  return {
    trace,
    onStep: (steps, params) => {
      if (!isTraced(steps, every, lastStep)) return null;
      const hashes = layerHashes(layout, params);
      trace.steps.push(steps);
      trace.hashes.push(hashes);
      return hashes;
    },
  };
}

/** Whether a run of `lastStep` steps traced every `every` steps hashes its layers after step `step`. */
function isTraced(step: number, every: number, lastStep: number): boolean {
  return step % every === 0 || step === lastStep;
}

/** The steps a run of `lastStep` steps traced every `every` steps shares with one of a saved trace's runs. */
export function stepsInCommon(run: Trace, every: number, lastStep: number): number[] {
  return run.steps.filter((s) => s >= 1 && s <= lastStep && isTraced(s, every, lastStep));
}

/** Each layer's weight and bias, hashed together (they lie side by side in the layout). */
export function layerHashes(layout: ModelLayout, params: Float32Array): string[] {
  return layout.dense.map(({ weightOffset, biasOffset, nOut }) => {
    const bytes = new Uint8Array(
      params.buffer,
      params.byteOffset + 4 * weightOffset,
      4 * (biasOffset + nOut - weightOffset),
    );
    return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  });
}

/** Where two traces first part: the traced step and the layers that differ there, or null if they agree throughout. */
export function firstDifference(a: Trace, b: Trace): { step: number; layers: number[] } | null {
  const bSteps = new Map(b.steps.map((s, i) => [s, i]));
  for (let i = 0; i < a.steps.length; i++) {
    const j = bSteps.get(a.steps[i]);
    if (j === undefined) continue;
    const layers = a.hashes[i].flatMap((h, l) => (h === b.hashes[j][l] ? [] : [l]));
    if (layers.length > 0) return { step: a.steps[i], layers };
  }
  return null;
}

/** How many of `a`'s traced steps `b` holds too: the steps a comparison of the two looked at. */
export function sharedSteps(a: Trace, b: Trace): number {
  const bSteps = new Set(b.steps);
  return a.steps.filter((s) => bSteps.has(s)).length;
}

/** The settings a trace depends on, as one comparable string (not the run's length: traces compare step by step). */
export function traceRunKey(config: TrainConfig): string {
  const { threads: _t, kernels: _k, reference: _r, evaluate: _e, data: _d, epochs, maxSteps: _m, ...run } = config;
  // The epochs shape only a cosine schedule's first steps.
  if (config.lrSchedule === 'cosine') Object.assign(run, { epochs });
  return stableJson(run);
}

function isJsonObject(text: string): boolean {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

export function readTraceFile(path: string): TraceFile {
  let value: Partial<TraceFile>;
  try {
    value = JSON.parse(readFileSync(path, 'utf8')) as Partial<TraceFile>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code) throw unreadableFile(`--against ${path}`, err);
    throw invalidJson(`--against ${path}`, err);
  }
  if (value?.format !== TRACE_FORMAT)
    throw new UserError(
      `--against ${path}: not a lockstep trace (no "format": "${TRACE_FORMAT}"); make one with verify --save-trace`,
    );
  if (value.version !== 1)
    throw new UserError(`--against ${path}: trace version ${String(value.version)}; this lockstep reads version 1`);
  const runs = value.runs;
  if (
    !Array.isArray(runs) ||
    runs.length === 0 ||
    !runs.every(
      (r) =>
        Array.isArray(r?.steps) && r.steps.length > 0 && Array.isArray(r?.hashes) && r.steps.length === r.hashes.length,
    )
  ) {
    throw new UserError(`--against ${path}: corrupt trace: "runs" must hold steps and hashes of the same length`);
  }
  if (typeof value.run !== 'string' || !isJsonObject(value.run) || typeof value.dataSha256 !== 'string')
    throw new UserError(
      `--against ${path}: corrupt trace: "run" and "dataSha256" must be the settings' and data's strings`,
    );
  return value as TraceFile;
}

export function traceFile(
  config: TrainConfig,
  dataSha256: string,
  every: number,
  machine: MachineFacts,
  runs: TracedRun[],
): TraceFile {
  return { format: TRACE_FORMAT, version: 1, run: traceRunKey(config), dataSha256, every, machine, runs };
}
