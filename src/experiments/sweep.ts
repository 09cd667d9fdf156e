import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { parse } from 'csv-parse/sync';
import { EXIT_DIVERGED, UserError } from '../errors.js';
import { stableJson } from '../stable-json.js';
import { checkWritable, refuseDirectory } from '../fs/atomic-write.js';
import { makeScratchDir } from '../fs/scratch-dir.js';
import { checkOptions, optionNames } from '../model-io/model-source.js';
import { describe } from '../words.js';
import { checkCounts, settingsApart } from '../options/check.js';
import { distPath } from '../paths.js';
import { EXIT_WITH_PARENT } from './parent-pipe.js';
import { DATA_FILE_OPTIONS, resolveConfig, stripUndefined, type TrainOptions } from '../train/config.js';
import { toCsv } from './output.js';
import { readCsvHeader } from '../data/csv.js';
import type { OptimizerName } from '../optim/optimizer.js';

/**
 * A grid of training runs, each a plain `lockstep train --config FILE --json` process (so that a job queue
 * could start the same runs elsewhere), `parallel` at a time. Runs are separate processes with the same
 * arithmetic as a run alone, so each result equals the same run alone bit for bit.
 */
export interface SweepGrid {
  seed?: number[];
  lr?: number[];
  batchSize?: number[];
  optimizer?: OptimizerName[];
}

/** The grid's axes and the options' names (the types make them complete): a misspelt name is refused. */
const GRID_AXES = optionNames<SweepGrid>({ seed: true, lr: true, batchSize: true, optimizer: true });
const SWEEP_OPTIONS = optionNames<SweepOptions>({
  base: true,
  grid: true,
  threads: true,
  parallel: true,
  out: true,
  signal: true,
  killSignal: true,
  onStart: true,
  onResult: true,
});

export interface SweepOptions {
  /** The settings every run shares (epochs, layers, data, …); threads are set by `threads`. */
  base: TrainOptions;
  grid: SweepGrid;
  /** Threads of each run. */
  threads: number;
  /** Runs at once. */
  parallel: number;
  /** Results file (.csv or .jsonl): each finished run is appended; runs already in it are skipped. */
  out?: string;
  /** Aborting it stops every run at its next step (SIGINT to each); unfinished runs are not recorded. */
  signal?: AbortSignal;
  /** Aborting it kills every run at once. */
  killSignal?: AbortSignal;
  /** Once the grid and the results file are checked, before any run starts. */
  onStart?: (runs: number, skipped: number) => void;
  onResult?: (result: SweepResult, finished: number, total: number) => void;
}

/** One run's row in the results table and file. */
export interface SweepResult {
  /** The run's number, from 1: its place in the grid, unless the --out file's numbers moved it (numberRuns). */
  run: number;
  seed: number;
  lr: number;
  batchSize: number;
  optimizer: OptimizerName;
  /** 'diverged': the run stopped with exit code 3 (its loss blew up); its numbers are empty. */
  status: 'done' | 'diverged';
  steps: number | null;
  trainLoss: number | null;
  /** The last epoch's, with --val-split (null without). */
  valLoss: number | null;
  valAccuracy: number | null;
  testLoss: number | null;
  testAccuracy: number | null;
  /** The run's own time (lockstep train's `seconds`: data loading, training and evaluation). */
  seconds: number | null;
  paramsSha256: string | null;
  /** The run's settings as the JSON its process was given (threads aside: they change no bit). */
  config: string;
}

export const SWEEP_COLUMNS: (keyof SweepResult)[] = [
  'run',
  'seed',
  'lr',
  'batchSize',
  'optimizer',
  'status',
  'steps',
  'trainLoss',
  'valLoss',
  'valAccuracy',
  'testLoss',
  'testAccuracy',
  'seconds',
  'paramsSha256',
  'config',
];

/** The columns of a CSV results file written before the validation columns: read, and appended to, as they are. */
const COLUMNS_BEFORE_VAL = SWEEP_COLUMNS.filter((c) => c !== 'valLoss' && c !== 'valAccuracy');

/** A results file's columns by its header line: today's, those of a file from before the validation columns, or none. */
function columnsOf(header: string | undefined): (keyof SweepResult)[] | null {
  return [SWEEP_COLUMNS, COLUMNS_BEFORE_VAL].find((columns) => columns.join(',') === header) ?? null;
}

