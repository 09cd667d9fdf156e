// lockstep's WebAssembly SIMD128 kernels (AssemblyScript).
//
// They compute exactly the arithmetic of src/kernels/reference.ts (the specification), bit for bit:
// every output element is one float32 sum that starts at +0 and adds float32-rounded products in the
// reference's index order, never fused (WebAssembly has no implicit FMA); SIMD lanes always run along an
// output dimension, so each lane is one element's own sequential sum. Products with a zero factor are
// skipped wherever that pays; the reference header explains why that is invisible (acc + ±0 === acc for
// finite values, and a sum that starts at +0 never becomes -0).
//
// Every pointer argument is a byte offset into the imported shared memory. Shapes, for a layer with nIn
// inputs, nOut outputs and `rows` rows:
//   X, Aprev [rows][nIn]   W [nIn][nOut]   b [nOut]   Z, A, D [rows][nOut]   Dprev [rows][nIn]
// A column range [j0, j1) (denseForward, weightGradUpdate, biasGradUpdate) chooses which outputs are computed;
// the strides stay nIn and nOut, and nothing outside the range is read from W or written. Ranges are
// checked by the TypeScript wrapper (src/kernels/wasm.ts), not here.
//
// Memory and threads: the module has no data segment, no globals and allocates nothing (runtime stub),
// so every worker thread may instantiate it on the same memory. The first 64 KiB of the memory belong to
// this module (RESERVED_BYTES in src/memory/arena.ts); it uses them only as SCRATCH SLOTS: 15 slots of
// 4 KiB at 4096 + 4096·i, each claimed for the duration of one call with an atomic compare-exchange on its
// flag word (bytes 4i..4i+3) and released on return. A call that finds every slot taken (more than 15
// threads inside kernels at once) runs a slower path that needs no scratch and gives the same bits.
//
// Register blocking follows what V8's optimizing compiler does with SIMD code: it issues all the loads of
// a loop body first, so accumulators + loads per iteration are kept within the 15 usable xmm registers
// (e.g. 6 accumulators + 6 loads + 1 broadcast); blocks that ask for more spill accumulators to the
// stack and run at half speed.

// ---------------------------------------------------------------------------------------------------
// helpers

/** The first n (1..3) floats at p into the low lanes of a vector, the other lanes zero. */
// @ts-ignore: decorator
@inline function loadPartial(p: usize, n: i32): v128 {
  if (n == 1) return v128.load32_zero(p);
  let v = v128.load64_zero(p);
  if (n == 3) v = v128.load32_lane(p, v, 2, 8);
  return v;
}

/** Stores the low n (1..3) lanes of v at p. */
// @ts-ignore: decorator
@inline function storePartial(p: usize, v: v128, n: i32): void {
  if (n == 1) {
    v128.store32_lane(p, v, 0);
    return;
  }
  v128.store64_lane(p, v, 0);
  if (n == 3) v128.store32_lane(p, v, 2, 8);
}

/** Bit i set where the float at p + 4i is not +0/-0 (NaN counts as non-zero), for i < n <= 64. */
// @ts-ignore: decorator
@inline function nonzeroMask(p: usize, n: i32): u64 {
  const z = f32x4.splat(0);
  let m: u64 = 0;
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const q = p + (<usize>i << 2);
    const c0 = f32x4.ne(v128.load(q, 0), z);
    const c1 = f32x4.ne(v128.load(q, 16), z);
    const c2 = f32x4.ne(v128.load(q, 32), z);
    const c3 = f32x4.ne(v128.load(q, 48), z);
    const bits = i8x16.bitmask(i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(c0, c1), i16x8.narrow_i32x4_s(c2, c3)));
    m |= (<u64>(<u32>bits)) << (<u64>i);
  }
  for (; i + 4 <= n; i += 4) {
    const bits = i32x4.bitmask(f32x4.ne(v128.load(p + (<usize>i << 2)), z));
    m |= (<u64>(<u32>bits)) << (<u64>i);
  }
  if (i < n) {
    const bits = i32x4.bitmask(f32x4.ne(loadPartial(p + (<usize>i << 2), n - i), z));
    m |= (<u64>(<u32>bits)) << (<u64>i);
  }
  return m;
}

// scratch slots (see the header)
const SLOT_BASE: usize = 4096;
const SLOT_BYTES: usize = 4096;
const SLOT_COUNT: usize = 15;

/** Claims a free scratch slot for this call: its address, or 0 when all are taken. */
function claimSlot(): usize {
  for (let i: usize = 0; i < SLOT_COUNT; i++) {
    if (atomic.cmpxchg<i32>(i << 2, 0, 1) == 0) return SLOT_BASE + i * SLOT_BYTES;
  }
  return 0;
}

function releaseSlot(slot: usize): void {
  atomic.store<i32>(((slot - SLOT_BASE) / SLOT_BYTES) << 2, 0);
}

// ---------------------------------------------------------------------------------------------------
// gatherInputs: X[r][k] = the correctly rounded p/255 of pixels[order[start + r] * nIn + k] (equal to the
// reference's PIXEL_SCALE table for all 256 bytes; the tests check every one). Groups of 16 zero bytes
// (most of an MNIST image) are stored as zeros directly.
//
// The batch's images sit at random places in a large dataset, so their bytes usually come from DRAM.
// A first pass touches every 64-byte line of every row (independent loads, so the misses overlap); the
// conversion pass then reads from cache. The touched bytes are folded into a value stored in this call's
// scratch slot, so no compiler can drop the loads.

// p/255 = f32(f32(p·PIXEL_HI) + f32(p·PIXEL_LO)): PIXEL_HI = 257/2^16 has 9 significant bits, so p·PIXEL_HI is exact
// for a byte p, and PIXEL_LO = f32(1/255 - PIXEL_HI); one rounding of the sum gives the correctly rounded
// p/255 for every p in 0..255 (checked exhaustively; the tests compare all 256 with PIXEL_SCALE). Two
// multiplies and an add, instead of a division.
const PIXEL_HI: f32 = 0.0039215087890625;
const PIXEL_LO: f32 = 5.983839201917363e-8;

// @ts-ignore: decorator
@inline function pixelScale(p: v128, ch: v128, cl: v128): v128 {
  const x = f32x4.convert_i32x4_u(p);
  return f32x4.add(f32x4.mul(x, ch), f32x4.mul(x, cl));
}

