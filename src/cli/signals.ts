/**
 * SIGINT and SIGTERM stop a run at the next step boundary (the training loop checks the signal between
 * steps), so what is written afterwards is a consistent state. A second signal does `again` (by default:
 * exit at once).
 */
export function onStopSignals(
  { stopping = 'stopping after the current step (send it again to quit at once)', quitting = 'quitting now, without waiting for the step', again = (): void => process.exit(130) }: { stopping?: string; quitting?: string; again?: () => void } = {},
): { signal: AbortSignal; reason: () => string; dispose: () => void } {
  const controller = new AbortController();
  let received = '';
  const handler = (name: NodeJS.Signals) => {
    if (received) {
      process.stderr.write(`lockstep: ${name} again: ${quitting}\n`);
      again();
      return;
    }
    received = name;
    process.stderr.write(`lockstep: ${name}: ${stopping}\n`);
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
