/**
 * A problem with the user's input (a file, a flag, a checkpoint) rather than a bug in lockstep.
 * The CLI prints its message as one line and exits non-zero, without a stack trace.
 */
export class UserError extends Error {
  constructor(message: string, readonly exitCode: number = 2) {
    super(message);
    this.name = 'UserError';
  }
}