export function gatherInputs(pixels: usize, order: usize, start: i32, rows: i32, nIn: i32, X: usize): void {
  const ch = f32x4.splat(PIXEL_HI);
  const cl = f32x4.splat(PIXEL_LO);
  const z = f32x4.splat(0);
  const slot = claimSlot();
  if (slot != 0) {
    let t = i32x4.splat(0);
    for (let r = 0; r < rows; r++) {
      const idx = load<u32>(order + ((<usize>(start + r)) << 2));
      const src = pixels + <usize>idx * <usize>nIn;
      let k = 0;
      for (; k + 16 <= nIn; k += 64) t = v128.or(t, v128.load(src + <usize>k));
      if (nIn > 0) t = v128.or(t, i32x4.splat(<i32>load<u8>(src + <usize>(nIn - 1))));
    }
    v128.store(slot, t);
    releaseSlot(slot);
  }
  for (let r = 0; r < rows; r++) {
    const idx = load<u32>(order + ((<usize>(start + r)) << 2));
    const src = pixels + <usize>idx * <usize>nIn;
    const dst = X + ((<usize>r * <usize>nIn) << 2);
    let k = 0;
    for (; k + 16 <= nIn; k += 16) {
      const v = v128.load(src + <usize>k);
      const d = dst + (<usize>k << 2);
      if (!v128.any_true(v)) {
        v128.store(d, z, 0);
        v128.store(d, z, 16);
        v128.store(d, z, 32);
        v128.store(d, z, 48);
        continue;
      }
      const lo = i16x8.extend_low_i8x16_u(v);
      const hi = i16x8.extend_high_i8x16_u(v);
      v128.store(d, pixelScale(i32x4.extend_low_i16x8_u(lo), ch, cl), 0);
      v128.store(d, pixelScale(i32x4.extend_high_i16x8_u(lo), ch, cl), 16);
      v128.store(d, pixelScale(i32x4.extend_low_i16x8_u(hi), ch, cl), 32);
      v128.store(d, pixelScale(i32x4.extend_high_i16x8_u(hi), ch, cl), 48);
    }
    for (; k < nIn; k++) {
      const p = <f32>load<u8>(src + <usize>k);
      store<f32>(dst + (<usize>k << 2), p * PIXEL_HI + p * PIXEL_LO);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// denseForward: out[r][j] = act((Σ_k X[r][k]·W[k][j]) + b[j]) for j in [j0, j1), every row.
//
// Lanes along j. The k range is cut into chunks of 64; a 64-bit mask of each row's non-zero inputs in the
// chunk is built with SIMD compares, and register blocks walk only the set bits (ctz), in increasing k.
// Rows go in groups of 8, and within a group chunk by chunk, so that a chunk of W stays in L1 for the
// whole group; in a chunk the rows go in pairs, and one of two blocks is chosen from the masks' bit counts:
//   single: one row × 24 columns (6 accumulators; then 16, then the last 1..15 columns in one loop; a
//           width of 32 left is done as 16 + 16), exactly that row's non-zero inputs (sparse rows, such
//           as MNIST pixels or ReLU outputs);
//   pair:   two rows × 16 columns (8 accumulators) from j0 over the union of the two rows' non-zero
//           inputs, sharing each weight load (dense rows); where one row's input is 0 it adds a ±0
//           product, which changes nothing. The last (j1 - j0) % 16 columns go as single rows.
// The output rows start at +0 and hold the partial sums between chunks (float32 values, so parking them
// is exact). The bias is added last, then the ReLU.

// @ts-ignore: decorator
@inline function fwd24(xc: usize, wc: usize, sw: usize, o: usize, mask: u64): void {
  let a0 = v128.load(o, 0), a1 = v128.load(o, 16), a2 = v128.load(o, 32);
  let a3 = v128.load(o, 48), a4 = v128.load(o, 64), a5 = v128.load(o, 80);
  let m = mask;
  do {
    const k = <usize>ctz(m);
    m &= m - 1;
    const x = v128.load32_splat(xc + (k << 2));
    const w = wc + k * sw;
    a0 = f32x4.add(a0, f32x4.mul(x, v128.load(w, 0)));
    a1 = f32x4.add(a1, f32x4.mul(x, v128.load(w, 16)));
    a2 = f32x4.add(a2, f32x4.mul(x, v128.load(w, 32)));
    a3 = f32x4.add(a3, f32x4.mul(x, v128.load(w, 48)));
    a4 = f32x4.add(a4, f32x4.mul(x, v128.load(w, 64)));
    a5 = f32x4.add(a5, f32x4.mul(x, v128.load(w, 80)));
  } while (m != 0);
  v128.store(o, a0, 0); v128.store(o, a1, 16); v128.store(o, a2, 32);
  v128.store(o, a3, 48); v128.store(o, a4, 64); v128.store(o, a5, 80);
}

// @ts-ignore: decorator
@inline function fwd16(xc: usize, wc: usize, sw: usize, o: usize, mask: u64): void {
  let a0 = v128.load(o, 0), a1 = v128.load(o, 16), a2 = v128.load(o, 32), a3 = v128.load(o, 48);
  let m = mask;
  do {
    const k = <usize>ctz(m);
    m &= m - 1;
    const x = v128.load32_splat(xc + (k << 2));
    const w = wc + k * sw;
    a0 = f32x4.add(a0, f32x4.mul(x, v128.load(w, 0)));
    a1 = f32x4.add(a1, f32x4.mul(x, v128.load(w, 16)));
    a2 = f32x4.add(a2, f32x4.mul(x, v128.load(w, 32)));
    a3 = f32x4.add(a3, f32x4.mul(x, v128.load(w, 48)));
  } while (m != 0);
  v128.store(o, a0, 0); v128.store(o, a1, 16); v128.store(o, a2, 32); v128.store(o, a3, 48);
}

/** The last 1..15 columns of a row in one loop: nv (0..3, one variant each) full vectors, then np (0..3) floats. */
// @ts-ignore: decorator
@inline function fwdTail0(xc: usize, wc: usize, sw: usize, o: usize, mask: u64, np: i32): void {
  let ap = f32x4.splat(0);
  if (np > 0) ap = loadPartial(o + 0, np);
  let m = mask;
  do {
    const k = <usize>ctz(m);
    m &= m - 1;
    const x = v128.load32_splat(xc + (k << 2));
    const w = wc + k * sw;
    if (np > 0) ap = f32x4.add(ap, f32x4.mul(x, loadPartial(w + 0, np)));
  } while (m != 0);
  if (np > 0) storePartial(o + 0, ap, np);
}

// @ts-ignore: decorator
@inline function fwdTail1(xc: usize, wc: usize, sw: usize, o: usize, mask: u64, np: i32): void {
  let a0 = f32x4.splat(0), ap = f32x4.splat(0);
  a0 = v128.load(o, 0);
  if (np > 0) ap = loadPartial(o + 16, np);
  let m = mask;
  do {
    const k = <usize>ctz(m);
    m &= m - 1;
    const x = v128.load32_splat(xc + (k << 2));
    const w = wc + k * sw;
    a0 = f32x4.add(a0, f32x4.mul(x, v128.load(w, 0)));
    if (np > 0) ap = f32x4.add(ap, f32x4.mul(x, loadPartial(w + 16, np)));
  } while (m != 0);
  v128.store(o, a0, 0);
  if (np > 0) storePartial(o + 16, ap, np);
}

// @ts-ignore: decorator
@inline function fwdTail2(xc: usize, wc: usize, sw: usize, o: usize, mask: u64, np: i32): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), ap = f32x4.splat(0);
  a0 = v128.load(o, 0);
  a1 = v128.load(o, 16);
  if (np > 0) ap = loadPartial(o + 32, np);
  let m = mask;
  do {
    const k = <usize>ctz(m);
    m &= m - 1;
    const x = v128.load32_splat(xc + (k << 2));
    const w = wc + k * sw;
    a0 = f32x4.add(a0, f32x4.mul(x, v128.load(w, 0)));
    a1 = f32x4.add(a1, f32x4.mul(x, v128.load(w, 16)));
    if (np > 0) ap = f32x4.add(ap, f32x4.mul(x, loadPartial(w + 32, np)));
  } while (m != 0);
  v128.store(o, a0, 0);
  v128.store(o, a1, 16);
  if (np > 0) storePartial(o + 32, ap, np);
}

// @ts-ignore: decorator
@inline function fwdTail3(xc: usize, wc: usize, sw: usize, o: usize, mask: u64, np: i32): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), ap = f32x4.splat(0);
  a0 = v128.load(o, 0);
  a1 = v128.load(o, 16);
  a2 = v128.load(o, 32);
  if (np > 0) ap = loadPartial(o + 48, np);
  let m = mask;
  do {
    const k = <usize>ctz(m);
    m &= m - 1;
    const x = v128.load32_splat(xc + (k << 2));
    const w = wc + k * sw;
    a0 = f32x4.add(a0, f32x4.mul(x, v128.load(w, 0)));
    a1 = f32x4.add(a1, f32x4.mul(x, v128.load(w, 16)));
    a2 = f32x4.add(a2, f32x4.mul(x, v128.load(w, 32)));
    if (np > 0) ap = f32x4.add(ap, f32x4.mul(x, loadPartial(w + 48, np)));
  } while (m != 0);
  v128.store(o, a0, 0);
  v128.store(o, a1, 16);
  v128.store(o, a2, 32);
  if (np > 0) storePartial(o + 48, ap, np);
}

/** Two rows (o, o + sw) × 16 columns over the union of their non-zero inputs (xc: row 1, xc + sx: row 2). */
// @ts-ignore: decorator
@inline function fwdPair16(xc: usize, sx: usize, wc: usize, sw: usize, o: usize, mask: u64): void {
  const p = o + sw;
  let a0 = v128.load(o, 0), a1 = v128.load(o, 16), a2 = v128.load(o, 32), a3 = v128.load(o, 48);
  let b0 = v128.load(p, 0), b1 = v128.load(p, 16), b2 = v128.load(p, 32), b3 = v128.load(p, 48);
  let m = mask;
  do {
    const k = <usize>ctz(m);
    m &= m - 1;
    const xk = xc + (k << 2);
    const x = v128.load32_splat(xk);
    const y = v128.load32_splat(xk + sx);
    const w = wc + k * sw;
    const w0 = v128.load(w, 0), w1 = v128.load(w, 16), w2 = v128.load(w, 32), w3 = v128.load(w, 48);
    a0 = f32x4.add(a0, f32x4.mul(x, w0));
    a1 = f32x4.add(a1, f32x4.mul(x, w1));
    a2 = f32x4.add(a2, f32x4.mul(x, w2));
    a3 = f32x4.add(a3, f32x4.mul(x, w3));
    b0 = f32x4.add(b0, f32x4.mul(y, w0));
    b1 = f32x4.add(b1, f32x4.mul(y, w1));
    b2 = f32x4.add(b2, f32x4.mul(y, w2));
    b3 = f32x4.add(b3, f32x4.mul(y, w3));
  } while (m != 0);
  v128.store(o, a0, 0); v128.store(o, a1, 16); v128.store(o, a2, 32); v128.store(o, a3, 48);
  v128.store(p, b0, 0); v128.store(p, b1, 16); v128.store(p, b2, 32); v128.store(p, b3, 48);
}

