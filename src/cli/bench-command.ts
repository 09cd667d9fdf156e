import { benchmark, checkBenchCounts, type BenchRow, type PhaseStats, type Spread } from '../experiments/bench.js';
import { plural } from '../report/format.js';
import { checkBatchSize, loadTrainingData, resolveConfig } from '../train/config.js';
import { print, toTrainOptions, type TrainingArgs } from './flags.js';

export interface BenchArgs extends Omit<TrainingArgs, 'threads' | 'batch-size'> {
  threads: number[];
  'batch-size': number[];
  steps: number;
  warmup: number;
  repeats: number;
  profile: boolean;
}

export async function benchCommand(args: BenchArgs): Promise<number> {
  const threadCounts = args.threads;
  const batchSizes = args['batch-size'];
  const options = toTrainOptions({ ...args, threads: 1, 'batch-size': batchSizes[0] });
  // Validate every combination's flags, and load the data once, before any thread starts.
  for (const batchSize of batchSizes) for (const threads of threadCounts) resolveConfig({ ...options, batchSize, threads });
  checkBenchCounts({ steps: args.steps, warmup: args.warmup, repeats: args.repeats }, args.profile);
  const config = resolveConfig(options);
  const dataset = loadTrainingData(config);
  for (const batchSize of batchSizes) checkBatchSize(batchSize, dataset);
  if (!args.json) {
    print(`lockstep bench: ${args.steps} timed steps after ${args.warmup} warm-up, median of ${plural(args.repeats, 'run')}, kernels ${config.kernels}`);
    print('threads  batch   steps/s   samples/s  speedup  efficiency');
  }
  const rows = await benchmark(
    {
      ...options,
      threadCounts,
      batchSizes,
      steps: args.steps,
      warmup: args.warmup,
      repeats: args.repeats,
      profile: args.profile,
    },
    dataset,
    (row) => print(args.json ? JSON.stringify(jsonRow(row)) : formatRow(row)),
  );
  if (args.profile && !args.json) for (const row of rows) for (const line of formatProfile(row)) print(line);
  if (!args.json) {
    const hashes = new Map<number, Set<string>>();
    for (const r of rows) hashes.set(r.batchSize, (hashes.get(r.batchSize) ?? new Set()).add(r.paramsSha256));
    for (const [batchSize, set] of hashes) {
      print(`batch ${batchSize}: ${set.size === 1 ? 'identical' : 'DIFFERENT'} parameters across thread counts (sha256 ${[...set][0].slice(0, 16)}…)`);
    }
  }
  return 0;
}

function jsonRow(r: BenchRow) {
  const { runs: _runs, ...row } = r;
  return { event: 'bench', ...row };
}

function formatRow(r: BenchRow): string {
  const bar = '█'.repeat(Math.max(1, Math.round(r.speedup * 8)));
  const ceiling = r.ceilingSpeedup === undefined ? '' : `  (ceiling ${r.ceilingSpeedup.toFixed(2)}: ${r.threads} independent 1-thread runs at once)`;
  return (
    `${String(r.threads).padStart(7)}  ${String(r.batchSize).padStart(5)}  ${r.stepsPerSec.toFixed(0).padStart(8)}  ` +
    `${r.samplesPerSec.toFixed(0).padStart(10)}  ${r.speedup.toFixed(2).padStart(7)}  ${r.efficiency.toFixed(2).padStart(10)}  ${bar}${ceiling}`
  );
}

/** One table per configuration: µs per step, median/p90; a line for each stretch of the step, a column for each thread. */
function formatProfile(r: BenchRow): string[] {
  if (!r.phases) return [];
  const cell = (s: Spread) => ` ${`${s.median.toFixed(1)}/${s.p90.toFixed(1)}`.padStart(14)}`;
  const line = (name: string, pick: (p: PhaseStats) => Spread) => `${name.padEnd(36)}${r.phases!.map((p) => cell(pick(p))).join('')}`;
  return [
    `profile: ${r.threads} thread${r.threads > 1 ? 's' : ''}, batch ${r.batchSize}, µs per step, median/p90 (workers/step.ts: each stretch of work ends at a barrier)`,
    `${''.padEnd(36)}${r.phases.map((p) => `thread ${p.thread}`.padStart(15)).join('')}`,
    ...r.phases[0].parts.flatMap((part, i) => [
      line(part.name, (p) => p.parts[i].work),
      line('  wait', (p) => p.parts[i].wait),
    ]),
    line('between steps', (p) => p.between),
    line('all work', (p) => p.work),
    line('all waits', (p) => p.wait),
    line('step', (p) => p.step),
    ...r.phases.map(
      (p) =>
        `thread ${p.thread}: mean step ${p.step.mean.toFixed(1)} µs; ${(100 * p.stalls.fraction).toFixed(1)}% of steps took over twice the median, ` +
        `${(100 * p.stalls.timeShare).toFixed(1)}% of the time`,
    ),
  ];
}
