import type { Blocking, Kernels } from '../src/kernels/kernels.js';
import { gatherRows } from '../src/kernels/reference.js';
import type { SplitName } from '../src/model/trainer.js';
import { softmaxCrossEntropyBackward, softmaxEvaluate } from '../src/kernels/softmax.js';
import { layerViews } from '../src/model/layout.js';
import { EVAL_CHUNK, PROFILE_MARKS, type SharedViews } from '../src/shared/buffers.js';
import { barrier, Ctl, injectTestFault } from '../src/shared/control.js';

/**
 * The training step, as every thread runs it: the coordinator as thread 0 and each piscina worker as
 * thread 1..N-1 call trainStep() with the same arguments (ARCHITECTURE.md, "The step").
 *
 * Shapes (B rows in the batch, n_l = layers[l], L layers, layer l maps n_l inputs to n_{l+1} outputs):
 *   acts[0] X [B][n_0]   acts[l+1] layer l's output [B][n_{l+1}]   deltas[l] dLoss/dZ of layer l [B][n_{l+1}]
 *   W_l [n_l][n_{l+1}]   b_l [n_{l+1}]
 *
 * Threads take the work in pieces from counters in the control block: chunks of the batch's rows in the
 * first half, blocks of parameter rows in the second. A piece is done whole by one thread and no sum
 * crosses pieces (each gradient is summed over all rows of the batch, in row order), so every bit is the
 * same for any thread count and whoever took which piece.
 */
export interface ThreadContext {
  views: SharedViews;
  kernels: Kernels;
  thread: number;
  threads: number;
  /** Each layer's weight and bias, views made once. */
  layers: { W: Float32Array; b: Float32Array }[];
  /** The second half's parameter blocks, in the order they are taken. */
  blocks: ParameterBlock[];
  /** Rows per chunk of the first half when threads share a step (firstHalfChunkRows()). */
  chunkRows: number;
  /** Views of rows [r0, r1) of every activation and delta buffer, made once per chunk (see chunkViews). */
  chunkViews: Map<number, ChunkViews>;
  /** This thread's profile samples (PROFILE_MARKS timestamps a step), or null when not profiling. */
  profile: Float64Array | null;
  /** Steps this thread has trained: where the next profile sample goes. */
  steps: number;
}

/** A parameter block: rows [k0, k1) of layer `layer`'s weights, or (k0 = k1 = -1) its bias. */
export interface ParameterBlock {
  layer: number;
  k0: number;
  k1: number;
}

interface ChunkViews {
  acts: Float32Array[];
  deltas: Float32Array[];
  rowLoss: Float64Array;
}

export function createThreadContext(views: SharedViews, kernels: Kernels, thread: number): ThreadContext {
  const { threads, profileSteps } = views.plan;
  const span = profileSteps * PROFILE_MARKS;
  return {
    views,
    kernels,
    thread,
    threads,
    layers: views.layout.dense.map((layer) => layerViews(views.params, layer)),
    blocks: parameterBlocks(views, kernels),
    chunkRows: firstHalfChunkRows(views, kernels),
    chunkViews: new Map(),
    profile: profileSteps > 0 ? views.profile.subarray(thread * span, (thread + 1) * span) : null,
    steps: 0,
  };
}

/**
 * One training step on the batch order[start .. start+rows), this thread's part: the textbook's step, cut
 * where a thread needs what the others computed. The optimizer's step is the update descriptor
 * (views.update) the coordinator wrote before the command.
 */
export function trainStep(ctx: ThreadContext, start: number, rows: number): void {
  const { views, kernels, blocks } = ctx;
  const mark = profiler(ctx);
  injectTestFault(views.control, ctx.thread);

  // 1. Forward, softmax with the loss gradient, and the backward deltas, for chunks of the batch's rows.
  // One thread takes the batch whole: it has no one to share it with, and chunks cost calls.
  const chunk = ctx.threads === 1 ? rows : Math.min(ctx.chunkRows, Math.ceil(rows / ctx.threads));
  const chunks = Math.ceil(rows / chunk);
  for (let c = take(ctx, Ctl.NextChunk); c < chunks; c = take(ctx, Ctl.NextChunk)) {
    trainChunk(ctx, start, rows, c * chunk, Math.min(rows, (c + 1) * chunk));
  }
  mark(1);
  barrier(views.control, ctx.threads, views.plan.spinMs);
  mark(2);

  // 2. The all-reduce fused with the optimizer: for each parameter block, the gradient summed over all rows
  //    of the batch in row order, then the update (its state at the parameters' indices).
  for (let p = take(ctx, Ctl.NextBlock); p < blocks.length; p = take(ctx, Ctl.NextBlock)) {
    const { layer: l, k0, k1 } = blocks[p];
    const { nIn, nOut } = views.layout.dense[l];
    const { W, b } = ctx.layers[l];
    if (k0 < 0) kernels.biasGradUpdate(views.deltas[l], b, rows, nOut, 0, nOut, views.update);
    else kernels.weightGradUpdate(views.acts[l], views.deltas[l], W, rows, nIn, nOut, k0, k1, 0, nOut, views.update);
  }
  mark(3);
  barrier(views.control, ctx.threads, views.plan.spinMs);
  mark(4);
  ctx.steps++;
}

