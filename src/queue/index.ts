/** Sweeps across machines (issue 23): a BullMQ queue on the user's Redis that `lockstep worker`s drain. */
export { parseQueueUrl, checkQueueReachable, type QueueAddress } from './connection.js';
export { dataFiles, hashDataFiles, checkDataFiles, type DataFileHashes } from './data-files.js';
export {
  QUEUE_NAME,
  runJobId,
  type QueueFacts,
  type QueuedSweepResult,
  type RunJobData,
  type RunJobResult,
} from './jobs.js';
export {
  queueSweep,
  failedRunsError,
  type QueueSweepCounts,
  type QueueSweepOptions,
  type QueueSweepOutcome,
} from './sweep.js';
export { runQueueWorker, type QueueWorkerEvent, type QueueWorkerOptions, type QueueWorkerOutcome } from './worker.js';
