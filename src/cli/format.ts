import { fourDigits, plural } from '../words.js';
import type { EpochReport, TrainResult } from '../train/train.js';

/** The textbook's per-epoch line, with loss and timing added. */
export function formatEpoch(r: EpochReport): string {
  // What the epoch did not evaluate (--eval-every, --no-train-eval, no test or validation rows) is left out.
  const parts = [
    ['train acc', r.trainAccuracy],
    ['val acc', r.valAccuracy],
    ['test acc', r.testAccuracy],
    ['loss', r.trainLoss],
    ['val loss', r.valLoss],
    ['test loss', r.testLoss],
  ] as const;
  const shown = parts.filter(([, v]) => !Number.isNaN(v)).map(([name, v]) => `${name} ${v.toFixed(4)}`);
  return `Epoch ${r.epoch}: ${[...shown, `${r.trainSeconds.toFixed(2)} s train + ${r.evalSeconds.toFixed(2)} s eval`, `${r.optimizer} lr ${fourDigits(r.lr)}`].join(', ')}`;
}

export function formatDone(r: TrainResult): string {
  return (
    `${r.interrupted ? 'Stopped' : 'Done'}: ${plural(r.epochs, 'epoch')}, ${plural(r.steps, 'step')}${resumedSteps(r)}, ${doneAccuracy(r)}, ` +
    `${r.seconds.toFixed(2)} s, params sha256 ${r.paramsSha256}`
  );
}

/** A resumed run's steps since its checkpoint: the Done line's seconds are theirs, its epochs and steps the whole run's. */
function resumedSteps(r: TrainResult): string {
  return r.resumedAt > 0 ? ` (${r.steps - r.resumedAt} after resuming at step ${r.resumedAt})` : '';
}

/** The Done line's accuracy: the test split's, else (a run without one) the last evaluated split's. */
function doneAccuracy(r: TrainResult): string {
  if (!Number.isNaN(r.testAccuracy)) return `test acc ${r.testAccuracy.toFixed(4)}`;
  if (r.history.some((e) => !Number.isNaN(e.testAccuracy))) return 'no epoch evaluated';
  const last = r.history.at(-1);
  if (last && !Number.isNaN(last.valAccuracy)) return `no test split, val acc ${last.valAccuracy.toFixed(4)}`;
  if (last && !Number.isNaN(last.trainAccuracy)) return `no test split, train acc ${last.trainAccuracy.toFixed(4)}`;
  return 'no epoch evaluated';
}
