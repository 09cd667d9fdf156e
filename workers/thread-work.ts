import type { Kernels } from '../src/kernels/kernels.js';
import { softmaxCrossEntropyBackward, softmaxEvaluate } from '../src/kernels/softmax.js';
import { layerViews } from '../src/model/layout.js';
import { EVAL_CHUNK, type SharedViews } from '../src/shared/buffers.js';
import { Ctl } from '../src/shared/control.js';

/**
 * The work of one thread in one step (DESIGN.md, the step diagram). Every computing thread runs these, the
 * coordinator as thread 0 and each piscina worker as thread 1..N-1; only the synchronisation around them
 * differs. Phase 1 touches only rows of the batch, phase 2 only slices of the parameters, and each piece
 * (a chunk of rows, a block of parameter rows) is done whole by whichever thread takes it, so no two
 * threads ever write the same bytes and no sum ever depends on the thread count or on who took what.
 *
 * Why the pieces are taken, not assigned: on a shared machine one core is often slowed for a while (another
 * tenant, an interrupt), and with a fixed split every barrier waits for the slowest share. Measured at 2
 * threads on the 2-core machine with a fixed split: each barrier cost 15-60 µs of a ~230 µs step. Threads
 * take the next piece with an atomic counter in the control block instead, so a fast thread does more.
 */
export interface ThreadContext {
  views: SharedViews;
  kernels: Kernels;
  thread: number;
  threads: number;
  /** The learning rate as a float32 value. */
  lr: number;
  /** Phase 2's pieces, in the order they are taken. */
  updates: UpdatePiece[];
  /** Each layer's weights and bias (views made once). */
  layers: { W: Float32Array; b: Float32Array }[];
  /** Views of the rows [r0, r1) of every activation and delta buffer, made once per chunk (see rowViews). */
  rowViewCache: Map<number, RowViews>;
}

interface RowViews {
  acts: Float32Array[];
  deltas: Float32Array[];
  rowLoss: Float64Array;
}

/** A piece of phase 2: SGD on rows [k0, k1) of layer `layer`'s weights, or (k0 = k1 = -1) on its bias. */
export interface UpdatePiece {
  layer: number;
  k0: number;
  k1: number;
}

/** Rows of the batch per phase-1 chunk when threads share a batch: the reluBackward kernel's row block. */
const TRAIN_CHUNK_ROWS = 8;
/** Weights per phase-2 piece: the layer-1 gradient of the textbook network comes in ~12 pieces of ~8 µs. */
const UPDATE_PIECE_WEIGHTS = 8192;

export function createThreadContext(views: SharedViews, kernels: Kernels, thread: number, threads: number, lr: number): ThreadContext {
  const layers = views.layout.layers.map((layer) => layerViews(views.params, layer));
  return { views, kernels, thread, threads, lr, updates: updatePieces(views), layers, rowViewCache: new Map() };
}

/**
 * The views of rows [r0, r1) that a chunk's kernels take. Why cached: a step has 8 chunks of ~20 views
 * each, and making a typed-array view costs ~60 ns here, 10 µs a step; the chunks repeat every step.
 */
function rowViews(ctx: ThreadContext, r0: number, r1: number): RowViews {
  const key = r0 * 2 ** 26 + r1;
  let cached = ctx.rowViewCache.get(key);
  if (!cached) {
    const { acts, deltas, rowLoss, layout } = ctx.views;
    const { sizes } = layout;
    cached = {
      acts: acts.map((buf, l) => buf.subarray(r0 * sizes[l], r1 * sizes[l])),
      deltas: deltas.map((buf, l) => buf.subarray(r0 * sizes[l + 1], r1 * sizes[l + 1])),
      rowLoss: rowLoss.subarray(r0, r1),
    };
    ctx.rowViewCache.set(key, cached);
  }
  return cached;
}

/**
 * Phase 2's pieces, biggest first so that the small ones even out the end: each layer's weight rows in
 * blocks of about UPDATE_PIECE_WEIGHTS weights, then the biases.
 */
function updatePieces(views: SharedViews): UpdatePiece[] {
  const pieces: (UpdatePiece & { size: number })[] = [];
  views.layout.layers.forEach(({ nIn, nOut }, layer) => {
    const blocks = Math.max(1, Math.round((nIn * nOut) / UPDATE_PIECE_WEIGHTS));
    for (let i = 0; i < blocks; i++) {
      const k0 = Math.floor((i * nIn) / blocks);
      const k1 = Math.floor(((i + 1) * nIn) / blocks);
      if (k1 > k0) pieces.push({ layer, k0, k1, size: (k1 - k0) * nOut });
    }
    pieces.push({ layer, k0: -1, k1: -1, size: nOut });
  });
  pieces.sort((a, b) => b.size - a.size || a.layer - b.layer || a.k0 - b.k0);
  return pieces.map(({ layer, k0, k1 }) => ({ layer, k0, k1 }));
}