/** A row read back: one written before the validation columns has none. */
function withValColumns(row: Partial<SweepResult>): SweepResult {
  return { valLoss: null, valAccuracy: null, ...row } as SweepResult;
}

export interface SweepOutcome {
  /** Every run's result in grid order, those found in `out` included; a run that did not finish is absent. */
  results: SweepResult[];
  /** Runs in the grid. */
  total: number;
  /** Runs found already finished in `out`. */
  skipped: number;
  /** Runs the signal stopped before they finished. */
  stopped: number;
  interrupted: boolean;
}

export interface SweepRun {
  run: number;
  options: TrainOptions;
  config: string;
}

/** The grid's runs in order: seeds vary fastest, so the runs of one setting are side by side. */
export function sweepRuns(base: TrainOptions, grid: SweepGrid): SweepRun[] {
  const runs: SweepRun[] = [];
  for (const optimizer of grid.optimizer ?? [undefined]) {
    for (const lr of grid.lr ?? [undefined]) {
      for (const batchSize of grid.batchSize ?? [undefined]) {
        for (const seed of grid.seed ?? [undefined]) {
          const { threads: _t, ...options } = {
            ...stripUndefined(base),
            ...stripUndefined({ optimizer, lr, batchSize, seed }),
          };
          if (options.reference === false) delete options.reference;
          // The data files as absolute paths: a run's file means the same from any directory (and any machine's).
          const resolved = resolveConfig(options);
          for (const key of DATA_FILE_OPTIONS) if (options[key] !== undefined) options[key] = resolved[key];
          runs.push({ run: runs.length + 1, options, config: stableJson(options) });
        }
      }
    }
  }
  return runs;
}

/** Checks the grid's settings and the results file before any run starts; returns what is already done. */
export function prepareSweep(options: SweepOptions): { runs: SweepRun[]; done: Map<string, SweepResult> } {
  checkOptions(options, SWEEP_OPTIONS, 'sweep', true);
  checkOptions(options.grid, GRID_AXES, 'sweep: grid', true);
  for (const axis of GRID_AXES) {
    const values = options.grid[axis];
    if (values !== undefined && (!Array.isArray(values) || values.length === 0))
      throw new UserError(`sweep: grid.${axis} must be an array of one value or more; got ${describe(values)}`);
  }
  checkCounts({ '--parallel': options.parallel });
  const runs = sweepRuns(options.base, options.grid);
  for (const run of runs) resolveConfig({ ...run.options, threads: options.threads });
  const done = new Map<string, SweepResult>();
  if (options.out === undefined) return { runs, done };
  refuseDirectory(options.out, '--out');
  const format = outFormat(options.out);
  if (existsSync(options.out) && statSync(options.out).size > 0) {
    const configs = new Set(runs.map((r) => r.config));
    for (const [line, row] of readResults(options.out, format)) {
      if (!configs.has(row.config)) {
        throw new UserError(
          `--out ${options.out}: line ${line} holds a run that is not in this sweep (${nearestApart(row.config, runs)}); give another --out, or the flags of that sweep`,
        );
      }
      done.set(row.config, row);
    }
  } else {
    checkWritable(options.out, '--out');
  }
  numberRuns(runs, done);
  return { runs, done };
}

/** How a results file's run differs from the nearest run of this sweep, in flags: `--epochs 1 there, 2 here`. */
function nearestApart(config: string, runs: SweepRun[]): string {
  let theirs: Record<string, unknown>;
  try {
    theirs = JSON.parse(config) as Record<string, unknown>;
  } catch {
    return config;
  }
  return runs
    .map((run) => settingsApart(theirs, JSON.parse(run.config) as Record<string, unknown>))
    .reduce((best, apart) => (apart.length < best.length ? apart : best))
    .join('; ');
}

/**
 * Run numbers stay unique in a results file: a finished run keeps its number; the new runs keep their places
 * in the grid when none of those numbers is in the file (a resumed sweep), else (a grown grid moved them)
 * they are numbered in grid order after the highest number in the file.
 */
function numberRuns(runs: SweepRun[], done: Map<string, SweepResult>): void {
  const taken = new Set([...done.values()].map((r) => r.run));
  const todo = runs.filter((r) => !done.has(r.config));
  for (const run of runs) run.run = done.get(run.config)?.run ?? run.run;
  if (!todo.some((r) => taken.has(r.run))) return;
  let next = [...taken].reduce((max, n) => (Number.isFinite(n) ? Math.max(max, n) : max), 0);
  for (const run of todo) run.run = ++next;
}

