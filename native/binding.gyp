# The native kernels: kernels.cc compiled once per instruction set, linked into one addon that picks at run
# time (native/addon.cc). The flags are part of the arithmetic: no contraction into FMA, no fast-math.
{
  "variables": {
    # yes: the avx512 table's intrinsics run as AVX2 code, for tests on CPUs without AVX-512 (native/build.mjs)
    "emulate_avx512%": "no",
    "ls_flags": ["-O3", "-ffp-contract=off", "-fno-fast-math", "-mno-fma", "-fPIC", "-std=c++17", "-falign-functions=64", "-falign-loops=32"]
  },
  "targets": [
    {
      "target_name": "lockstep",
      "sources": ["addon.cc"],
      "cflags_cc": ["<@(ls_flags)"],
      "conditions": [
        ["target_arch=='x64'", { "dependencies": ["kernels_avx512", "kernels_avx2"] }],
        ["emulate_avx512=='yes'", { "defines": ["LS_EMULATE_AVX512"] }]
      ]
    }
  ],
  "conditions": [
    ["target_arch=='x64'", {
      "targets": [
        {
          "target_name": "kernels_avx512",
          "type": "static_library",
          "sources": ["kernels.cc"],
          "defines": ["LS_WIDTH=16"],
          "conditions": [
            # -O1: SIMDe's AVX-512 headers take minutes to compile at -O3; the level changes no arithmetic
            ["emulate_avx512=='yes'", {
              "defines": ["LS_EMULATE_AVX512"],
              "cflags_cc": ["<@(ls_flags)", "-mavx2", "-O1", "-Wno-psabi", "-Wno-maybe-uninitialized"]
            }, {
              "cflags_cc": ["<@(ls_flags)", "-mavx512f", "-Wno-maybe-uninitialized"]
            }]
          ]
        },
        {
          "target_name": "kernels_avx2",
          "type": "static_library",
          "sources": ["kernels.cc"],
          "defines": ["LS_WIDTH=8"],
          "cflags_cc": ["<@(ls_flags)", "-mavx2"]
        }
      ]
    }]
  ]
}
