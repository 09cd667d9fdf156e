// lockstep's native kernels: the arithmetic of src/kernels/reference.ts at the CPU's whole vector width.
//
// This file is compiled twice (binding.gyp): LS_WIDTH 16 with -mavx512f into namespace ls_avx512, LS_WIDTH 8
// with -mavx2 into ls_avx2; always -ffp-contract=off -mno-fma and never -ffast-math. Bit identity with the
// reference rests on three rules (ARCHITECTURE.md, "Kernels"):
//   - lanes run over outputs: each lane holds one output element's own sum, so the vector width changes which
//     elements are computed together, never the order of any sum;
//   - every sum starts at +0 and adds its terms in the reference's index order; a product and the add that
//     follows are rounded separately (no fused multiply-add);
//   - a term the reference skips because its input is exactly 0 may be added here as a ±0 product, which
//     leaves a sum that started at +0 unchanged for finite weights (reference.ts explains why).
// Denormals stay IEEE: nothing here touches MXCSR.
//
// Shapes, for a layer with nIn inputs, nOut outputs and `rows` rows (all row-major float32):
//   X, Aprev [rows][nIn]   W [nIn][nOut]   b [nOut]   out, D [rows][nOut]   Dprev [rows][nIn]
// Register blocks: R rows (or k) × C vectors of outputs, accumulators in registers for a whole sum.
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

#if LS_WIDTH == 16
#define LS_NS ls_avx512
#elif LS_WIDTH == 8
#define LS_NS ls_avx2
#else
#error "LS_WIDTH must be 16 or 8"
#endif

#define INLINE inline __attribute__((always_inline))