export async function sweep(options: SweepOptions): Promise<SweepOutcome> {
  const { runs, done } = prepareSweep(options);
  const { out, threads, parallel, signal, killSignal } = options;
  if (out !== undefined) startResultsFile(out);
  const todo = runs.filter((r) => !done.has(r.config));
  options.onStart?.(runs.length, done.size);
  const results = new Map(done);
  const children = new Set<ChildProcess>();
  const stopAll = (how: NodeJS.Signals) => () => {
    for (const child of children) child.kill(how);
  };
  signal?.addEventListener('abort', stopAll('SIGINT'));
  killSignal?.addEventListener('abort', stopAll('SIGKILL'));
  const configDir = makeScratchDir('sweep');
  let stopped = 0;
  let failure: UserError | null = null;
  const queue = [...todo];
  const worker = async () => {
    while (queue.length > 0 && !signal?.aborted && failure === null) {
      const run = queue.shift()!;
      const outcome = await trainRun(run, threads, configDir, children);
      if ('result' in outcome) {
        results.set(run.config, outcome.result);
        if (out !== undefined) appendResult(out, outcome.result);
        options.onResult?.(outcome.result, results.size, runs.length);
      } else if (signal?.aborted || failure !== null) {
        stopped++;
      } else {
        failure = new UserError(
          `sweep run ${run.run} (${run.config}) failed: ${outcome.error}; the other runs were stopped`,
          outcome.code,
        );
        stopAll('SIGINT')();
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: parallel }, worker));
  } finally {
    rmSync(configDir, { recursive: true, force: true });
  }
  if (failure) throw failure;
  return {
    results: runs.filter((r) => results.has(r.config)).map((r) => results.get(r.config)!),
    total: runs.length,
    skipped: done.size,
    stopped,
    interrupted: signal?.aborted ?? false,
  };
}

/**
 * One run as its own `lockstep train --config FILE --json` process (its config file written in `configDir`):
 * its result when it finished or diverged, else its own last stderr line and exit code (null: killed).
 */
export async function trainRun(
  run: SweepRun,
  threads: number,
  configDir: string,
  children: Set<ChildProcess>,
): Promise<{ result: SweepResult } | { error: string; code: number; killed: boolean }> {
  const file = join(configDir, `run-${run.run}.json`);
  writeFileSync(file, `${run.config}\n`);
  const outcome = await runProcess(file, threads, children);
  if (outcome.code === 0 || outcome.code === EXIT_DIVERGED) return { result: toResult(run, outcome) };
  // The run's own last line, without its "lockstep: " (the caller's message gets one of its own).
  const error =
    outcome.stderr
      .trim()
      .split('\n')
      .pop()
      ?.replace(/^lockstep: /, '') || `exit code ${outcome.code}`;
  return { error, code: outcome.code ?? 1, killed: outcome.code === null };
}

interface ProcessOutcome {
  code: number | null;
  stderr: string;
  lastEpoch?: { trainLoss: number; valLoss: number; valAccuracy: number; testLoss: number };
  done?: { steps: number; testAccuracy: number; seconds: number; paramsSha256: string };
}

/** One `lockstep train` process. It has its own process group, so a Ctrl-C reaches it only through the sweep (once). */
function runProcess(configFile: string, threads: number, children: Set<ChildProcess>): Promise<ProcessOutcome> {
  const child = spawn(
    process.execPath,
    [distPath('src', 'cli', 'main.js'), 'train', '--config', configFile, '--threads', String(threads), '--json'],
    {
      detached: true,
      // stdin: a pipe never written to, that ends when this process dies, and the run with it.
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, [EXIT_WITH_PARENT]: '1' },
    },
  );
  children.add(child);
  const outcome: ProcessOutcome = { code: null, stderr: '' };
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (outcome.stderr += d));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let event: { event?: string };
    try {
      event = JSON.parse(line) as { event?: string };
    } catch {
      return; // train --json prints only JSON lines; anything else is not a result
    }
    if (event.event === 'epoch') outcome.lastEpoch = event as unknown as ProcessOutcome['lastEpoch'];
    if (event.event === 'done') outcome.done = event as unknown as ProcessOutcome['done'];
  });
  return new Promise((resolve) => {
    child.on('error', (err) => (outcome.stderr += err.message));
    child.on('close', (code) => {
      children.delete(child);
      outcome.code = code;
      resolve(outcome);
    });
  });
}

