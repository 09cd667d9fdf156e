/**
 * The WebAssembly SIMD kernel set: src/kernels/assembly/index.ts compiled by `npm run build:wasm` into
 * dist/kernels.wasm. It computes the reference arithmetic bit for bit (see reference.ts and the
 * AssemblyScript source), reading and writing the buffers in place: every array passed in must be a view
 * of the shared WebAssembly.Memory the kernels were created on, and the kernels receive byte offsets.
 *
 * The module imports that memory (shared, up to 65536 pages), has no data segment and no globals and
 * allocates nothing, so any number of threads may instantiate it on the same memory: createWasmKernels is
 * synchronous and meant to be called in every worker (pass a compiled module to skip reading and
 * compiling the file). Of the memory's first 64 KiB (RESERVED_BYTES in src/memory/arena.ts, which belong
 * to the kernels) it uses WASM_SCRATCH: per-call scratch slots claimed and released with atomics, so
 * concurrent calls from different threads never share one; a call that finds none free takes a slower
 * path with the same results.
 */
import { existsSync, readFileSync } from 'node:fs';
import { distPath } from '../paths.js';
import { WASM_BLOCKING, type Kernels } from './kernels.js';
import { offsetKernels, type OffsetKernels } from './offsets.js';

/** The kernels' scratch slots in the reserved first 64 KiB: an i32 flag per slot (0 free, 1 taken) at
 * 4·i, slot i at firstSlotByteOffset + i·slotBytes. */
export const WASM_SCRATCH = { flagsByteOffset: 0, slots: 15, firstSlotByteOffset: 4096, slotBytes: 4096 } as const;

/** A minimal module using v128 (i8x16.splat, i8x16.popcnt): validates only where SIMD128 is supported. */
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

/** Whether this runtime supports WebAssembly SIMD128 and shared WebAssembly memory. */
export function wasmSimdSupported(): boolean {
  try {
    if (typeof WebAssembly !== 'object' || !WebAssembly.validate(SIMD_PROBE)) return false;
    // The kernels also need a shared memory (threads proposal).
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return true;
  } catch {
    return false;
  }
}

/** Path of the built kernel module (dist/kernels.wasm under the package root). */
export function wasmKernelPath(): string {
  return distPath('kernels.wasm');
}

let compiled: WebAssembly.Module | undefined;

/** The compiled kernel module, read and compiled synchronously once per thread. */
export function loadWasmKernelModule(): WebAssembly.Module {
  if (compiled) return compiled;
  const path = wasmKernelPath();
  if (!existsSync(path)) {
    throw new Error(`lockstep: ${path} is missing; build the WebAssembly kernels with \`npm run build:wasm\``);
  }
  compiled = new WebAssembly.Module(readFileSync(path));
  return compiled;
}

/**
 * The WebAssembly kernel set over `memory` (a shared WebAssembly.Memory, e.g. SharedArena.memory).
 * `module` lets a caller compile once and share the module (a WebAssembly.Module can be posted to workers).
 */
export function createWasmKernels(
  memory: WebAssembly.Memory,
  module: WebAssembly.Module = loadWasmKernelModule(),
): Kernels {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  return offsetKernels('wasm', WASM_BLOCKING, memory, instance.exports as unknown as OffsetKernels);
}
