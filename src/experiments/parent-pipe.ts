/**
 * A child process that exits when the process that started it dies: its stdin is a pipe from that process,
 * never written to, and the pipe ends when that process does, even by SIGKILL. Light: `lockstep train` loads it.
 */

/** The environment variable with which sweep and worker start a run that exits this way. */
export const EXIT_WITH_PARENT = 'LOCKSTEP_EXIT_WITH_PARENT';

/** Exits with `code` once stdin ends (no one would read what this process goes on to compute); returns the undo. */
export function exitWhenStdinEnds(code: number): () => void {
  const exit = () => process.exit(code);
  const stdin = process.stdin as NodeJS.ReadStream & { unref?: () => void };
  stdin.once('end', exit);
  stdin.resume();
  stdin.unref?.(); // the pipe alone keeps no process alive once its work is done
  return () => {
    stdin.off('end', exit);
    stdin.destroy();
  };
}
