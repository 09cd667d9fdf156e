import type { Kernels } from '../src/kernels/kernels.js';
import { softmaxCrossEntropyBackward, softmaxEvaluate } from '../src/kernels/softmax.js';
import { layerViews } from '../src/model/layout.js';
import { EVAL_CHUNK, PROFILE_MARKS, type SharedViews } from '../src/shared/buffers.js';
import { barrier, Ctl, injectTestFault } from '../src/shared/control.js';
import { columnBlock, rowBlock } from '../src/shared/ownership.js';

/**
 * The training step, as every thread runs it: the coordinator as thread 0 and each piscina worker as
 * thread 1..N-1 call trainStep() with the same arguments (ARCHITECTURE.md, "The step").
 *
 * Shapes (B rows in the batch, n_l = sizes[l], L layers, layer l maps n_l inputs to n_{l+1} outputs):
 *   X (this thread's)  [B][n_0]        acts[l+1] layer l's output [B][n_{l+1}]
 *   W_l [n_l][n_{l+1}]  b_l [n_{l+1}]  deltas[l] dLoss/dZ of layer l [B][n_{l+1}]
 *
 * Who computes what is fixed for the whole run, so the same thread always touches the same bytes:
 *   columns  thread t owns a block of output columns of every layer (whole 64-byte lines of W), and
 *            computes the forward of layer 0 and the gradient and update of every layer for them only;
 *   rows     thread t owns a contiguous range of the batch's rows, for layers 1..L-1 and the backward.
 * No sum crosses a block of columns or depends on which rows a thread owns (every gradient is summed
 * over all rows in row order), so every bit is the same for any thread count.
 */
export interface ThreadContext {
  views: SharedViews;
  kernels: Kernels;
  thread: number;
  threads: number;
  /** The learning rate as a float32 value. */
  lr: number;
  /** Each layer's weight and bias, views made once. */
  layers: { W: Float32Array; b: Float32Array }[];
  /** This thread's columns [j0, j1) of each layer (empty when the layer has fewer lines than threads). */
  columns: { j0: number; j1: number }[];
  /** This thread's copy of the batch's inputs (null when it owns no column of layer 0). */
  X: Float32Array | null;
  /** Views of rows [r0, r1) of every activation and delta buffer, per batch size (the last batch is shorter). */
  rowViews: Map<number, RowViews>;
  /** This thread's profile samples (PROFILE_MARKS timestamps a step), or null when not profiling. */
  profile: Float64Array | null;
  /** Steps this thread has trained: where the next profile sample goes. */
  steps: number;
}

interface RowViews {
  r0: number;
  r1: number;
  acts: Float32Array[];
  deltas: Float32Array[];
  rowLoss: Float64Array;
}

export function createThreadContext(views: SharedViews, kernels: Kernels, thread: number, lr: number): ThreadContext {
  const { threads, profileSteps } = views.plan;
  const columns = views.layout.layers.map(({ nOut }) => columnBlock(nOut, thread, threads));
  const span = profileSteps * PROFILE_MARKS;
  return {
    views, kernels, thread, threads, lr, columns,
    layers: views.layout.layers.map((layer) => layerViews(views.params, layer)),
    X: thread < views.inputs.length ? views.inputs[thread] : null,
    rowViews: new Map(),
    profile: profileSteps > 0 ? views.profile.subarray(thread * span, (thread + 1) * span) : null,
    steps: 0,
  };
}

/**
 * One SGD step on the batch order[start .. start+rows), this thread's part. The textbook's step, cut
 * where a thread needs what others computed:
 */
