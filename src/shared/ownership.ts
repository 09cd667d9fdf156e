/**
 * Which thread computes what, fixed for a whole run (ARCHITECTURE.md, "Who owns what"): every thread
 * derives the same answer from the layer sizes and the thread count, so nothing is negotiated per step.
 */

/** Floats per cache line: a block of columns is a whole number of lines of each weight row. */
const LINE_FLOATS = 16;

/**
 * Thread t's columns [j0, j1) of a layer with nOut outputs: whole lines, as even a split as lines allow.
 * When a layer has fewer lines than there are threads, the first threads own one line each.
 */
export function columnBlock(nOut: number, thread: number, threads: number): { j0: number; j1: number } {
  const lines = Math.ceil(nOut / LINE_FLOATS);
  const j0 = Math.min(nOut, Math.ceil((thread * lines) / threads) * LINE_FLOATS);
  const j1 = Math.min(nOut, Math.ceil(((thread + 1) * lines) / threads) * LINE_FLOATS);
  return { j0, j1 };
}

/** How many threads own columns of a layer with nOut outputs: threads 0 .. owners-1. */
export function columnOwners(nOut: number, threads: number): number {
  return Math.min(threads, Math.ceil(nOut / LINE_FLOATS));
}

/** Thread t's rows [r0, r1) of a batch of `rows` rows: contiguous, as even as rows allow. */
export function rowBlock(rows: number, thread: number, threads: number): { r0: number; r1: number } {
  return { r0: Math.floor((thread * rows) / threads), r1: Math.floor(((thread + 1) * rows) / threads) };
}
