import { availableParallelism } from 'node:os';
import { runQueueWorker } from '../queue/index.js';
import { plural } from '../report/format.js';
import { print } from './flags.js';
import { onStopThenKillSignals } from './signals.js';
import { formatResult } from './sweep-command.js';
import { EXIT_INTERRUPTED } from './train-command.js';

export interface WorkerArgs {
  queue: string;
  threads: number;
  parallel?: number;
  json: boolean;
}

/** `lockstep worker --queue URL`: trains the runs of `lockstep sweep --queue URL` until Ctrl-C (src/queue/worker.ts). */
export async function workerCommand(args: WorkerArgs): Promise<number> {
  const parallel = args.parallel ?? Math.max(1, Math.floor(availableParallelism() / args.threads));
  const signals = onStopThenKillSignals(
    'taking no new run; finishing the current ones (send it again to stop them now and give them back to the queue)',
    'stopping every run now; they go back to the queue',
  );
  const say = (human: string, json: object) => print(args.json ? JSON.stringify(json) : human);
  try {
    const outcome = await runQueueWorker({
      url: args.queue, threads: args.threads, parallel, signal: signals.stop, killSignal: signals.kill,
      onEvent: (e) => {
        switch (e.event) {
          case 'worker-ready':
            return say(`lockstep worker ${e.worker}: taking runs from ${e.queue}, ${parallel} at a time, ${plural(args.threads, 'thread')} each; Ctrl-C stops`, e);
          case 'worker-run':
            return say(`run ${e.run} started: ${e.config}`, e);
          case 'worker-done':
            return say(`run ${e.run} done: ${formatResult(e)}, params sha256 ${e.paramsSha256 ?? '-'}`, e);
          case 'worker-failed':
            // The sweep reports it too; here it is the worker's own log of why.
            process.stderr.write(`lockstep: run ${e.run} failed: ${e.error}\n`);
            return args.json ? print(JSON.stringify(e)) : undefined;
          case 'worker-handed-back':
            return say(`run ${e.run} given back to the queue`, e);
          case 'notice':
            return void process.stderr.write(`lockstep: notice: ${e.message}\n`);
        }
      },
    });
    if (!args.json) print(`lockstep worker: stopped: ${plural(outcome.finished, 'run')} finished, ${outcome.failed} failed, ${outcome.handedBack} given back`);
    return EXIT_INTERRUPTED;
  } finally {
    signals.dispose();
  }
}
