import { createJsKernels, type KernelName, type Kernels } from './kernels.js';
import { createWasmKernels, wasmSimdSupported } from './wasm.js';

export type { KernelName };

/** The kernel set by name; `wasm` runs on the given shared memory (views passed to it must lie there). */
export function createKernels(name: KernelName, memory: WebAssembly.Memory): Kernels {
  return name === 'wasm' ? createWasmKernels(memory) : createJsKernels();
}

/** The default: wasm where the runtime has WebAssembly SIMD, else js. */
export function defaultKernels(): KernelName {
  return wasmSimdSupported() ? 'wasm' : 'js';
}
