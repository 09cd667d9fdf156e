import type { EpochReport, TrainResult } from '../train/train.js';

/** The textbook's per-epoch line, with loss and timing added. */
export function formatEpoch(r: EpochReport): string {
  return (
    `Epoch ${r.epoch}: train acc ${r.trainAcc.toFixed(4)}, test acc ${r.testAcc.toFixed(4)}, ` +
    `loss ${r.loss.toFixed(4)}, test loss ${r.testLoss.toFixed(4)}, ` +
    `${r.trainSeconds.toFixed(2)} s train + ${r.evalSeconds.toFixed(2)} s eval`
  );
}

export function formatDone(r: TrainResult): string {
  return (
    `Done: ${r.epochs} epochs, ${r.steps} steps, test acc ${r.testAcc.toFixed(4)}, ` +
    `${r.seconds.toFixed(2)} s, params sha256 ${r.paramsSha256}`
  );
}
