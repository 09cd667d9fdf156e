// The Node-API face of the native kernels: which instruction sets this CPU runs, and a kernel set bound to
// one shared WebAssembly.Memory whose functions take byte offsets, as the wasm module's exports do.
// Context-aware (NAPI_MODULE_INIT), so every piscina worker thread loads it for itself.
#include <node_api.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

namespace {

struct Bound {
  uint8_t* base;
  const KernelTable* table;
};

const KernelTable* tableFor(const char* isa) {
#if defined(__x86_64__)
  __builtin_cpu_init();
#ifdef LS_EMULATE_AVX512
  // tests only: this build's avx512 table runs as AVX2 code (native/simde-avx512.h)
  if (!strcmp(isa, "avx512") && __builtin_cpu_supports("avx2")) return &ls_avx512::table;
#else
  if (!strcmp(isa, "avx512") && __builtin_cpu_supports("avx512f")) return &ls_avx512::table;
#endif
  if (!strcmp(isa, "avx2") && __builtin_cpu_supports("avx2")) return &ls_avx2::table;
#else
  (void)isa;
#endif
  return nullptr;
}

napi_value fail(napi_env env, const char* message) {
  napi_throw_error(env, nullptr, message);
  return nullptr;
}

// Reads up to 11 unsigned integer arguments (byte offsets and counts, checked by the caller).
struct Args {
  Bound* bound;
  uint32_t v[11];
  bool ok;
};

Args args(napi_env env, napi_callback_info info, size_t want) {
  Args a{};
  napi_value argv[11];
  size_t argc = 11;
  void* data = nullptr;
  a.ok = napi_get_cb_info(env, info, &argc, argv, nullptr, &data) == napi_ok && argc >= want;
  a.bound = (Bound*)data;
  for (size_t i = 0; a.ok && i < want; i++) a.ok = napi_get_value_uint32(env, argv[i], &a.v[i]) == napi_ok;
  if (!a.ok) napi_throw_type_error(env, nullptr, "native kernels: expected integer arguments");
  return a;
}

template <typename T>
T* at(const Args& a, int i) { return (T*)(a.bound->base + a.v[i]); }

napi_value GatherInputs(napi_env env, napi_callback_info info) {
  Args a = args(env, info, 6);
  if (a.ok) a.bound->table->gatherInputs(at<uint8_t>(a, 0), at<uint32_t>(a, 1), a.v[2], a.v[3], a.v[4], at<float>(a, 5));
  return nullptr;
}

napi_value DenseForward(napi_env env, napi_callback_info info) {
  Args a = args(env, info, 10);
  if (a.ok) {
    a.bound->table->denseForward(at<float>(a, 0), at<float>(a, 1), at<float>(a, 2), at<float>(a, 3), a.v[4], a.v[5],
                                 a.v[6], a.v[7], a.v[8], a.v[9]);
  }
  return nullptr;
}

napi_value ReluBackward(napi_env env, napi_callback_info info) {
  Args a = args(env, info, 7);
  if (a.ok) {
    a.bound->table->reluBackward(at<float>(a, 0), at<float>(a, 1), at<float>(a, 2), at<float>(a, 3), a.v[4], a.v[5],
                                 a.v[6]);
  }
  return nullptr;
}

napi_value WeightGradUpdate(napi_env env, napi_callback_info info) {
  Args a = args(env, info, 11);
  if (a.ok) {
    a.bound->table->weightGradUpdate(at<float>(a, 0), at<float>(a, 1), at<float>(a, 2), a.v[3], a.v[4], a.v[5], a.v[6],
                                     a.v[7], a.v[8], a.v[9], at<uint8_t>(a, 10));
  }
  return nullptr;
}

napi_value BiasGradUpdate(napi_env env, napi_callback_info info) {
  Args a = args(env, info, 7);
  if (a.ok) {
    a.bound->table->biasGradUpdate(at<float>(a, 0), at<float>(a, 1), a.v[2], a.v[3], a.v[4], a.v[5], at<uint8_t>(a, 6));
  }
  return nullptr;
}

napi_value PlainForward(napi_env env, napi_callback_info info) {
  Args a = args(env, info, 6);
  if (a.ok) a.bound->table->plainForward(at<float>(a, 0), at<float>(a, 1), at<float>(a, 2), a.v[3], a.v[4], a.v[5]);
  return nullptr;
}

void freeBound(napi_env, void* data, void*) { free(data); }

// bind(view, isa): view is a Uint8Array over the whole shared memory (byte offset 0); the caller keeps the
// memory alive as long as the returned functions are used.
napi_value Bind(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t argc = 2;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 2) {
    return fail(env, "native kernels: bind(view, isa)");
  }
  char isa[16];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[1], isa, sizeof isa, &len) != napi_ok) return fail(env, "native kernels: isa must be a string");
  const KernelTable* table = tableFor(isa);
  if (!table) return fail(env, "native kernels: this CPU or build has no such instruction set");
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  napi_value buffer;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, &buffer, &offset) != napi_ok || type != napi_uint8_array ||
      offset != 0) {
    return fail(env, "native kernels: bind needs a Uint8Array over the whole memory");
  }
  Bound* bound = (Bound*)malloc(sizeof(Bound));
  if (!bound) return fail(env, "native kernels: out of memory");
  bound->base = (uint8_t*)data;
  bound->table = table;
  napi_value obj;
  napi_create_object(env, &obj);
  napi_add_finalizer(env, obj, bound, freeBound, nullptr, nullptr);
  const struct { const char* name; napi_callback cb; } fns[] = {
      {"gatherInputs", GatherInputs}, {"denseForward", DenseForward}, {"reluBackward", ReluBackward},
      {"weightGradUpdate", WeightGradUpdate}, {"biasGradUpdate", BiasGradUpdate}, {"plainForward", PlainForward},
  };
  for (const auto& f : fns) {
    napi_value fn;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.cb, bound, &fn);
    napi_set_named_property(env, obj, f.name, fn);
  }
  return obj;
}

// isas(): the instruction sets this CPU runs that the build has, widest first.
napi_value Isas(napi_env env, napi_callback_info) {
  napi_value list;
  napi_create_array(env, &list);
  uint32_t n = 0;
  static const char* const widestFirst[] = {"avx512", "avx2"};
  for (const char* isa : widestFirst) {
    if (!tableFor(isa)) continue;
    napi_value s;
    napi_create_string_utf8(env, isa, NAPI_AUTO_LENGTH, &s);
    napi_set_element(env, list, n++, s);
  }
  return list;
}

}  // namespace

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "bind", NAPI_AUTO_LENGTH, Bind, nullptr, &fn);
  napi_set_named_property(env, exports, "bind", fn);
  napi_create_function(env, "isas", NAPI_AUTO_LENGTH, Isas, nullptr, &fn);
  napi_set_named_property(env, exports, "isas", fn);
  return exports;
}
