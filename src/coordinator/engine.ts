import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { Dataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { createKernels, type KernelName } from '../kernels/select.js';
import { distPath } from '../paths.js';
import { createSharedBuffers, type SharedViews } from '../shared/buffers.js';
import { abortAll, AbortedError, arrive, Command, Ctl, FaultKind, injectTestFault, waitForChange } from '../shared/control.js';
import { summarizeEvaluation, type EvalResult, type Trainer } from '../train/trainer.js';
import { createThreadContext, evaluateRows, trainRows, updateParameters, type ThreadContext } from '../../workers/thread-work.js';
import type { WorkerResult, WorkerTask } from '../../workers/step-worker.js';

export const MAX_THREADS = 128;

/** The one check of a thread count (--threads), used by every entry point before anything starts. */
export function checkThreads(threads: number): void {
  if (!Number.isSafeInteger(threads) || threads < 1 || threads > MAX_THREADS) {
    throw new UserError(`--threads ${threads}: must be an integer from 1 to ${MAX_THREADS}`);
  }
}

/** How long the coordinator waits synchronously at a barrier before it lets the event loop run (to hear of a dead worker). */
const SYNC_WAIT_MS = 20;
/** How long a thread spins before Atomics.wait when every thread has a core of its own (see waitForChange). */
const SPIN_MS = 0.2;
/** How long to wait for workers to start. */
const START_TIMEOUT_MS = 60_000;

export interface EngineOptions {
  threads: number;
  kernels: KernelName;
  batchSize: number;
  lr: number;
}

/** A worker's failure, reported as one line by the CLI (exit code 1). */
export class WorkerFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkerFailure';
  }
}

/**
 * The data-parallel trainer. The coordinator (this thread) is thread 0 and computes its share of every
 * step; N - 1 piscina workers each run one long task (workers/step-worker.ts). A step: write the command,
 * bump CommandGen, phase 1 (rows), barrier, phase 2 (parameter slices), barrier. See DESIGN.md.
 */
export class Engine implements Trainer {
  readonly params: Float32Array;
  readonly order: Uint32Array;
  private readonly ctl: Int32Array;
  private readonly ctx: ThreadContext;
  private readonly spinMs: number;
  private pool: Piscina | null = null;
  private tasks: Promise<WorkerResult>[] = [];
  private failure: Error | null = null;
  /** A command is published and its last barrier not yet passed. */
  private commandOpen = false;

  private constructor(
    private readonly views: SharedViews,
    private readonly memory: WebAssembly.Memory,
    private readonly options: EngineOptions,
  ) {
    this.params = views.params;
    this.order = views.order;
    this.ctl = views.control;
    this.spinMs = options.threads <= availableParallelism() ? SPIN_MS : 0;
    this.ctx = createThreadContext(views, createKernels(options.kernels, memory), 0, options.threads, Math.fround(options.lr));
  }

  static async create(sizes: number[], initialParams: Float32Array, dataset: Dataset, options: EngineOptions): Promise<Engine> {
    const { threads } = options;
    checkThreads(threads);
    const { memory, views } = createSharedBuffers(sizes, threads, options.batchSize, dataset, initialParams);
    const engine = new Engine(views, memory, options);
    engine.armTestFault();
    if (threads > 1) await engine.startWorkers();
    return engine;
  }

  /** Test-only fault injection: LOCKSTEP_TEST_FAULT=thread:step[:exit] makes that thread (0: the coordinator) throw (or exit) at that step. */
  private armTestFault(): void {
    const spec = process.env.LOCKSTEP_TEST_FAULT;
    if (!spec) return;
    const [thread, step, kind] = spec.split(':');
    Atomics.store(this.ctl, Ctl.FaultThread, Number(thread) + 1);
    Atomics.store(this.ctl, Ctl.FaultStep, Number(step));
    Atomics.store(this.ctl, Ctl.FaultKind, kind === 'exit' ? FaultKind.Exit : FaultKind.Throw);
  }

  private async startWorkers(): Promise<void> {
    const workers = this.options.threads - 1;
    this.pool = new Piscina({
      filename: distPath('workers', 'step-worker.js'),
      minThreads: workers,
      maxThreads: workers,
      concurrentTasksPerWorker: 1,
      idleTimeout: 60 * 60 * 1000,
      maxQueue: 0,
    });
    for (let thread = 1; thread <= workers; thread++) {
      const task: WorkerTask = {
        memory: this.memory,
        plan: this.views.plan,
        thread,
        kernels: this.options.kernels,
        lr: this.ctx.lr,
        spinMs: this.spinMs,
      };
      const run = this.pool.run(task) as Promise<WorkerResult>;
      run.catch((err: unknown) => this.recordFailure(thread, err));
      this.tasks.push(run);
    }
    await this.waitAsync(Ctl.Ready, () => Atomics.load(this.ctl, Ctl.Ready) >= workers, START_TIMEOUT_MS, 'workers to start');
  }

