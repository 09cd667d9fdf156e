import { availableParallelism } from 'node:os';
import type { Piscina } from 'piscina';
import type { Dataset } from '../data/dataset.js';
import { AbortedError, WorkerFailure } from '../errors.js';
import { createKernels, type KernelName } from '../kernels/select.js';
import { lazyPackage } from '../packages.js';
import { distPath } from '../paths.js';
import { createSharedBuffers, PROFILE_MARKS, type SharedViews } from '../shared/buffers.js';
import { abortAll, Command, Ctl, FaultKind } from '../shared/control.js';
import { SPLITS, summarizeEvaluation, type EvalResult, type SplitName, type Trainer } from '../model/trainer.js';
import { modelLayout } from '../model/layout.js';
import { stateArrays, updateStep, writeUpdate, type OptimizerSettings } from '../optim/optimizer.js';
import { epochSteps } from '../optim/schedule.js';
import { createThreadContext, evaluateSplit, trainStep, type ThreadContext } from '../../workers/step.js';
import type { WorkerResult, WorkerTask } from '../../workers/step-worker.js';
import { checkThreads } from './threads.js';

/** How long a thread spins before Atomics.wait when every thread has a core of its own (see waitForChange). */
const SPIN_MS = 0.2;
/** How long to wait for workers to start. */
const START_TIMEOUT_MS = 60_000;
/** piscina only when a run has more than one thread. */
const piscina = lazyPackage<typeof import('piscina')>('piscina');

export interface EngineOptions {
  threads: number;
  kernels: KernelName;
  batchSize: number;
  /** The optimizer and its schedule; absent: an engine that only evaluates. */
  optimizer?: OptimizerSettings;
  /** The optimizer's state to start from (a resumed run), stateArrays × the parameter count; default zeros. */
  optimizerState?: Float32Array;
  /** Keep per-thread timestamps of the last N steps (bench --profile); 0 or absent: none. */
  profileSteps?: number;
}

/** Each thread's timestamps (ms, its own clock) of its last profiled steps: [steps][PROFILE_MARKS]. */
export interface StepProfile {
  threads: number;
  steps: number;
  /** Where the oldest step sits in each thread's ring of samples (a ring of samples[t].length / PROFILE_MARKS steps). */
  oldest: number;
  samples: Float64Array[];
}

/**
 * The data-parallel trainer. The coordinator (this thread) publishes one command per step in the control
 * block and then runs the step as thread 0 (workers/step.ts), like each of the N - 1 piscina workers that
 * run one long task (workers/step-worker.ts). It learns of a failed worker through the control block's
 * Abort word and of the cause from piscina. ARCHITECTURE.md, "The step".
 */
export class Engine implements Trainer {
  readonly params: Float32Array;
  readonly order: Uint32Array;
  readonly optimizerState: Float32Array;
  private readonly ctl: Int32Array;
  private readonly ctx: ThreadContext;
  private pool: Piscina | null = null;
  private tasks: Promise<WorkerResult>[] = [];
  private failure: Error | null = null;
  /** A command is published and its last barrier not yet passed. */
  private commandOpen = false;
  private readonly stepsPerEpoch: number;

  private constructor(
    private readonly views: SharedViews,
    private readonly memory: WebAssembly.Memory,
    private readonly options: EngineOptions,
  ) {
    this.params = views.params;
    this.order = views.order;
    this.optimizerState = views.optimizerState;
    this.ctl = views.control;
    this.ctx = createThreadContext(views, createKernels(options.kernels, memory), 0);
    this.stepsPerEpoch = epochSteps(views.plan.trainCount, options.batchSize);
  }

