import { availableParallelism } from 'node:os';
import { sweep, type SweepResult } from '../experiments/sweep.js';
import { plural } from '../words.js';
import type { ArgsOf } from '../options/table.js';
import { notice, print, sayKernelFallback, trainOptionsOf } from './flags.js';
import { onStopThenKillSignals } from './signals.js';
import { EXIT_INTERRUPTED } from '../errors.js';

export async function sweepCommand(args: ArgsOf<'sweep'>): Promise<number> {
  if (args.queue !== undefined || args.detach || args.status)
    return (await import('./queue-sweep-command.js')).queueSweepCommand(args);
  const cores = availableParallelism();
  const threads = args.threads as number;
  const parallel = args.parallel ?? Math.max(1, Math.floor(cores / threads));
  const base = trainOptionsOf(args, 'sweep');
  const grid = { seed: args.seed, lr: args.lr, batchSize: args.batchSize, optimizer: args.optimizer };
  // First signal: every run stops at its next step; a second: every run is killed and the sweep quits.
  const signals = onStopThenKillSignals(
    'stopping every run after its current step (send it again to kill them)',
    'killing every run now',
  );
  try {
    const outcome = await sweep({
      base,
      grid,
      threads,
      parallel,
      out: args.out,
      signal: signals.stop,
      killSignal: signals.kill,
      // Notices once the sweep's flags and --out are checked, so that an error stays one line.
      onStart: (runs, skipped) => {
        sayKernelFallback(base);
        // Fewer runs to do than --parallel: only as many run at once.
        const atOnce = Math.max(1, Math.min(parallel, runs - skipped));
        if (atOnce * threads > cores) {
          notice(
            `--parallel ${atOnce} × --threads ${threads} = ${atOnce * threads} threads on ${cores} available cores; ` +
              'runs will take turns on the cores (their results are the same; their seconds are not)',
          );
        }
        if (args.json) return;
        const already = skipped > 0 ? ` (${skipped} already in ${args.out}: not run again)` : '';
        print(
          `lockstep sweep: ${plural(runs, 'run')}${already}, ${atOnce} at a time, ${plural(threads, 'thread')} each${args.out ? `; results in ${args.out}` : ''}`,
        );
      },
      onResult: (r, finished, all) =>
        print(
          args.json
            ? JSON.stringify({ event: 'sweep-run', ...r })
            : `run ${r.run} (${finished}/${all} finished): ${formatResult(r)}`,
        ),
    });
    if (!args.json) for (const line of formatTable(outcome.results)) print(line);
    if (outcome.interrupted) {
      process.stderr.write(
        `lockstep: sweep interrupted: ${outcome.results.length} of ${plural(outcome.total, 'run')} finished${args.out ? ` (in ${args.out}; the same command resumes)` : ''}, ` +
          `${plural(outcome.stopped, 'run')} stopped\n`,
      );
      return EXIT_INTERRUPTED;
    }
    return 0;
  } finally {
    signals.dispose();
  }
}

const fixed = (x: number | null, digits: number) => (x === null ? '-' : x.toFixed(digits));

export function formatResult(r: SweepResult): string {
  const setting = `seed ${r.seed}, ${r.optimizer} lr ${r.lr}, batch ${r.batchSize}`;
  if (r.status === 'diverged') return `${setting}: diverged`;
  const val = r.valAccuracy === null ? '' : `val acc ${fixed(r.valAccuracy, 4)}, `;
  return `${setting}: ${val}test acc ${fixed(r.testAccuracy, 4)}, test loss ${fixed(r.testLoss, 4)}, ${fixed(r.seconds, 2)} s`;
}

/** The results table: one line per run in grid order; none at all without a result. */
export function formatTable(results: SweepResult[]): string[] {
  if (results.length === 0) return [];
  // The validation columns only for a sweep with --val-split.
  const val = results.some((r) => r.valAccuracy !== null);
  return [
    `  run   seed  optimizer        lr  batch${val ? '  val acc  val loss' : ''}  test acc  test loss  train loss  seconds  paramsSha256`,
    ...results.map(
      (r) =>
        `${String(r.run).padStart(5)}  ${String(r.seed).padStart(5)}  ${String(r.optimizer).padStart(9)}  ${String(r.lr).padStart(8)}  ${String(r.batchSize).padStart(5)}  ` +
        (val ? `${fixed(r.valAccuracy, 4).padStart(7)}  ${fixed(r.valLoss, 4).padStart(8)}  ` : '') +
        `${fixed(r.testAccuracy, 4).padStart(8)}  ${fixed(r.testLoss, 4).padStart(9)}  ${fixed(r.trainLoss, 4).padStart(10)}  ` +
        `${fixed(r.seconds, 2).padStart(7)}  ${r.status === 'diverged' ? 'diverged' : `${r.paramsSha256?.slice(0, 16)}…`}`,
    ),
  ];
}
