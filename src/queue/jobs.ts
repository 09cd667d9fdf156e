import { createHash } from 'node:crypto';
import { stableJson, type SweepResult } from '../experiments/sweep.js';
import { requirePackage } from '../packages.js';
import type { DataFileHashes } from './data-files.js';

/** BullMQ, required rather than imported (see requirePackage). */
export const bullmq = requirePackage<typeof import('bullmq')>('bullmq');

/** The BullMQ queue every sweep and worker of one Redis database share: a run's job id tells runs apart. */
export const QUEUE_NAME = 'lockstep-runs';

/** What a job carries: the run's number in the sweep that planned it, its settings, and its data files' sha256. */
export interface RunJobData {
  run: number;
  config: string;
  dataFiles: DataFileHashes;
}

/** Where and when a run ran, from the queue's own records (milliseconds since the epoch). */
export interface QueueFacts {
  jobId: string;
  /** os.hostname() of the worker, and hostname/pid: two workers of one machine differ. */
  host: string;
  worker: string;
  queuedAt: number;
  startedAt: number;
  finishedAt: number;
  /** When the sweep that printed it learnt of it. */
  reportedAt: number;
}

/** A job's return value: the run's row, and who ran it. */
export type RunJobResult = SweepResult & Pick<QueueFacts, 'host' | 'worker'>;

/** A finished run as the queue's sweep reports it. */
export type QueuedSweepResult = SweepResult & { queue: QueueFacts };

/**
 * A run's job id: its settings and its data files' sha256, so one grid never holds a run twice (BullMQ adds
 * no job whose id it has) and a sweep run again finds its runs. No ':' (BullMQ refuses it in custom ids).
 */
export function runJobId(config: string, dataFiles: DataFileHashes): string {
  return `run-${createHash('sha256').update(stableJson({ config, dataFiles })).digest('hex').slice(0, 40)}`;
}

/**
 * A lost worker's lock runs out after LOCK_MS and another worker's stalled check (every STALLED_MS) gives its
 * run back to the queue; a live worker renews the lock every LOCK_MS / 2 from an event loop that only waits
 * on its runs' processes, so short times cost nothing and bring a lost run back within seconds.
 */
export const LOCK_MS = 10_000;
export const STALLED_MS = 5_000;