  static async create(
    layers: number[],
    initialParams: Float32Array,
    dataset: Dataset,
    options: EngineOptions,
  ): Promise<Engine> {
    const { threads } = options;
    checkThreads(threads);
    // A spinner takes the core from the thread it waits for when threads outnumber cores.
    const spinMs = threads <= availableParallelism() ? SPIN_MS : 0;
    const paramCount = modelLayout(layers).paramCount;
    const optimizerState =
      options.optimizerState ??
      new Float32Array(options.optimizer ? stateArrays(options.optimizer.optimizer) * paramCount : 0);
    const { memory, views } = createSharedBuffers(layers, threads, options.batchSize, dataset, initialParams, {
      spinMs,
      profileSteps: options.profileSteps ?? 0,
      optimizerState,
    });
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
    this.pool = new (piscina().Piscina)({
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
      };
      const run = this.pool.run(task) as Promise<WorkerResult>;
      run.catch((err: unknown) => this.recordFailure(thread, err));
      this.tasks.push(run);
    }
    await this.waitAsync(
      Ctl.Ready,
      () => Atomics.load(this.ctl, Ctl.Ready) >= workers,
      START_TIMEOUT_MS,
      'workers to start',
    );
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

  private publish(command: Command, arg0: number, arg1: number): void {
    if (this.failure) throw this.failure;
    this.commandOpen = command !== Command.Stop;
    Atomics.store(this.ctl, Ctl.Command, command);
    Atomics.store(this.ctl, Ctl.Arg0, arg0);
    Atomics.store(this.ctl, Ctl.Arg1, arg1);
    Atomics.store(this.ctl, Ctl.NextChunk, 0);
    Atomics.store(this.ctl, Ctl.NextBlock, 0);
    Atomics.add(this.ctl, Ctl.CommandGen, 1);
    Atomics.notify(this.ctl, Ctl.CommandGen);
  }

  trainStep(start: number, rows: number, step: number): number | Promise<number> {
    const { optimizer } = this.options;
    if (!optimizer) throw new Error('Engine.trainStep: this engine was created without an optimizer');
    // Before the command is published, so every thread reads this step's update.
    writeUpdate(this.views.update, updateStep(optimizer, this.stepsPerEpoch, step), this.params, this.optimizerState);
    Atomics.add(this.ctl, Ctl.StepCount, 1);
    this.publish(Command.Train, start, rows);
    try {
      trainStep(this.ctx, start, rows);
    } catch (err) {
      return this.failed(err);
    }
    this.commandOpen = false;
    let lossSum = 0;
    for (let r = 0; r < rows; r++) lossSum += this.views.rowLoss[r];
    return lossSum;
  }

  async evaluate(split: SplitName): Promise<EvalResult> {
    const count = this.views.plan[`${split}Count`];
    this.publish(Command.Eval, SPLITS.indexOf(split), count);
    try {
      evaluateSplit(this.ctx, split, count);
    } catch (err) {
      return this.failed(err);
    }
    this.commandOpen = false;
    const labels = this.views[`${split}Labels`];
    return summarizeEvaluation(this.views.evalPredicted.slice(0, count), labels, this.views.evalLoss);
  }

  /** Another thread failed while this one waited for it: the worker's own error, once piscina has it. */
  private failed(err: unknown): Promise<never> {
    if (err instanceof AbortedError) return this.rootCause().then((cause) => Promise.reject(cause));
    throw err;
  }

  /** Each thread's profile samples of the last profileSteps steps, copied out (null when not profiling). */
  profile(): StepProfile | null {
    const { threads, profileSteps } = this.views.plan;
    if (profileSteps === 0) return null;
    const per = profileSteps * PROFILE_MARKS;
    const samples = Array.from({ length: threads }, (_, t) => this.views.profile.slice(t * per, (t + 1) * per));
    const taken = Atomics.load(this.ctl, Ctl.StepCount);
    return {
      threads,
      // Not the last step: a worker may not have written its last mark yet when this thread reads the ring.
      steps: Math.max(0, Math.min(profileSteps, taken) - 1),
      oldest: taken < profileSteps ? 0 : taken % profileSteps,
      samples,
    };
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
  waitAsync(
    a: Int32Array,
    index: number,
    value: number,
    timeout?: number,
  ): { async: boolean; value: Promise<string> | string };
}
