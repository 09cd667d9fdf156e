// The ceiling that bench/kernels compares lockstep's kernels with: the plainest register-blocked SIMD128
// loops for the layer-1 shapes, compiled by the same AssemblyScript and run by the same V8, with none of
// lockstep's obligations (no zero tests, no remainders, no partial sums parked between chunks). If these
// cannot reach a target, no kernel with the same arithmetic (mul then add, no FMA) can.
//
// Shapes: X [rows][nIn], W [nIn][nOut], out [rows][nOut]; rows % 4 == 0 and nOut % 8 == 0 for plainDense.

/** out[r][j] = Σ_k X[r][k]·W[k][j], a 4-row × 8-column block (8 accumulators, 2 weight loads, 4 broadcasts per k). */
// @ts-ignore: decorator
@inline function block4x8(X: usize, sx: usize, W: usize, sw: usize, o: usize, nIn: i32): void {
  let a0 = f32x4.splat(0), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
  let x = X, w = W;
  for (let k = 0; k < nIn; k++) {
    const w0 = v128.load(w, 0), w1 = v128.load(w, 16);
    const xa = v128.load32_splat(x);
    a0 = f32x4.add(a0, f32x4.mul(xa, w0)); a1 = f32x4.add(a1, f32x4.mul(xa, w1));
    const xb = v128.load32_splat(x + sx);
    b0 = f32x4.add(b0, f32x4.mul(xb, w0)); b1 = f32x4.add(b1, f32x4.mul(xb, w1));
    const xc = v128.load32_splat(x + 2 * sx);
    c0 = f32x4.add(c0, f32x4.mul(xc, w0)); c1 = f32x4.add(c1, f32x4.mul(xc, w1));
    const xd = v128.load32_splat(x + 3 * sx);
    d0 = f32x4.add(d0, f32x4.mul(xd, w0)); d1 = f32x4.add(d1, f32x4.mul(xd, w1));
    x += 4;
    w += sw;
  }
  v128.store(o, a0, 0); v128.store(o, a1, 16);
  v128.store(o + sw, b0, 0); v128.store(o + sw, b1, 16);
  v128.store(o + 2 * sw, c0, 0); v128.store(o + 2 * sw, c1, 16);
  v128.store(o + 3 * sw, d0, 0); v128.store(o + 3 * sw, d1, 16);
}

export function plainDense(X: usize, W: usize, out: usize, rows: i32, nIn: i32, nOut: i32): void {
  const sw = <usize>nOut << 2, sx = <usize>nIn << 2;
  for (let r = 0; r < rows; r += 4) {
    for (let j = 0; j < nOut; j += 8) {
      block4x8(X + <usize>r * sx, sx, W + (<usize>j << 2), sw, out + <usize>r * sw + (<usize>j << 2), nIn);
    }
  }
}

/** One row × 24 columns over a list of non-zero inputs: off[e] = k·nOut·4 (the weight row's byte offset), val[e] = X[r][k]. */
// @ts-ignore: decorator
@inline function listBlock24(off: usize, val: usize, e0: i32, e1: i32, W: usize, o: usize): void {
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
  for (let e = e0; e < e1; e++) {
    const at = <usize>e << 2;
    const x = v128.load32_splat(val + at);
    const w = W + <usize>load<u32>(off + at);
    a0 = f32x4.add(a0, f32x4.mul(x, v128.load(w, 0)));
    a1 = f32x4.add(a1, f32x4.mul(x, v128.load(w, 16)));
    a2 = f32x4.add(a2, f32x4.mul(x, v128.load(w, 32)));
    a3 = f32x4.add(a3, f32x4.mul(x, v128.load(w, 48)));
    a4 = f32x4.add(a4, f32x4.mul(x, v128.load(w, 64)));
    a5 = f32x4.add(a5, f32x4.mul(x, v128.load(w, 80)));
  }
  v128.store(o, a0, 0); v128.store(o, a1, 16); v128.store(o, a2, 32);
  v128.store(o, a3, 48); v128.store(o, a4, 64); v128.store(o, a5, 80);
}