/** One row, columns j0..j1-1, the chunk's non-zero inputs (mask != 0), partial sums parked at orow. */
// @ts-ignore: decorator
@inline function fwdRowChunk(xc: usize, wc: usize, sw: usize, orow: usize, mask: u64, j0: i32, j1: i32): void {
  let j = j0;
  for (; j1 - j >= 24 && j1 - j != 32; j += 24) fwd24(xc, wc + (<usize>j << 2), sw, orow + (<usize>j << 2), mask);
  for (; j1 - j >= 16; j += 16) fwd16(xc, wc + (<usize>j << 2), sw, orow + (<usize>j << 2), mask);
  if (j < j1) {
    const wt = wc + (<usize>j << 2), ot = orow + (<usize>j << 2), nv = (j1 - j) >> 2, np = (j1 - j) & 3;
    if (nv == 0) fwdTail0(xc, wt, sw, ot, mask, np);
    else if (nv == 1) fwdTail1(xc, wt, sw, ot, mask, np);
    else if (nv == 2) fwdTail2(xc, wt, sw, ot, mask, np);
    else fwdTail3(xc, wt, sw, ot, mask, np);
  }
}

/** The sums start at +0: zero the row's columns j0..j1-1 before the chunks park their partial sums there. */
// @ts-ignore: decorator
@inline function zeroRow(orow: usize, j0: i32, j1: i32): void {
  const z = f32x4.splat(0);
  let j = j0;
  for (; j + 4 <= j1; j += 4) v128.store(orow + (<usize>j << 2), z);
  if (j < j1) storePartial(orow + (<usize>j << 2), z, j1 - j);
}

/** out = acc + b (bias last), then the ReLU: z > 0 ? z : +0 (NaN and -0 give +0, as in the reference). */
// @ts-ignore: decorator
@inline function biasAct(orow: usize, b: usize, j0: i32, j1: i32, relu: i32): void {
  const z = f32x4.splat(0);
  let j = j0;
  for (; j + 4 <= j1; j += 4) {
    const o = orow + (<usize>j << 2);
    let v = f32x4.add(v128.load(o), v128.load(b + (<usize>j << 2)));
    if (relu) v = v128.and(v, f32x4.gt(v, z));
    v128.store(o, v);
  }
  if (j < j1) {
    const n = j1 - j;
    const o = orow + (<usize>j << 2);
    let v = f32x4.add(loadPartial(o, n), loadPartial(b + (<usize>j << 2), n));
    if (relu) v = v128.and(v, f32x4.gt(v, z));
    storePartial(o, v, n);
  }
}

export function denseForward(
  X: usize, W: usize, b: usize, out: usize, rows: i32, nIn: i32, nOut: i32, relu: i32, j0: i32, j1: i32,
): void {
  if (j0 >= j1) return;
  const sw = <usize>nOut << 2;
  const sx = <usize>nIn << 2;
  // Rows go in groups of FWD_GROUP_ROWS, and within a group the chunks of 64 inputs go in the outer loop:
  // a chunk of W (64 rows of weights, 32 KiB at 128 outputs) is then read from L2 once per group and
  // served from L1 to the group's other rows, instead of once per pair of rows.
  for (let g = 0; g < rows; g += FWD_GROUP_ROWS) {
    const gEnd = min(rows, g + FWD_GROUP_ROWS);
    for (let r = g; r < gEnd; r++) zeroRow(out + <usize>r * sw, j0, j1);
    for (let kc = 0; kc < nIn; kc += 64) {
      const n = min(64, nIn - kc);
      const wc = W + <usize>kc * sw;
      let r = g;
      for (; r + 2 <= gEnd; r += 2) {
        fwdPairChunk(X + <usize>r * sx + (<usize>kc << 2), sx, wc, sw, out + <usize>r * sw, n, j0, j1);
      }
      if (r < gEnd) {
        const xc = X + <usize>r * sx + (<usize>kc << 2);
        const m = nonzeroMask(xc, n);
        if (m != 0) fwdRowChunk(xc, wc, sw, out + <usize>r * sw, m, j0, j1);
      }
    }
    for (let r = g; r < gEnd; r++) biasAct(out + <usize>r * sw, b, j0, j1, relu);
  }
}

/**
 * Rows per group in denseForward: 8 rows' partial sums (4 KiB at 128 outputs) and inputs stay in L1 beside
 * a 32 KiB chunk of W; 16 rows' would push the chunk out of a 48 KiB L1 (docs/benchmarks.md, "Kernels").
 */
const FWD_GROUP_ROWS = 8;

/**
 * One chunk of n (<= 64) inputs for two rows (xc: row 1's chunk, xc + sx: row 2's; o: row 1's output),
 * columns j0..j1-1: the two rows share the weight loads (2 rows × 16 columns) when their non-zero patterns
 * overlap enough, else each row walks exactly its own non-zero inputs.
 */
// @ts-ignore: decorator
@inline function fwdPairChunk(
  xc: usize, sx: usize, wc: usize, sw: usize, o: usize, n: i32, j0: i32, j1: i32,
): void {
  const m1 = nonzeroMask(xc, n);
  const m2 = nonzeroMask(xc + sx, n);
  const u = m1 | m2;
  if (u == 0) return;
  const pairEnd = j0 + ((j1 - j0) & ~15);
  const pu = <i32>popcnt(u);
  if (pairEnd > j0 && pu * 5 < (<i32>popcnt(m1) + <i32>popcnt(m2)) * 3) {
    for (let j = j0; j < pairEnd; j += 16) fwdPair16(xc, sx, wc + (<usize>j << 2), sw, o + (<usize>j << 2), u);
    if (pairEnd < j1) {
      if (m1 != 0) fwdRowChunk(xc, wc, sw, o, m1, pairEnd, j1);
      if (m2 != 0) fwdRowChunk(xc + sx, wc, sw, o + sw, m2, pairEnd, j1);
    }
  } else {
    if (m1 != 0) fwdRowChunk(xc, wc, sw, o, m1, j0, j1);
    if (m2 != 0) fwdRowChunk(xc + sx, wc, sw, o + sw, m2, j0, j1);
  }
}

// ---------------------------------------------------------------------------------------------------
// reluBackward: Dprev[r][k] = Aprev[r][k] > 0 ? Σ_j D[r][j]·W[k][j] : +0.
//
// Main path: lanes along r. For each block of 8 rows the small operand, D, is transposed into a scratch
// slot, T[j] = (D[r][j], ..., D[r+7][j]) (8 floats, two vectors), with 4×4 in-register transposes. Then a
// register block of 8 rows × 4 k (8 accumulators) runs j = 0..nOut-1 in order:
//   acc[k+i] += splat(W[k+i][j]) · T[j]
// reading the weights in place. The accumulators are transposed back in registers (4×4) to store rows
// of Dprev with the ReLU mask of Aprev. Zero D terms are computed (adding ±0 changes nothing). Lanes of
// missing rows (rows % 8) repeat a valid row and are not stored; missing k (nIn % 4) read a duplicate
// valid row of W and are not stored. The main path needs 32·nOut bytes of scratch (nOut <= 128).
//
// Fallback (no free slot, or nOut > 128): lanes along k, 8 rows × 4 k, transposing 4×4 tiles of W in
// registers (same sums, same bits, slower because of register pressure).

// @ts-ignore: decorator
@inline function transposeRow(a0: v128, a1: v128, a2: v128, a3: v128, which: i32): v128 {
  // column `which` of the 4×4 tile whose rows are a0..a3
  if (which == 0) return f32x4.shuffle(f32x4.shuffle(a0, a1, 0, 4, 1, 5), f32x4.shuffle(a2, a3, 0, 4, 1, 5), 0, 1, 4, 5);
  if (which == 1) return f32x4.shuffle(f32x4.shuffle(a0, a1, 0, 4, 1, 5), f32x4.shuffle(a2, a3, 0, 4, 1, 5), 2, 3, 6, 7);
  if (which == 2) return f32x4.shuffle(f32x4.shuffle(a0, a1, 2, 6, 3, 7), f32x4.shuffle(a2, a3, 2, 6, 3, 7), 0, 1, 4, 5);
  return f32x4.shuffle(f32x4.shuffle(a0, a1, 2, 6, 3, 7), f32x4.shuffle(a2, a3, 2, 6, 3, 7), 2, 3, 6, 7);
}

