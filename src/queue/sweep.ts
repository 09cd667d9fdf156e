import type { Queue, QueueEvents } from 'bullmq';
import { EXIT_FAILURE, UserError } from '../errors.js';
import { plural } from '../words.js';
import { packageVersion } from '../paths.js';
import {
  appendResult,
  prepareSweep,
  startResultsFile,
  type SweepOptions,
  type SweepResult,
  type SweepRun,
} from '../experiments/sweep.js';
import { checkQueueReachable, connectionProblem, parseQueueUrl, type QueueAddress } from './connection.js';
import { hashDataFiles } from './data-files.js';
import { bullmq, QUEUE_NAME, runJobId, type QueuedSweepResult, type RunJobData, type RunJobResult } from './jobs.js';

export interface QueueSweepOptions extends Pick<SweepOptions, 'base' | 'grid' | 'out' | 'signal'> {
  /** redis://[:PASSWORD@]HOST:PORT[/DB] */
  url: string;
  /** wait: enqueue, then report each run as it finishes; detach: enqueue and return; status: enqueue nothing, report what is there. */
  mode: 'wait' | 'detach' | 'status';
  /** Once the runs are enqueued (or, for status, looked up), before any result is reported. */
  onStart?: (counts: QueueSweepCounts) => void;
  /** Each run finished and not already in `out` (status: each finished run), as it is learnt. */
  onResult?: (result: QueuedSweepResult, finished: number, total: number) => void;
  /** One line: the queue was lost (it is waited for) or is back. */
  onNotice?: (message: string) => void;
}

export interface QueueSweepCounts {
  /** The queue's URL without its password. */
  queue: string;
  runs: number;
  /** Runs found finished in `out`. */
  inOut: number;
  /** Runs found finished on the queue (and not in `out`). */
  done: number;
  /** Runs added by this call (failed runs given back to the queue included). */
  enqueued: number;
  /** Runs already waiting or running on the queue. */
  queued: number;
  /** status only: runs running now, and runs that failed. */
  active: number;
  failed: number;
}

export interface QueueSweepOutcome {
  counts: QueueSweepCounts;
  /** Every finished run in grid order, those in `out` included. */
  results: (SweepResult | QueuedSweepResult)[];
  /** Runs that failed, in grid order, with their error. */
  failed: { run: number; config: string; error: string }[];
  /** Runs not finished when the call returned (detach, status, or the signal). */
  unfinished: number;
  interrupted: boolean;
}

/** How often a waiting sweep looks at every unfinished run, besides the queue's events: a lost event or a Redis that lost its data is found. */
const RECHECK_MS = 3000;

/**
 * `lockstep sweep --queue URL`: the grid of `sweep` as jobs on a BullMQ queue that `lockstep worker`s drain.
 * The grid, the results file, the data files and the queue are all checked before the first job is added,
 * and the jobs are added in one transaction, so a refused sweep enqueues nothing.
 */
export async function queueSweep(options: QueueSweepOptions): Promise<QueueSweepOutcome> {
  const address = parseQueueUrl(options.url);
  const { runs, done } = prepareSweep({
    base: options.base,
    grid: options.grid,
    out: options.out,
    threads: 1,
    parallel: 1,
  });
  // Every run of a grid reads the same data (the grid's axes name no file).
  const dataFiles = hashDataFiles(runs[0].options);
  await checkQueueReachable(address);
  const { connection } = address;
  const queue = new bullmq.Queue<RunJobData, RunJobResult>(QUEUE_NAME, { connection });
  const events = options.mode === 'wait' ? new bullmq.QueueEvents(QUEUE_NAME, { connection }) : null;
  const stopWatching = watchConnection(address, [queue, events], options.onNotice);
  try {
    // Listening before looking: a run that finishes in between is seen by one or the other.
    await Promise.all([queue.waitUntilReady(), events?.waitUntilReady()]);
    return await new QueueSweep(options, address, queue, events, runs, done, dataFiles).run();
  } finally {
    const lost = stopWatching.lost();
    stopWatching();
    // close() sends QUIT, which waits for a lost queue to come back: a lost one is disconnected.
    if (lost) {
      for (const holder of [queue, events]) if (holder) (await holder.client).disconnect();
    } else {
      await Promise.all([events?.close(), queue.close()]);
    }
  }
}

