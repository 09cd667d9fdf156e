import { formatDone, formatEpoch } from '../report/format.js';
import { train } from '../train/train.js';
import { print, toTrainOptions, type TrainingArgs } from './flags.js';
import { onStopSignals } from './signals.js';

export const EXIT_INTERRUPTED = 130;

export async function trainCommand(args: TrainingArgs): Promise<number> {
  const stop = onStopSignals();
  try {
    const result = await train(toTrainOptions(args), {
      signal: stop.signal,
      onEpoch: (r) => print(args.json ? JSON.stringify(r) : formatEpoch(r)),
    });
    const { params: _p, layout: _l, history: _h, state: _s, ...done } = result;
    print(args.json ? JSON.stringify(done) : formatDone(result));
    if (result.interrupted) {
      process.stderr.write(`lockstep: interrupted by ${stop.reason()} after ${result.steps} steps (epoch ${result.state.epoch}, step ${result.state.stepInEpoch})\n`);
      return EXIT_INTERRUPTED;
    }
    return 0;
  } finally {
    stop.dispose();
  }
}