/** Dprev row segment at P (kn floats) = acc where Aprev at A > 0, else +0. */
// @ts-ignore: decorator
@inline function rbStore(A: usize, P: usize, acc: v128, kn: i32): void {
  const z = f32x4.splat(0);
  if (kn == 4) {
    v128.store(P, v128.and(acc, f32x4.gt(v128.load(A), z)));
  } else {
    storePartial(P, v128.and(acc, f32x4.gt(loadPartial(A, kn), z)), kn);
  }
}

/** T[j] for rows r..r+nr-1 (nr <= 4) of D, j = 0..nOut-1, into the 4 lanes at T + 32j (lanes past nr repeat the
 * last row and are never stored; nr <= 0 writes zeros). */
// @ts-ignore: decorator
@inline function transposeRowsInto(T: usize, D: usize, sd: usize, r: i32, nr: i32, nOut: i32): void {
  const z = f32x4.splat(0);
  if (nr <= 0) {
    for (let j = 0; j < nOut; j++) v128.store(T + (<usize>j << 5), z);
    return;
  }
  const last = r + nr - 1;
  const d0 = D + <usize>r * sd;
  const d1 = D + <usize>min(r + 1, last) * sd;
  const d2 = D + <usize>min(r + 2, last) * sd;
  const d3 = D + <usize>min(r + 3, last) * sd;
  let j = 0;
  for (; j + 4 <= nOut; j += 4) {
    const jo = <usize>j << 2;
    const x0 = v128.load(d0 + jo), x1 = v128.load(d1 + jo), x2 = v128.load(d2 + jo), x3 = v128.load(d3 + jo);
    const u0 = f32x4.shuffle(x0, x1, 0, 4, 1, 5);
    const u1 = f32x4.shuffle(x0, x1, 2, 6, 3, 7);
    const u2 = f32x4.shuffle(x2, x3, 0, 4, 1, 5);
    const u3 = f32x4.shuffle(x2, x3, 2, 6, 3, 7);
    const t = T + (<usize>j << 5);
    v128.store(t, f32x4.shuffle(u0, u2, 0, 1, 4, 5), 0);
    v128.store(t, f32x4.shuffle(u0, u2, 2, 3, 6, 7), 32);
    v128.store(t, f32x4.shuffle(u1, u3, 0, 1, 4, 5), 64);
    v128.store(t, f32x4.shuffle(u1, u3, 2, 3, 6, 7), 96);
  }
  if (j < nOut) {
    const jn = nOut - j;
    const jo = <usize>j << 2;
    const x0 = loadPartial(d0 + jo, jn), x1 = loadPartial(d1 + jo, jn);
    const x2 = loadPartial(d2 + jo, jn), x3 = loadPartial(d3 + jo, jn);
    for (let i = 0; i < jn; i++) {
      v128.store(T + (<usize>(j + i) << 5), transposeRow(x0, x1, x2, x3, i));
    }
  }
}

// @ts-ignore: decorator
@inline function rbScratchBlock(
  T: usize, W: usize, A: usize, P: usize, r: i32, nr: i32, k: i32, kn: i32, nIn: i32, nOut: i32,
): void {
  const sw = <usize>nOut << 2;
  const sa = <usize>nIn << 2;
  const kl = nIn - 1;
  const w0 = W + <usize>k * sw;
  const w1 = W + <usize>min(k + 1, kl) * sw;
  const w2 = W + <usize>min(k + 2, kl) * sw;
  const w3 = W + <usize>min(k + 3, kl) * sw;
  let a0 = f32x4.splat(0), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
  let t = T;
  for (let jo: usize = 0; jo < sw; jo += 4) {
    const tl = v128.load(t, 0);
    const th = v128.load(t, 16);
    const s0 = v128.load32_splat(w0 + jo);
    const s1 = v128.load32_splat(w1 + jo);
    const s2 = v128.load32_splat(w2 + jo);
    const s3 = v128.load32_splat(w3 + jo);
    a0 = f32x4.add(a0, f32x4.mul(s0, tl));
    b0 = f32x4.add(b0, f32x4.mul(s0, th));
    a1 = f32x4.add(a1, f32x4.mul(s1, tl));
    b1 = f32x4.add(b1, f32x4.mul(s1, th));
    a2 = f32x4.add(a2, f32x4.mul(s2, tl));
    b2 = f32x4.add(b2, f32x4.mul(s2, th));
    a3 = f32x4.add(a3, f32x4.mul(s3, tl));
    b3 = f32x4.add(b3, f32x4.mul(s3, th));
    t += 32;
  }
  // a_i / b_i: lanes = rows r..r+3 / r+4..r+7 of column k+i. Transpose back to rows of 4 k.
  const e = <usize>r * sa + (<usize>k << 2);
  const u0 = f32x4.shuffle(a0, a1, 0, 4, 1, 5);
  const u1 = f32x4.shuffle(a0, a1, 2, 6, 3, 7);
  const u2 = f32x4.shuffle(a2, a3, 0, 4, 1, 5);
  const u3 = f32x4.shuffle(a2, a3, 2, 6, 3, 7);
  rbStore(A + e, P + e, f32x4.shuffle(u0, u2, 0, 1, 4, 5), kn);
  if (nr > 1) rbStore(A + e + sa, P + e + sa, f32x4.shuffle(u0, u2, 2, 3, 6, 7), kn);
  if (nr > 2) rbStore(A + e + 2 * sa, P + e + 2 * sa, f32x4.shuffle(u1, u3, 0, 1, 4, 5), kn);
  if (nr > 3) rbStore(A + e + 3 * sa, P + e + 3 * sa, f32x4.shuffle(u1, u3, 2, 3, 6, 7), kn);
  if (nr > 4) {
    const f = e + 4 * sa;
    const v0 = f32x4.shuffle(b0, b1, 0, 4, 1, 5);
    const v1 = f32x4.shuffle(b0, b1, 2, 6, 3, 7);
    const v2 = f32x4.shuffle(b2, b3, 0, 4, 1, 5);
    const v3 = f32x4.shuffle(b2, b3, 2, 6, 3, 7);
    rbStore(A + f, P + f, f32x4.shuffle(v0, v2, 0, 1, 4, 5), kn);
    if (nr > 5) rbStore(A + f + sa, P + f + sa, f32x4.shuffle(v0, v2, 2, 3, 6, 7), kn);
    if (nr > 6) rbStore(A + f + 2 * sa, P + f + 2 * sa, f32x4.shuffle(v1, v3, 0, 1, 4, 5), kn);
    if (nr > 7) rbStore(A + f + 3 * sa, P + f + 3 * sa, f32x4.shuffle(v1, v3, 2, 3, 6, 7), kn);
  }
}