/** The first half of a step for rows [r0, r1) of the batch. */
function trainChunk(ctx: ThreadContext, start: number, rows: number, r0: number, r1: number): void {
  const { views, kernels } = ctx;
  const { layers, dense } = views.layout;
  const L = dense.length;
  const n = r1 - r0;
  const { acts, deltas, rowLoss } = chunkViews(ctx, r0, r1);
  gatherRows(kernels.gatherInputs, views.trainInputs, views.order, start + r0, n, layers[0], acts[0]);
  forward(ctx, acts, n);
  // The loss gradient's 1/rows is the whole batch's.
  softmaxCrossEntropyBackward(
    acts[L],
    deltas[L - 1],
    views.trainLabels,
    views.order,
    start + r0,
    n,
    layers[L],
    rows,
    rowLoss,
  );
  for (let l = L - 1; l > 0; l--) {
    kernels.reluBackward(deltas[l], ctx.layers[l].W, acts[l], deltas[l - 1], n, dense[l].nIn, dense[l].nOut);
  }
}

/** Forward through every layer for `n` rows whose inputs are in acts[0]: acts[l+1] = layer l's output. */
function forward(ctx: ThreadContext, acts: Float32Array[], n: number): void {
  const { layers } = ctx.views.layout;
  const L = layers.length - 1;
  for (let l = 0; l < L; l++) {
    const { W, b } = ctx.layers[l];
    ctx.kernels.denseForward(acts[l], W, b, acts[l + 1], n, layers[l], layers[l + 1], l < L - 1, 0, layers[l + 1]);
  }
}

/** The next piece from a counter the coordinator zeroes with each command. */
function take(ctx: ThreadContext, counter: Ctl.NextChunk | Ctl.NextBlock): number {
  return Atomics.add(ctx.views.control, counter, 1);
}

/**
 * The views of rows [r0, r1) that a chunk's kernels take. Why cached: a step has up to 8 chunks of 8 views
 * each, and the chunks repeat every step.
 */
function chunkViews(ctx: ThreadContext, r0: number, r1: number): ChunkViews {
  const key = r0 * 2 ** 26 + r1;
  let views = ctx.chunkViews.get(key);
  if (!views) {
    const { acts, deltas, rowLoss, layout } = ctx.views;
    const { layers } = layout;
    views = {
      acts: acts.map((buf, l) => buf.subarray(r0 * layers[l], r1 * layers[l])),
      deltas: deltas.map((buf, l) => buf.subarray(r0 * layers[l + 1], r1 * layers[l + 1])),
      rowLoss: rowLoss.subarray(r0, r1),
    };
    ctx.chunkViews.set(key, views);
  }
  return views;
}

/** Weights a core's cache holds, about: a layer with more is read from farther away by every chunk. */
const CACHED_WEIGHTS = 1 << 18;

/**
 * Rows per chunk: the kernel set's, small enough to even out the threads' ends; but where a layer's weights
 * outgrow the cache, every chunk reads them from farther away, so each thread takes one chunk (trainStep
 * caps the chunk at rows / threads). On 784-1024-1024-10, avx2, the first half took 1.40× as long per row in
 * 16-row chunks as in 128-row ones, 1.09× in 64-row ones (docs/benchmarks.md).
 */
function firstHalfChunkRows(views: SharedViews, { chunkRows }: Blocking): number {
  const biggest = Math.max(...views.layout.dense.map(({ nIn, nOut }) => nIn * nOut));
  return biggest > CACHED_WEIGHTS ? Infinity : chunkRows;
}

/**
 * The parameter blocks, biggest first so that the small ones even out the threads' ends: each layer's
 * weight rows in blocks of about `blockWeights` weights and at least `blockRows` rows (the kernel set's), then
 * each bias.
 */
function parameterBlocks(views: SharedViews, { blockWeights, blockRows }: Blocking): ParameterBlock[] {
  const blocks: (ParameterBlock & { size: number })[] = [];
  views.layout.dense.forEach(({ nIn, nOut }, layer) => {
    const count = Math.max(1, Math.min(Math.round((nIn * nOut) / blockWeights), Math.floor(nIn / blockRows)));
    for (let i = 0; i < count; i++) {
      const k0 = Math.floor((i * nIn) / count);
      const k1 = Math.floor(((i + 1) * nIn) / count);
      if (k1 > k0) blocks.push({ layer, k0, k1, size: (k1 - k0) * nOut });
    }
    blocks.push({ layer, k0: -1, k1: -1, size: nOut });
  });
  blocks.sort((a, b) => b.size - a.size || a.layer - b.layer || a.k0 - b.k0);
  return blocks.map(({ layer, k0, k1 }) => ({ layer, k0, k1 }));
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
 * Evaluation of a split: chunks of EVAL_CHUNK examples taken in turn, each through this thread's own
 * scratch activations. Each example's predicted class and loss are written in place; the coordinator adds
 * them up in example order.
 */
export function evaluateSplit(ctx: ThreadContext, split: SplitName, count: number): void {
  const { views } = ctx;
  const { layers } = views.layout;
  const L = layers.length - 1;
  const inputs = views[`${split}Inputs`];
  const labels = views[`${split}Labels`];
  const acts = views.scratch[ctx.thread];
  const chunks = Math.ceil(count / EVAL_CHUNK);
  for (let c = take(ctx, Ctl.NextChunk); c < chunks; c = take(ctx, Ctl.NextChunk)) {
    const at = c * EVAL_CHUNK;
    const n = Math.min(EVAL_CHUNK, count - at);
    gatherRows(ctx.kernels.gatherInputs, inputs, views.identity, at, n, layers[0], acts[0]);
    forward(ctx, acts, n);
    softmaxEvaluate(
      acts[L],
      labels,
      at,
      n,
      layers[L],
      views.evalPredicted.subarray(at, at + n),
      views.evalLoss.subarray(at, at + n),
    );
  }
  barrier(views.control, ctx.threads, views.plan.spinMs);
}
