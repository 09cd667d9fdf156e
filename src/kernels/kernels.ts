import { readUpdate } from '../optim/optimizer.js';
import { biasGrad, denseForward, gatherInputs, reluBackward, updateParams, weightGrad } from './reference.js';

/**
 * The kernel set the trainer calls for the matrix work of one step. Two implementations compute the same
 * bits: `jsKernels` (the reference functions, the specification) and the WebAssembly SIMD kernels. The
 * softmax and loss are not here: src/kernels/softmax.ts is the one implementation both use.
 *
 * Shapes as in reference.ts. denseForward computes the output columns j in [j0, j1) of every row and
 * writes nothing else. The fused gradient-and-update calls apply one optimizer step to a block of the parameters:
 *   weightGradUpdate: gradient Σ_r Aprev[r][k]·D[r][j] of W[k][j] for k in [k0, k1), j in [j0, j1)
 *   biasGradUpdate:   gradient Σ_r D[r][j] of b[j] for j in [j0, j1)
 * each gradient then applied by updateParams (reference.ts) with the step read from `update`, an update
 * descriptor (src/optim/optimizer.ts) in the same memory as W and the optimizer state, which lies at the
 * descriptor's byte distances from each parameter. Every output element is its own sum and its own update,
 * so any split of a layer into blocks gives the bits of one full call. For the WebAssembly set every array
 * must be a view of its shared memory.
 */
export type KernelName = 'avx512' | 'avx2' | 'wasm' | 'js';

export interface Kernels {
  readonly name: KernelName;
  /** Rows of the batch per piece when threads share a step (workers/step.ts): the row block the kernels work in. */
  readonly chunkRows: number;
  /** Weights per parameter block of the step's second half: enough to outweigh taking it and re-reading the
   * layer's deltas, small enough to even out the threads' ends. */
  readonly blockWeights: number;
  /** The fewest weight rows per parameter block (a layer with fewer is one block): the rows of a block share
   * what the kernels make of the layer's deltas once per call (native: copies of their crowded rows). */
  readonly blockRows: number;
  gatherInputs(pixels: Uint8Array, order: Uint32Array, start: number, rows: number, nIn: number, X: Float32Array): void;
  denseForward(
    X: Float32Array,
    W: Float32Array,
    b: Float32Array,
    out: Float32Array,
    rows: number,
    nIn: number,
    nOut: number,
    relu: boolean,
    j0: number,
    j1: number,
  ): void;
  reluBackward(
    D: Float32Array,
    W: Float32Array,
    Aprev: Float32Array,
    Dprev: Float32Array,
    rows: number,
    nIn: number,
    nOut: number,
  ): void;
  weightGradUpdate(
    Aprev: Float32Array,
    D: Float32Array,
    W: Float32Array,
    rows: number,
    nIn: number,
    nOut: number,
    k0: number,
    k1: number,
    j0: number,
    j1: number,
    update: Float32Array,
  ): void;
  biasGradUpdate(
    D: Float32Array,
    b: Float32Array,
    rows: number,
    nOut: number,
    j0: number,
    j1: number,
    update: Float32Array,
  ): void;
}

/** The reference arithmetic as a kernel set: gradients into scratch, then the update, one row of W at a time. */
export function createJsKernels(): Kernels {
  let rowScratch = new Float32Array(0);
  const scratch = (n: number): Float32Array =>
    rowScratch.length >= n ? rowScratch : (rowScratch = new Float32Array(n));
  /** Applies the step to p[j0..j1) from gradient g, the state found at the descriptor's distances from p. */
  const update = (p: Float32Array, g: Float32Array, j0: number, j1: number, u: ReturnType<typeof readUpdate>): void => {
    const state = (bytes: number) => (bytes === 0 ? EMPTY : new Float32Array(p.buffer, p.byteOffset + bytes, p.length));
    updateParams(p, g, state(u.state1Bytes), state(u.state2Bytes), j0, j1, u.step);
  };
  return {
    name: 'js',
    ...WASM_BLOCKING,
    gatherInputs,
    denseForward,
    reluBackward,
    weightGradUpdate(Aprev, D, W, rows, nIn, nOut, k0, k1, j0, j1, desc) {
      const g = scratch(nOut);
      const u = readUpdate(desc);
      for (let k = k0; k < k1; k++) {
        weightGrad(Aprev, D, g, rows, nIn, nOut, k, k + 1, j0, j1);
        update(W.subarray(k * nOut, (k + 1) * nOut), g, j0, j1, u);
      }
    },
    biasGradUpdate(D, b, rows, nOut, j0, j1, desc) {
      const g = scratch(nOut);
      biasGrad(D, g, rows, nOut, j0, j1);
      update(b, g, j0, j1, readUpdate(desc));
    },
  };
}

const EMPTY = new Float32Array(0);

/** How a kernel set wants the step's work cut (workers/step.ts). */
export type Blocking = Pick<Kernels, 'chunkRows' | 'blockWeights' | 'blockRows'>;

/** The wasm and js kernels' blocking: reluBackward's row block of 8, and 8192 weights (docs/benchmarks.md, "Kernels"). */
export const WASM_BLOCKING: Blocking = { chunkRows: 8, blockWeights: 8192, blockRows: 1 };
