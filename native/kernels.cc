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
// Register blocks (below, before the kernels): rows (or k) × vectors of outputs, accumulators in registers.
#ifdef LS_EMULATE_AVX512
#include "simde-avx512.h"  // tests only: the avx512 code on an AVX2 CPU
#else
#include <immintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

#include <type_traits>

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
// a > 0 ? x : +0 (NaN and -0 in a give +0, as the reference's ReLU)
static INLINE V vkeep(V x, V a) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_GT_OQ), x); }
// Bit i set where lane i of x is not ±0; NaN counts as non-zero, as in the reference's `x === 0` test.
static INLINE unsigned nonzero(V x) { return _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NEQ_UQ) & 0xffff; }
// The same for p[i], i < n.
static INLINE unsigned nonzero(const float* p, int n) {
  return n == VW ? nonzero(vload(p)) : _mm512_mask_cmp_ps_mask(lanes(n), vloadn(p, n), _mm512_setzero_ps(), _CMP_NEQ_UQ);
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
static INLINE V vkeep(V x, V a) { return _mm256_and_ps(x, _mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_GT_OQ)); }
static INLINE unsigned nonzero(V x) { return (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NEQ_UQ)); }
static INLINE unsigned nonzero(const float* p, int n) {
  return n == VW ? nonzero(vload(p)) : nonzero(vloadn(p, n)) & ((1u << n) - 1);
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

// z > 0 ? z : +0
static INLINE V vrelu(V z) { return vkeep(z, z); }

// Register blocks. rowProducts (denseForward, weightGradUpdate, reluBackward with a small W): strips of F
// vectors of outputs, walked by one row at a time, or by two at once over the union of their non-zero terms,
// PV vectors at a time (AVX2 has 16 registers: 2 × 4 accumulators beside the loads), or by four where a strip
// is at most QV vectors wide (4 × QV accumulators); terms in chunks of KC = 64 (one mask word), whose strip of
// the right-hand matrix (32 KiB for AVX-512, 16 for AVX2) is read from L1 by every row. biasGradUpdate and the
// ceiling: C vectors. reluBackward: RK k × 2 vectors of rows.
#if LS_WIDTH == 16
constexpr int F = 8, PV = 8, QV = 4, KC = 64, C = 4, RK = VW / 2;
#else
constexpr int F = 8, PV = 4, QV = 2, KC = 64, C = 2, RK = VW / 2;
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
      if (!data) abort();  // KiBs to a few MiB (a batch of thousands of rows); without them nothing can go on
      size = n;
    }
    return data;
  }
};
static thread_local Scratch<uint64_t> maskScratch;
static thread_local Scratch<float> floatScratch, packScratch, transScratch, gradScratch;

// ---------------------------------------------------------------------------------------------------------
// The multiply-then-add block: acc[i][c] += Σ over the set bits t of mask of a[i·ai + t·at] · B[t·bs + c·VW],
// t increasing. NV vectors of columns, the last of them `tail` lanes wide when TAIL.
template <int NR, int NV, bool TAIL>
static INLINE void term(const float* a, size_t ai, size_t at, const float* B, size_t bs, size_t t, int tail,
                        V (&acc)[NR][NV]) {
  const float* bp = B + t * bs;
  V b[NV];
#pragma GCC unroll 8
  for (int c = 0; c < NV; c++) {
    b[c] = (TAIL && c == NV - 1) ? vloadn(bp + c * VW, tail) : vload(bp + c * VW);
#if LS_WIDTH == 8
    // One load per vector, kept in a register: GCC folds it into each row's multiply instead (NR loads, not
    // one), and with AVX2's 2 loads a cycle the block then waits on loads rather than on the multipliers.
    if constexpr (NR > 1) asm("" : "+x"(b[c]));
#endif
  }
  const float* ap = a + t * at;
#pragma GCC unroll 8
  for (int i = 0; i < NR; i++) {
    const V x = vset1(ap[i * ai]);
#pragma GCC unroll 8
    for (int c = 0; c < NV; c++) acc[i][c] = vadd(acc[i][c], vmul(x, b[c]));
  }
}

template <int NR, int NV, bool TAIL>
static INLINE void block(const float* a, size_t ai, size_t at, const float* B, size_t bs, uint64_t mask, int tail,
                         V (&acc)[NR][NV]) {
  if ((mask & (mask + 1)) == 0) {
    // Every term from 0 (dense inputs): a plain count, fewer instructions per term than finding each bit.
    const size_t n = (size_t)__builtin_popcountll(mask);
    for (size_t t = 0; t < n; t++) term<NR, NV, TAIL>(a, ai, at, B, bs, t, tail, acc);
    return;
  }
  for (; mask != 0; mask &= mask - 1) term<NR, NV, TAIL>(a, ai, at, B, bs, (size_t)__builtin_ctzll(mask), tail, acc);
}

