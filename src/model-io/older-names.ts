import type { EpochReport } from '../train/epoch-loop.js';

/**
 * The names EpochReport's fields had before they took the --log's (older checkpoints' history, saved train --json
 * output): then `steps` counted the epoch's steps and `totalSteps` the run's, which a report with totalSteps marks.
 */
const OLDER_NAMES: Record<string, keyof EpochReport> = {
  steps: 'epochSteps',
  totalSteps: 'steps',
  loss: 'trainLoss',
  trainAcc: 'trainAccuracy',
  valAcc: 'valAccuracy',
  testAcc: 'testAccuracy',
};

/** An epoch report with any older field names given today's. */
export function withCurrentNames<T extends object>(report: T): T {
  if (!('totalSteps' in report) && !('trainAcc' in report)) return report;
  return Object.fromEntries(Object.entries(report).map(([k, v]) => [OLDER_NAMES[k] ?? k, v])) as T;
}
