import { biasGrad, denseForward, gatherInputs, reluBackward, sgdUpdate, weightGrad } from './reference.js';

/**
 * The kernel set the trainer calls for the matrix work of one step. Two implementations compute the same
 * bits: `jsKernels` (the reference functions, the specification) and the WebAssembly SIMD kernels. The
 * softmax and loss are not here: src/kernels/softmax.ts is the one implementation both use.
 *
 * Shapes as in reference.ts. denseForward computes the output columns j in [j0, j1) of every row, and
 * reluBackward the columns k in [k0, k1) of Dprev; neither writes anything else. The fused gradient-and-SGD calls update a block of the parameters:
 *   weightGradSgd: W[k][j] = W[k][j] - lr·(Σ_r Aprev[r][k]·D[r][j]) for k in [k0, k1), j in [j0, j1)
 *   biasGradSgd:   b[j] = b[j] - lr·(Σ_r D[r][j]) for j in [j0, j1)
 * with lr a float32 value. Every output element is its own sum, so any split of a layer into blocks gives
 * the bits of one full call. For the WebAssembly set every array must be a view of its shared memory.
 */
export type KernelName = 'js' | 'wasm';

export interface Kernels {
  readonly name: KernelName;
  gatherInputs(pixels: Uint8Array, order: Uint32Array, start: number, rows: number, nIn: number, X: Float32Array): void;
  denseForward(
    X: Float32Array, W: Float32Array, b: Float32Array, out: Float32Array,
    rows: number, nIn: number, nOut: number, relu: boolean, j0: number, j1: number,
  ): void;
  reluBackward(
    D: Float32Array, W: Float32Array, Aprev: Float32Array, Dprev: Float32Array,
    rows: number, nIn: number, nOut: number, k0: number, k1: number,
  ): void;
  weightGradSgd(
    Aprev: Float32Array, D: Float32Array, W: Float32Array,
    rows: number, nIn: number, nOut: number, k0: number, k1: number, j0: number, j1: number, lr: number,
  ): void;
  biasGradSgd(D: Float32Array, b: Float32Array, rows: number, nOut: number, j0: number, j1: number, lr: number): void;
}

/** The reference arithmetic as a kernel set: gradients into scratch, then the SGD step, one row of W at a time. */
export function createJsKernels(): Kernels {
  let rowScratch = new Float32Array(0);
  const scratch = (n: number): Float32Array => (rowScratch.length >= n ? rowScratch : (rowScratch = new Float32Array(n)));
  return {
    name: 'js',
    gatherInputs,
    denseForward,
    reluBackward,
    weightGradSgd(Aprev, D, W, rows, nIn, nOut, k0, k1, j0, j1, lr) {
      const g = scratch(nOut);
      for (let k = k0; k < k1; k++) {
        weightGrad(Aprev, D, g, rows, nIn, nOut, k, k + 1, j0, j1);
        const Wk = W.subarray(k * nOut, (k + 1) * nOut);
        sgdUpdate(Wk, g, lr, j0, j1);
      }
    },
    biasGradSgd(D, b, rows, nOut, j0, j1, lr) {
      const g = scratch(nOut);
      biasGrad(D, g, rows, nOut, j0, j1);
      sgdUpdate(b, g, lr, j0, j1);
    },
  };
}
