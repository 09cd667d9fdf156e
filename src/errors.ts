/**
 * Every error class of lockstep and every exit code of the CLI (docs/errors.md, "Exit codes"). An error is
 * one line on stderr (no stack trace unless --debug):
 *
 *   UserError        2  bad input: a flag, a data file, a checkpoint or model file, an output path
 *   DivergenceError  3  a step's mean loss was not finite or above DIVERGED_MEAN_LOSS
 *   WorkerFailure    1  a worker thread threw, exited or never started (and any other unexpected error)
 *   AbortedError     -  inside the threads only: another thread failed, so this one stops waiting
 *
 * and two outcomes that are not errors: 4, verify or bench found weights that differ by thread count; 130,
 * stopped by Ctrl-C or SIGTERM.
 */
export const EXIT_FAILURE = 1;
export const EXIT_USER_ERROR = 2;
export const EXIT_DIVERGED = 3;
/** verify and bench: weights that differ by thread count (the promise broken), not an error of the input. */
export const EXIT_NOT_IDENTICAL = 4;
/** A command stopped by a signal exits with 128 + SIGINT's number, as a shell reports it. */
export const EXIT_INTERRUPTED = 130;

/** A problem with the user's input rather than a bug in lockstep. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_USER_ERROR,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/**
 * A file that could not be read, in the same words whichever reader met it (`--test-data x.csv: no such file
 * or directory`, as `--data`'s): `what` names the file, with its flag where there is one.
 */
export function unreadableFile(what: string, err: unknown, kind = 'file'): UserError {
  const code = (err as NodeJS.ErrnoException).code;
  return new UserError(
    `${what}: ${code === 'ENOENT' ? 'no such file or directory' : `cannot read ${kind} (${code ?? String(err)})`}`,
  );
}

/** A file that JSON.parse refused, in one line (its message may quote the file's own line breaks). */
export function invalidJson(what: string, err: unknown): UserError {
  return new UserError(`${what}: not valid JSON (${(err as Error).message.replace(/\s+/g, ' ')})`);
}

/** Where a run diverged: the step (its number in all, from 1), its epoch, and its mean loss when a step's loss said so. */
export interface Divergence {
  step: number;
  epoch: number;
  loss?: number;
}

/** A step diverged: the run stops and keeps its last good checkpoint. */
export class DivergenceError extends UserError {
  constructor(
    message: string,
    /** For a program to read without parsing the message. */
    readonly at?: Divergence,
  ) {
    super(message, EXIT_DIVERGED);
    this.name = 'DivergenceError';
  }
}

/** A worker thread's failure, reported by the coordinator. */
export class WorkerFailure extends Error {
  readonly exitCode = EXIT_FAILURE;
  constructor(message: string) {
    super(message);
    this.name = 'WorkerFailure';
  }
}

/** Thrown by a thread's wait when the control block's Abort word is set. */
export class AbortedError extends Error {
  constructor() {
    super('aborted: another thread failed');
    this.name = 'AbortedError';
  }
}
