// The native kernel set's entry points, one table per instruction set (kernels.cc compiled once for each).
// Every pointer is into the shared WebAssembly.Memory; shapes and ranges are those of src/kernels/kernels.ts
// and are checked by the TypeScript wrapper (src/kernels/offsets.ts) before a call reaches here.
#pragma once
#include <stddef.h>
#include <stdint.h>

struct KernelTable {
  const char* name;
  void (*gatherInputs)(const uint8_t* pixels, const uint32_t* order, int start, int rows, int nIn, float* X);
  void (*denseForward)(const float* X, const float* W, const float* b, float* out, int rows, int nIn, int nOut,
                       int relu, int j0, int j1);
  void (*reluBackward)(const float* D, const float* W, const float* Aprev, float* Dprev, int rows, int nIn, int nOut);
  void (*weightGradUpdate)(const float* Aprev, const float* D, float* W, int rows, int nIn, int nOut, int k0, int k1,
                           int j0, int j1, const uint8_t* update);
  void (*biasGradUpdate)(const float* D, float* b, int rows, int nOut, int j0, int j1, const uint8_t* update);
  // bench:kernels' ceiling: the plainest dense multiply-then-add loop (rows % 4 == 0, nOut a multiple of 64)
  void (*plainForward)(const float* X, const float* W, float* out, int rows, int nIn, int nOut);
};

#if defined(__x86_64__)
namespace ls_avx512 { extern const KernelTable table; }
namespace ls_avx2 { extern const KernelTable table; }
#endif
