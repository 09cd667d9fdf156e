import { EXIT_INTERRUPTED } from '../errors.js';

/**
 * Two steps, for every command that stops on SIGINT or SIGTERM: the first aborts `stop` (what that means is
 * the command's `first` line), the second aborts `kill` (`second`). `reason` is the first signal's name.
 */
export function onStopThenKillSignals(
  first: string,
  second: string,
): { stop: AbortSignal; kill: AbortSignal; reason: () => string; dispose: () => void } {
  const stop = new AbortController();
  const kill = new AbortController();
  let received = '';
  const handler = (name: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      process.stderr.write(`lockstep: ${name} again: ${second}\n`);
      kill.abort();
      return;
    }
    received = name;
    process.stderr.write(`lockstep: ${name}: ${first}\n`);
    stop.abort();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    stop: stop.signal,
    kill: kill.signal,
    reason: () => received,
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

/**
 * Commands that measure (bench, verify) write their files only at the end, so nothing is left half done:
 * the first SIGINT or SIGTERM says what was and was not finished, and exits.
 */
export function exitOnSignals(said: string): () => void {
  // The first signal's line is onStopThenKillSignals'; the exit comes before a second could be heard.
  const { stop, dispose } = onStopThenKillSignals(said, said);
  stop.addEventListener('abort', () => process.exit(EXIT_INTERRUPTED));
  return dispose;
}

/**
 * A training run stops at the next step boundary (the training loop checks the signal between steps), so
 * what is written afterwards is a consistent state; a second signal exits at once.
 */
export function onStopSignals(): { signal: AbortSignal; reason: () => string; dispose: () => void } {
  const { stop, kill, reason, dispose } = onStopThenKillSignals(
    'stopping after the current step (send it again to quit at once)',
    'quitting now, without waiting for the step',
  );
  kill.addEventListener('abort', () => process.exit(EXIT_INTERRUPTED));
  return { signal: stop, reason, dispose };
}