export function trainStep(ctx: ThreadContext, start: number, rows: number): void {
  const { views, kernels, columns, layers: params } = ctx;
  const { layers, sizes } = views.layout;
  const L = layers.length;
  const mark = profiler(ctx);
  injectTestFault(views.control, ctx.thread);

  // 1. Layer 0 forward for this thread's columns and every row, from its own copy of the inputs: its
  //    columns of W_0 (most of the weights) are written only by this thread, so they never leave its core.
  const { j0, j1 } = columns[0];
  if (j1 > j0) {
    kernels.gatherInputs(views.trainPixels, views.order, start, rows, sizes[0], ctx.X!);
    kernels.denseForward(ctx.X!, params[0].W, params[0].b, views.acts[1], rows, sizes[0], sizes[1], L > 1, j0, j1);
  }
  mark(1);
  barrier(views.control, ctx.threads, views.plan.spinMs);
  mark(2);

  // 2. This thread's rows: layers 1..L-1 forward, softmax with the loss gradient (its 1/rows is the whole
  //    batch's), and the deltas back to layer 0's outputs.
  const own = rowViews(ctx, rows);
  const n = own.r1 - own.r0;
  if (n > 0) {
    const { acts, deltas } = own;
    for (let l = 1; l < L; l++) {
      kernels.denseForward(acts[l], params[l].W, params[l].b, acts[l + 1], n, sizes[l], sizes[l + 1], l < L - 1, 0, sizes[l + 1]);
    }
    softmaxCrossEntropyBackward(acts[L], deltas[L - 1], views.trainLabels, views.order, start + own.r0, n, sizes[L], rows, own.rowLoss);
    for (let l = L - 1; l > 0; l--) {
      kernels.reluBackward(deltas[l], params[l].W, acts[l], deltas[l - 1], n, layers[l].nIn, layers[l].nOut);
    }
  }
  mark(3);
  barrier(views.control, ctx.threads, views.plan.spinMs);
  mark(4);

  // 3. Gradients fused with the update, for this thread's columns of every layer: each weight's gradient
  //    is summed over all rows in row order (the all-reduce), then the SGD step.
  for (let l = 0; l < L; l++) {
    const { j0, j1 } = columns[l];
    if (j1 === j0) continue;
    const { nIn, nOut } = layers[l];
    const Aprev = l === 0 ? ctx.X! : views.acts[l];
    kernels.weightGradSgd(Aprev, views.deltas[l], params[l].W, rows, nIn, nOut, 0, nIn, j0, j1, ctx.lr);
    kernels.biasGradSgd(views.deltas[l], params[l].b, rows, nOut, j0, j1, ctx.lr);
  }
  mark(5);
  barrier(views.control, ctx.threads, views.plan.spinMs);
  mark(6);
  ctx.steps++;
}

/** This thread's rows of a batch of `rows` rows, as views; made once per batch size. */
function rowViews(ctx: ThreadContext, rows: number): RowViews {
  let views = ctx.rowViews.get(rows);
  if (!views) {
    const { r0, r1 } = rowBlock(rows, ctx.thread, ctx.threads);
    const { acts, deltas, rowLoss, layout } = ctx.views;
    const { sizes } = layout;
    views = {
      r0, r1,
      acts: acts.map((buf, l) => buf.subarray(r0 * sizes[l], r1 * sizes[l])),
      deltas: deltas.map((buf, l) => buf.subarray(r0 * sizes[l + 1], r1 * sizes[l + 1])),
      rowLoss: rowLoss.subarray(r0, r1),
    };
    ctx.rowViews.set(rows, views);
  }
  return views;
}

/**
 * Records when this thread reaches each point of the step (mark 0 is the step's start) into its ring of
 * profile samples; a no-op unless the run is profiled (bench --profile).
 */
function profiler(ctx: ThreadContext): (point: number) => void {
  const samples = ctx.profile;
  if (!samples) return noMark;
  const at = (ctx.steps % (samples.length / PROFILE_MARKS)) * PROFILE_MARKS;
  samples[at] = performance.now();
  return (point) => {
    samples[at + point] = performance.now();
  };
}

const noMark = (_point: number): void => {};

/**
 * Evaluation of a split: chunks of EVAL_CHUNK examples, taken in turn from a counter so that a thread slowed
 * by the machine does fewer, each through this thread's own scratch activations. Each example's predicted
 * class and loss are written in place; the coordinator adds them up in example order.
 */
export function evaluateSplit(ctx: ThreadContext, split: 'train' | 'test', count: number): void {
  const { views, kernels } = ctx;
  const { sizes } = views.layout;
  const L = sizes.length - 1;
  const pixels = split === 'train' ? views.trainPixels : views.testPixels;
  const labels = split === 'train' ? views.trainLabels : views.testLabels;
  const acts = views.scratch[ctx.thread];
  const chunks = Math.ceil(count / EVAL_CHUNK);
  for (let c = Atomics.add(views.control, Ctl.NextChunk, 1); c < chunks; c = Atomics.add(views.control, Ctl.NextChunk, 1)) {
    const at = c * EVAL_CHUNK;
    const n = Math.min(EVAL_CHUNK, count - at);
    kernels.gatherInputs(pixels, views.identity, at, n, sizes[0], acts[0]);
    for (let l = 0; l < L; l++) {
      const { W, b } = ctx.layers[l];
      kernels.denseForward(acts[l], W, b, acts[l + 1], n, sizes[l], sizes[l + 1], l < L - 1, 0, sizes[l + 1]);
    }
    softmaxEvaluate(acts[L], labels, at, n, sizes[L], views.evalPredicted.subarray(at, at + n), views.evalLoss.subarray(at, at + n));
  }
  barrier(views.control, ctx.threads, views.plan.spinMs);
}
