/** Thread counts: their limit, the default list, the check and the crowding notice (light: the CLI loads it at start). */
import { availableParallelism } from 'node:os';
import { UserError } from '../errors.js';

export const MAX_THREADS = 128;

/** 1, 2, 4, … up to `cores`, and `cores` itself when it is not a power of two. */
export function defaultThreadCounts(cores = availableParallelism()): number[] {
  const counts: number[] = [];
  for (let t = 1; t <= cores; t *= 2) counts.push(t);
  if (counts[counts.length - 1] !== cores) counts.push(cores);
  return counts;
}

/** The one check of a thread count (--threads), used by every entry point before anything starts. */
export function checkThreads(threads: number): void {
  if (!Number.isSafeInteger(threads) || threads < 1 || threads > MAX_THREADS) {
    throw new UserError(`--threads ${threads}: must be an integer from 1 to ${MAX_THREADS}`);
  }
}

/** Threads beyond the cores take turns on them: the notice, with what that means for `consequence`, or null. */
export function crowdedThreads(threads: number[], cores: number, consequence: string): string | null {
  const crowded = threads.filter((t) => t > cores);
  if (crowded.length === 0) return null;
  return `--threads ${crowded.join(', ')}: more threads than the ${cores} available cores; they take turns on the cores, so ${consequence}`;
}
