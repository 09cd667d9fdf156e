/**
 * The reference kernels: lockstep's definition of the arithmetic (ARCHITECTURE.md, invariant 1).
 *
 * Every product and every sum is rounded to float32 (Math.fround), each sum runs in index order from +0,
 * and a term whose input is exactly 0 is skipped. Starting each sum at +0 makes the skip invisible for
 * finite weights (acc + (±0) === acc, and +0 + -0 === +0), so a fast kernel may skip zeros at any
 * granularity it likes and still match these bits. The fast kernels (WebAssembly SIMD) sum each output in
 * exactly this order, without fused multiply-add; tests compare their outputs' bits with these.
 *
 * Shapes, for a layer with nIn inputs and nOut outputs and `rows` rows of the batch (all of them, or one thread's):
 *   X, Aprev  [rows][nIn]      W  [nIn][nOut]      b  [nOut]
 *   Z, A, D   [rows][nOut]     Dprev [rows][nIn]   dW [nIn][nOut]   db [nOut]
 * All are flat row-major Float32Arrays.
 */

import { UpdateRule, type UpdateStep } from '../optim/optimizer.js';

const f = Math.fround;

/** Pixel byte → network input, x = p/255 rounded to float32; one table so every kernel agrees. */
export const PIXEL_SCALE: Float32Array = (() => {
  const t = new Float32Array(256);
  for (let p = 0; p < 256; p++) t[p] = p / 255;
  return t;
})();

/**
 * Forms a batch's inputs from the dataset's bytes: X[r][k] = PIXEL_SCALE[pixels[order[start + r]][k]].
 * The pixels stay bytes in memory; only the rows of the current batch become floats.
 */
export function gatherInputs(
  pixels: Uint8Array,
  order: Uint32Array,
  start: number,
  rows: number,
  nIn: number,
  X: Float32Array,
): void {
  for (let r = 0; r < rows; r++) {
    const src = order[start + r] * nIn;
    const dst = r * nIn;
    for (let k = 0; k < nIn; k++) X[dst + k] = PIXEL_SCALE[pixels[src + k]];
  }
}

/**
 * Forms a batch's inputs from float32 rows already scaled (CSV, float arrays, --scale): X[r][k] =
 * rows[order[start + r]][k]. A copy, so every kernel set shares this one.
 */
export function gatherFloatInputs(
  rows: Float32Array,
  order: Uint32Array,
  start: number,
  count: number,
  nIn: number,
  X: Float32Array,
): void {
  for (let r = 0; r < count; r++) {
    const src = order[start + r] * nIn;
    X.set(rows.subarray(src, src + nIn), r * nIn);
  }
}

/** A batch's inputs from either kind of rows: bytes through `gatherBytes` (a kernel set's), float32 rows copied. */
export function gatherRows(
  gatherBytes: (
    pixels: Uint8Array,
    order: Uint32Array,
    start: number,
    rows: number,
    nIn: number,
    X: Float32Array,
  ) => void,
  rows: Uint8Array | Float32Array,
  order: Uint32Array,
  start: number,
  count: number,
  nIn: number,
  X: Float32Array,
): void {
  if (rows instanceof Float32Array) gatherFloatInputs(rows, order, start, count, nIn, X);
  else gatherBytes(rows, order, start, count, nIn, X);
}

/**
 * Dense layer forward: Z[r][j] = (Σ_k X[r][k]·W[k][j]) + b[j], with ReLU on hidden layers:
 * A[r][j] = Z[r][j] > 0 ? Z[r][j] : 0. The sum runs k = 0..nIn-1 from +0, skipping X[r][k] === 0;
 * the bias is added last. Only the columns j in [j0, j1) are computed and written (each is its own sum,
 * so a block of columns has the bits of the full call); strides stay nIn and nOut.
 */
export function denseForward(
  X: Float32Array,
  W: Float32Array,
  b: Float32Array,
  out: Float32Array,
  rows: number,
  nIn: number,
  nOut: number,
  relu: boolean,
  j0 = 0,
  j1 = nOut,
): void {
  for (let r = 0; r < rows; r++) {
    for (let j = j0; j < j1; j++) {
      let acc = 0;
      for (let k = 0; k < nIn; k++) {
        const x = X[r * nIn + k];
        if (x === 0) continue;
        acc = f(acc + f(x * W[k * nOut + j]));
      }
      const z = f(acc + b[j]);
      out[r * nOut + j] = relu ? (z > 0 ? z : 0) : z;
    }
  }
}

/**
 * Backward through a hidden layer and its ReLU. Inverts `A = relu(Aprev·W + b)` of the layer below:
 * Dprev[r][k] = Aprev[r][k] > 0 ? Σ_j D[r][j]·W[k][j] : 0, the sum over j = 0..nOut-1 from +0,
 * skipping D[r][j] === 0. Where the ReLU was off the sum is not needed, so it is not computed.
 */
