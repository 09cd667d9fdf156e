import { crowdedThreads } from '../coordinator/threads.js';
import { EXIT_NOT_IDENTICAL } from '../errors.js';
import { benchmark, hashAgreement, type BenchRow, type HashAgreement, type PhaseStats } from '../experiments/bench.js';
import { scalingChart } from '../experiments/charts.js';
import { formatMachine, machineFacts, type MachineFacts } from '../experiments/machine.js';
import { checkOutput, renderSvg, toCsv, writeOutput } from '../experiments/output.js';
import { plural } from '../words.js';
import { epochSteps } from '../optim/schedule.js';
import type { ArgsOf } from '../options/table.js';
import type { TrainOptions } from '../train/config.js';
import { notice, print, sayKernelFallback, trainOptionsOf } from './flags.js';
import { exitOnSignals } from './signals.js';

/** The columns of bench --csv, in this order. */
export const BENCH_CSV_COLUMNS = [
  'threads',
  'batchSize',
  'stepsPerSec',
  'stepsPerSecMin',
  'stepsPerSecMax',
  'samplesPerSec',
  'speedup',
  'speedupMin',
  'speedupMax',
  'efficiency',
  'ceilingSpeedup',
  'paramsSha256',
  'layers',
  'kernels',
];

export async function benchCommand(args: ArgsOf<'bench'>): Promise<number> {
  const threadCounts = args.threads;
  const batchSizes = args.batchSize;
  checkOutput(args.csv, '--csv', args.force);
  checkOutput(args.svg, '--svg', args.force);
  // What the chart and the note need, once benchmark has checked the flags and read the data.
  let machine: MachineFacts | undefined;
  let trainRows = 0;
  let stopWatching = () => {};
  const options = trainOptionsOf(args, 'bench');
  let rows: BenchRow[];
  try {
    rows = await benchmark(
      {
        ...options,
        threadCounts,
        batchSizes,
        steps: args.steps,
        warmup: args.warmup,
        repeats: args.repeats,
        profile: args.profile,
        onStart: (config, dataset) => {
          machine = machineFacts(config.kernels);
          trainRows = dataset.train.count;
          stopWatching = startOutput(args, options, machine, config.kernels);
        },
      },
      undefined,
      (row) => print(args.json ? JSON.stringify(jsonRow(row)) : formatRow(row)),
    );
  } finally {
    stopWatching();
  }
  if (args.profile && !args.json) for (const row of rows) for (const line of formatProfile(row)) print(line);
  if (args.csv !== undefined)
    writeOutput(
      args.csv,
      // 784-128-64-10, as the docs write a model: no comma to quote inside a CSV field.
      toCsv(
        BENCH_CSV_COLUMNS,
        rows.map((r) => ({ ...r, layers: r.layers.join('-') })),
      ),
    );
  if (args.svg !== undefined && machine) writeOutput(args.svg, await renderSvg(scalingChart(rows, machine)));
  // The thread counts that ran (1 always, as the baseline): one alone has nothing to agree with.
  const ran = [...new Set(rows.map((r) => r.threads))];
  const agreement = ran.length > 1 ? hashAgreement(rows) : [];
  if (args.json) for (const a of agreement) print(JSON.stringify({ event: 'agreement', ...a }));
  if (!args.json) {
    for (const a of agreement) print(formatAgreement(a));
    const note = shortWindowNote(ran, batchSizes, args.warmup, args.steps, trainRows);
    if (note) print(note);
    // As plot and export do: each file written is named (the JSON stream stays one object per row).
    if (args.csv !== undefined)
      print(`wrote ${args.csv}: ${plural(rows.length, 'row')}, one per thread count and batch size`);
    if (args.svg !== undefined) print(`wrote ${args.svg}: speedup over 1 thread, ${plural(rows.length, 'row')}`);
  }
  // As verify: weights that differ by thread count are the promise broken, whatever the speed.
  return agreement.every((a) => a.identical) ? 0 : EXIT_NOT_IDENTICAL;
}

/** A batch size's line: identical (one hash), or DIFFERENT with each thread count's hash and where to look next. */
export function formatAgreement({ batchSize, identical, paramsSha256, byThreads }: HashAgreement): string {
  if (identical || !byThreads)
    return `batch ${batchSize}: identical parameters across thread counts (sha256 ${paramsSha256.slice(0, 16)}…)`;
  const each = Object.entries(byThreads).map(
    ([threads, hash]) => `${plural(Number(threads), 'thread')} ${hash.slice(0, 16)}…`,
  );
  return `batch ${batchSize}: DIFFERENT parameters across thread counts (sha256 ${each.join(', ')}); lockstep verify names the first difference`;
}