// @ts-ignore: decorator
@inline function rbFallbackBlock(
  D: usize, W: usize, A: usize, P: usize, r: i32, nr: i32, k: i32, kn: i32, nIn: i32, nOut: i32,
): void {
  const sd = <usize>nOut << 2;
  const sa = <usize>nIn << 2;
  const last = r + nr - 1;
  const d0 = D + <usize>r * sd;
  const d1 = D + <usize>min(r + 1, last) * sd;
  const d2 = D + <usize>min(r + 2, last) * sd;
  const d3 = D + <usize>min(r + 3, last) * sd;
  const d4 = D + <usize>min(r + 4, last) * sd;
  const d5 = D + <usize>min(r + 5, last) * sd;
  const d6 = D + <usize>min(r + 6, last) * sd;
  const d7 = D + <usize>min(r + 7, last) * sd;
  const kl = nIn - 1;
  const w0 = W + <usize>k * sd;
  const w1 = W + <usize>min(k + 1, kl) * sd;
  const w2 = W + <usize>min(k + 2, kl) * sd;
  const w3 = W + <usize>min(k + 3, kl) * sd;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  let j = 0;
  for (; j < nOut; j += 4) {
    const jn = min(4, nOut - j);
    const jo = <usize>j << 2;
    let x0: v128, x1: v128, x2: v128, x3: v128;
    if (jn == 4) {
      x0 = v128.load(w0 + jo); x1 = v128.load(w1 + jo); x2 = v128.load(w2 + jo); x3 = v128.load(w3 + jo);
    } else {
      x0 = loadPartial(w0 + jo, jn); x1 = loadPartial(w1 + jo, jn);
      x2 = loadPartial(w2 + jo, jn); x3 = loadPartial(w3 + jo, jn);
    }
    for (let i = 0; i < jn; i++) {
      const t = transposeRow(x0, x1, x2, x3, i); // (W[k][j+i], W[k+1][j+i], W[k+2][j+i], W[k+3][j+i])
      const io = jo + (<usize>i << 2);
      a0 = f32x4.add(a0, f32x4.mul(v128.load32_splat(d0 + io), t));
      a1 = f32x4.add(a1, f32x4.mul(v128.load32_splat(d1 + io), t));
      a2 = f32x4.add(a2, f32x4.mul(v128.load32_splat(d2 + io), t));
      a3 = f32x4.add(a3, f32x4.mul(v128.load32_splat(d3 + io), t));
      a4 = f32x4.add(a4, f32x4.mul(v128.load32_splat(d4 + io), t));
      a5 = f32x4.add(a5, f32x4.mul(v128.load32_splat(d5 + io), t));
      a6 = f32x4.add(a6, f32x4.mul(v128.load32_splat(d6 + io), t));
      a7 = f32x4.add(a7, f32x4.mul(v128.load32_splat(d7 + io), t));
    }
  }
  const e0 = <usize>r * sa + (<usize>k << 2);
  rbStore(A + e0, P + e0, a0, kn);
  if (nr > 1) rbStore(A + e0 + sa, P + e0 + sa, a1, kn);
  if (nr > 2) rbStore(A + e0 + 2 * sa, P + e0 + 2 * sa, a2, kn);
  if (nr > 3) rbStore(A + e0 + 3 * sa, P + e0 + 3 * sa, a3, kn);
  if (nr > 4) rbStore(A + e0 + 4 * sa, P + e0 + 4 * sa, a4, kn);
  if (nr > 5) rbStore(A + e0 + 5 * sa, P + e0 + 5 * sa, a5, kn);
  if (nr > 6) rbStore(A + e0 + 6 * sa, P + e0 + 6 * sa, a6, kn);
  if (nr > 7) rbStore(A + e0 + 7 * sa, P + e0 + 7 * sa, a7, kn);
}

