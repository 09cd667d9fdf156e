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
import { RESERVED_BYTES } from '../memory/arena.js';
import { distPath } from '../paths.js';
import type { Kernels } from './kernels.js';

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

interface KernelExports {
  gatherInputs(pixels: number, order: number, start: number, rows: number, nIn: number, X: number): void;
  denseForward(
    X: number, W: number, b: number, out: number, rows: number, nIn: number, nOut: number, relu: number,
    j0: number, j1: number,
  ): void;
  reluBackward(
    D: number, W: number, Aprev: number, Dprev: number, rows: number, nIn: number, nOut: number, k0: number, k1: number,
  ): void;
  weightGradSgd(
    Aprev: number, D: number, W: number, rows: number, nIn: number, nOut: number, k0: number, k1: number,
    j0: number, j1: number, lr: number,
  ): void;
  biasGradSgd(D: number, b: number, rows: number, nOut: number, j0: number, j1: number, lr: number): void;
}

type View = Float32Array | Uint8Array | Uint32Array;

/**
 * The WebAssembly kernel set over `memory` (a shared WebAssembly.Memory, e.g. SharedArena.memory).
 * Every array argument must be a view of `memory.buffer` outside its first RESERVED_BYTES; sizes are
 * checked against the shapes so a wrong call throws instead of touching other buffers. `module` lets a
 * caller compile once and share the module (a WebAssembly.Module can be posted to workers).
 */
export function createWasmKernels(memory: WebAssembly.Memory, module: WebAssembly.Module = loadWasmKernelModule()): Kernels {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const k = instance.exports as unknown as KernelExports;

  // Read once: the getter costs ~65 ns here, several times per kernel call. A memory that grew later would
  // have a new buffer, and views of it would then be refused, not misread.
  const buffer = memory.buffer;
  const at = (view: View, name: string, minLength: number, method: string): number => {
    if (view.buffer !== buffer) {
      throw new Error(`wasm kernels: ${method}: ${name} is not a view of the kernels' shared WebAssembly.Memory`);
    }
    if (view.length < minLength) {
      throw new RangeError(`wasm kernels: ${method}: ${name} has ${view.length} elements, the shape needs ${minLength}`);
    }
    if (view.byteOffset < RESERVED_BYTES && view.byteLength > 0) {
      throw new RangeError(`wasm kernels: ${method}: ${name} lies in the first ${RESERVED_BYTES} bytes, which belong to the kernels`);
    }
    return view.byteOffset;
  };
  const count = (value: number, name: string, method: string): number => {
    if (!Number.isInteger(value) || value < 0 || value > 0x7fffffff) {
      throw new RangeError(`wasm kernels: ${method}: ${name} must be a non-negative integer, got ${value}`);
    }
    return value;
  };
  const range = (lo: number, hi: number, n: number, names: string, method: string): void => {
    count(lo, names, method);
    count(hi, names, method);
    if (lo > hi || hi > n) throw new RangeError(`wasm kernels: ${method}: ${names} = ${lo}..${hi} is not within 0..${n}`);
  };

  return {
    name: 'wasm',
    gatherInputs(pixels, order, start, rows, nIn, X) {
      const m = 'gatherInputs';
      count(start, 'start', m);
      count(rows, 'rows', m);
      count(nIn, 'nIn', m);
      const o = at(order, 'order', start + rows, m);
      const x = at(X, 'X', rows * nIn, m);
      const p = at(pixels, 'pixels', 0, m);
      for (let r = 0; r < rows; r++) {
        if ((order[start + r] + 1) * nIn > pixels.length) {
          throw new RangeError(`wasm kernels: ${m}: order[${start + r}] = ${order[start + r]} is past the end of pixels`);
        }
      }
      k.gatherInputs(p, o, start, rows, nIn, x);
    },
    denseForward(X, W, b, out, rows, nIn, nOut, relu, j0, j1) {
      const m = 'denseForward';
      count(rows, 'rows', m);
      count(nIn, 'nIn', m);
      count(nOut, 'nOut', m);
      range(j0, j1, nOut, 'j0..j1', m);
      k.denseForward(
        at(X, 'X', rows * nIn, m), at(W, 'W', nIn * nOut, m), at(b, 'b', nOut, m), at(out, 'out', rows * nOut, m),
        rows, nIn, nOut, relu ? 1 : 0, j0, j1,
      );
    },
    reluBackward(D, W, Aprev, Dprev, rows, nIn, nOut, k0, k1) {
      const m = 'reluBackward';
      count(rows, 'rows', m);
      count(nIn, 'nIn', m);
      count(nOut, 'nOut', m);
      range(k0, k1, nIn, 'k0..k1', m);
      k.reluBackward(
        at(D, 'D', rows * nOut, m), at(W, 'W', nIn * nOut, m), at(Aprev, 'Aprev', rows * nIn, m),
        at(Dprev, 'Dprev', rows * nIn, m), rows, nIn, nOut, k0, k1,
      );
    },
    weightGradSgd(Aprev, D, W, rows, nIn, nOut, k0, k1, j0, j1, lr) {
      const m = 'weightGradSgd';
      count(rows, 'rows', m);
      count(nIn, 'nIn', m);
      count(nOut, 'nOut', m);
      range(k0, k1, nIn, 'k0..k1', m);
      range(j0, j1, nOut, 'j0..j1', m);
      k.weightGradSgd(
        at(Aprev, 'Aprev', rows * nIn, m), at(D, 'D', rows * nOut, m), at(W, 'W', nIn * nOut, m),
        rows, nIn, nOut, k0, k1, j0, j1, lr,
      );
    },
    biasGradSgd(D, b, rows, nOut, j0, j1, lr) {
      const m = 'biasGradSgd';
      count(rows, 'rows', m);
      count(nOut, 'nOut', m);
      range(j0, j1, nOut, 'j0..j1', m);
      k.biasGradSgd(at(D, 'D', rows * nOut, m), at(b, 'b', nOut, m), rows, nOut, j0, j1, lr);
    },
  };
}
