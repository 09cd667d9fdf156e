import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { StepProfile } from '../coordinator/engine.js';
import type { Dataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { describe } from '../words.js';
import { checkOptions } from '../model-io/model-source.js';
import { checkCommandOptions, checkCountList, checkCounts } from '../options/check.js';
import { distPath } from '../paths.js';
import { PROFILE_MARKS } from '../shared/buffers.js';
import { checkBatchSize, fitLayers, loadTrainingData, resolveConfig, type TrainConfig } from '../train/config.js';
import type { SettingsOf } from '../options/table.js';
import type { KernelName } from '../kernels/select.js';
import { median, timeRun } from '../train/calibrate.js';
import type { SoloRun } from './solo-run.js';

/** bench's training settings (src/options/table.ts: those of `lockstep bench`), with the library's names for its lists. */
export interface BenchOptions extends Omit<SettingsOf<'bench'>, 'threads' | 'batchSize'> {
  threadCounts: number[];
  batchSizes: number[];
  steps: number;
  warmup?: number;
  repeats?: number;
  /** Also time each thread's phases and barrier waits, and measure the machine's ceiling (see PhaseStats). */
  profile?: boolean;
  /** Once every setting and the data are checked, before the first timed run (awaited). */
  onStart?: (config: TrainConfig, dataset: Dataset) => unknown;
}

/** A duration's median, 90th percentile and mean over the profiled steps, in microseconds. */
export interface Spread {
  median: number;
  p90: number;
  mean: number;
}

/** Where one thread's time goes in a step (workers/step.ts): its two halves, and its waits at each barrier. */
export interface PhaseStats {
  thread: number;
  /** Forward, softmax and backward deltas for the chunks of rows this thread took. */
  rows: Spread;
  wait1: Spread;
  /** Gradients fused with the update for the parameter blocks this thread took. */
  update: Spread;
  wait2: Spread;
  /** From the step's last barrier to the next step's start: the epoch loop and publishing (thread 0), waiting for the command (workers). */
  between: Spread;
  /** The whole step, start to start: 10^6 / step.mean is the thread's steps/s. */
  step: Spread;
  /** Steps that took more than twice the median step (a thread stalled by the machine), and their share of the time. */
  stalls: { fraction: number; timeShare: number };
}

export interface BenchRow {
  threads: number;
  batchSize: number;
  /** The model's sizes, input to output, and the kernel set that ran it: what a saved row was measured on. */
  layers: number[];
  kernels: KernelName;
  /** The median over the repeats; min and max are the slowest and fastest repeat. */
  stepsPerSec: number;
  stepsPerSecMin: number;
  stepsPerSecMax: number;
  samplesPerSec: number;
  /** Median steps/s ÷ the 1-thread median at the same batch size. */
  speedup: number;
  /** The lowest and highest of each round's own ratio (this count's repeat ÷ the 1-thread repeat of the same round). */
  speedupMin: number;
  speedupMax: number;
  efficiency: number;
  paramsSha256: string;
  /** Every repeat's steps/s, for the spread. */
  runs: number[];
  /**
   * With `profile`, at more than 1 thread: the same work as this many independent 1-thread processes at
   * once, their combined steps/s ÷ one such process's alone: the speedup the machine itself allows. Both
   * sides are fresh processes, because a 1-thread run in this long-lived one is at times slower.
   */
  ceilingSpeedup?: number;
  /** With `profile`: where each thread's time goes (all repeats' timed steps). */
  phases?: PhaseStats[];
}

/**
 * Thread scaling: the same training run (same engine as `train`, no special path) timed at several thread
 * counts and batch sizes; `dataset` is read from the options when not given. Each configuration is run
 * `repeats` times after `warmup` untimed steps; the median steps/s is reported, and speedup and efficiency
 * are against 1 thread at the same batch size (measured in the same run, so a noisy machine affects both
 * sides alike).
 */
export async function benchmark(
  options: BenchOptions,
  given?: Dataset,
  onRow?: (row: BenchRow) => void,
): Promise<BenchRow[]> {
  checkOptions(options, null, 'benchmark', true);
  const {
    threadCounts,
    batchSizes,
    steps,
    warmup = 50,
    repeats = 3,
    profile = false,
    onStart,
    ...trainOptions
  } = options;
  checkCommandOptions(trainOptions, 'bench', {
    threads: 'threadCounts, the thread counts to time (e.g. [1, 2, 4])',
    batchSize: 'batchSizes (e.g. [64, 256])',
  });
  checkCountList('--threads', threadCounts, '1,2,4');
  checkCountList('--batch-size', batchSizes, '64,256');
  checkBenchCounts({ steps, warmup, repeats }, profile);
  if (onStart !== undefined && typeof onStart !== 'function')
    throw new UserError(`benchmark: onStart must be a function; got ${describe(onStart)}`);
  for (const batchSize of batchSizes)
    for (const threads of threadCounts) resolveConfig({ ...trainOptions, batchSize, threads });
  const config = resolveConfig(trainOptions);
  const dataset = given ?? loadTrainingData(config);
  const layers = fitLayers(config, dataset);
  for (const batchSize of batchSizes) checkBatchSize(batchSize, dataset);
  await onStart?.({ ...config, layers }, dataset);
  const threadsInOrder = [1, ...new Set(threadCounts.filter((t) => t !== 1))];
  const rows: BenchRow[] = [];
  for (const batchSize of new Set(batchSizes)) {
    // Repeats go round the thread counts (1, 2, 4, 1, 2, 4, ...), not one count after another, so that a
    // slow spell of this shared machine falls on every count alike and the ratios stay fair.
    const runs = new Map<number, number[]>(threadsInOrder.map((t) => [t, []]));
    const ceilings = new Map<number, number[]>(threadsInOrder.map((t) => [t, []]));
    const profiles = new Map<number, StepProfile[]>(threadsInOrder.map((t) => [t, []]));
    const hashes = new Map<number, string>();
    for (let r = 0; r < repeats; r++) {
      for (const threads of threadsInOrder) {
        const options = { ...trainOptions, threads, batchSize };
        const { stepsPerSec, paramsSha256, profile: samples } = await timeRun(options, dataset, warmup, steps, profile);
        runs.get(threads)!.push(stepsPerSec);
        hashes.set(threads, paramsSha256);
        if (samples) profiles.get(threads)!.push(samples);
        // The ceiling's runs take their turn in the same rounds, so a slow spell falls on them alike.
        if (profile) ceilings.get(threads)!.push(await independentRuns(threads, { options, warmup, steps }));
      }
    }
    const base = median(runs.get(1)!);
    // 1 thread is always measured and shown: it is the baseline every speedup divides by.
    for (const threads of threadsInOrder) {
      const stepsPerSec = median(runs.get(threads)!);
      const ratios = runs.get(threads)!.map((r, i) => r / runs.get(1)![i]);
      const row: BenchRow = {
        threads,
        batchSize,
        layers,
        kernels: config.kernels,
        stepsPerSec,
        stepsPerSecMin: Math.min(...runs.get(threads)!),
        stepsPerSecMax: Math.max(...runs.get(threads)!),
        samplesPerSec: stepsPerSec * batchSize,
        speedup: stepsPerSec / base,
        speedupMin: Math.min(...ratios),
        speedupMax: Math.max(...ratios),
        efficiency: stepsPerSec / base / threads,
        paramsSha256: hashes.get(threads)!,
        runs: runs.get(threads)!,
      };
      if (profile) {
        if (threads > 1) row.ceilingSpeedup = median(ceilings.get(threads)!) / median(ceilings.get(1)!);
        row.phases = phaseStats(profiles.get(threads)!);
      }
      rows.push(row);
      onRow?.(row);
    }
  }
  return rows;
}

/**
 * steps, warmup and repeats must each be at least 1 (the timing starts after the warm-up's last step); a
 * profile needs 2 timed steps (a step's time runs from its start to the next one's).
 */
function checkBenchCounts(counts: { steps: number; warmup: number; repeats: number }, profile = false): void {
  checkCounts({ '--steps': counts.steps, '--warmup': counts.warmup, '--repeats': counts.repeats });
  if (profile && counts.steps < 2)
    throw new UserError(`--steps ${counts.steps}: --profile needs at least 2 timed steps`);
}

/**
 * `count` 1-thread runs of the same work as independent processes at once (src/experiments/solo-run.ts):
 * their combined steps/s. Each loads its data first; all are told to start together.
 */
async function independentRuns(count: number, run: SoloRun): Promise<number> {
  const children = Array.from({ length: count }, () =>
    spawn(process.execPath, [distPath('src', 'experiments', 'solo-run.js'), JSON.stringify(run)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    }),
  );
  const results = children.map((child) => {
    const lines = createInterface({ input: child.stdout! });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    let ready!: () => void;
    const isReady = new Promise<void>((resolve) => (ready = resolve));
    const done = new Promise<number>((resolve, reject) => {
      lines.on('line', (line) => {
        if (line === 'ready') ready();
        else resolve((JSON.parse(line) as { stepsPerSec: number }).stepsPerSec);
      });
      child.on('exit', (code) => reject(new Error(`a ceiling run exited with code ${code}: ${stderr.trim()}`)));
    });
    return { child, isReady, done };
  });
  // A bench that exits (a signal, an error) takes its ceiling runs with it.
  const killAll = () => {
    for (const { child } of results) if (child.exitCode === null) child.kill();
  };
  process.on('exit', killAll);
  try {
    await Promise.race([Promise.all(results.map((r) => r.isReady)), Promise.all(results.map((r) => r.done))]);
    for (const { child } of results) child.stdin!.write('go\n');
    const rates = await Promise.all(results.map((r) => r.done));
    return rates.reduce((a, b) => a + b, 0);
  } finally {
    process.off('exit', killAll);
    killAll();
  }
}

/** Per thread, the median and 90th percentile of each phase over every profiled step of every repeat. */
export function phaseStats(profiles: StepProfile[]): PhaseStats[] {
  const threads = profiles[0]?.threads ?? 0;
  const stats: PhaseStats[] = [];
  for (let t = 0; t < threads; t++) {
    const phase = Array.from({ length: 6 }, () => [] as number[]);
    for (const { samples, steps, oldest } of profiles) {
      const s = samples[t];
      const ring = s.length / PROFILE_MARKS;
      for (let i = 0; i < steps; i++) {
        const at = ((oldest + i) % ring) * PROFILE_MARKS;
        for (let p = 0; p < 4; p++) phase[p].push(1000 * (s[at + p + 1] - s[at + p]));
        // The next step's start ends this one's gap.
        if (i + 1 < steps) {
          const next = ((oldest + i + 1) % ring) * PROFILE_MARKS;
          phase[4].push(1000 * (s[next] - s[at + 4]));
          phase[5].push(1000 * (s[next] - s[at]));
        }
      }
    }
    const [rows, wait1, update, wait2, between, step] = phase.map(spread);
    const slow = phase[5].filter((d) => d > 2 * step.median);
    const total = phase[5].reduce((a, b) => a + b, 0);
    const stalls = { fraction: slow.length / phase[5].length, timeShare: slow.reduce((a, b) => a + b, 0) / total };
    stats.push({ thread: t, rows, wait1, update, wait2, between, step, stalls });
  }
  return stats;
}

function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    median: median(sorted),
    p90: sorted[Math.min(sorted.length - 1, Math.floor(0.9 * sorted.length))] ?? NaN,
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
  };
}

/** One batch size's verdict: whether every thread count ended with the same parameters, and each count's hash. */
export interface HashAgreement {
  batchSize: number;
  identical: boolean;
  /** The hash of the first thread count (1, the baseline). */
  paramsSha256: string;
  /** Only when they differ: each thread count's hash. */
  byThreads?: Record<number, string>;
}

/** Per batch size: whether every thread count ended with the same parameters (the promise bench checks as it times). */
export function hashAgreement(rows: BenchRow[]): HashAgreement[] {
  const byBatch = new Map<number, BenchRow[]>();
  for (const r of rows) byBatch.set(r.batchSize, [...(byBatch.get(r.batchSize) ?? []), r]);
  return [...byBatch].map(([batchSize, group]) => {
    const identical = group.every((r) => r.paramsSha256 === group[0].paramsSha256);
    const agreement: HashAgreement = { batchSize, identical, paramsSha256: group[0].paramsSha256 };
    if (!identical) agreement.byThreads = Object.fromEntries(group.map((r) => [r.threads, r.paramsSha256]));
    return agreement;
  });
}
