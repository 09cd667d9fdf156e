/**
 * One 1-thread timed run in a process of its own: bench's measure of the machine's ceiling, N of these at
 * once. It loads the data, says `ready`, waits for `go` on stdin (so that the N timed windows overlap),
 * then prints {"stepsPerSec": …}. Argument: the JSON of a SoloRun.
 */
import { createInterface } from 'node:readline';
import { loadTrainingData, resolveConfig, type TrainOptions } from '../train/config.js';
import { timeRun } from '../train/calibrate.js';
import { exitWhenStdinEnds } from './parent-pipe.js';
import { EXIT_FAILURE } from '../errors.js';

export interface SoloRun {
  options: TrainOptions;
  warmup: number;
  steps: number;
}

async function main(): Promise<void> {
  const run = JSON.parse(process.argv[2]) as SoloRun;
  const options: TrainOptions = { ...run.options, threads: 1 };
  const dataset = loadTrainingData(resolveConfig(options));
  process.stdout.write('ready\n');
  const lines = createInterface({ input: process.stdin });
  let go = false;
  for await (const line of lines) {
    if (line === 'go') {
      go = true;
      break;
    }
  }
  // Its stdin ended first: the bench that started it has gone (killed), and no one would read the figure.
  if (!go) return;
  // Likewise while it runs: a killed bench leaves no run computing beside the next.
  const stopWatching = exitWhenStdinEnds(EXIT_FAILURE);
  const { stepsPerSec } = await timeRun(options, dataset, run.warmup, run.steps);
  process.stdout.write(`${JSON.stringify({ stepsPerSec })}\n`);
  stopWatching();
}

main().catch((err: Error) => {
  process.stderr.write(`lockstep solo run: ${err.message}\n`);
  process.exitCode = EXIT_FAILURE;
});
