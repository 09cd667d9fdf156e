import { availableParallelism } from 'node:os';
import { checkThreads } from '../coordinator/threads.js';
import { runQueueWorker } from '../queue/index.js';
import type { ArgsOf } from '../options/table.js';
import { plural } from '../words.js';
import { notice, print } from './flags.js';
import { onStopThenKillSignals } from './signals.js';
import { EXIT_INTERRUPTED } from '../errors.js';
import { formatResult } from './sweep-command.js';

/** `lockstep worker --queue URL`: trains the runs of `lockstep sweep --queue URL` until Ctrl-C (src/queue/worker.ts). */
export async function workerCommand(args: ArgsOf<'worker'>): Promise<number> {
  const threads = args.threads as number;
  checkThreads(threads); // before it divides the cores
  const parallel = args.parallel ?? Math.max(1, Math.floor(availableParallelism() / threads));
  const signals = onStopThenKillSignals(
    'taking no new run; finishing the current ones (send it again to stop them now and give them back to the queue)',
    'stopping every run now; they go back to the queue',
  );
  // Runs given back at the second Ctrl-C need the queue: with it gone, the worker exits anyway (their locks lapse).
  signals.kill.addEventListener('abort', () => setTimeout(() => process.exit(EXIT_INTERRUPTED), 5000).unref());
  const say = (human: string, json: object) => print(args.json ? JSON.stringify(json) : human);
  try {
    const outcome = await runQueueWorker({
      url: args.queue,
      threads,
      parallel,
      signal: signals.stop,
      killSignal: signals.kill,
      onEvent: (e) => {
        switch (e.event) {
          case 'worker-ready':
            return say(
              `lockstep worker ${e.worker}: taking runs from ${e.queue}, ${parallel} at a time, ${plural(threads, 'thread')} each; Ctrl-C stops`,
              e,
            );
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
            return notice(e.message);
        }
      },
    });
    if (!args.json)
      print(
        `lockstep worker: stopped: ${plural(outcome.finished, 'run')} finished, ${outcome.failed} failed, ${outcome.handedBack} given back`,
      );
    return EXIT_INTERRUPTED;
  } finally {
    signals.dispose();
  }
}
