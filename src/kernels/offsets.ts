import { RESERVED_BYTES } from '../memory/arena.js';
import { ruleStateArrays, UPDATE_WORDS, UpdateWord } from '../optim/optimizer.js';
import type { Blocking, KernelName, Kernels } from './kernels.js';

/** The kernels as the wasm module and the native addon export them: byte offsets into the shared memory. */
export interface OffsetKernels {
  gatherInputs(pixels: number, order: number, start: number, rows: number, nIn: number, X: number): void;
  denseForward(
    X: number,
    W: number,
    b: number,
    out: number,
    rows: number,
    nIn: number,
    nOut: number,
    relu: number,
    j0: number,
    j1: number,
  ): void;
  reluBackward(D: number, W: number, Aprev: number, Dprev: number, rows: number, nIn: number, nOut: number): void;
  weightGradUpdate(
    Aprev: number,
    D: number,
    W: number,
    rows: number,
    nIn: number,
    nOut: number,
    k0: number,
    k1: number,
    j0: number,
    j1: number,
    update: number,
  ): void;
  biasGradUpdate(D: number, b: number, rows: number, nOut: number, j0: number, j1: number, update: number): void;
}

type View = Float32Array | Uint8Array | Uint32Array;

/**
 * A kernel set whose functions take byte offsets into `memory` (the wasm module's exports, the native
 * addon's bound functions) as a `Kernels` over views. Every array argument must be a view of
 * `memory.buffer` outside its first RESERVED_BYTES; sizes are checked against the shapes so a wrong call
 * throws instead of touching other buffers.
 */
export function offsetKernels(
  name: KernelName,
  blocking: Blocking,
  memory: WebAssembly.Memory,
  k: OffsetKernels,
): Kernels {
  // Read once: the getter costs ~65 ns here, several times per kernel call. A memory that grew later would
  // have a new buffer, and views of it would then be refused, not misread.
  const buffer = memory.buffer;
  const at = (view: View, name: string, minLength: number, method: string): number => {
    if (view.buffer !== buffer) {
      throw new Error(`${name} kernels: ${method}: ${name} is not a view of the kernels' shared WebAssembly.Memory`);
    }
    if (view.length < minLength) {
      throw new RangeError(
        `${name} kernels: ${method}: ${name} has ${view.length} elements, the shape needs ${minLength}`,
      );
    }
    if (view.byteOffset < RESERVED_BYTES && view.byteLength > 0) {
      throw new RangeError(
        `${name} kernels: ${method}: ${name} lies in the first ${RESERVED_BYTES} bytes, which belong to the kernels`,
      );
    }
    return view.byteOffset;
  };
  const count = (value: number, name: string, method: string): number => {
    if (!Number.isInteger(value) || value < 0 || value > 0x7fffffff) {
      throw new RangeError(`${name} kernels: ${method}: ${name} must be a non-negative integer, got ${value}`);
    }
    return value;
  };
  const range = (lo: number, hi: number, n: number, names: string, method: string): void => {
    count(lo, names, method);
    count(hi, names, method);
    if (lo > hi || hi > n)
      throw new RangeError(`${name} kernels: ${method}: ${names} = ${lo}..${hi} is not within 0..${n}`);
  };

  const words = new Int32Array(buffer);
  /** The descriptor's offset, once its state (if any) is checked to lie in the memory beside `params`. */
  const descriptor = (update: Float32Array, params: Float32Array, method: string): number => {
    const offset = at(update, 'update', UPDATE_WORDS, method);
    const word = offset >> 2;
    const rule = words[word + UpdateWord.Rule];
    for (let s = 0; s < ruleStateArrays(rule); s++) {
      const at0 = params.byteOffset + words[word + UpdateWord.State1 + s];
      if (at0 < RESERVED_BYTES || at0 + params.byteLength > buffer.byteLength) {
        throw new RangeError(
          `${name} kernels: ${method}: the update's state ${s + 1} lies outside the kernels' memory`,
        );
      }
    }
    return offset;
  };

  return {
    name,
    ...blocking,
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
          throw new RangeError(
            `${name} kernels: ${m}: order[${start + r}] = ${order[start + r]} is past the end of pixels`,
          );
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
        at(X, 'X', rows * nIn, m),
        at(W, 'W', nIn * nOut, m),
        at(b, 'b', nOut, m),
        at(out, 'out', rows * nOut, m),
        rows,
        nIn,
        nOut,
        relu ? 1 : 0,
        j0,
        j1,
      );
    },
    reluBackward(D, W, Aprev, Dprev, rows, nIn, nOut) {
      const m = 'reluBackward';
      count(rows, 'rows', m);
      count(nIn, 'nIn', m);
      count(nOut, 'nOut', m);
      k.reluBackward(
        at(D, 'D', rows * nOut, m),
        at(W, 'W', nIn * nOut, m),
        at(Aprev, 'Aprev', rows * nIn, m),
        at(Dprev, 'Dprev', rows * nIn, m),
        rows,
        nIn,
        nOut,
      );
    },
    weightGradUpdate(Aprev, D, W, rows, nIn, nOut, k0, k1, j0, j1, update) {
      const m = 'weightGradUpdate';
      count(rows, 'rows', m);
      count(nIn, 'nIn', m);
      count(nOut, 'nOut', m);
      range(k0, k1, nIn, 'k0..k1', m);
      range(j0, j1, nOut, 'j0..j1', m);
      k.weightGradUpdate(
        at(Aprev, 'Aprev', rows * nIn, m),
        at(D, 'D', rows * nOut, m),
        at(W, 'W', nIn * nOut, m),
        rows,
        nIn,
        nOut,
        k0,
        k1,
        j0,
        j1,
        descriptor(update, W, m),
      );
    },
    biasGradUpdate(D, b, rows, nOut, j0, j1, update) {
      const m = 'biasGradUpdate';
      count(rows, 'rows', m);
      count(nOut, 'nOut', m);
      range(j0, j1, nOut, 'j0..j1', m);
      k.biasGradUpdate(at(D, 'D', rows * nOut, m), at(b, 'b', nOut, m), rows, nOut, j0, j1, descriptor(update, b, m));
    },
  };
}
