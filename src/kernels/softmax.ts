/**
 * The output layer's softmax, cross-entropy and its gradient: the one implementation of exp and log in
 * lockstep. It runs in TypeScript for every kernel set (reference and WebAssembly alike), reading and
 * writing shared memory, because a second exp in WebAssembly could differ from V8's Math.exp in the last
 * bit; the work is rows × nOut exponentials per step, small beside the matrix products.
 *
 * Shapes: Z, P, D [rows][nOut] (this thread's rows); labels indexed through order[start + r];
 * batchRows is the whole minibatch's size, because the loss is a mean over the batch.
 */

const f = Math.fround;

/** The textbook's guard against log(0) in the loss. */
const LOG_EPS = 1e-12;

/** P[r] = softmax(Z[r]): subtract the row's max, exponentiate, normalise; each value rounded to float32. */
export function softmaxRow(Z: Float32Array, P: Float32Array, rowOffset: number, nOut: number): void {
  let m = Z[rowOffset];
  for (let j = 1; j < nOut; j++) if (Z[rowOffset + j] > m) m = Z[rowOffset + j];
  let s = 0;
  for (let j = 0; j < nOut; j++) {
    const e = f(Math.exp(f(Z[rowOffset + j] - m)));
    P[rowOffset + j] = e;
    s = f(s + e);
  }
  for (let j = 0; j < nOut; j++) P[rowOffset + j] = f(P[rowOffset + j] / s);
}

/** Index of the largest probability (the first one on ties): the predicted class. */
export function argmaxRow(P: Float32Array, rowOffset: number, nOut: number): number {
  let best = 0;
  for (let j = 1; j < nOut; j++) if (P[rowOffset + j] > P[rowOffset + best]) best = j;
  return best;
}

/** Cross-entropy of one row, -log(p_label + 1e-12), in float64 (it is reported, never trained on). */
export function crossEntropyRow(P: Float32Array, rowOffset: number, label: number): number {
  return -Math.log(P[rowOffset + label] + LOG_EPS);
}

/**
 * Training: softmax, per-row loss, and the gradient of the batch-mean cross-entropy with respect to the
 * logits, D[r][j] = (P[r][j] - onehot(label)[j]) / batchRows, which inverts `P = softmax(Z)` and the loss
 * together. D may alias Z (the logits are not needed afterwards). Writes each row's loss to loss[r].
 */
export function softmaxCrossEntropyBackward(
  Z: Float32Array,
  D: Float32Array,
  labels: Uint8Array,
  order: Uint32Array,
  start: number,
  rows: number,
  nOut: number,
  batchRows: number,
  loss: Float64Array,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * nOut;
    const label = labels[order[start + r]];
    softmaxRow(Z, D, o, nOut); // D holds P for this row until overwritten just below
    loss[r] = crossEntropyRow(D, o, label);
    for (let j = 0; j < nOut; j++) D[o + j] = f(f(D[o + j] - (j === label ? 1 : 0)) / batchRows);
  }
}

/**
 * Evaluation: for each row, the predicted class and its loss. Z is overwritten by the probabilities.
 * Writes predicted[r] and loss[r].
 */
export function softmaxEvaluate(
  Z: Float32Array,
  labels: Uint8Array,
  first: number,
  rows: number,
  nOut: number,
  predicted: Uint8Array,
  loss: Float64Array,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * nOut;
    const label = labels[first + r];
    softmaxRow(Z, Z, o, nOut);
    predicted[r] = argmaxRow(Z, o, nOut);
    loss[r] = crossEntropyRow(Z, o, label);
  }
}
