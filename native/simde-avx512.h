// Tests only (binding.gyp's emulate_avx512): the AVX-512F intrinsics kernels.cc uses, run as AVX2 code by SIMDe
// (Debian's libsimde-dev), so that a CPU without AVX-512 still runs the avx512 kernels (test/avx512-emulated.test.ts).
// SIMDe 0.7.4 lacks five of them: data movement and an exact conversion, written lane by lane below.
#pragma once
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

static inline simde__m512 ls_emu_maskz_loadu_ps(simde__mmask16 k, const void* p) {
  float lane[16] = {};
  for (int i = 0; i < 16; i++) if (k >> i & 1) lane[i] = ((const float*)p)[i];  // only the lanes asked for are read
  return simde_mm512_loadu_ps(lane);
}
static inline void ls_emu_mask_storeu_ps(void* p, simde__mmask16 k, simde__m512 v) {
  float lane[16];
  simde_mm512_storeu_ps(lane, v);
  for (int i = 0; i < 16; i++) if (k >> i & 1) ((float*)p)[i] = lane[i];
}
static inline simde__m512i ls_emu_cvtepu8_epi32(simde__m128i a) {
  uint8_t b[16];
  int32_t w[16];
  simde_mm_storeu_si128((simde__m128i*)b, a);
  for (int i = 0; i < 16; i++) w[i] = b[i];
  return simde_mm512_loadu_si512(w);
}
static inline simde__m512 ls_emu_cvtepi32_ps(simde__m512i a) {
  int32_t w[16];
  float f[16];
  simde_mm512_storeu_si512(w, a);
  for (int i = 0; i < 16; i++) f[i] = (float)w[i];
  return simde_mm512_loadu_ps(f);
}
#define _mm512_maskz_loadu_ps(k, p) ls_emu_maskz_loadu_ps((k), (p))
#define _mm512_mask_storeu_ps(p, k, v) ls_emu_mask_storeu_ps((p), (k), (v))
#define _mm512_mask_cmp_ps_mask(k, a, b, imm) ((simde__mmask16)((k) & simde_mm512_cmp_ps_mask((a), (b), (imm))))
#define _mm512_cvtepu8_epi32(a) ls_emu_cvtepu8_epi32(a)
#define _mm512_cvtepi32_ps(a) ls_emu_cvtepi32_ps(a)
#define _mm512_shuffle_f32x4(a, b, imm) simde_mm512_shuffle_f32x4((a), (b), (imm))