export function reluBackward(D: usize, W: usize, Aprev: usize, Dprev: usize, rows: i32, nIn: i32, nOut: i32): void {
  if (rows <= 0 || nIn <= 0) return;
  const slot = nOut <= 128 && nOut > 0 ? claimSlot() : 0;
  if (slot != 0) {
    const sd = <usize>nOut << 2;
    for (let r = 0; r < rows; r += 8) {
      const nr = min(8, rows - r);
      transposeRowsInto(slot, D, sd, r, min(4, nr), nOut);
      transposeRowsInto(slot + 16, D, sd, r + 4, nr - 4, nOut);
      for (let k = 0; k < nIn; k += 4) {
        rbScratchBlock(slot, W, Aprev, Dprev, r, nr, k, min(4, nIn - k), nIn, nOut);
      }
    }
    releaseSlot(slot);
    return;
  }
  for (let k = 0; k < nIn; k += 4) {
    const kn = min(4, nIn - k);
    for (let r = 0; r < rows; r += 8) {
      rbFallbackBlock(D, W, Aprev, Dprev, r, min(8, rows - r), k, kn, nIn, nOut);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// weightGradUpdate: one optimizer step of W[k][j] with gradient Σ_r Aprev[r][k]·D[r][j], on the rectangle
// k in [k0, k1), j in [j0, j1); the sum over r = 0..rows-1 in order, skipping rows whose Aprev[r][k] is 0.
//
// For each group of 4 k, the non-zero pattern of Aprev[·][k..k+3] is read once with SIMD compares into
// 32-row bit masks (one i32 lane per k). Lanes run along j; the rows of a k are walked with ctz over its
// masks, in increasing r, and acc += splat(Aprev[r][k]) · D[r][j..]. Two register blocks:
//   single: one k × 24 columns (6 accumulators; then 16, then the last 1..15), exactly the non-zero
//           rows of that k;
//   pair:   two adjacent k × 16 columns from j0 (8 accumulators) over the union of their non-zero rows,
//           sharing each load of D (a row where one of the two inputs is 0 adds a ±0 product, which
//           changes nothing); chosen per pair of k when the union is small enough (neighbouring pixels);
//           the last (j1 - j0) % 16 columns then go one k at a time.
// The update is fused: each vector of gradients goes from its accumulator to the update, no gradient
// buffer. Plain SGD (no weight decay) is W = W - f32(lr·acc) in registers (upd4 with u = 0); every other
// step calls updateVec with the update descriptor u. For plain SGD a k with no non-zero row has gradient
// +0; where f32(lr·+0) is +0, W - (+0) === W, so that row of W is not touched (a stateful or decaying step
// moves it, so it is updated). Up to 256 rows use the masks; more rows take a branchy path with the same
// arithmetic.

// @ts-ignore: decorator
@inline function pickMask(c: i32, q0: u64, q1: u64, q2: u64, q3: u64): u64 {
  return c == 0 ? q0 : c == 1 ? q1 : c == 2 ? q2 : q3;
}

// @ts-ignore: decorator
@inline function sgd4(wp: usize, lr: v128, acc: v128, off: usize): void {
  v128.store(wp + off, f32x4.sub(v128.load(wp + off), f32x4.mul(lr, acc)));
}

/** The `u` of the blocks below that stores the gradient at wp (a scratch row) for updateRow to apply. */
const STORE_GRADIENT: usize = 1;

/**
 * The 4 gradients acc of the parameters at wp + off: plain SGD when u is 0, stored as they are when u is
 * STORE_GRADIENT, else the step of the update descriptor at u.
 */
// @ts-ignore: decorator
@inline function upd4(wp: usize, lr: v128, u: usize, acc: v128, off: usize): void {
  if (u == 0) sgd4(wp, lr, acc, off);
  else if (u == STORE_GRADIENT) v128.store(wp + off, acc);
  else updateVec(wp + off, u, acc, 4);
}

/** As upd4 for the first n (1..3) parameters at p. */
// @ts-ignore: decorator
@inline function updPartial(p: usize, lr: v128, u: usize, acc: v128, n: i32): void {
  if (u == 0) storePartial(p, f32x4.sub(loadPartial(p, n), f32x4.mul(lr, acc)), n);
  else if (u == STORE_GRADIENT) storePartial(p, acc, n);
  else updateVec(p, u, acc, n);
}

// The update descriptor (src/optim/optimizer.ts, UpdateWord and UpdateRule): byte offsets of its words.
const U_RULE: usize = 0, U_STATE1: usize = 4, U_STATE2: usize = 8, U_LR: usize = 12, U_WD: usize = 16;
const U_BETA1: usize = 20, U_OMB1: usize = 24, U_BETA2: usize = 28, U_OMB2: usize = 32, U_EPS: usize = 36;
const U_STEP: usize = 40, U_INVB2: usize = 44, U_DECAY: usize = 48;
const RULE_SGD = 0, RULE_NESTEROV = 2, RULE_ADAM = 3, RULE_ADAMW = 4; // 1 is momentum

// @ts-ignore: decorator
@inline function loadN(p: usize, n: i32): v128 {
  return n == 4 ? v128.load(p) : loadPartial(p, n);
}

// @ts-ignore: decorator
@inline function storeN(p: usize, v: v128, n: i32): void {
  if (n == 4) v128.store(p, v);
  else storePartial(p, v, n);
}

/**
 * One optimizer step (reference.ts, updateParams) of the n (1..4) parameters at p, gradient g, their state
 * at the descriptor's byte distances from p; the same float32 operations in the same order, lane by lane.
 */
function updateVec(p: usize, u: usize, g0: v128, n: i32): void {
  const rule = load<i32>(u, U_RULE);
  const wd = load<f32>(u, U_WD);
  let g = g0;
  let w = loadN(p, n);
  if (wd != 0) {
    if (rule == RULE_ADAMW) w = f32x4.mul(w, v128.load32_splat(u + U_DECAY));
    else g = f32x4.add(g, f32x4.mul(f32x4.splat(wd), w));
  }
  const s1 = p + <usize>load<i32>(u, U_STATE1);
  if (rule < RULE_ADAM) {
    if (rule != RULE_SGD) {
      const mu = v128.load32_splat(u + U_BETA1);
      const b = f32x4.add(f32x4.mul(mu, loadN(s1, n)), g);
      storeN(s1, b, n);
      g = rule == RULE_NESTEROV ? f32x4.add(g, f32x4.mul(mu, b)) : b;
    }
    w = f32x4.sub(w, f32x4.mul(v128.load32_splat(u + U_LR), g));
  } else {
    const s2 = p + <usize>load<i32>(u, U_STATE2);
    const m = f32x4.add(f32x4.mul(v128.load32_splat(u + U_BETA1), loadN(s1, n)), f32x4.mul(v128.load32_splat(u + U_OMB1), g));
    const v = f32x4.add(
      f32x4.mul(v128.load32_splat(u + U_BETA2), loadN(s2, n)), f32x4.mul(f32x4.mul(v128.load32_splat(u + U_OMB2), g), g),
    );
    storeN(s1, m, n);
    storeN(s2, v, n);
    const denom = f32x4.add(f32x4.mul(f32x4.sqrt(v), v128.load32_splat(u + U_INVB2)), v128.load32_splat(u + U_EPS));
    w = f32x4.sub(w, f32x4.mul(v128.load32_splat(u + U_STEP), f32x4.div(m, denom)));
  }
  storeN(p, w, n);
}

/**
 * The step of the descriptor at u on the n parameters at p, their gradients at g (a scratch row): updateVec's
 * arithmetic, operation for operation, with the constants loaded once for the row.
 */
function updateRow(p: usize, g: usize, n: i32, u: usize): void {
  const rule = load<i32>(u, U_RULE);
  const decay = load<f32>(u, U_WD) != 0;
  const wd = v128.load32_splat(u + U_WD);
  const s1 = <usize>load<i32>(u, U_STATE1);
  const s2 = <usize>load<i32>(u, U_STATE2);
  let i = 0;
  if (rule >= RULE_ADAM) {
    const decoupled = rule == RULE_ADAMW;
    const b1 = v128.load32_splat(u + U_BETA1), omb1 = v128.load32_splat(u + U_OMB1);
    const b2 = v128.load32_splat(u + U_BETA2), omb2 = v128.load32_splat(u + U_OMB2);
    const invb2 = v128.load32_splat(u + U_INVB2), eps = v128.load32_splat(u + U_EPS);
    const step = v128.load32_splat(u + U_STEP), factor = v128.load32_splat(u + U_DECAY);
    for (; i + 4 <= n; i += 4) {
      const q = p + (<usize>i << 2);
      let w = v128.load(q);
      let gv = v128.load(g + (<usize>i << 2));
      if (decay) {
        if (decoupled) w = f32x4.mul(w, factor);
        else gv = f32x4.add(gv, f32x4.mul(wd, w));
      }
      const m = f32x4.add(f32x4.mul(b1, v128.load(q + s1)), f32x4.mul(omb1, gv));
      const v = f32x4.add(f32x4.mul(b2, v128.load(q + s2)), f32x4.mul(f32x4.mul(omb2, gv), gv));
      v128.store(q + s1, m);
      v128.store(q + s2, v);
      v128.store(q, f32x4.sub(w, f32x4.mul(step, f32x4.div(m, f32x4.add(f32x4.mul(f32x4.sqrt(v), invb2), eps)))));
    }
  } else {
    const stateful = rule != RULE_SGD;
    const nesterov = rule == RULE_NESTEROV;
    const lr = v128.load32_splat(u + U_LR), mu = v128.load32_splat(u + U_BETA1);
    for (; i + 4 <= n; i += 4) {
      const q = p + (<usize>i << 2);
      const w = v128.load(q);
      let gv = v128.load(g + (<usize>i << 2));
      if (decay) gv = f32x4.add(gv, f32x4.mul(wd, w));
      if (stateful) {
        const b = f32x4.add(f32x4.mul(mu, v128.load(q + s1)), gv);
        v128.store(q + s1, b);
        gv = nesterov ? f32x4.add(gv, f32x4.mul(mu, b)) : b;
      }
      v128.store(q, f32x4.sub(w, f32x4.mul(lr, gv)));
    }
  }
  if (i < n) updateVec(p + (<usize>i << 2), u, loadPartial(g + (<usize>i << 2), n - i), n - i);
}

/** Whether the descriptor at desc is plain SGD (no weight decay): then the kernels update in registers. */
// @ts-ignore: decorator
@inline function plainSgd(desc: usize): bool {
  return load<i32>(desc, U_RULE) == RULE_SGD && load<f32>(desc, U_WD) == 0;
}

// @ts-ignore: decorator
@inline function wg24(
  ak: usize, sa: usize, dj: usize, sd: usize, wp: usize, lr: v128, u: usize, q0: u64, q1: u64, q2: u64, q3: u64, nq: i32,
): void {
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
  for (let c = 0; c < nq; c++) {
    let m = pickMask(c, q0, q1, q2, q3);
    const rb = <usize>(c << 6);
    while (m != 0) {
      const r = rb + <usize>ctz(m);
      m &= m - 1;
      const x = v128.load32_splat(ak + r * sa);
      const d = dj + r * sd;
      a0 = f32x4.add(a0, f32x4.mul(x, v128.load(d, 0)));
      a1 = f32x4.add(a1, f32x4.mul(x, v128.load(d, 16)));
      a2 = f32x4.add(a2, f32x4.mul(x, v128.load(d, 32)));
      a3 = f32x4.add(a3, f32x4.mul(x, v128.load(d, 48)));
      a4 = f32x4.add(a4, f32x4.mul(x, v128.load(d, 64)));
      a5 = f32x4.add(a5, f32x4.mul(x, v128.load(d, 80)));
    }
  }
  upd4(wp, lr, u, a0, 0); upd4(wp, lr, u, a1, 16); upd4(wp, lr, u, a2, 32);
  upd4(wp, lr, u, a3, 48); upd4(wp, lr, u, a4, 64); upd4(wp, lr, u, a5, 80);
}

// @ts-ignore: decorator
@inline function wg16(
  ak: usize, sa: usize, dj: usize, sd: usize, wp: usize, lr: v128, u: usize, q0: u64, q1: u64, q2: u64, q3: u64, nq: i32,
): void {
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (let c = 0; c < nq; c++) {
    let m = pickMask(c, q0, q1, q2, q3);
    const rb = <usize>(c << 6);
    while (m != 0) {
      const r = rb + <usize>ctz(m);
      m &= m - 1;
      const x = v128.load32_splat(ak + r * sa);
      const d = dj + r * sd;
      a0 = f32x4.add(a0, f32x4.mul(x, v128.load(d, 0)));
      a1 = f32x4.add(a1, f32x4.mul(x, v128.load(d, 16)));
      a2 = f32x4.add(a2, f32x4.mul(x, v128.load(d, 32)));
      a3 = f32x4.add(a3, f32x4.mul(x, v128.load(d, 48)));
    }
  }
  upd4(wp, lr, u, a0, 0); upd4(wp, lr, u, a1, 16); upd4(wp, lr, u, a2, 32); upd4(wp, lr, u, a3, 48);
}

/** The last 1..15 columns of a W row in one loop: nv (0..3, one variant each) full vectors, then np (0..3) floats. */
// @ts-ignore: decorator
@inline function wgTail0(
  ak: usize, sa: usize, dj: usize, sd: usize, wp: usize, lr: v128, u: usize, q0: u64, q1: u64, q2: u64, q3: u64, nq: i32,
  np: i32,
): void {
  let ap = f32x4.splat(0);
  for (let c = 0; c < nq; c++) {
    let m = pickMask(c, q0, q1, q2, q3);
    const rb = <usize>(c << 6);
    while (m != 0) {
      const r = rb + <usize>ctz(m);
      m &= m - 1;
      const x = v128.load32_splat(ak + r * sa);
      const d = dj + r * sd;
      if (np > 0) ap = f32x4.add(ap, f32x4.mul(x, loadPartial(d + 0, np)));
    }
  }
  if (np > 0) updPartial(wp + 0, lr, u, ap, np);
}

// @ts-ignore: decorator
@inline function wgTail1(
  ak: usize, sa: usize, dj: usize, sd: usize, wp: usize, lr: v128, u: usize, q0: u64, q1: u64, q2: u64, q3: u64, nq: i32,
  np: i32,
): void {
  let a0 = f32x4.splat(0), ap = f32x4.splat(0);
  for (let c = 0; c < nq; c++) {
    let m = pickMask(c, q0, q1, q2, q3);
    const rb = <usize>(c << 6);
    while (m != 0) {
      const r = rb + <usize>ctz(m);
      m &= m - 1;
      const x = v128.load32_splat(ak + r * sa);
      const d = dj + r * sd;
      a0 = f32x4.add(a0, f32x4.mul(x, v128.load(d, 0)));
      if (np > 0) ap = f32x4.add(ap, f32x4.mul(x, loadPartial(d + 16, np)));
    }
  }
  upd4(wp, lr, u, a0, 0);
  if (np > 0) updPartial(wp + 16, lr, u, ap, np);
}

// @ts-ignore: decorator
@inline function wgTail2(
  ak: usize, sa: usize, dj: usize, sd: usize, wp: usize, lr: v128, u: usize, q0: u64, q1: u64, q2: u64, q3: u64, nq: i32,
  np: i32,
): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), ap = f32x4.splat(0);
  for (let c = 0; c < nq; c++) {
    let m = pickMask(c, q0, q1, q2, q3);
    const rb = <usize>(c << 6);
    while (m != 0) {
      const r = rb + <usize>ctz(m);
      m &= m - 1;
      const x = v128.load32_splat(ak + r * sa);
      const d = dj + r * sd;
      a0 = f32x4.add(a0, f32x4.mul(x, v128.load(d, 0)));
      a1 = f32x4.add(a1, f32x4.mul(x, v128.load(d, 16)));
      if (np > 0) ap = f32x4.add(ap, f32x4.mul(x, loadPartial(d + 32, np)));
    }
  }
  upd4(wp, lr, u, a0, 0);
  upd4(wp, lr, u, a1, 16);
  if (np > 0) updPartial(wp + 32, lr, u, ap, np);
}

// @ts-ignore: decorator
@inline function wgTail3(
  ak: usize, sa: usize, dj: usize, sd: usize, wp: usize, lr: v128, u: usize, q0: u64, q1: u64, q2: u64, q3: u64, nq: i32,
  np: i32,
): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), ap = f32x4.splat(0);
  for (let c = 0; c < nq; c++) {
    let m = pickMask(c, q0, q1, q2, q3);
    const rb = <usize>(c << 6);
    while (m != 0) {
      const r = rb + <usize>ctz(m);
      m &= m - 1;
      const x = v128.load32_splat(ak + r * sa);
      const d = dj + r * sd;
      a0 = f32x4.add(a0, f32x4.mul(x, v128.load(d, 0)));
      a1 = f32x4.add(a1, f32x4.mul(x, v128.load(d, 16)));
      a2 = f32x4.add(a2, f32x4.mul(x, v128.load(d, 32)));
      if (np > 0) ap = f32x4.add(ap, f32x4.mul(x, loadPartial(d + 48, np)));
    }
  }
  upd4(wp, lr, u, a0, 0);
  upd4(wp, lr, u, a1, 16);
  upd4(wp, lr, u, a2, 32);
  if (np > 0) updPartial(wp + 48, lr, u, ap, np);
}

