# The native kernels: kernels.cc compiled once per instruction set, linked into one addon that picks at run
# time (native/addon.cc). The flags are part of the arithmetic: no contraction into FMA, no fast-math.
{
  "variables": {
    "ls_flags": ["-O3", "-ffp-contract=off", "-fno-fast-math", "-mno-fma", "-fPIC", "-std=c++17", "-falign-functions=64", "-falign-loops=32"]
  },
  "targets": [
    {
      "target_name": "lockstep",
      "sources": ["addon.cc"],
      "cflags_cc": ["<@(ls_flags)"],
      "conditions": [
        ["target_arch=='x64'", { "dependencies": ["kernels_avx512", "kernels_avx2"] }]
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
          "cflags_cc": ["<@(ls_flags)", "-mavx512f", "-Wno-maybe-uninitialized"]
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