// Two inputs' non-zero sets as one block (sharing each load) or each alone: the one with fewer cycles, where
// a lone input costs about NV + 1 loads per NV products and a pair 2·NV products per union element.
static INLINE bool pairPays(uint64_t m1, uint64_t m2) {
  return 16 * __builtin_popcountll(m1 | m2) < 9 * (__builtin_popcountll(m1) + __builtin_popcountll(m2));
}

// Calls f(integral_constant NV, integral_constant TAIL, j, tail) for each strip of [j0, j1): FW vectors wide,
// the last one NV = 1..FW vectors whose last has `tail` lanes (TAIL false where it has all VW).
template <int NV, typename Fn>
static INLINE void strip(Fn& f, int j, int tail) {
  if (tail == VW) f(std::integral_constant<int, NV>(), std::false_type(), j, VW);
  else f(std::integral_constant<int, NV>(), std::true_type(), j, tail);
}

template <int FW, typename Fn>
static INLINE void forStrips(int j0, int j1, Fn&& f) {
  int j = j0;
  for (; j + FW * VW <= j1; j += FW * VW) f(std::integral_constant<int, FW>(), std::false_type(), j, VW);
  const int left = j1 - j;
  if (left <= 0) return;
  const int nv = (left + VW - 1) / VW, tail = left - (nv - 1) * VW;
  static_assert(FW == 8, "one case per width below");
  switch (nv) {
    case 1: strip<1>(f, j, tail); break;
    case 2: strip<2>(f, j, tail); break;
    case 3: strip<3>(f, j, tail); break;
    case 4: strip<4>(f, j, tail); break;
    case 5: strip<5>(f, j, tail); break;
    case 6: strip<6>(f, j, tail); break;
    case 7: strip<7>(f, j, tail); break;
    default: strip<8>(f, j, tail); break;
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
  // The batch's images lie at random places in a large dataset: ask for all their lines first, so the misses
  // overlap instead of coming one row at a time.
  for (int r = 0; r < rows; r++) {
    const char* src = (const char*)(pixels + (size_t)order[start + r] * nIn);
    for (int k = 0; k < nIn; k += 64) _mm_prefetch(src + k, _MM_HINT_T0);
    _mm_prefetch(src + nIn - 1, _MM_HINT_T0);
  }
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
// Each row's non-zero inputs, as bit masks of chunks of KC inputs, are found once. Column strips outside,
// chunks of inputs inside them, rows inside the chunks: a row walks exactly its own non-zero inputs (two rows
// whose inputs mostly coincide walk their union, where a row that is 0 adds a ±0 product, which changes
// nothing). The sums start at +0 and wait in `out` between chunks (float32, so parking them is exact); the
// bias is added last, then the ReLU.

/** Rows i < NR at o (stride os), vectors of the strip: += the inputs in mask (the first chunk starts at +0). */
template <int NR, int NV, bool TAIL>
static INLINE void productRows(const float* x, size_t xs, const float* w, size_t ws, float* o, size_t os,
                               uint64_t mask, bool first, int tail) {
  if constexpr (NR == 2 && NV > PV) {
    productRows<2, PV, false>(x, xs, w, ws, o, os, mask, first, VW);
    productRows<2, NV - PV, TAIL>(x, xs, w + PV * VW, ws, o + PV * VW, os, mask, first, tail);
  } else {
    if (mask == 0 && !first) return;
    V acc[NR][NV];
#pragma GCC unroll 8
    for (int i = 0; i < NR; i++)
#pragma GCC unroll 8
      for (int c = 0; c < NV; c++) acc[i][c] = first ? vzero() : get<NV, TAIL>(o + i * os + c * VW, c, tail);
    block<NR, NV, TAIL>(x, xs, 1, w, ws, mask, tail, acc);
#pragma GCC unroll 8
    for (int i = 0; i < NR; i++)
#pragma GCC unroll 8
      for (int c = 0; c < NV; c++) put<NV, TAIL>(o + i * os + c * VW, c, acc[i][c], tail);
  }
}

/** Bit t set where x[t] (t < n <= 64) is not ±0 (NaN counts as non-zero, as the reference's `x === 0`). */
static INLINE uint64_t nonzeroBits(const float* x, int n) {
  uint64_t m = 0;
  for (int t = 0; t < n; t += VW) m |= (uint64_t)nonzero(x + t, n - t < VW ? n - t : VW) << t;
  return m;
}

/** Chunks of KC terms in a sum of n (one at least, so that an empty sum still reaches the epilogue). */
static INLINE int chunks(int n) { return n > 0 ? (n + KC - 1) / KC : 1; }
/** Terms in chunk ch of a sum of n: KC, or fewer in the last. */
static INLINE int chunkTerms(int n, int ch) { return n - ch * KC < KC ? n - ch * KC : KC; }

/**
 * Scratch for rowProducts' masks of `rows` rows of n terms: masks[r·nch + ch], row r's non-zero terms in chunk
 * ch (bit t: term ch·KC + t), then nch words of rowProducts' own.
 */
static INLINE uint64_t* maskWords(int rows, int n) { return maskScratch.get(((size_t)rows + 1) * chunks(n)); }

/** The masks of X's rows (n long), in maskWords. */
static uint64_t* rowMasks(const float* X, int n, int rows) {
  const int nch = chunks(n);
  uint64_t* masks = maskWords(rows, n);
  for (int r = 0; r < rows; r++)
    for (int ch = 0; ch < nch; ch++) {
      const int kc = ch * KC;
      masks[(size_t)r * nch + ch] = kc < n ? nonzeroBits(X + (size_t)r * n + kc, chunkTerms(n, ch)) : 0;
    }
  return masks;
}

/**
 * out[r][j] = Σ_t X[r][t]·M[t][j] over X's non-zero terms (masks, in maskWords), t = 0..n-1 in order from +0,
 * for j in [j0, j1) and every row (X's rows n long, M's and out's m long); then epi(NV, TAIL, r, j, tail)
 * finishes each row's strip.
 */
template <typename Epi>
static void rowProducts(const float* X, int n, uint64_t* masks, const float* M, int m, float* out, int rows, int j0,
                        int j1, Epi&& epi) {
  if (j0 >= j1 || rows <= 0) return;
  const int nch = chunks(n);
  uint64_t* copy = masks + (size_t)rows * nch;  // copy[ch]: whether chunk ch of M is copied first
  // M's rows 256 floats apart (or a multiple) fall into a few of L1's sets, so a chunk of them does not stay
  // there: copied side by side, it does, where the rows use it enough to pay for the copy.
  const bool crowded = m % 256 == 0;
  for (int ch = 0; ch < nch; ch++) {
    int uses = 0;
    if (crowded) for (int r = 0; r < rows; r++) uses += __builtin_popcountll(masks[(size_t)r * nch + ch]);
    copy[ch] = crowded && uses >= 4 * chunkTerms(n, ch);
  }
  float* packed = packScratch.get((size_t)KC * F * VW);
  forStrips<F>(j0, j1, [&](auto nvc, auto tailc, int j, int tail) {
    constexpr int NV = decltype(nvc)::value;
    constexpr bool TAIL = decltype(tailc)::value;
    for (int ch = 0; ch < nch; ch++) {
      const size_t kc = (size_t)ch * KC;
      const float* w = M + kc * m + j;
      size_t ws = m;
      if (copy[ch]) {
        const int nk = chunkTerms(n, ch);
        for (int t = 0; t < nk; t++)
#pragma GCC unroll 8
          for (int c = 0; c < NV; c++) put<NV, TAIL>(packed + (size_t)t * NV * VW + c * VW, c, get<NV, TAIL>(w + (size_t)t * m + c * VW, c, tail), tail);
        w = packed;
        ws = NV * VW;
      }
      int r = 0;
      if constexpr (NV <= QV) {
        // A narrow strip's sums are few chains of adds that wait on each other: 4 rows at once keep the adder busy.
        // Strips of 3 or 4 AVX-512 vectors go 4 rows at once only while the rows' terms coincide (dense inputs).
        for (; r + 4 <= rows; r += 4) {
          const uint64_t* q = masks + (size_t)r * nch + ch;
          if (NV > 2 && !(q[0] == q[nch] && q[0] == q[2 * nch] && q[0] == q[3 * nch])) break;
          productRows<4, NV, TAIL>(X + (size_t)r * n + kc, n, w, ws, out + (size_t)r * m + j, m, q[0] | q[nch] | q[2 * nch] | q[3 * nch], ch == 0, tail);
        }
      }
      for (; r + 2 <= rows; r += 2) {
        const uint64_t m1 = masks[(size_t)r * nch + ch], m2 = masks[(size_t)(r + 1) * nch + ch];
        const float* x = X + (size_t)r * n + kc;
        float* o = out + (size_t)r * m + j;
        if (pairPays(m1, m2)) {
          productRows<2, NV, TAIL>(x, n, w, ws, o, m, m1 | m2, ch == 0, tail);
        } else {
          productRows<1, NV, TAIL>(x, n, w, ws, o, m, m1, ch == 0, tail);
          productRows<1, NV, TAIL>(x + n, n, w, ws, o + m, m, m2, ch == 0, tail);
        }
      }
      if (r < rows) productRows<1, NV, TAIL>(X + (size_t)r * n + kc, n, w, ws, out + (size_t)r * m + j, m, masks[(size_t)r * nch + ch], ch == 0, tail);
    }
    for (int r = 0; r < rows; r++) epi(nvc, tailc, r, j, tail);
  });
}

static void denseForward(const float* X, const float* W, const float* b, float* out, int rows, int nIn, int nOut,
                         int relu, int j0, int j1) {
  rowProducts(X, nIn, rowMasks(X, nIn, rows), W, nOut, out, rows, j0, j1, [&](auto nvc, auto tailc, int r, int j, int tail) {
    constexpr int NV = decltype(nvc)::value;
    constexpr bool TAIL = decltype(tailc)::value;
    float* o = out + (size_t)r * nOut + j;
#pragma GCC unroll 8
    for (int c = 0; c < NV; c++) {
      V z = vadd(get<NV, TAIL>(o + c * VW, c, tail), get<NV, TAIL>(b + j + c * VW, c, tail));  // the bias last
      if (relu) z = vrelu(z);
      put<NV, TAIL>(o + c * VW, c, z, tail);
    }
  });
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

/**
 * One step of the parameters at p (n lanes, all of them when !TAIL) with gradient g. PLAIN: the caller knows
 * the rule is SGD without decay, so no vector asks.
 */
template <bool TAIL, bool PLAIN = false>
static INLINE void update(float* p, V g, int n, const Update& u) {
  auto ld = [&](const float* q) { return TAIL ? vloadn(q, n) : vload(q); };
  auto st = [&](float* q, V v) { if (TAIL) vstoren(q, v, n); else vstore(q, v); };
  V w = ld(p);
  if (PLAIN || u.rule < RULE_ADAM) {
    if (!PLAIN && u.decay) g = vadd(g, vmul(u.wd, w));
    if (!PLAIN && u.rule != RULE_SGD) {
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

/** One step of a strip of parameters at p (NV vectors, the last `tail` lanes wide when TAIL), gradients at g. */
template <int NV, bool TAIL, bool PLAIN>
static INLINE void updateStrip(float* p, const float* g, int tail, const Update& u) {
#pragma GCC unroll 8
  for (int c = 0; c < NV; c++) {
    if (TAIL && c == NV - 1) update<true, PLAIN>(p + c * VW, vloadn(g + c * VW, tail), tail, u);
    else update<false, PLAIN>(p + c * VW, vload(g + c * VW), VW, u);
  }
}

// ---------------------------------------------------------------------------------------------------------
// weightGradUpdate: one optimizer step of W[k][j] with gradient Σ_r Aprev[r][k]·D[r][j] on k in [k0, k1),
// j in [j0, j1), the sum over r in order and over exactly the rows where Aprev[r][k] is non-zero. With Aprev's
// columns k0..k1 transposed into rows (At[k − k0][r]), the gradients are rowProducts of At and D, as
// denseForward's outputs are of X and W; each row of gradients then goes to the update.

/**
 * At[i][r] = A[r][i] for r < rows, i < nk (A's rows `as` apart, At's `rows` apart): VW × VW blocks in registers.
 * MASKS: At's rowMasks too (in masks), taken from the registers rather than from a second pass over At.
 */
template <bool MASKS>
static void transposeInto(const float* A, size_t as, int rows, int nk, float* At, uint64_t* masks) {
  const int nch = chunks(rows);
  if (MASKS && rows <= 0) memset(masks, 0, (size_t)nk * nch * sizeof *masks);
  for (int i0 = 0; i0 < nk; i0 += VW) {
    const int ni = nk - i0 < VW ? nk - i0 : VW;
    uint64_t bits[VW] = {};
    for (int r0 = 0; r0 < rows; r0 += VW) {
      const int nr = rows - r0 < VW ? rows - r0 : VW;
      V m[VW];
#pragma GCC unroll 16
      for (int i = 0; i < VW; i++) {
        const float* a = A + (size_t)(r0 + i) * as + i0;
        m[i] = i >= nr ? vzero() : ni == VW ? vload(a) : vloadn(a, ni);
      }
      transpose(m);
#pragma GCC unroll 16
      for (int c = 0; c < VW; c++) {
        if (c >= ni) break;
        float* t = At + (size_t)(i0 + c) * rows + r0;
        if (nr == VW) vstore(t, m[c]);
        else vstoren(t, m[c], nr);
        if (MASKS) bits[c] |= (uint64_t)nonzero(m[c]) << (r0 % KC);  // lanes past the last row are +0: no bit
      }
      if (MASKS && ((r0 + VW) % KC == 0 || r0 + VW >= rows)) {
        for (int c = 0; c < ni; c++) {
          masks[(size_t)(i0 + c) * nch + r0 / KC] = bits[c];
          bits[c] = 0;
        }
      }
    }
  }
}

static void weightGradUpdate(const float* A, const float* D, float* W, int rows, int nIn, int nOut, int k0, int k1,
                             int j0, int j1, const uint8_t* desc) {
  if (j0 >= j1 || k0 >= k1) return;
  const Update u = readUpdate(desc);
  const int nk = k1 - k0;
  float* At = transScratch.get((size_t)nk * (rows > 0 ? rows : 1));
  uint64_t* masks = maskWords(nk, rows);
  transposeInto<true>(A + k0, nIn, rows, nk, At, masks);
  float* G = gradScratch.get((size_t)nk * nOut);
  // Plain SGD, the default, is told apart once per call: asked by every vector, the rule costs as much as a mask.
  const bool plain = u.rule == RULE_SGD && !u.decay;
  rowProducts(At, rows, masks, D, nOut, G, nk, j0, j1, [&](auto nvc, auto tailc, int i, int j, int tail) {
    constexpr int NV = decltype(nvc)::value;
    constexpr bool TAIL = decltype(tailc)::value;
    const float* g = G + (size_t)i * nOut + j;
    float* w = W + (size_t)(k0 + i) * nOut + j;
    if (plain) updateStrip<NV, TAIL, true>(w, g, tail, u);
    else updateStrip<NV, TAIL, false>(w, g, tail, u);
  });
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

/** The share of x[0..n) that is not ±0. */
static INLINE float nonzeroShare(const float* x, int n) {
  int count = 0;
  for (int t = 0; t < n; t += VW) count += __builtin_popcount(nonzero(x + t, n - t < VW ? n - t : VW));
  return (float)count / (float)n;
}

static void reluBackward(const float* D, const float* W, const float* A, float* P, int rows, int nIn, int nOut) {
  if (rows <= 0 || nIn <= 0) return;
  // A small W, transposed once into scratch (Wt[j][k] = W[k][j]), makes this a product of rows of D, as in
  // denseForward: lanes over k, and each row skips its zero terms of D (half of them behind a ReLU). Against the
  // path below it pays where D has zeros enough, and on AVX-512 also where the sums are short (docs/benchmarks.md).
  // D is scanned for its zeros only where the answer decides.
  const float sparse = LS_WIDTH == 16 ? 0.75f : 0.6f;
  const bool shortSums = LS_WIDTH == 16 && nOut < 64;
  if ((size_t)nIn * nOut <= 65536 && rows >= 16 && (shortSums || nonzeroShare(D, rows * nOut) < sparse)) {
    float* Wt = floatScratch.get((size_t)nOut * nIn);
    transposeInto<false>(W, nOut, nIn, nOut, Wt, nullptr);
    rowProducts(D, nOut, rowMasks(D, nOut, rows), Wt, nIn, P, rows, 0, nIn, [&](auto nvc, auto tailc, int r, int k, int tail) {
      constexpr int NV = decltype(nvc)::value;
      constexpr bool TAIL = decltype(tailc)::value;
      float* o = P + (size_t)r * nIn + k;
      const float* a = A + (size_t)r * nIn + k;
#pragma GCC unroll 8
      for (int c = 0; c < NV; c++) put<NV, TAIL>(o + c * VW, c, vkeep(get<NV, TAIL>(o + c * VW, c, tail), get<NV, TAIL>(a + c * VW, c, tail)), tail);
    });
    return;
  }
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
// The ceiling (bench:kernels): out = X·W with a register block of 4 rows × C vectors, every k, no zero skipping, no
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
