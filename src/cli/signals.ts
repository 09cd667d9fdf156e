/**
 * SIGINT and SIGTERM stop a run at the next step boundary (the training loop checks the signal between
 * steps), so what is written afterwards is a consistent state. A second signal exits at once.
 */
export function onStopSignals(): { signal: AbortSignal; reason: () => string; dispose: () => void } {
  const controller = new AbortController();
  let received = '';
  const handler = (name: NodeJS.Signals) => {
    if (received) {
      process.stderr.write(`lockstep: ${name} again: quitting now, without waiting for the step\n`);
      process.exit(130);
    }
    received = name;
    process.stderr.write(`lockstep: ${name}: stopping after the current step (send it again to quit at once)\n`);
    controller.abort();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: controller.signal,
    reason: () => received,
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

/**
 * Two steps, for commands that run other processes (sweep, worker): the first SIGINT or SIGTERM aborts `stop`
 * (what that means is the command's `first` line), the second aborts `kill` (`second`).
 */
export function onStopThenKillSignals(
  first: string,
  second: string,
): { stop: AbortSignal; kill: AbortSignal; dispose: () => void } {
  const stop = new AbortController();
  const kill = new AbortController();
  const handler = (name: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      process.stderr.write(`lockstep: ${name} again: ${second}\n`);
      kill.abort();
      return;
    }
    process.stderr.write(`lockstep: ${name}: ${first}\n`);
    stop.abort();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    stop: stop.signal,
    kill: kill.signal,
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