class QueueSweep {
  private readonly byId = new Map<string, SweepRun>();
  private readonly results = new Map<string, SweepResult | QueuedSweepResult>();
  private readonly failed = new Map<string, string>();
  private readonly pending = new Set<string>();
  /** This lockstep's version, in each job's id and data (read once: packageVersion reads package.json). */
  private readonly version = packageVersion();

  constructor(
    private readonly options: QueueSweepOptions,
    private readonly address: QueueAddress,
    private readonly queue: Queue<RunJobData, RunJobResult>,
    private readonly events: QueueEvents | null,
    private readonly runs: SweepRun[],
    done: Map<string, SweepResult>,
    private readonly dataFiles: Record<string, string>,
  ) {
    for (const run of runs) {
      if (done.has(run.config)) this.results.set(run.config, done.get(run.config)!);
      else this.byId.set(runJobId(run.options, dataFiles, this.version), run);
    }
  }

  async run(): Promise<QueueSweepOutcome> {
    const { mode, out, signal } = this.options;
    // --status writes the runs finished so far too: a detached sweep's results file is filled this way.
    if (out !== undefined) startResultsFile(out);
    this.events?.on('completed', ({ jobId }) => void this.look(jobId));
    this.events?.on('failed', ({ jobId }) => void this.look(jobId));
    const counts: QueueSweepCounts = {
      queue: this.address.shown,
      runs: this.runs.length,
      inOut: this.results.size,
      done: 0,
      enqueued: 0,
      queued: 0,
      active: 0,
      failed: 0,
    };
    const states = await Promise.all(
      [...this.byId.keys()].map(async (id) => [id, await this.queue.getJobState(id)] as const),
    );
    const toAdd: string[] = [];
    const toRetry: string[] = [];
    const finished: string[] = [];
    for (const [id, state] of states) {
      if (state === 'completed') finished.push(id);
      else if (state === 'failed' && mode !== 'status') toRetry.push(id);
      else if (state === 'failed') finished.push(id);
      else if (state === 'unknown') toAdd.push(id);
      else counts[state === 'active' ? 'active' : 'queued']++;
      if (state !== 'completed' && !(state === 'failed' && mode === 'status')) this.pending.add(id);
    }
    if (mode !== 'status') {
      await this.add(toAdd);
      // A failed run is given another try by a sweep run again (BullMQ's retry keeps its id and its history).
      for (const id of toRetry) await (await this.queue.getJob(id))?.retry('failed');
      counts.enqueued = toAdd.length + toRetry.length;
      counts.queued += counts.active;
      counts.active = 0;
    }
    counts.done = states.filter(([, state]) => state === 'completed').length;
    counts.failed = finished.length - counts.done;
    // The counts first, then each finished run's row.
    this.options.onStart?.(counts);
    for (const id of finished) await this.look(id);
    if (mode === 'wait') await this.waitForAll(signal);
    const inGrid = <T>(m: Map<string, T>) => this.runs.filter((r) => m.has(r.config));
    return {
      counts,
      results: inGrid(this.results).map((r) => this.results.get(r.config)!),
      failed: inGrid(this.failed).map((r) => ({ run: r.run, config: r.config, error: this.failed.get(r.config)! })),
      unfinished: this.pending.size,
      interrupted: signal?.aborted ?? false,
    };
  }

  /** All the jobs in one transaction (BullMQ's addBulk is one MULTI): all or none are added. */
  private async add(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.queue.addBulk(
      ids.map((jobId) => {
        const run = this.byId.get(jobId)!;
        // One attempt: a run that fails is reported, not run again; a lost worker's run comes back through BullMQ's stalled check.
        return {
          name: 'run',
          data: { run: run.run, config: run.config, dataFiles: this.dataFiles, version: this.version },
          opts: { jobId, attempts: 1 },
        };
      }),
    );
  }

