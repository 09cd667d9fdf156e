import type { EpochReport, TrainResult } from '../train/train.js';

/** The textbook's per-epoch line, with loss and timing added. */
export function formatEpoch(r: EpochReport): string {
  return (
    `Epoch ${r.epoch}: train acc ${r.trainAcc.toFixed(4)}, test acc ${r.testAcc.toFixed(4)}, ` +
    `loss ${r.loss.toFixed(4)}, test loss ${r.testLoss.toFixed(4)}, ` +
    `${r.trainSeconds.toFixed(2)} s train + ${r.evalSeconds.toFixed(2)} s eval, ${r.optimizer} lr ${formatRate(r.lr)}`
  );
}

/** A learning rate in 4 significant digits, without the float32 value's tail (0.0010000000474974513 → 0.001). */
export function formatRate(lr: number): string {
  return String(Number(lr.toPrecision(4)));
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function formatDone(r: TrainResult): string {
  const accuracy = Number.isNaN(r.testAcc) ? 'no epoch evaluated' : `test acc ${r.testAcc.toFixed(4)}`;
  return (
    `${r.interrupted ? 'Stopped' : 'Done'}: ${plural(r.epochs, 'epoch')}, ${plural(r.steps, 'step')}, ${accuracy}, ` +
    `${r.seconds.toFixed(2)} s, params sha256 ${r.paramsSha256}`
  );
}
