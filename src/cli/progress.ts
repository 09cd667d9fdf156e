import { lazyPackage } from '../packages.js';
import type { EpochReport, StepInfo } from '../train/train.js';

/** asciichart only for the chart a run prints at its end. */
const asciichart = lazyPackage<typeof import('asciichart')>('asciichart');

/** Live progress is for a person at a terminal: never in JSON mode, never into a pipe or file. */
export function progressEnabled(stream: { isTTY?: boolean }, json: boolean): boolean {
  return stream.isTTY === true && !json;
}

/** Redrawn at most this often, so drawing costs nothing measurable. */
const REDRAW_MS = 100;

/**
 * One line redrawn in place during an epoch: epoch, step, a bar, samples/s, running loss, ETA. The caller
 * clears it before printing the epoch's report line.
 */
export class ProgressLine {
  private lastDraw = 0;
  private epochStart = 0;
  private epochSamples = 0;
  private lossSum = 0;
  private lossRows = 0;
  private epoch = -1;

  constructor(private readonly out: NodeJS.WriteStream) {}

  step(info: StepInfo): void {
    const now = performance.now();
    if (info.epoch !== this.epoch) {
      this.epoch = info.epoch;
      this.epochStart = now;
      this.epochSamples = 0;
      this.lossSum = 0;
      this.lossRows = 0;
    }
    this.epochSamples += info.rows;
    this.lossSum += info.loss * info.rows;
    this.lossRows += info.rows;
    if (now - this.lastDraw < REDRAW_MS && info.stepInEpoch !== info.stepsPerEpoch) return;
    this.lastDraw = now;
    const seconds = (now - this.epochStart) / 1000;
    const rate = seconds > 0 ? this.epochSamples / seconds : 0;
    const fraction = info.stepInEpoch / info.stepsPerEpoch;
    const width = 24;
    const filled = Math.round(fraction * width);
    const eta = fraction > 0 ? (seconds / fraction) * (1 - fraction) : 0;
    const line =
      `epoch ${info.epoch}/${info.epochs} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ` +
      `step ${info.stepInEpoch}/${info.stepsPerEpoch}  ${Math.round(rate).toLocaleString('en-US')} samples/s  ` +
      `loss ${(this.lossSum / this.lossRows).toFixed(4)}  ETA ${eta.toFixed(1)} s`;
    this.out.write(`\r${line.slice(0, (this.out.columns ?? 120) - 1)}\x1b[K`);
  }

  clear(): void {
    this.out.write('\r\x1b[K');
  }
}

/** A small terminal chart of loss and test accuracy per epoch, printed at the end of training. */
export function historyChart(history: EpochReport[]): string {
  if (history.length < 2) return '';
  const loss = history.map((h) => h.trainLoss);
  // Epochs that were not evaluated (--eval-every, no test rows) have no accuracy to draw.
  const acc = history.map((h) => h.testAccuracy * 100).filter((a) => !Number.isNaN(a));
  const opts = { height: 8, format: (x: number) => x.toFixed(3).padStart(8) };
  const lines = ['training loss per epoch', asciichart().plot(loss, opts)];
  if (acc.length >= 2)
    lines.push(
      'test accuracy (%) per epoch',
      asciichart().plot(acc, { height: 8, format: (x: number) => x.toFixed(2).padStart(8) }),
    );
  return lines.join('\n');
}