  /** A job the queue says finished, or that may have: its result or error is taken once. */
  private async look(id: string): Promise<void> {
    const run = this.byId.get(id);
    if (run === undefined || this.results.has(run.config) || this.failed.has(run.config)) return;
    const job = await bullmq.Job.fromId<RunJobData, RunJobResult>(this.queue, id);
    if (job === undefined || this.results.has(run.config) || this.failed.has(run.config)) return;
    if (job.finishedOn !== undefined && job.returnvalue && typeof job.returnvalue === 'object') {
      const { host, worker, ...row } = job.returnvalue;
      const result: QueuedSweepResult = {
        ...row,
        run: run.run,
        queue: {
          jobId: id,
          host,
          worker,
          queuedAt: job.timestamp,
          startedAt: job.processedOn ?? job.timestamp,
          finishedAt: job.finishedOn,
          reportedAt: Date.now(),
        },
      };
      this.results.set(run.config, result);
      this.pending.delete(id);
      if (this.options.out !== undefined) appendResult(this.options.out, { ...row, run: run.run });
      this.options.onResult?.(result, this.results.size, this.runs.length);
    } else if (job.failedReason && (await job.isFailed())) {
      this.failed.set(run.config, job.failedReason);
      this.pending.delete(id);
    }
    this.wake?.();
  }

  private wake?: () => void;

  /** Until every run finished or failed, or the signal: the queue's events, and a look at every unfinished run now and then. */
  private async waitForAll(signal: AbortSignal | undefined): Promise<void> {
    let resolveAborted = () => {};
    const aborted = new Promise<void>((resolve) => (resolveAborted = resolve));
    const onAbort = () => {
      this.wake?.();
      resolveAborted();
    };
    signal?.addEventListener('abort', onAbort);
    try {
      while (this.pending.size > 0 && !signal?.aborted) {
        const nap = new Promise<void>((resolve) => {
          this.wake = resolve;
          setTimeout(resolve, RECHECK_MS).unref();
        });
        await nap;
        // A recheck waits for a lost queue to come back: a stop does not wait for it.
        if (this.pending.size > 0 && !signal?.aborted) await Promise.race([this.recheck(), aborted]);
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  private async recheck(): Promise<void> {
    let states: (readonly [string, string])[];
    try {
      states = await Promise.all([...this.pending].map(async (id) => [id, await this.queue.getJobState(id)] as const));
    } catch {
      return; // the queue is away: watchConnection said so, and the next look may find it back
    }
    const lost = states.filter(([, state]) => state === 'unknown').map(([id]) => id);
    if (lost.length > 0) {
      this.options.onNotice?.(
        `${lost.length} of the sweep's runs are no longer on the queue ${this.address.shown} (did Redis restart without its data?): enqueued again`,
      );
      await this.add(lost);
    }
    for (const [id, state] of states) if (state === 'completed' || state === 'failed') await this.look(id);
  }
}

/** One notice when a connection to the queue is lost (BullMQ keeps trying), and one when it is back. */
export function watchConnection(
  address: QueueAddress,
  holders: ({
    on(event: 'error', f: (err: Error) => void): unknown;
    client: Promise<{ on(event: string, f: () => void): unknown }>;
  } | null)[],
  onNotice: ((message: string) => void) | undefined,
): (() => void) & { lost: () => boolean } {
  let lost = false;
  let stopped = false;
  const lose = (why: string) => {
    if (lost || stopped) return;
    lost = true;
    onNotice?.(`lost the queue ${address.shown} (${why}): waiting for it to come back`);
  };
  for (const holder of holders) {
    if (holder === null) continue;
    holder.on('error', (err) => {
      if (stopped) return;
      // Not the connection: a job's keys gone with a Redis that restarted empty, say; its run is enqueued again.
      if (!/^E[A-Z]+$/.test(String((err as NodeJS.ErrnoException).code)) && !/connection|closed/i.test(err.message)) {
        return onNotice?.(`the queue ${address.shown} answered: ${err.message.split('\n')[0]}`);
      }
      lose(connectionProblem(err));
    });
    void holder.client.then(
      (client) => {
        // A server that closes the connection cleanly (a restart) raises no error, only this.
        client.on('close', () => lose('the connection was closed'));
        client.on('ready', () => {
          if (!lost || stopped) return;
          lost = false;
          onNotice?.(`the queue ${address.shown} is back`);
        });
      },
      () => {},
    );
  }
  return Object.assign(() => void (stopped = true), { lost: () => lost });
}

/** The one line a sweep with failed runs ends with: each failed run's number, settings and error. */
export function failedRunsError(failed: QueueSweepOutcome['failed'], total: number): UserError {
  const list = failed.map((f) => `run ${f.run} (${f.config}): ${f.error.replace(/\s*\n\s*/g, ' ')}`).join('; ');
  return new UserError(`sweep: ${failed.length} of ${plural(total, 'run')} failed: ${list}`, EXIT_FAILURE);
}