/** Pair block: rows k and k+1 of W (ak = &Aprev[0][k], wp = &W[k][j]), 16 columns, union masks. */
// @ts-ignore: decorator
@inline function wgPair16(
  ak: usize, sa: usize, dj: usize, sd: usize, wp: usize, lr: v128, u: usize, q0: u64, q1: u64, q2: u64, q3: u64, nq: i32,
): void {
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  for (let c = 0; c < nq; c++) {
    let m = pickMask(c, q0, q1, q2, q3);
    const rb = <usize>(c << 6);
    while (m != 0) {
      const r = rb + <usize>ctz(m);
      m &= m - 1;
      const ap = ak + r * sa;
      const x = v128.load32_splat(ap, 0);
      const y = v128.load32_splat(ap, 4);
      const d = dj + r * sd;
      const d0 = v128.load(d, 0), d1 = v128.load(d, 16), d2 = v128.load(d, 32), d3 = v128.load(d, 48);
      a0 = f32x4.add(a0, f32x4.mul(x, d0));
      a1 = f32x4.add(a1, f32x4.mul(x, d1));
      a2 = f32x4.add(a2, f32x4.mul(x, d2));
      a3 = f32x4.add(a3, f32x4.mul(x, d3));
      b0 = f32x4.add(b0, f32x4.mul(y, d0));
      b1 = f32x4.add(b1, f32x4.mul(y, d1));
      b2 = f32x4.add(b2, f32x4.mul(y, d2));
      b3 = f32x4.add(b3, f32x4.mul(y, d3));
    }
  }
  upd4(wp, lr, u, a0, 0); upd4(wp, lr, u, a1, 16); upd4(wp, lr, u, a2, 32); upd4(wp, lr, u, a3, 48);
  const wq = wp + (sd); // row k+1 of W: W's row stride is nOut floats, the same as D's
  upd4(wq, lr, u, b0, 0); upd4(wq, lr, u, b1, 16); upd4(wq, lr, u, b2, 32); upd4(wq, lr, u, b3, 48);
}

/** One k (akk = &Aprev[0][k]), columns j0..j1-1 of its row wr (of W, or of a gradient scratch), single-k blocks. */
// @ts-ignore: decorator
@inline function wgSingleRow(
  akk: usize, D: usize, wr: usize, sa: usize, sd: usize, j0: i32, j1: i32, lrv: v128, u: usize,
  q0: u64, q1: u64, q2: u64, q3: u64, nq: i32,
): void {
  let j = j0;
  for (; j1 - j >= 24 && j1 - j != 32; j += 24) {
    wg24(akk, sa, D + (<usize>j << 2), sd, wr + (<usize>j << 2), lrv, u, q0, q1, q2, q3, nq);
  }
  for (; j1 - j >= 16; j += 16) wg16(akk, sa, D + (<usize>j << 2), sd, wr + (<usize>j << 2), lrv, u, q0, q1, q2, q3, nq);
  if (j < j1) {
    const dt = D + (<usize>j << 2), wt = wr + (<usize>j << 2), nv = (j1 - j) >> 2, np = (j1 - j) & 3;
    if (nv == 0) wgTail0(akk, sa, dt, sd, wt, lrv, u, q0, q1, q2, q3, nq, np);
    else if (nv == 1) wgTail1(akk, sa, dt, sd, wt, lrv, u, q0, q1, q2, q3, nq, np);
    else if (nv == 2) wgTail2(akk, sa, dt, sd, wt, lrv, u, q0, q1, q2, q3, nq, np);
    else wgTail3(akk, sa, dt, sd, wt, lrv, u, q0, q1, q2, q3, nq, np);
  }
}

/** Masks of the rows [r0, r0+n) (n <= 32) for the kn (1..4) columns at ak: bit i of lane c is Aprev[r0+i][k+c] != 0. */
// @ts-ignore: decorator
@inline function chunkMask(ak: usize, sa: usize, r0: i32, n: i32, kn: i32): v128 {
  const z = f32x4.splat(0);
  const top = i32x4.splat(0x80000000);
  let v = i32x4.splat(0);
  let p = ak + <usize>r0 * sa;
  if (kn == 4) {
    for (let i = 0; i < n; i++) {
      v = v128.or(i32x4.shr_u(v, 1), v128.and(f32x4.ne(v128.load(p), z), top));
      p += sa;
    }
  } else {
    for (let i = 0; i < n; i++) {
      v = v128.or(i32x4.shr_u(v, 1), v128.and(f32x4.ne(loadPartial(p, kn), z), top));
      p += sa;
    }
  }
  if (n < 32) v = i32x4.shr_u(v, 32 - n);
  return v;
}

// @ts-ignore: decorator
@inline function lane0Mask64(lo: v128, hi: v128): u64 {
  return (<u64>(<u32>i32x4.extract_lane(lo, 0))) | ((<u64>(<u32>i32x4.extract_lane(hi, 0))) << 32);
}

// @ts-ignore: decorator
@inline function lane1Mask64(lo: v128, hi: v128): u64 {
  return (<u64>(<u32>i32x4.extract_lane(lo, 1))) | ((<u64>(<u32>i32x4.extract_lane(hi, 1))) << 32);
}

// @ts-ignore: decorator
@inline function nextTwoLanes(v: v128): v128 {
  return i32x4.shuffle(v, v, 2, 3, 0, 1);
}

// @ts-ignore: decorator
@inline function bits(q0: u64, q1: u64, q2: u64, q3: u64): i32 {
  return <i32>(popcnt(q0) + popcnt(q1) + popcnt(q2) + popcnt(q3));
}