/** The next piece index from a counter the coordinator zeroes before each command. */
function takePiece(ctx: ThreadContext, counter: Ctl.NextRows | Ctl.NextUpdate): number {
  return Atomics.add(ctx.views.control, counter, 1);
}

/**
 * Phase 1: forward and backward deltas for the batch order[start .. start+rows), in chunks of rows taken in
 * turn by every thread. Per row only: activations, softmax, the loss gradient (its 1/rows is the whole
 * batch's) and the deltas.
 */
export function trainRows(ctx: ThreadContext, start: number, rows: number): void {
  // One thread takes the batch whole: chunks of 8 rows cost it ~12% of phase 1 when measured (mostly per-call
  // overhead, reduced since; not measured again), and it has no one to share the batch with.
  const chunk = ctx.threads === 1 ? rows : Math.min(TRAIN_CHUNK_ROWS, Math.ceil(rows / ctx.threads));
  const chunks = Math.ceil(rows / chunk);
  for (let c = takePiece(ctx, Ctl.NextRows); c < chunks; c = takePiece(ctx, Ctl.NextRows)) {
    trainChunk(ctx, start, rows, c * chunk, Math.min(rows, (c + 1) * chunk));
  }
}

/** Phase 1 for rows [r0, r1) of the batch. */
function trainChunk(ctx: ThreadContext, start: number, rows: number, r0: number, r1: number): void {
  const { views, kernels } = ctx;
  const { sizes, layers } = views.layout;
  const L = layers.length;
  const n = r1 - r0;
  const { acts, deltas, rowLoss } = rowViews(ctx, r0, r1);

  kernels.gatherInputs(views.trainPixels, views.order, start + r0, n, sizes[0], acts[0]);
  forwardRows(ctx, acts, n);
  softmaxCrossEntropyBackward(acts[L], deltas[L - 1], views.trainLabels, views.order, start + r0, n, sizes[L], rows, rowLoss);
  for (let l = L - 1; l > 0; l--) {
    kernels.reluBackward(deltas[l], ctx.layers[l].W, acts[l], deltas[l - 1], n, layers[l].nIn, layers[l].nOut);
  }
}

/** Forward through every layer for `n` rows whose inputs are in acts[0]: acts[l+1] = layer l's output. */
function forwardRows(ctx: ThreadContext, acts: Float32Array[], n: number): void {
  const { layers } = ctx.views.layout;
  for (let l = 0; l < layers.length; l++) {
    const { W, b } = ctx.layers[l];
    ctx.kernels.denseForward(
      acts[l], W, b, acts[l + 1], n, layers[l].nIn, layers[l].nOut, l < layers.length - 1, 0, layers[l].nOut,
    );
  }
}

/**
 * Phase 2, after every thread's phase 1: the all-reduce as a reduce-scatter fused with SGD. Each piece is a
 * block of rows of one weight matrix (or one bias vector) whose gradients are summed over ALL rows of the
 * batch in row order, so each sum is the same whichever thread takes the piece.
 */
export function updateParameters(ctx: ThreadContext, rows: number): void {
  const { views, kernels, lr, updates } = ctx;
  for (let p = takePiece(ctx, Ctl.NextUpdate); p < updates.length; p = takePiece(ctx, Ctl.NextUpdate)) {
    const { layer: l, k0, k1 } = updates[p];
    const layer = views.layout.layers[l];
    const { W, b } = ctx.layers[l];
    if (k0 < 0) kernels.biasGradSgd(views.deltas[l], b, rows, layer.nOut, 0, layer.nOut, lr);
    else kernels.weightGradSgd(
      views.acts[l], views.deltas[l], W, rows, layer.nIn, layer.nOut, k0, k1, 0, layer.nOut, lr,
    );
  }
}

/**
 * Evaluation of a split in chunks of EVAL_CHUNK examples taken in turn, each through this thread's own
 * scratch activations: writes each example's predicted class and loss; the coordinator adds them up in
 * example order.
 */
export function evaluateRows(ctx: ThreadContext, split: 'train' | 'test', count: number): void {
  const { views, kernels } = ctx;
  const { sizes } = views.layout;
  const L = sizes.length - 1;
  const pixels = split === 'train' ? views.trainPixels : views.testPixels;
  const labels = split === 'train' ? views.trainLabels : views.testLabels;
  const acts = views.scratch[ctx.thread];
  const chunks = Math.ceil(count / EVAL_CHUNK);
  for (let c = takePiece(ctx, Ctl.NextRows); c < chunks; c = takePiece(ctx, Ctl.NextRows)) {
    const at = c * EVAL_CHUNK;
    const n = Math.min(EVAL_CHUNK, count - at);
    kernels.gatherInputs(pixels, views.identity, at, n, sizes[0], acts[0]);
    forwardRows(ctx, acts, n);
    softmaxEvaluate(acts[L], labels, at, n, sizes[L], views.evalPredicted.subarray(at, at + n), views.evalLoss.subarray(at, at + n));
  }
}
