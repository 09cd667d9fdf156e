import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Job } from 'bullmq';
import { UserError } from '../errors.js';
import { makeScratchDir } from '../fs/scratch-dir.js';
import { checkThreads } from '../coordinator/threads.js';
import { checkCounts } from '../options/check.js';
import { trainRun, type SweepResult } from '../experiments/sweep.js';
import type { TrainOptions } from '../train/config.js';
import { packageVersion } from '../paths.js';
import { checkQueueReachable, parseQueueUrl } from './connection.js';
import { checkDataFiles } from './data-files.js';
import { bullmq, LOCK_MS, QUEUE_NAME, STALLED_MS, type RunJobData, type RunJobResult } from './jobs.js';
import { watchConnection } from './sweep.js';

export interface QueueWorkerOptions {
  /** redis://[:PASSWORD@]HOST:PORT[/DB] */
  url: string;
  /** Threads of each run. */
  threads: number;
  /** Runs at once. */
  parallel: number;
  /** Aborting it takes no new run, lets the current ones finish, then returns. */
  signal: AbortSignal;
  /** Aborting it kills the current runs at once and gives them back to the queue, then returns. */
  killSignal?: AbortSignal;
  onEvent?: (event: QueueWorkerEvent) => void;
}

export type QueueWorkerEvent =
  | { event: 'worker-ready'; queue: string; worker: string }
  | { event: 'worker-run'; run: number; jobId: string; config: string }
  | ({ event: 'worker-done'; jobId: string } & SweepResult)
  | { event: 'worker-failed'; run: number; jobId: string; config: string; error: string }
  | { event: 'worker-handed-back'; run: number; jobId: string }
  | { event: 'notice'; message: string };

export interface QueueWorkerOutcome {
  finished: number;
  failed: number;
  handedBack: number;
}

/** Resolves once every run's process has ended, or at the kill signal. */
function runsEnded(children: Set<ChildProcess>, killSignal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (children.size > 0 && !killSignal?.aborted) return;
      clearInterval(timer);
      resolve();
    };
    const timer = setInterval(check, 100);
    check();
  });
}

/**
 * `lockstep worker --queue URL`: takes runs from the queue and trains each as `sweep` does (its own `lockstep
 * train --config` process, so its result equals the same run alone, bit for bit), `parallel` at a time,
 * until the signal. A run that fails, or whose data files differ here, is failed once (no retry); a run
 * this worker loses (killed, machine gone) goes back to the queue through BullMQ's stalled-job check.
 */
export async function runQueueWorker(options: QueueWorkerOptions): Promise<QueueWorkerOutcome> {
  const { threads, parallel, signal, killSignal, onEvent } = options;
  // Checked here, not by each run: a bad count would fail every run this worker took.
  checkThreads(threads);
  checkCounts({ '--parallel': parallel });
  const address = parseQueueUrl(options.url);
  await checkQueueReachable(address);
  const host = hostname();
  const me = `${host}/${process.pid}`;
  const children = new Set<ChildProcess>();
  const configDir = makeScratchDir('worker');
  const outcome: QueueWorkerOutcome = { finished: 0, failed: 0, handedBack: 0 };
  // Stops the worker: the caller's signal, or a run planned by another lockstep version.
  const stopped = new AbortController();
  const stop = () => stopped.abort();
  signal.addEventListener('abort', stop, { once: true });
  const version = packageVersion();
  let otherVersion: UserError | undefined;
  const fail = (job: Job<RunJobData>, error: string): never => {
    outcome.failed++;
    onEvent?.({ event: 'worker-failed', run: job.data.run, jobId: job.id!, config: job.data.config, error });
    throw new bullmq.UnrecoverableError(error);
  };
  const processor = async (job: Job<RunJobData, RunJobResult>, token?: string): Promise<RunJobResult> => {
    const { run, config, dataFiles } = job.data;
    if (job.data.version !== version) {
      // Its defaults or arithmetic may differ from this version's: given back for a worker of its own version.
      otherVersion ??= new UserError(
        `--queue ${address.shown}: run ${run} was planned by lockstep ${job.data.version ?? 'before 0.1.0'}, and this worker is lockstep ${version}; run the same version on every machine (the run is back on the queue)`,
      );
      await job.moveToWait(token);
      stop();
      throw new bullmq.WaitingError();
    }
    try {
      checkDataFiles(dataFiles);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      return fail(job, err.message);
    }
    onEvent?.({ event: 'worker-run', run, jobId: job.id!, config });
    // A directory per job: runs of two sweeps may share a number, and so a config file's name.
    const jobDir = mkdtempSync(join(configDir, 'job-'));
    const trained = await trainRun(
      { run, options: JSON.parse(config) as TrainOptions, config },
      threads,
      jobDir,
      children,
    ).finally(() => rmSync(jobDir, { recursive: true, force: true }));
    if ('result' in trained) {
      outcome.finished++;
      onEvent?.({ event: 'worker-done', jobId: job.id!, ...trained.result });
      return { ...trained.result, host, worker: me };
    }
    if (killSignal?.aborted) {
      // With the queue gone the run cannot be given back: its lock lapses, and the stalled check does it.
      if (stopWatching.lost()) throw new bullmq.WaitingError();
      // BullMQ's way to give an active job back: it waits for the next worker, its attempts untouched.
      await job.moveToWait(token);
      outcome.handedBack++;
      onEvent?.({ event: 'worker-handed-back', run, jobId: job.id! });
      throw new bullmq.WaitingError();
    }
    return fail(job, trained.error);
  };
  const worker = new bullmq.Worker<RunJobData, RunJobResult>(QUEUE_NAME, processor, {
    connection: address.connection,
    concurrency: parallel,
    lockDuration: LOCK_MS,
    stalledInterval: STALLED_MS,
    autorun: false,
  });
  const stopWatching = watchConnection(address, [worker], (message) => onEvent?.({ event: 'notice', message }));
  const killAll = () => {
    for (const child of children) child.kill('SIGKILL');
  };
  killSignal?.addEventListener('abort', killAll);
  try {
    await worker.waitUntilReady();
    onEvent?.({ event: 'worker-ready', queue: address.shown, worker: me });
    const running = worker.run();
    if (!stopped.signal.aborted)
      await new Promise((resolve) => stopped.signal.addEventListener('abort', resolve, { once: true }));
    // close() takes no new job and waits for the current ones (or for their hand-back, after the kill signal).
    // With the queue lost it would wait for the queue too: the runs' processes are waited for here, then it is
    // forced, and its loop, which cannot settle without the queue, is not waited for.
    const lost = stopWatching.lost();
    stopWatching();
    if (lost) {
      await runsEnded(children, killSignal);
      await worker.close(true);
      running.catch(() => {});
    } else {
      await worker.close();
      await running;
    }
    if (otherVersion) throw otherVersion;
    return outcome;
  } finally {
    signal.removeEventListener('abort', stop);
    killSignal?.removeEventListener('abort', killAll);
    stopWatching();
    killAll();
    rmSync(configDir, { recursive: true, force: true });
  }
}
