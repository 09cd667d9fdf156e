import { EXIT_NOT_IDENTICAL } from '../errors.js';
import { availableParallelism } from 'node:os';
import { crowdedThreads } from '../coordinator/threads.js';
import { machineFacts } from '../experiments/machine.js';
import { checkOutput, writeOutput } from '../experiments/output.js';
import { readTraceFile, traceFile, type TraceFile, type TracedRun } from '../experiments/trace.js';
import { verify, type TraceFinding, type VerifyRow } from '../experiments/verify.js';
import { datasetFingerprint, type Dataset } from '../data/dataset.js';
import type { TrainConfig, TrainOptions } from '../train/config.js';
import { plural } from '../words.js';
import { checkCounts } from '../options/check.js';
import type { ArgsOf } from '../options/table.js';
import { notice, print, sayKernelFallback, trainOptionsOf } from './flags.js';
import { exitOnSignals } from './signals.js';

export async function verifyCommand(args: ArgsOf<'verify'>): Promise<number> {
  checkCounts({ '--steps': args.steps, '--trace-every': args.traceEvery });
  const tracing = args.trace || args.traceEvery !== 1 || args.saveTrace !== undefined || args.against !== undefined;
  checkOutput(args.saveTrace, '--save-trace', args.force);
  const against = args.against === undefined ? undefined : readTraceFile(args.against);
  const options = trainOptionsOf(args, 'verify');
  const traces: TracedRun[] = [];
  // What the trace file records, once verify has checked the settings and read the data.
  let run: { config: TrainConfig; dataset: Dataset } | undefined;
  let stopWatching = () => {};
  let rows: VerifyRow[];
  try {
    rows = await verify(
      {
        ...options,
        threadCounts: args.threads,
        steps: args.steps,
        trace: tracing ? { every: args.traceEvery, against, onTrace: (t) => traces.push(t) } : undefined,
        onStart: (config, dataset) => {
          run = { config, dataset };
          stopWatching = startOutput(args, options, config, against, tracing);
        },
      },
      undefined,
      (row) => {
        if (args.json) print(JSON.stringify({ event: 'verify', ...row }));
        else for (const line of formatRow(row, args.against)) print(line);
      },
    );
  } finally {
    stopWatching();
  }
  if (args.saveTrace !== undefined && run) {
    const { config, dataset } = run;
    const file = traceFile(config, datasetFingerprint(dataset), args.traceEvery, machineFacts(config.kernels), traces);
    writeOutput(args.saveTrace, `${JSON.stringify(file)}\n`);
  }
  const allEqual = rows.every((r) => r.equal && !r.trace?.reference && !r.trace?.against);
  print(
    args.json
      ? JSON.stringify({ event: 'verdict', identical: allEqual })
      : allEqual
        ? 'all identical'
        : 'NOT IDENTICAL',
  );
  return allEqual ? 0 : EXIT_NOT_IDENTICAL;
}

/** Once the flags and the data are checked: the notices, Ctrl-C heard, then the header. Returns the signal watch's end. */
function startOutput(
  args: ArgsOf<'verify'>,
  options: TrainOptions,
  config: TrainConfig,
  against: TraceFile | undefined,
  tracing: boolean,
): () => void {
  sayKernelFallback(options);
  const steps = config.maxSteps ?? args.steps;
  if (steps < args.steps)
    notice(
      `--steps ${args.steps}: the run has ${plural(steps, 'step')} (${plural(config.epochs, 'epoch')}); verify compares them all`,
    );
  // Said for thread counts the user typed (the default list too): the default 1,2,4 runs 4 on any machine, by design.
  const chosen = process.argv.some((arg) => arg === '--threads' || arg.startsWith('--threads='));
  const crowded = crowdedThreads(args.threads, availableParallelism(), 'it is slower (the bits compared are the same)');
  if (crowded && chosen) notice(crowded);
  // Before the header: a Ctrl-C as soon as it shows is heard.
  const stopWatching = exitOnSignals(
    `verify stopped before every run was compared${args.saveTrace === undefined ? '' : `; ${args.saveTrace} not written`}`,
  );
  if (args.json) return stopWatching;
  print(
    `lockstep verify: ${plural(steps, 'step')} at threads ${args.threads.join(', ')} against the reference trainer, every parameter compared bit for bit`,
  );
  if (tracing) {
    const every = args.traceEvery === 1 ? 'every step' : `every ${args.traceEvery} steps`;
    print(
      `trace: each layer's hash (sha256, first 16 hex digits) after ${every}${against ? `, also against ${args.against} (${against.machine.cpu}, Node ${against.machine.node})` : ''}`,
    );
  }
  print(
    'threads    kernels  paramsSha256                                                      max|Δ|    max ULP  first difference',
  );
  return stopWatching;
}

function formatRow(r: VerifyRow, againstPath: string | undefined): string[] {
  const lines = [
    `${String(r.threads).padEnd(9)}  ${r.kernels.padStart(7)}  ${r.paramsSha256}  ${r.maxAbsDiff.toExponential(2).padStart(8)}  ` +
      `${String(r.maxUlp).padStart(9)}  ${r.firstDifference ?? '-'}`,
  ];
  if (!r.trace) return lines;
  if (r.threads !== 'reference')
    lines.push(`  trace against the reference: ${formatFinding(r.trace.reference, r.trace.steps)}`);
  if (r.trace.against !== undefined) {
    const which = r.trace.againstRun === 'reference' ? 'its reference run' : `its ${r.trace.againstRun}-thread run`;
    const compared = r.trace.againstSteps ?? r.trace.steps;
    lines.push(`  trace against ${againstPath} (${which}): ${formatFinding(r.trace.against, compared, r.trace.steps)}`);
  }
  return lines;
}

/** `compared` of the `traced` steps were compared (a saved trace may hold fewer). */
function formatFinding(f: TraceFinding | null, compared: number, traced = compared): string {
  if (!f && compared === traced) return `identical at all ${plural(traced, 'traced step')}`;
  if (!f) return `identical at all ${plural(compared, 'step')} the file holds too (of ${traced} traced here)`;
  const where = `first difference after step ${f.step}, in ${f.layers.join(', ')}`;
  if (f.firstParameter === undefined) return `${where} (the file holds hashes, not values)`;
  return `${where}: ${f.firstParameter} is ${f.firstUlp} ULP off; ${plural(f.differing ?? 0, 'parameter')} ${f.differing === 1 ? 'differs' : 'differ'} there, by at most ${f.maxUlp} ULP`;
}
