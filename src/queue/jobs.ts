import { createHash } from 'node:crypto';
import type { SweepResult } from '../experiments/sweep.js';
import { stableJson } from '../stable-json.js';
import { requirePackage } from '../packages.js';
import { resolveConfig, type TrainConfig, type TrainOptions } from '../train/config.js';
import type { DataFileHashes } from './data-files.js';

/** BullMQ, required rather than imported (see requirePackage). */
export const bullmq = requirePackage<typeof import('bullmq')>('bullmq');

/** The BullMQ queue every sweep and worker of one Redis database share: a run's job id tells runs apart. */
export const QUEUE_NAME = 'lockstep-runs';

/** What a job carries: the run's number in the sweep that planned it, its settings, its data files' sha256, and the lockstep version that planned it. */
export interface RunJobData {
  run: number;
  config: string;
  dataFiles: DataFileHashes;
  /** A worker of another version refuses the run: a default or the arithmetic may differ. Absent: before 0.1.0 kept it. */
  version?: string;
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
 * A run's job id: its settings with every default filled in (so `--lr 0.5`, the default, names the same run
 * as no --lr), its data files' sha256 and the lockstep version, so one grid never holds a run twice (BullMQ
 * adds no job whose id it has), a sweep run again finds its runs, and a new version runs them anew. No ':'
 * (BullMQ refuses it in custom ids).
 */
export function runJobId(options: TrainOptions, dataFiles: DataFileHashes, version: string): string {
  const settings = resolveConfig(options) as Partial<TrainConfig>;
  delete settings.threads; // they change no bit
  const key = stableJson({ settings: stableJson(settings), dataFiles: stableJson(dataFiles), version });
  return `run-${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
}

/**
 * A lost worker's lock runs out after LOCK_MS and another worker's stalled check (every STALLED_MS) gives its
 * run back to the queue; a live worker renews the lock every LOCK_MS / 2 from an event loop that only waits
 * on its runs' processes, so short times cost nothing and bring a lost run back within seconds.
 */
export const LOCK_MS = 10_000;
export const STALLED_MS = 5_000;