export function reluBackward(
  D: Float32Array,
  W: Float32Array,
  Aprev: Float32Array,
  Dprev: Float32Array,
  rows: number,
  nIn: number,
  nOut: number,
): void {
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < nIn; k++) {
      if (!(Aprev[r * nIn + k] > 0)) {
        Dprev[r * nIn + k] = 0;
        continue;
      }
      let acc = 0;
      for (let j = 0; j < nOut; j++) {
        const d = D[r * nOut + j];
        if (d === 0) continue;
        acc = f(acc + f(d * W[k * nOut + j]));
      }
      Dprev[r * nIn + k] = acc;
    }
  }
}

/**
 * Weight gradient of `Z = Aprev·W + b` over the whole batch: dW[k - k0][j] = Σ_r Aprev[r][k]·D[r][j] for the
 * rectangle k in [k0, k1), j in [j0, j1) of W (dW holds rows k0..k1-1 with stride nOut; other columns are
 * not written), summed r = 0..rows-1 from +0 and skipping Aprev[r][k] === 0. (D already carries the 1/B of
 * the mean loss.)
 */
export function weightGrad(
  Aprev: Float32Array,
  D: Float32Array,
  dW: Float32Array,
  rows: number,
  nIn: number,
  nOut: number,
  k0: number,
  k1: number,
  j0 = 0,
  j1 = nOut,
): void {
  for (let k = k0; k < k1; k++) {
    for (let j = j0; j < j1; j++) {
      let acc = 0;
      for (let r = 0; r < rows; r++) {
        const a = Aprev[r * nIn + k];
        if (a === 0) continue;
        acc = f(acc + f(a * D[r * nOut + j]));
      }
      dW[(k - k0) * nOut + j] = acc;
    }
  }
}

/** Bias gradient: db[j] = Σ_r D[r][j] for j in [j0, j1), summed r = 0..rows-1 from +0. */
export function biasGrad(D: Float32Array, db: Float32Array, rows: number, nOut: number, j0: number, j1: number): void {
  for (let j = j0; j < j1; j++) {
    let acc = 0;
    for (let r = 0; r < rows; r++) acc = f(acc + D[r * nOut + j]);
    db[j] = acc;
  }
}

/**
 * One optimizer step on elements [i0, i1) (src/optim/optimizer.ts has the step's constants `u`): p the
 * parameters, g their gradient, s1 and s2 their state, laid out like p (unused ones may be empty). Every
 * operation is rounded to float32; a weight-decay term is applied only when u.weightDecay ≠ 0:
 *   sgd:       g' = g + wd·p;   p = p − lr·g'
 *   momentum:  b = μ·b + g';    p = p − lr·b                         (b = s1, μ = u.beta1)
 *   nesterov:  b = μ·b + g';    p = p − lr·(g' + μ·b)
 *   adam:      m = β1·m + (1−β1)·g';  v = β2·v + ((1−β2)·g')·g';      (m = s1, v = s2)
 *              p = p − stepSize·(m / (√v·invSqrtBias2 + eps))
 *   adamw:     p = p·decay first, then adam with g' = g
 * With wd = 0, sgd is the textbook's p = p − lr·g.
 */
export function updateParams(
  p: Float32Array,
  g: Float32Array,
  s1: Float32Array,
  s2: Float32Array,
  i0: number,
  i1: number,
  u: UpdateStep,
): void {
  const { rule, lr, weightDecay: wd } = u;
  if (rule === UpdateRule.Sgd) {
    for (let i = i0; i < i1; i++) {
      const gi = wd === 0 ? g[i] : f(g[i] + f(wd * p[i]));
      p[i] = f(p[i] - f(lr * gi));
    }
  } else if (rule === UpdateRule.Momentum || rule === UpdateRule.Nesterov) {
    const mu = u.beta1;
    for (let i = i0; i < i1; i++) {
      const gi = wd === 0 ? g[i] : f(g[i] + f(wd * p[i]));
      const b = f(f(mu * s1[i]) + gi);
      s1[i] = b;
      const d = rule === UpdateRule.Nesterov ? f(gi + f(mu * b)) : b;
      p[i] = f(p[i] - f(lr * d));
    }
  } else {
    const { beta1, oneMinusBeta1, beta2, oneMinusBeta2, eps, stepSize, invSqrtBias2, decay } = u;
    const decoupled = rule === UpdateRule.AdamW;
    for (let i = i0; i < i1; i++) {
      let pi = p[i];
      let gi = g[i];
      if (wd !== 0) {
        if (decoupled) pi = f(pi * decay);
        else gi = f(gi + f(wd * pi));
      }
      const m = f(f(beta1 * s1[i]) + f(oneMinusBeta1 * gi));
      const v = f(f(beta2 * s2[i]) + f(f(oneMinusBeta2 * gi) * gi));
      s1[i] = m;
      s2[i] = v;
      const denom = f(f(f(Math.sqrt(v)) * invSqrtBias2) + eps);
      p[i] = f(pi - f(stepSize * f(m / denom)));
    }
  }
}