export function weightGradUpdate(
  Aprev: usize, D: usize, W: usize, rows: i32, nIn: i32, nOut: i32, k0: i32, k1: i32, j0: i32, j1: i32, desc: usize,
): void {
  if (j0 >= j1) return;
  const plain = plainSgd(desc);
  const lr = load<f32>(desc, U_LR);
  const u: usize = plain ? 0 : desc;
  if (rows > 256) {
    weightGradUpdateLong(Aprev, D, W, rows, nIn, nOut, k0, k1, j0, j1, lr, u);
    return;
  }
  const sa = <usize>nIn << 2;
  const sd = <usize>nOut << 2;
  const lrv = f32x4.splat(lr);
  const zeroStepIsNoop = plain && reinterpret<u32>(lr * <f32>0) == 0; // f32(lr·+0) is +0
  // Any other step: the gradients of a W row (or a pair) go to a scratch slot, then updateRow applies the
  // step to the row with its constants in registers; without a free slot, updateVec per vector of gradients.
  const gs: usize = u != 0 && nOut <= 512 ? claimSlot() : 0;
  const mode: usize = gs != 0 ? STORE_GRADIENT : u;
  const nch = (rows + 31) >> 5;
  const nq = (rows + 63) >> 6;
  const z = i32x4.splat(0);
  const pairEnd = j0 + ((j1 - j0) & ~15);
  for (let k = k0; k < k1; k += 4) {
    const kn = min(4, k1 - k);
    const ak = Aprev + (<usize>k << 2);
    let m0 = z, m1 = z, m2 = z, m3 = z, m4 = z, m5 = z, m6 = z, m7 = z;
    for (let c = 0; c < nch; c++) {
      const v = chunkMask(ak, sa, c << 5, min(32, rows - (c << 5)), kn);
      if (c == 0) m0 = v;
      else if (c == 1) m1 = v;
      else if (c == 2) m2 = v;
      else if (c == 3) m3 = v;
      else if (c == 4) m4 = v;
      else if (c == 5) m5 = v;
      else if (c == 6) m6 = v;
      else m7 = v;
    }
    for (let i = 0; i < kn; i += 2) {
      const kk = <usize>(k + i);
      const akk = Aprev + (kk << 2);
      const two = i + 1 < kn;
      // where rows kk and kk+1 go: W's, or the scratch's (its rows have W's stride)
      const row0 = gs != 0 ? gs : W + kk * sd;
      const row1 = row0 + sd;
      const a0 = lane0Mask64(m0, m1), a1 = lane0Mask64(m2, m3), a2 = lane0Mask64(m4, m5), a3 = lane0Mask64(m6, m7);
      const pa = bits(a0, a1, a2, a3);
      if (two) {
        const b0 = lane1Mask64(m0, m1), b1 = lane1Mask64(m2, m3), b2 = lane1Mask64(m4, m5), b3 = lane1Mask64(m6, m7);
        const pb = bits(b0, b1, b2, b3);
        const u0 = a0 | b0, u1 = a1 | b1, u2 = a2 | b2, u3 = a3 | b3;
        const pu = bits(u0, u1, u2, u3);
        if (pairEnd > j0 && pu > 0 && pu * 5 < (pa + pb) * 3) {
          // pair mode: 16-column blocks for both k, the rest of the columns one k at a time
          for (let j = j0; j < pairEnd; j += 16) {
            wgPair16(akk, sa, D + (<usize>j << 2), sd, row0 + (<usize>j << 2), lrv, mode, u0, u1, u2, u3, nq);
          }
          if (pairEnd < j1) {
            wgSingleRow(akk, D, row0, sa, sd, pairEnd, j1, lrv, mode, a0, a1, a2, a3, nq);
            wgSingleRow(akk + 4, D, row1, sa, sd, pairEnd, j1, lrv, mode, b0, b1, b2, b3, nq);
          }
        } else {
          if (!(zeroStepIsNoop && pa == 0)) wgSingleRow(akk, D, row0, sa, sd, j0, j1, lrv, mode, a0, a1, a2, a3, nq);
          if (!(zeroStepIsNoop && pb == 0)) wgSingleRow(akk + 4, D, row1, sa, sd, j0, j1, lrv, mode, b0, b1, b2, b3, nq);
        }
      } else if (!(zeroStepIsNoop && pa == 0)) {
        wgSingleRow(akk, D, row0, sa, sd, j0, j1, lrv, mode, a0, a1, a2, a3, nq);
      }
      if (gs != 0) {
        const first = <usize>j0 << 2;
        updateRow(W + kk * sd + first, gs + first, j1 - j0, desc);
        if (two) updateRow(W + (kk + 1) * sd + first, gs + sd + first, j1 - j0, desc);
      }
      m0 = nextTwoLanes(m0); m1 = nextTwoLanes(m1); m2 = nextTwoLanes(m2); m3 = nextTwoLanes(m3);
      m4 = nextTwoLanes(m4); m5 = nextTwoLanes(m5); m6 = nextTwoLanes(m6); m7 = nextTwoLanes(m7);
    }
  }
  if (gs != 0) releaseSlot(gs);
}

/** More than 256 rows: the same sums, one vector of columns at a time, a branch per row. */
function weightGradUpdateLong(
  Aprev: usize, D: usize, W: usize, rows: i32, nIn: i32, nOut: i32, k0: i32, k1: i32, j0: i32, j1: i32, lr: f32, u: usize,
): void {
  const sa = <usize>nIn << 2;
  const sd = <usize>nOut << 2;
  const lrv = f32x4.splat(lr);
  for (let k = k0; k < k1; k++) {
    const ak = Aprev + (<usize>k << 2);
    const wr = W + <usize>k * sd;
    for (let j = j0; j < j1; j += 4) {
      const n = min(4, j1 - j);
      const dj = D + (<usize>j << 2);
      let acc = f32x4.splat(0);
      for (let r = 0; r < rows; r++) {
        const x = load<f32>(ak + <usize>r * sa);
        if (x == 0) continue;
        const dv = n == 4 ? v128.load(dj + <usize>r * sd) : loadPartial(dj + <usize>r * sd, n);
        acc = f32x4.add(acc, f32x4.mul(f32x4.splat(x), dv));
      }
      const wp = wr + (<usize>j << 2);
      if (n == 4) upd4(wp, lrv, u, acc, 0);
      else updPartial(wp, lrv, u, acc, n);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// biasGradUpdate: one optimizer step of b[j] with gradient Σ_r D[r][j], for j in [j0, j1), the sum over r in
// order from +0 (every term is added, as in the reference). Lanes along j, blocks of 24 columns (6
// accumulators), then 4 and 1..3.

export function biasGradUpdate(D: usize, b: usize, rows: i32, nOut: i32, j0: i32, j1: i32, desc: usize): void {
  const sd = <usize>nOut << 2;
  const lrv = v128.load32_splat(desc + U_LR);
  const u: usize = plainSgd(desc) ? 0 : desc;
  let j = j0;
  for (; j + 24 <= j1; j += 24) {
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
    let d = D + (<usize>j << 2);
    for (let r = 0; r < rows; r++) {
      a0 = f32x4.add(a0, v128.load(d, 0));
      a1 = f32x4.add(a1, v128.load(d, 16));
      a2 = f32x4.add(a2, v128.load(d, 32));
      a3 = f32x4.add(a3, v128.load(d, 48));
      a4 = f32x4.add(a4, v128.load(d, 64));
      a5 = f32x4.add(a5, v128.load(d, 80));
      d += sd;
    }
    const bp = b + (<usize>j << 2);
    upd4(bp, lrv, u, a0, 0); upd4(bp, lrv, u, a1, 16); upd4(bp, lrv, u, a2, 32);
    upd4(bp, lrv, u, a3, 48); upd4(bp, lrv, u, a4, 64); upd4(bp, lrv, u, a5, 80);
  }
  for (; j < j1; j += 4) {
    const n = min(4, j1 - j);
    let a0 = f32x4.splat(0);
    let d = D + (<usize>j << 2);
    const bp = b + (<usize>j << 2);
    if (n == 4) {
      for (let r = 0; r < rows; r++) {
        a0 = f32x4.add(a0, v128.load(d));
        d += sd;
      }
      upd4(bp, lrv, u, a0, 0);
    } else {
      for (let r = 0; r < rows; r++) {
        a0 = f32x4.add(a0, loadPartial(d, n));
        d += sd;
      }
      updPartial(bp, lrv, u, a0, n);
    }
  }
}
