import { EXIT_INTERRUPTED, UserError } from '../errors.js';
import { failedRunsError, queueSweep, type QueueSweepCounts } from '../queue/index.js';
import { plural } from '../words.js';
import type { ArgsOf } from '../options/table.js';
import { notice, print, trainOptionsOf } from './flags.js';
import { onStopThenKillSignals } from './signals.js';
import { formatResult, formatTable } from './sweep-command.js';

/** `lockstep sweep … --queue URL [--detach | --status]`: the grid on a queue that `lockstep worker`s drain (src/queue/). */
export async function queueSweepCommand(args: ArgsOf<'sweep'>): Promise<number> {
  if (args.queue === undefined) throw new UserError(`--${args.detach ? 'detach' : 'status'} needs --queue URL`);
  if (args.detach && args.status) throw new UserError('--detach and --status: give one of them');
  // The workers decide how many runs at once, and their threads.
  if (args.parallel !== undefined)
    throw new UserError(`--parallel ${args.parallel} with --queue: each worker's own --parallel decides; drop it here`);
  if (args.threads !== 1)
    throw new UserError(`--threads ${args.threads} with --queue: each worker's own --threads decides; drop it here`);
  const mode = args.detach ? 'detach' : args.status ? 'status' : 'wait';
  const { threads: _threads, ...base } = trainOptionsOf(args, 'sweep');
  const grid = { seed: args.seed, lr: args.lr, batchSize: args.batchSize, optimizer: args.optimizer };
  const signals = onStopThenKillSignals(
    'stopped waiting; the runs stay on the queue (the same command waits again)',
    'quitting now',
  );
  signals.kill.addEventListener('abort', () => process.exit(EXIT_INTERRUPTED));
  const startedAt = Date.now();
  const say = (human: string, json: object) => print(args.json ? JSON.stringify(json) : human);
  let counts: QueueSweepCounts | undefined;
  let seen = 0;
  try {
    const outcome = await queueSweep({
      url: args.queue,
      mode,
      base,
      grid,
      out: args.out,
      signal: signals.stop,
      onNotice: notice,
      onStart: (c) => {
        counts = c;
        if (args.json)
          return print(JSON.stringify({ event: mode === 'status' ? 'sweep-status' : 'sweep-queued', ...c }));
        print(mode === 'status' ? statusLine(c) : enqueuedLine(c, args.out));
        if (mode === 'wait' && c.runs > c.inOut + c.done)
          print(
            `waiting for \`lockstep worker --queue ${c.queue}\` to run them; Ctrl-C stops waiting (the runs stay queued)`,
          );
      },
      onResult: (r, finished, total) => {
        if (args.json) return print(JSON.stringify({ event: 'sweep-run', ...r }));
        if (mode === 'status') return;
        seen++;
        const left = total - finished;
        // The pace of this call's results so far: runs finish in waves of the workers' slots, so it is rough.
        const eta =
          left > 0 && process.stdout.isTTY
            ? `, about ${Math.ceil((((Date.now() - startedAt) / seen) * left) / 1000)} s left`
            : '';
        print(`run ${r.run} (${finished}/${total} finished${eta}, on ${r.queue.worker}): ${formatResult(r)}`);
      },
    });
    if (!args.json && mode !== 'detach') for (const line of formatTable(outcome.results)) print(line);
    // Said here in --status; a waiting sweep ends with them in its error line, and in --json as events too.
    if (mode === 'status' || args.json)
      for (const f of outcome.failed) say(`run ${f.run} failed: ${f.error}`, { event: 'sweep-failed', ...f });
    if (mode === 'detach') {
      if (!args.json)
        print(
          `detached: \`lockstep sweep … --queue ${counts!.queue} --status\` (the same grid flags) shows the table so far`,
        );
      return 0;
    }
    if (outcome.interrupted) {
      process.stderr.write(
        `lockstep: sweep stopped waiting: ${outcome.results.length} of ${plural(counts!.runs, 'run')} finished, ${plural(outcome.unfinished, 'run')} still on the queue\n`,
      );
      return EXIT_INTERRUPTED;
    }
    if (outcome.failed.length > 0) throw failedRunsError(outcome.failed, counts!.runs);
    return 0;
  } finally {
    signals.dispose();
  }
}

function enqueuedLine(c: QueueSweepCounts, out: string | undefined): string {
  const parts = [`${c.enqueued} enqueued`, `${c.queued} already waiting or running`, `${c.done} already done`];
  if (c.inOut > 0) parts.push(`${c.inOut} already in ${out}`);
  return `lockstep sweep: ${plural(c.runs, 'run')} on the queue ${c.queue}: ${parts.join(', ')}${out ? `; results in ${out}` : ''}`;
}

function statusLine(c: QueueSweepCounts): string {
  const missing = c.runs - c.inOut - c.done - c.queued - c.active - c.failed;
  return (
    `lockstep sweep: ${plural(c.runs, 'run')} on the queue ${c.queue}: ${c.done + c.inOut} done, ${c.active} running, ${c.queued} waiting, ` +
    `${c.failed} failed, ${missing} not enqueued`
  );
}
