import type { Kernels } from '../src/kernels/kernels.js';
import { softmaxCrossEntropyBackward, softmaxEvaluate } from '../src/kernels/softmax.js';
import { layerViews } from '../src/model/layout.js';
import { EVAL_CHUNK, type SharedViews } from '../src/shared/buffers.js';

/**
 * The work of one thread in one step (DESIGN.md, the step diagram). Every computing thread runs these, the
 * coordinator as thread 0 and each piscina worker as thread 1..N-1; only the synchronisation around them
 * differs. Phase 1 touches only this thread's rows of the batch, phase 2 only this thread's slice of the
 * parameters, so no two threads ever write the same bytes, and no sum ever depends on the thread count.
 */
export interface ThreadContext {
  views: SharedViews;
  kernels: Kernels;
  thread: number;
  threads: number;
  /** The learning rate as a float32 value. */
  lr: number;
}

/** [from, to) of the `thread`-th of `threads` near-equal contiguous parts of 0..n-1 (empty when n < threads). */
export function partRange(thread: number, threads: number, n: number): [number, number] {
  return [Math.floor((thread * n) / threads), Math.floor(((thread + 1) * n) / threads)];
}

/**
 * Phase 1: forward and backward deltas for this thread's rows of the batch order[start .. start+rows).
 * Per row only: activations, softmax, the loss gradient (its 1/rows is the whole batch's) and the deltas.
 */
export function trainRows(ctx: ThreadContext, start: number, rows: number): void {
  const { views, kernels } = ctx;
  const { layout, acts, deltas, params } = views;
  const { sizes, layers } = layout;
  const L = layers.length;
  const [r0, r1] = partRange(ctx.thread, ctx.threads, rows);
  const n = r1 - r0;
  if (n === 0) return;
  // This thread's rows of every activation and delta buffer.
  const myActs = acts.map((buf, l) => buf.subarray(r0 * sizes[l], r1 * sizes[l]));
  const myDeltas = deltas.map((buf, l) => buf.subarray(r0 * sizes[l + 1], r1 * sizes[l + 1]));

  kernels.gatherInputs(views.trainPixels, views.order, start + r0, n, sizes[0], myActs[0]);
  forwardRows(ctx, myActs, n);
  softmaxCrossEntropyBackward(
    myActs[L], myDeltas[L - 1], views.trainLabels, views.order, start + r0, n, sizes[L], rows, views.rowLoss.subarray(r0, r1),
  );
  for (let l = L - 1; l > 0; l--) {
    const { nIn, nOut } = layers[l];
    const { W } = layerViews(params, layers[l]);
    kernels.reluBackward(myDeltas[l], W, myActs[l], myDeltas[l - 1], n, nIn, nOut);
  }
}

/** Forward through every layer for `n` rows whose inputs are in acts[0]: acts[l+1] = layer l's output. */
function forwardRows(ctx: ThreadContext, acts: Float32Array[], n: number): void {
  const { layers } = ctx.views.layout;
  for (let l = 0; l < layers.length; l++) {
    const { W, b } = layerViews(ctx.views.params, layers[l]);
    ctx.kernels.denseForward(acts[l], W, b, acts[l + 1], n, layers[l].nIn, layers[l].nOut, l < layers.length - 1);
  }
}

/**
 * Phase 2, after every thread's phase 1: the all-reduce as a reduce-scatter fused with SGD. This thread owns
 * rows [k0, k1) of each weight matrix (and whole bias vectors, layer l going to thread l mod N) and sums
 * their gradients over ALL rows of the batch in row order, so each sum is the same for any thread count.
 */
export function updateSlice(ctx: ThreadContext, rows: number): void {
  const { views, kernels, thread, threads, lr } = ctx;
  views.layout.layers.forEach((layer, l) => {
    const { W, b } = layerViews(views.params, layer);
    const [k0, k1] = partRange(thread, threads, layer.nIn);
    if (k1 > k0) kernels.weightGradSgd(views.acts[l], views.deltas[l], W, rows, layer.nIn, layer.nOut, k0, k1, lr);
    if (l % threads === thread) kernels.biasGradSgd(views.deltas[l], b, rows, layer.nOut, 0, layer.nOut, lr);
  });
}

/**
 * Evaluation of this thread's part of a split, in chunks through its own scratch activations: writes each
 * example's predicted class and loss; the coordinator adds them up in example order.
 */
export function evaluateRows(ctx: ThreadContext, split: 'train' | 'test', count: number): void {
  const { views, kernels } = ctx;
  const { sizes } = views.layout;
  const L = sizes.length - 1;
  const pixels = split === 'train' ? views.trainPixels : views.testPixels;
  const labels = split === 'train' ? views.trainLabels : views.testLabels;
  const acts = views.scratch[ctx.thread];
  const [first, end] = partRange(ctx.thread, ctx.threads, count);
  for (let at = first; at < end; at += EVAL_CHUNK) {
    const n = Math.min(EVAL_CHUNK, end - at);
    kernels.gatherInputs(pixels, views.identity, at, n, sizes[0], acts[0]);
    forwardRows(ctx, acts, n);
    softmaxEvaluate(acts[L], labels, at, n, sizes[L], views.evalPredicted.subarray(at, at + n), views.evalLoss.subarray(at, at + n));
  }
}