function toResult(run: SweepRun, p: ProcessOutcome): SweepResult {
  const config = resolveConfig(run.options);
  const finite = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? null : x);
  return {
    run: run.run,
    seed: config.seed,
    lr: config.lr,
    batchSize: config.batchSize,
    optimizer: config.optimizer,
    status: p.code === 0 ? 'done' : 'diverged',
    steps: p.done?.steps ?? null,
    trainLoss: finite(p.lastEpoch?.trainLoss),
    valLoss: finite(p.lastEpoch?.valLoss),
    valAccuracy: finite(p.lastEpoch?.valAccuracy),
    testLoss: finite(p.lastEpoch?.testLoss),
    testAccuracy: finite(p.done?.testAccuracy),
    seconds: finite(p.done?.seconds),
    paramsSha256: p.done?.paramsSha256 ?? null,
    config: run.config,
  };
}

export function outFormat(path: string): 'csv' | 'jsonl' {
  const ext = extname(path).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.jsonl') return 'jsonl';
  throw new UserError(`--out ${path}: must end in .csv or .jsonl`);
}

/**
 * A new results file gets its header (CSV) now: a sweep stopped before its first result still leaves one. An
 * unfinished last line (a sweep killed while appending it) is cut off, so that the next result starts a line.
 */
export function startResultsFile(out: string): void {
  if (!(existsSync(out) && statSync(out).size > 0)) {
    writeFileSync(out, outFormat(out) === 'csv' ? toCsv(SWEEP_COLUMNS, []) : '');
    return;
  }
  const text = readFileSync(out, 'utf8');
  if (!text.endsWith('\n')) truncateSync(out, Buffer.byteLength(completeLines(text)));
}

/** The lines of a results file that end in a newline: an unfinished last one is no result, and its run is run again. */
function completeLines(text: string): string {
  return text.slice(0, text.lastIndexOf('\n') + 1);
}

/** One line per finished run, appended as it finishes: a stopped sweep loses no finished run. */
export function appendResult(path: string, result: SweepResult): void {
  const line =
    outFormat(path) === 'csv'
      ? // The file's own columns, from its header alone (not the whole file, once per result).
        toCsv(columnsOf(readCsvHeader(path, '--out').join(',')) ?? SWEEP_COLUMNS, [
          result as unknown as Record<string, unknown>,
        ])
          .split('\n')
          .slice(1)
          .join('\n')
      : `${JSON.stringify(result)}\n`;
  appendFileSync(path, line);
}

/** The results already in a file, each with its line number. */
function readResults(path: string, format: 'csv' | 'jsonl'): [number, SweepResult][] {
  const text = completeLines(readFileSync(path, 'utf8'));
  const bad = (line: number, what: string) =>
    new UserError(`--out ${path}: line ${line}: ${what}; not a lockstep sweep results file`);
  if (format === 'jsonl') {
    return text.split('\n').flatMap((line, i): [number, SweepResult][] => {
      if (line.trim() === '') return [];
      let row: Partial<SweepResult>;
      try {
        row = JSON.parse(line) as Partial<SweepResult>;
      } catch {
        throw bad(i + 1, 'not a JSON object');
      }
      if (typeof row?.config !== 'string') throw bad(i + 1, 'no "config" field');
      return [[i + 1, withValColumns(row)]];
    });
  }
  let records: string[][];
  try {
    records = parse(text, { skip_empty_lines: true, relax_column_count: false }) as string[][];
  } catch (err) {
    throw new UserError(`--out ${path}: ${(err as Error).message}`);
  }
  const columns = columnsOf(records[0]?.join(','));
  if (!columns) throw bad(1, `the header is not ${SWEEP_COLUMNS.join(',')}`);
  const numeric = new Set([
    'run',
    'seed',
    'lr',
    'batchSize',
    'steps',
    'trainLoss',
    'valLoss',
    'valAccuracy',
    'testLoss',
    'testAccuracy',
    'seconds',
  ]);
  return records.slice(1).map((cells, i) => {
    const row = Object.fromEntries(
      columns.map((c, j) => [c, numeric.has(c) ? (cells[j] === '' ? null : Number(cells[j])) : cells[j] || null]),
    );
    return [i + 2, withValColumns(row)];
  });
}