namespace LS_NS {

constexpr int VW = LS_WIDTH;  // float32 lanes

#if LS_WIDTH == 16
typedef __m512 V;
static INLINE V vzero() { return _mm512_setzero_ps(); }
static INLINE V vset1(float x) { return _mm512_set1_ps(x); }
static INLINE V vload(const float* p) { return _mm512_loadu_ps(p); }
static INLINE void vstore(float* p, V v) { _mm512_storeu_ps(p, v); }
static INLINE __mmask16 lanes(int n) { return (__mmask16)((1u << n) - 1); }
static INLINE V vloadn(const float* p, int n) { return _mm512_maskz_loadu_ps(lanes(n), p); }
static INLINE void vstoren(float* p, V v, int n) { _mm512_mask_storeu_ps(p, lanes(n), v); }
static INLINE V vadd(V a, V b) { return _mm512_add_ps(a, b); }
static INLINE V vsub(V a, V b) { return _mm512_sub_ps(a, b); }
static INLINE V vmul(V a, V b) { return _mm512_mul_ps(a, b); }
static INLINE V vdiv(V a, V b) { return _mm512_div_ps(a, b); }
static INLINE V vsqrt(V a) { return _mm512_sqrt_ps(a); }
// z > 0 ? z : +0 (NaN and -0 give +0, as in the reference)
static INLINE V vrelu(V z) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_GT_OQ), z); }
// Bit i set where p[i] (i < n) is not ±0; NaN counts as non-zero, as in the reference's `x === 0` test.
static INLINE unsigned nonzero(const float* p, int n) {
  return n == VW ? _mm512_cmp_ps_mask(vload(p), _mm512_setzero_ps(), _CMP_NEQ_UQ) & 0xffff
                 : _mm512_mask_cmp_ps_mask(lanes(n), vloadn(p, n), _mm512_setzero_ps(), _CMP_NEQ_UQ);
}
// Appends k + i for each bit i of mask to list, in increasing order.
static INLINE int appendIndices(int* list, int n, unsigned mask, int k) {
  _mm512_mask_compressstoreu_epi32(list + n, (__mmask16)mask, _mm512_add_epi32(_mm512_set1_epi32(k), _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)));
  return n + __builtin_popcount(mask);
}
// m[i][c] becomes m[c][i]: a 16 × 16 transpose in registers (data movement only, no arithmetic).
static INLINE void transpose(V (&m)[VW]) {
  V t[VW];
#pragma GCC unroll 8
  for (int i = 0; i < VW; i += 2) {
    t[i] = _mm512_unpacklo_ps(m[i], m[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(m[i], m[i + 1]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < VW; i += 4) {
    m[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    m[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xee);
    m[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    m[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xee);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) {
    t[i] = _mm512_shuffle_f32x4(m[i], m[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(m[i], m[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_f32x4(m[i + 8], m[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(m[i + 8], m[i + 12], 0xdd);
  }
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) {
    m[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    m[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
}
// p[0..n) = a[c] > 0 ? lane h·8 + c of v : +0, for n <= 8 (NaN and ±0 in a give +0, as in the reference).
static INLINE void storeReluHalf(float* p, const float* a, V v, int h, int n) {
  const __mmask16 m = lanes(n);
  const V x = h ? _mm512_shuffle_f32x4(v, v, 0xee) : v;
  const __mmask16 on = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, a), _mm512_setzero_ps(), _CMP_GT_OQ);
  _mm512_mask_storeu_ps(p, m, _mm512_maskz_mov_ps(on, x));
}
// p/255 correctly rounded: f32(f32(p·HI) + f32(p·LO)), the wasm kernels' formula (checked for all 256 bytes)
static INLINE void gather16(const uint8_t* src, float* dst, V hi, V lo) {
  V x = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)src)));
  vstore(dst, vadd(vmul(x, hi), vmul(x, lo)));
}
#else
typedef __m256 V;
static INLINE V vzero() { return _mm256_setzero_ps(); }
static INLINE V vset1(float x) { return _mm256_set1_ps(x); }
static INLINE V vload(const float* p) { return _mm256_loadu_ps(p); }
static INLINE void vstore(float* p, V v) { _mm256_storeu_ps(p, v); }
static INLINE __m256i lanes(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static INLINE V vloadn(const float* p, int n) { return _mm256_maskload_ps(p, lanes(n)); }
static INLINE void vstoren(float* p, V v, int n) { _mm256_maskstore_ps(p, lanes(n), v); }
static INLINE V vadd(V a, V b) { return _mm256_add_ps(a, b); }
static INLINE V vsub(V a, V b) { return _mm256_sub_ps(a, b); }
static INLINE V vmul(V a, V b) { return _mm256_mul_ps(a, b); }
static INLINE V vdiv(V a, V b) { return _mm256_div_ps(a, b); }
static INLINE V vsqrt(V a) { return _mm256_sqrt_ps(a); }
static INLINE V vrelu(V z) { return _mm256_and_ps(z, _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_GT_OQ)); }
static INLINE unsigned nonzero(const float* p, int n) {
  const V x = n == VW ? vload(p) : vloadn(p, n);
  return (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NEQ_UQ)) & ((1u << n) - 1);
}
static INLINE int appendIndices(int* list, int n, unsigned mask, int k) {
  while (mask) {
    list[n++] = k + __builtin_ctz(mask);
    mask &= mask - 1;
  }
  return n;
}
static INLINE void transpose(V (&m)[VW]) {
  V t[VW];
#pragma GCC unroll 8
  for (int i = 0; i < VW; i += 2) {
    t[i] = _mm256_unpacklo_ps(m[i], m[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(m[i], m[i + 1]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < VW; i += 4) {
    m[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    m[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
    m[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    m[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) {
    t[i] = _mm256_permute2f128_ps(m[i], m[i + 4], 0x20);
    t[i + 4] = _mm256_permute2f128_ps(m[i], m[i + 4], 0x31);
  }
#pragma GCC unroll 8
  for (int i = 0; i < VW; i++) m[i] = t[i];
}
static INLINE void storeReluHalf(float* p, const float* a, V v, int h, int n) {
  const __m128 x = h ? _mm256_extractf128_ps(v, 1) : _mm256_castps256_ps128(v);
  const __m128i m = _mm_cmpgt_epi32(_mm_set1_epi32(n), _mm_setr_epi32(0, 1, 2, 3));
  const __m128 on = _mm_cmpgt_ps(n == 4 ? _mm_loadu_ps(a) : _mm_maskload_ps(a, m), _mm_setzero_ps());
  if (n == 4) _mm_storeu_ps(p, _mm_and_ps(x, on));
  else _mm_maskstore_ps(p, m, _mm_and_ps(x, on));
}
static INLINE void gather16(const uint8_t* src, float* dst, V hi, V lo) {
  __m128i bytes = _mm_loadu_si128((const __m128i*)src);
  V x0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
  V x1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(bytes, 8)));
  vstore(dst, vadd(vmul(x0, hi), vmul(x0, lo)));
  vstore(dst + 8, vadd(vmul(x1, hi), vmul(x1, lo)));
}
#endif

// Register blocks: forward and weight gradient R × C vectors; reluBackward RK k × 2 vectors of rows.
#if LS_WIDTH == 16
constexpr int R = 4, C = 4, RK = VW / 2;
#else
constexpr int R = 4, C = 2, RK = VW / 2;
#endif

// A per-thread buffer that grows (the kernels run in many threads at once, each with its own).
template <typename T>
struct Scratch {
  T* data = nullptr;
  size_t size = 0;
  T* get(size_t n) {
    if (n > size) {
      free(data);
      data = (T*)aligned_alloc(64, ((n * sizeof(T) + 63) / 64) * 64);
      if (!data) abort();  // a few hundred KiB at most; without them nothing can go on
      size = n;
    }
    return data;
  }
};
static thread_local Scratch<int> indexScratch;
static thread_local Scratch<float> floatScratch;

// ---------------------------------------------------------------------------------------------------------
// The multiply-then-add block: acc[i][c] = Σ over t in list of a[i·ai + t·at] · B[t·bs + c·VW], t in the
// list's (increasing) order. nv vectors of columns, the last of them `tail` lanes wide when TAIL.
template <int NR, int NV, bool TAIL>
static INLINE void block(const float* a, size_t ai, size_t at, const float* B, size_t bs, const int* list, int n,
                         int tail, V (&acc)[NR][NV]) {
#pragma GCC unroll 8
  for (int i = 0; i < NR; i++)
#pragma GCC unroll 8
    for (int c = 0; c < NV; c++) acc[i][c] = vzero();
  for (int q = 0; q < n; q++) {
    const size_t t = (size_t)list[q];
    const float* bp = B + t * bs;
    V b[NV];
#pragma GCC unroll 8
    for (int c = 0; c < NV; c++) b[c] = (TAIL && c == NV - 1) ? vloadn(bp + c * VW, tail) : vload(bp + c * VW);
    const float* ap = a + t * at;
#pragma GCC unroll 8
    for (int i = 0; i < NR; i++) {
      const V x = vset1(ap[i * ai]);
#pragma GCC unroll 8
      for (int c = 0; c < NV; c++) acc[i][c] = vadd(acc[i][c], vmul(x, b[c]));
    }
  }
}

// Stores vector c of a block's row: whole, or its first `tail` lanes.
template <int NV, bool TAIL>
static INLINE void put(float* p, int c, V v, int tail) {
  if (TAIL && c == NV - 1) vstoren(p, v, tail);
  else vstore(p, v);
}
template <int NV, bool TAIL>
static INLINE V get(const float* p, int c, int tail) {
  return (TAIL && c == NV - 1) ? vloadn(p, tail) : vload(p);
}

// ---------------------------------------------------------------------------------------------------------
// gatherInputs: X[r][k] = pixels[order[start + r]][k] / 255, correctly rounded (PIXEL_SCALE in reference.ts).

static const float PIXEL_HI = 0.0039215087890625f;    // 257/2^16: p·HI is exact for a byte p
static const float PIXEL_LO = 5.983839201917363e-8f;  // f32(1/255 − HI)

static void gatherInputs(const uint8_t* pixels, const uint32_t* order, int start, int rows, int nIn, float* X) {
  const V hi = vset1(PIXEL_HI), lo = vset1(PIXEL_LO);
  for (int r = 0; r < rows; r++) {
    const uint8_t* src = pixels + (size_t)order[start + r] * nIn;
    float* dst = X + (size_t)r * nIn;
    int k = 0;
    for (; k + 16 <= nIn; k += 16) gather16(src + k, dst + k, hi, lo);
    for (; k < nIn; k++) {
      const float p = (float)src[k];
      const float a = p * PIXEL_HI, b = p * PIXEL_LO;
      dst[k] = a + b;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// denseForward: out[r][j] = act((Σ_k X[r][k]·W[k][j]) + b[j]) for j in [j0, j1), every row.
// Blocks of R rows walk the inputs where any of their rows is non-zero (a row that is 0 there adds ±0);
// column strips outside, row blocks inside, so a strip of W stays in cache for all the rows.

template <int NR, int NV, bool TAIL>
static INLINE void forwardBlock(const float* X, const float* W, const float* b, float* out, int r, int nIn, int nOut,
                                int relu, int j, int tail, const int* list, int n) {
  V acc[NR][NV];
  block<NR, NV, TAIL>(X + (size_t)r * nIn, nIn, 1, W + j, nOut, list, n, tail, acc);
#pragma GCC unroll 8
  for (int i = 0; i < NR; i++) {
    float* o = out + (size_t)(r + i) * nOut + j;
#pragma GCC unroll 8
    for (int c = 0; c < NV; c++) {
      V z = vadd(acc[i][c], get<NV, TAIL>(b + j + c * VW, c, tail));  // the bias last
      if (relu) z = vrelu(z);
      put<NV, TAIL>(o + c * VW, c, z, tail);
    }
  }
}

template <int NV, bool TAIL>
static void forwardStrip(const float* X, const float* W, const float* b, float* out, int rows, int nIn, int nOut,
                         int relu, int j, int tail, const int* lists, const int* counts) {
  int r = 0, g = 0;
  for (; r + R <= rows; r += R, g++) forwardBlock<R, NV, TAIL>(X, W, b, out, r, nIn, nOut, relu, j, tail, lists + (size_t)g * nIn, counts[g]);
  const int left = rows - r;
  const int* list = lists + (size_t)g * nIn;
  if (left == 1) forwardBlock<1, NV, TAIL>(X, W, b, out, r, nIn, nOut, relu, j, tail, list, counts[g]);
  else if (left == 2) forwardBlock<2, NV, TAIL>(X, W, b, out, r, nIn, nOut, relu, j, tail, list, counts[g]);
  else if (left == 3) forwardBlock<3, NV, TAIL>(X, W, b, out, r, nIn, nOut, relu, j, tail, list, counts[g]);
}

/** The k in [0, nIn) where any of rows [r, r + nr) of A is non-zero (NaN counts as non-zero), increasing. */
static INLINE int nonzeroInputs(const float* A, int r, int nr, int nIn, int* list) {
  int n = 0;
  for (int k = 0; k < nIn; k += VW) {
    const int w = nIn - k < VW ? nIn - k : VW;
    unsigned mask = 0;
    for (int i = 0; i < nr; i++) mask |= nonzero(A + (size_t)(r + i) * nIn + k, w);
    n = appendIndices(list, n, mask, k);
  }
  return n;
}

static void denseForward(const float* X, const float* W, const float* b, float* out, int rows, int nIn, int nOut,
                         int relu, int j0, int j1) {
  if (j0 >= j1 || rows <= 0) return;
  const int groups = (rows + R - 1) / R;
  int* lists = indexScratch.get((size_t)groups * nIn + groups);
  int* counts = lists + (size_t)groups * nIn;
  for (int g = 0; g < groups; g++) {
    const int r = g * R;
    counts[g] = nonzeroInputs(X, r, rows - r < R ? rows - r : R, nIn, lists + (size_t)g * nIn);
  }
  int j = j0;
  for (; j + C * VW <= j1; j += C * VW) forwardStrip<C, false>(X, W, b, out, rows, nIn, nOut, relu, j, VW, lists, counts);
  const int left = j1 - j;
  if (left > 0) {
    const int nv = (left + VW - 1) / VW, tail = left - (nv - 1) * VW;
    if (nv == 1) forwardStrip<1, true>(X, W, b, out, rows, nIn, nOut, relu, j, tail, lists, counts);
#if LS_WIDTH == 16
    else if (nv == 2) forwardStrip<2, true>(X, W, b, out, rows, nIn, nOut, relu, j, tail, lists, counts);
    else if (nv == 3) forwardStrip<3, true>(X, W, b, out, rows, nIn, nOut, relu, j, tail, lists, counts);
    else forwardStrip<4, true>(X, W, b, out, rows, nIn, nOut, relu, j, tail, lists, counts);
#else
    else forwardStrip<2, true>(X, W, b, out, rows, nIn, nOut, relu, j, tail, lists, counts);
#endif
  }
}

// ---------------------------------------------------------------------------------------------------------
// The optimizer step (reference.ts, updateParams) on vectors: the same float32 operations in the same order.
// The update descriptor's words (src/optim/optimizer.ts, UpdateWord and UpdateRule).

enum { RULE_SGD = 0, RULE_MOMENTUM = 1, RULE_NESTEROV = 2, RULE_ADAM = 3, RULE_ADAMW = 4 };

struct Update {
  int rule;
  bool decay;
  ptrdiff_t s1, s2;  // byte distances from a parameter to its state
  V lr, wd, beta1, omb1, beta2, omb2, eps, step, invb2, factor;
};

static INLINE Update readUpdate(const uint8_t* u) {
  int32_t i[3];
  float f[10];
  memcpy(i, u, sizeof i);
  memcpy(f, u + 12, sizeof f);
  Update d;
  d.rule = i[0];
  d.s1 = i[1];
  d.s2 = i[2];
  d.decay = f[1] != 0.0f;
  d.lr = vset1(f[0]);
  d.wd = vset1(f[1]);
  d.beta1 = vset1(f[2]);
  d.omb1 = vset1(f[3]);
  d.beta2 = vset1(f[4]);
  d.omb2 = vset1(f[5]);
  d.eps = vset1(f[6]);
  d.step = vset1(f[7]);
  d.invb2 = vset1(f[8]);
  d.factor = vset1(f[9]);
  return d;
}

static INLINE float* state(float* p, ptrdiff_t bytes) { return (float*)((uint8_t*)p + bytes); }

/** One step of the parameters at p (n lanes, all of them when !TAIL) with gradient g. */
template <bool TAIL>
static INLINE void update(float* p, V g, int n, const Update& u) {
  auto ld = [&](const float* q) { return TAIL ? vloadn(q, n) : vload(q); };
  auto st = [&](float* q, V v) { if (TAIL) vstoren(q, v, n); else vstore(q, v); };
  V w = ld(p);
  if (u.rule < RULE_ADAM) {
    if (u.decay) g = vadd(g, vmul(u.wd, w));
    if (u.rule != RULE_SGD) {
      float* s1 = state(p, u.s1);
      const V b = vadd(vmul(u.beta1, ld(s1)), g);
      st(s1, b);
      g = u.rule == RULE_NESTEROV ? vadd(g, vmul(u.beta1, b)) : b;
    }
    st(p, vsub(w, vmul(u.lr, g)));
    return;
  }
  if (u.decay) {
    if (u.rule == RULE_ADAMW) w = vmul(w, u.factor);
    else g = vadd(g, vmul(u.wd, w));
  }
  float* s1 = state(p, u.s1);
  float* s2 = state(p, u.s2);
  const V m = vadd(vmul(u.beta1, ld(s1)), vmul(u.omb1, g));
  const V v = vadd(vmul(u.beta2, ld(s2)), vmul(vmul(u.omb2, g), g));
  st(s1, m);
  st(s2, v);
  const V denom = vadd(vmul(vsqrt(v), u.invb2), u.eps);
  st(p, vsub(w, vmul(u.step, vdiv(m, denom))));
}

// ---------------------------------------------------------------------------------------------------------
// weightGradUpdate: one optimizer step of W[k][j] with gradient Σ_r Aprev[r][k]·D[r][j] on k in [k0, k1),
// j in [j0, j1); the sum over r in order, over the rows where any of the block's R inputs k is non-zero.
// Fused: each vector of gradients goes from its accumulator to the update. Column strips outside (a strip of
// D stays in cache), blocks of R rows of W inside.

template <int NK, int NV, bool TAIL>
static INLINE void gradBlock(const float* A, const float* D, float* W, int nIn, int nOut, int k, int j, int tail,
                             const int* list, int n, const Update& u) {
  V acc[NK][NV];
  block<NK, NV, TAIL>(A + k, 1, nIn, D + j, nOut, list, n, tail, acc);
#pragma GCC unroll 8
  for (int i = 0; i < NK; i++) {
    float* w = W + (size_t)(k + i) * nOut + j;
#pragma GCC unroll 8
    for (int c = 0; c < NV; c++) {
      if (TAIL && c == NV - 1) update<true>(w + c * VW, acc[i][c], tail, u);
      else update<false>(w + c * VW, acc[i][c], VW, u);
    }
  }
}

template <int NV, bool TAIL>
static void gradStrip(const float* A, const float* D, float* W, int rows, int nIn, int nOut, int k0, int k1, int j,
                      int tail, const int* lists, const int* counts, const Update& u) {
  int k = k0, g = 0;
  for (; k + R <= k1; k += R, g++) gradBlock<R, NV, TAIL>(A, D, W, nIn, nOut, k, j, tail, lists + (size_t)g * rows, counts[g], u);
  const int left = k1 - k;
  const int* list = lists + (size_t)g * rows;
  if (left == 1) gradBlock<1, NV, TAIL>(A, D, W, nIn, nOut, k, j, tail, list, counts[g], u);
  else if (left == 2) gradBlock<2, NV, TAIL>(A, D, W, nIn, nOut, k, j, tail, list, counts[g], u);
  else if (left == 3) gradBlock<3, NV, TAIL>(A, D, W, nIn, nOut, k, j, tail, list, counts[g], u);
}

static void weightGradUpdate(const float* A, const float* D, float* W, int rows, int nIn, int nOut, int k0, int k1,
                             int j0, int j1, const uint8_t* desc) {
  if (j0 >= j1 || k0 >= k1) return;
  const Update u = readUpdate(desc);
  const int groups = (k1 - k0 + R - 1) / R;
  int* lists = indexScratch.get((size_t)groups * rows + groups);
  int* counts = lists + (size_t)groups * rows;
  // Each row's non-zero inputs among k0..k1-1, VW at a time; a group of R inputs lists the row when any is.
  for (int g = 0; g < groups; g++) counts[g] = 0;
  for (int r = 0; r < rows; r++) {
    const float* a = A + (size_t)r * nIn;
    for (int k = k0; k < k1; k += VW) {
      unsigned mask = nonzero(a + k, k1 - k < VW ? k1 - k : VW);
      for (int g = (k - k0) / R; mask != 0; g++, mask >>= R) {
        lists[(size_t)g * rows + counts[g]] = r;
        counts[g] += (mask & ((1u << R) - 1)) != 0;
      }
    }
  }
  int j = j0;
  for (; j + C * VW <= j1; j += C * VW) gradStrip<C, false>(A, D, W, rows, nIn, nOut, k0, k1, j, VW, lists, counts, u);
  const int left = j1 - j;
  if (left > 0) {
    const int nv = (left + VW - 1) / VW, tail = left - (nv - 1) * VW;
    if (nv == 1) gradStrip<1, true>(A, D, W, rows, nIn, nOut, k0, k1, j, tail, lists, counts, u);
#if LS_WIDTH == 16
    else if (nv == 2) gradStrip<2, true>(A, D, W, rows, nIn, nOut, k0, k1, j, tail, lists, counts, u);
    else if (nv == 3) gradStrip<3, true>(A, D, W, rows, nIn, nOut, k0, k1, j, tail, lists, counts, u);
    else gradStrip<4, true>(A, D, W, rows, nIn, nOut, k0, k1, j, tail, lists, counts, u);
#else
    else gradStrip<2, true>(A, D, W, rows, nIn, nOut, k0, k1, j, tail, lists, counts, u);
#endif
  }
}

// ---------------------------------------------------------------------------------------------------------
// biasGradUpdate: one optimizer step of b[j] with gradient Σ_r D[r][j] (every term), j in [j0, j1).

static void biasGradUpdate(const float* D, float* b, int rows, int nOut, int j0, int j1, const uint8_t* desc) {
  const Update u = readUpdate(desc);
  int j = j0;
  for (; j + C * VW <= j1; j += C * VW) {
    V acc[C];
    for (int c = 0; c < C; c++) acc[c] = vzero();
    for (int r = 0; r < rows; r++) {
      const float* d = D + (size_t)r * nOut + j;
      for (int c = 0; c < C; c++) acc[c] = vadd(acc[c], vload(d + c * VW));
    }
    for (int c = 0; c < C; c++) update<false>(b + j + c * VW, acc[c], VW, u);
  }
  for (; j < j1; j += VW) {
    const int n = j1 - j < VW ? j1 - j : VW;
    V acc = vzero();
    for (int r = 0; r < rows; r++) acc = vadd(acc, vloadn(D + (size_t)r * nOut + j, n));
    if (n == VW) update<false>(b + j, acc, VW, u);
    else update<true>(b + j, acc, n, u);
  }
}

// ---------------------------------------------------------------------------------------------------------
// reluBackward: Dprev[r][k] = Aprev[r][k] > 0 ? Σ_j D[r][j]·W[k][j] : +0, the sum over j in order.
// The outputs are (r, k) and the sum runs along W's rows, so lanes run over r: a block of 2·VW rows of D is
// transposed into scratch, T[j] = (D[r][j], D[r+1][j], …), then RK = VW/2 values of k at a time accumulate
// splat(W[k][j]) · T[j] for j = 0..nOut-1. The block's 2·RK sums (rows r..r+VW-1 and r+VW..) are one VW × VW
// transpose away from rows of Dprev, stored with Aprev's ReLU mask. Zero terms of D are added as ±0 products
// (they change nothing); lanes past the last row hold zeros and are not stored; a k past the last repeats
// the last one and is not stored.

static void reluBackward(const float* D, const float* W, const float* A, float* P, int rows, int nIn, int nOut) {
  if (rows <= 0 || nIn <= 0) return;
  constexpr int RB = 2 * VW;
  float* T = floatScratch.get((size_t)nOut * RB);
  for (int r0 = 0; r0 < rows; r0 += RB) {
    const int nr = rows - r0 < RB ? rows - r0 : RB;
    for (int h = 0; h < 2; h++) {
      for (int j0 = 0; j0 < nOut; j0 += VW) {
        const int jn = nOut - j0 < VW ? nOut - j0 : VW;
        V m[VW];
#pragma GCC unroll 16
        for (int i = 0; i < VW; i++) {
          const int r = h * VW + i;
          const float* d = D + (size_t)(r0 + r) * nOut + j0;
          m[i] = r >= nr ? vzero() : jn == VW ? vload(d) : vloadn(d, jn);
        }
        transpose(m);
        for (int c = 0; c < jn; c++) vstore(T + (size_t)(j0 + c) * RB + h * VW, m[c]);
      }
    }
    for (int k0 = 0; k0 < nIn; k0 += RK) {
      const int kn = nIn - k0 < RK ? nIn - k0 : RK;
      const float* w[RK];
      for (int i = 0; i < RK; i++) w[i] = W + (size_t)(k0 + (i < kn ? i : kn - 1)) * nOut;
      V m[VW];  // m[i] = rows r0.. for k0 + i, m[RK + i] = rows r0 + VW.. for k0 + i
#pragma GCC unroll 16
      for (int i = 0; i < VW; i++) m[i] = vzero();
      const float* t = T;
      for (int j = 0; j < nOut; j++, t += RB) {
        const V tl = vload(t), th = vload(t + VW);
#pragma GCC unroll 8
        for (int i = 0; i < RK; i++) {
          const V s = vset1(w[i][j]);
          m[i] = vadd(m[i], vmul(s, tl));
          m[RK + i] = vadd(m[RK + i], vmul(s, th));
        }
      }
      transpose(m);  // m[i]: row r0 + i's sums for k0.. in lanes 0..RK-1, row r0 + VW + i's in lanes RK..
#pragma GCC unroll 16
      for (int i = 0; i < VW; i++) {
        for (int h = 0; h < 2; h++) {
          if (h * VW + i >= nr) continue;
          const size_t e = (size_t)(r0 + h * VW + i) * nIn + k0;
          storeReluHalf(P + e, A + e, m[i], h, kn);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// The ceiling (bench:kernels): out = X·W with the kernels' register block (4 rows × C vectors), every k, no zero skipping, no
// tails, no bias: what this instruction set gives a multiply-then-add loop with nothing else to do.

static void plainForward(const float* X, const float* W, float* out, int rows, int nIn, int nOut) {
  for (int j = 0; j < nOut; j += C * VW) {
    for (int r = 0; r < rows; r += 4) {
      V a[4][C];
#pragma GCC unroll 8
      for (int i = 0; i < 4; i++)
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) a[i][c] = vzero();
      for (int k = 0; k < nIn; k++) {
        const float* w = W + (size_t)k * nOut + j;
        V wv[C];
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) wv[c] = vload(w + c * VW);
#pragma GCC unroll 8
        for (int i = 0; i < 4; i++) {
          const V x = vset1(X[(size_t)(r + i) * nIn + k]);
#pragma GCC unroll 8
          for (int c = 0; c < C; c++) a[i][c] = vadd(a[i][c], vmul(x, wv[c]));
        }
      }
      for (int i = 0; i < 4; i++)
        for (int c = 0; c < C; c++) vstore(out + (size_t)(r + i) * nOut + j + c * VW, a[i][c]);
    }
  }
}

extern const KernelTable table = {
#if LS_WIDTH == 16
    "avx512",
#else
    "avx2",
#endif
    gatherInputs, denseForward, reluBackward, weightGradUpdate, biasGradUpdate, plainForward,
};

}  // namespace LS_NS