/** The same, one row × 16 columns. */
// @ts-ignore: decorator
@inline function listBlock16(off: usize, val: usize, e0: i32, e1: i32, W: usize, o: usize): void {
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (let e = e0; e < e1; e++) {
    const at = <usize>e << 2;
    const x = v128.load32_splat(val + at);
    const w = W + <usize>load<u32>(off + at);
    a0 = f32x4.add(a0, f32x4.mul(x, v128.load(w, 0)));
    a1 = f32x4.add(a1, f32x4.mul(x, v128.load(w, 16)));
    a2 = f32x4.add(a2, f32x4.mul(x, v128.load(w, 32)));
    a3 = f32x4.add(a3, f32x4.mul(x, v128.load(w, 48)));
  }
  v128.store(o, a0, 0); v128.store(o, a1, 16); v128.store(o, a2, 32); v128.store(o, a3, 48);
}

/**
 * The sparse layer-1 forward with each row's non-zero inputs already listed (row r's entries are
 * [start[r], start[r+1])): only the useful multiply-adds, for nOut = 128 (blocks of 24, 24, 24, 24, 16, 16 columns).
 */
export function plainSparse128(start: usize, off: usize, val: usize, W: usize, out: usize, rows: i32): void {
  for (let r = 0; r < rows; r++) {
    const e0 = load<i32>(start + (<usize>r << 2)), e1 = load<i32>(start + (<usize>(r + 1) << 2));
    const o = out + <usize>r * 512;
    for (let j: usize = 0; j < 384; j += 96) listBlock24(off, val, e0, e1, W + j, o + j);
    listBlock16(off, val, e0, e1, W + 384, o + 384);
    listBlock16(off, val, e0, e1, W + 448, o + 448);
  }
}

/**
 * One Adam step (reference.ts, updateParams; no weight decay) of n parameters at p (n % 4 == 0), gradients
 * at g, moments at m and v, the constants in registers: the least an Adam step over these parameters costs,
 * with no gradient to compute.
 */
export function plainAdam(
  p: usize, g: usize, m: usize, v: usize, n: i32, beta1: f32, oneMinusBeta1: f32, beta2: f32, oneMinusBeta2: f32,
  invSqrtBias2: f32, eps: f32, step: f32,
): void {
  const b1 = f32x4.splat(beta1), omb1 = f32x4.splat(oneMinusBeta1), b2 = f32x4.splat(beta2), omb2 = f32x4.splat(oneMinusBeta2);
  const invb2 = f32x4.splat(invSqrtBias2), e = f32x4.splat(eps), s = f32x4.splat(step);
  for (let i: usize = 0; i < <usize>n << 2; i += 16) {
    const gv = v128.load(g + i);
    const mv = f32x4.add(f32x4.mul(b1, v128.load(m + i)), f32x4.mul(omb1, gv));
    const vv = f32x4.add(f32x4.mul(b2, v128.load(v + i)), f32x4.mul(f32x4.mul(omb2, gv), gv));
    v128.store(m + i, mv);
    v128.store(v + i, vv);
    v128.store(p + i, f32x4.sub(v128.load(p + i), f32x4.mul(s, f32x4.div(mv, f32x4.add(f32x4.mul(f32x4.sqrt(vv), invb2), e)))));
  }
}

/** One plain SGD step of n parameters at p (n % 4 == 0), gradients at g: what plainAdam replaces. */
export function plainSgd(p: usize, g: usize, n: i32, lr: f32): void {
  const l = f32x4.splat(lr);
  for (let i: usize = 0; i < <usize>n << 2; i += 16) v128.store(p + i, f32x4.sub(v128.load(p + i), f32x4.mul(l, v128.load(g + i))));
}