/** Once the flags and the data are checked: the notices, Ctrl-C heard, then the header. Returns the signal watch's end. */
function startOutput(args: ArgsOf<'bench'>, options: TrainOptions, machine: MachineFacts, kernels: string): () => void {
  sayKernelFallback(options);
  const crowded = crowdedThreads(args.threads, machine.cores, 'their rows measure sharing, not scaling');
  if (crowded) notice(crowded);
  // Before the header: a Ctrl-C as soon as it shows is heard.
  const unwritten = [args.csv, args.svg].filter((f) => f !== undefined);
  const stopWatching = exitOnSignals(
    `bench stopped; the rows printed so far are complete${unwritten.length > 0 ? `, ${unwritten.join(' and ')} not written` : ''}`,
  );
  if (args.json) print(JSON.stringify({ event: 'machine', ...machine }));
  else {
    print(
      `lockstep bench: ${plural(args.steps, 'timed step')} after ${args.warmup} warm-up, median [min–max] of ${plural(args.repeats, 'run')}, kernels ${kernels}`,
    );
    print(`machine: ${formatMachine(machine)}`);
    print('threads  batch   steps/s [min–max]         samples/s  speedup [min–max]    efficiency  speedup (█ = 1/8)');
  }
  return stopWatching;
}

/**
 * Why these speedups need not be training's: a window that starts inside a fresh run's first epoch times
 * threads before they reach their pace (docs/benchmarks.md has the measurements).
 */
export function shortWindowNote(
  threadCounts: number[],
  batchSizes: number[],
  warmup: number,
  steps: number,
  trainRows: number,
): string | null {
  if (threadCounts.length < 2) return null;
  const early = batchSizes.map((b) => [b, epochSteps(trainRows, b)] as const).filter(([, n]) => warmup < n);
  if (early.length === 0) return null;
  const [batch, perEpoch] = early[0];
  // Where the window is past the first epoch at some batch sizes, the note names those it is not.
  const which = early.length < new Set(batchSizes).size ? ` at batch ${early.map(([b]) => b).join(', ')}` : '';
  return (
    `speedups${which}: steps ${warmup + 1}–${warmup + steps} of a fresh run, inside its first epoch (${perEpoch} steps at batch ${batch}), ` +
    `where more threads have not reached their pace; training's later epochs can be faster (give --warmup ${perEpoch} to time past it)`
  );
}

function jsonRow(r: BenchRow) {
  const { runs: _runs, ...row } = r;
  return { event: 'bench', ...row };
}

function formatRow(r: BenchRow): string {
  const bar = '█'.repeat(Math.max(1, Math.round(r.speedup * 8)));
  const ceiling =
    r.ceilingSpeedup === undefined
      ? ''
      : `  (ceiling ${r.ceilingSpeedup.toFixed(2)}: ${r.threads} independent 1-thread runs at once)`;
  const steps = `${r.stepsPerSec.toFixed(0)} [${r.stepsPerSecMin.toFixed(0)}–${r.stepsPerSecMax.toFixed(0)}]`;
  const speedup = `${r.speedup.toFixed(2)} [${r.speedupMin.toFixed(2)}–${r.speedupMax.toFixed(2)}]`;
  return (
    `${String(r.threads).padStart(7)}  ${String(r.batchSize).padStart(5)}  ${steps.padStart(22)}  ` +
    `${r.samplesPerSec.toFixed(0).padStart(10)}  ${speedup.padStart(17)}  ${r.efficiency.toFixed(2).padStart(12)}  ${bar}${ceiling}`
  );
}

const PHASES: [Exclude<keyof PhaseStats, 'thread' | 'stalls'>, string][] = [
  ['rows', 'rows'],
  ['wait1', 'wait'],
  ['update', 'update'],
  ['wait2', 'wait'],
  ['between', 'between'],
  ['step', 'step'],
];

/** One table per configuration: µs per step, median/p90, each thread a line. */
function formatProfile(r: BenchRow): string[] {
  if (!r.phases) return [];
  const cell = (s: { median: number; p90: number }) => ` ${`${s.median.toFixed(1)}/${s.p90.toFixed(1)}`.padStart(14)}`;
  return [
    `profile: ${r.threads} thread${r.threads > 1 ? 's' : ''}, batch ${r.batchSize}, µs per step, median/p90 (workers/step.ts: rows → barrier → update → barrier → between steps)`,
    `thread${PHASES.map(([, name]) => name.padStart(15)).join('')}`,
    ...r.phases.map((p) => `${String(p.thread).padStart(6)}${PHASES.map(([key]) => cell(p[key])).join('')}`),
    ...r.phases.map(
      (p) =>
        `thread ${p.thread}: mean step ${p.step.mean.toFixed(1)} µs; ${(100 * p.stalls.fraction).toFixed(1)}% of steps took over twice the median, ` +
        `${(100 * p.stalls.timeShare).toFixed(1)}% of the time`,
    ),
  ];
}