  private recordFailure(thread: number, err: unknown): void {
    if (this.failure) return;
    const message = err instanceof Error ? err.message : String(err);
    this.failure = new WorkerFailure(`worker thread ${thread} failed: ${message}`);
    abortAll(this.ctl);
  }

  /** Waits with the event loop running (so piscina can report a dead worker) until `done()` or failure. */
  private async waitAsync(index: number, done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!done()) {
      if (this.failure) throw this.failure;
      if (Atomics.load(this.ctl, Ctl.Abort) !== 0) throw await this.rootCause();
      if (performance.now() > deadline) {
        abortAll(this.ctl);
        throw new WorkerFailure(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
      }
      const seen = Atomics.load(this.ctl, index);
      if (done()) break;
      const result = (Atomics as unknown as AtomicsWithWaitAsync).waitAsync(this.ctl, index, seen, 50);
      if (result.async) await result.value;
    }
    if (this.failure) throw this.failure;
  }

  /** After an abort: the worker's own error, once piscina has delivered it (within a second). */
  private async rootCause(): Promise<Error> {
    const deadline = performance.now() + 1000;
    while (!this.failure && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    return this.failure ?? new WorkerFailure('a worker thread stopped the run');
  }

  /**
   * The coordinator's side of a barrier: spin, then wait synchronously for up to SYNC_WAIT_MS. Returns null
   * once through, or else a promise for the rest of the wait, during which the event loop runs (so piscina
   * can report a dead worker). Why not always async: an await costs microseconds, a step has two barriers,
   * and the workers wait for the coordinator's next command meanwhile.
   */
  private barrier(): Promise<void> | null {
    const gen = arrive(this.ctl, this.options.threads);
    if (gen < 0) return null;
    try {
      if (waitForChange(this.ctl, Ctl.BarrierGen, gen, this.spinMs, SYNC_WAIT_MS)) return null;
    } catch (err) {
      if (err instanceof AbortedError) return this.rootCause().then((cause) => Promise.reject(cause));
      throw err;
    }
    return this.waitAsync(Ctl.BarrierGen, () => Atomics.load(this.ctl, Ctl.BarrierGen) !== gen, Infinity, 'a barrier');
  }

  private publish(command: Command, arg0: number, arg1: number): void {
    if (this.failure) throw this.failure;
    this.commandOpen = command !== Command.Stop;
    Atomics.store(this.ctl, Ctl.Command, command);
    Atomics.store(this.ctl, Ctl.Arg0, arg0);
    Atomics.store(this.ctl, Ctl.Arg1, arg1);
    Atomics.store(this.ctl, Ctl.NextRows, 0);
    Atomics.store(this.ctl, Ctl.NextUpdate, 0);
    Atomics.add(this.ctl, Ctl.CommandGen, 1);
    Atomics.notify(this.ctl, Ctl.CommandGen);
  }

  trainStep(start: number, rows: number): number | Promise<number> {
    Atomics.add(this.ctl, Ctl.StepCount, 1);
    this.publish(Command.Train, start, rows);
    injectTestFault(this.ctl, 0);
    trainRows(this.ctx, start, rows);
    const first = this.barrier();
    return first ? first.then(() => this.finishStep(rows)) : this.finishStep(rows);
  }

  /** Phase 2 of a step and its barrier; returns the step's loss sum. */
  private finishStep(rows: number): number | Promise<number> {
    updateParameters(this.ctx, rows);
    const second = this.barrier();
    return second ? second.then(() => this.stepLoss(rows)) : this.stepLoss(rows);
  }

  private stepLoss(rows: number): number {
    this.commandOpen = false;
    let lossSum = 0;
    for (let r = 0; r < rows; r++) lossSum += this.views.rowLoss[r];
    return lossSum;
  }

  async evaluate(split: 'train' | 'test'): Promise<EvalResult> {
    const count = split === 'train' ? this.views.plan.trainCount : this.views.plan.testCount;
    this.publish(Command.Eval, split === 'train' ? 0 : 1, count);
    evaluateRows(this.ctx, split, count);
    await this.barrier();
    this.commandOpen = false;
    const labels = split === 'train' ? this.views.trainLabels : this.views.testLabels;
    return summarizeEvaluation(this.views.evalPredicted.slice(0, count), labels, this.views.evalLoss);
  }

  async close(): Promise<void> {
    const pool = this.pool;
    if (!pool) return;
    this.pool = null;
    // Stop is read only by workers waiting for a command: if the coordinator left a step half done (it
    // threw), the workers wait at a barrier instead, and only an abort reaches them there.
    if (!this.failure && !this.commandOpen && Atomics.load(this.ctl, Ctl.Abort) === 0) {
      this.publish(Command.Stop, 0, 0);
      await Promise.allSettled(this.tasks);
    } else {
      abortAll(this.ctl);
    }
    await pool.destroy();
  }
}

interface AtomicsWithWaitAsync {
  waitAsync(a: Int32Array, index: number, value: number, timeout?: number): { async: boolean; value: Promise<string> | string };
}
