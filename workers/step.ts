import type { Kernels } from '../src/kernels/kernels.js';
import { softmaxCrossEntropyBackward, softmaxEvaluate } from '../src/kernels/softmax.js';
import { layerViews } from '../src/model/layout.js';
import { EVAL_CHUNK, profileMarks, type SharedViews } from '../src/shared/buffers.js';
import { barrier, Ctl, injectTestFault } from '../src/shared/control.js';

/**
 * The training step, as every thread runs it: the coordinator as thread 0 and each piscina worker as
 * thread 1..N-1 call trainStep() with the same arguments (ARCHITECTURE.md, "The step").
 *
 * Shapes (B rows in the batch, n_l = sizes[l], L layers, layer l maps n_l inputs to n_{l+1} outputs):
 *   acts[0] X [B][n_0]   acts[l+1] layer l's output [B][n_{l+1}]   deltas[l] dLoss/dZ of layer l [B][n_{l+1}]
 *   W_l [n_l][n_{l+1}]   b_l [n_{l+1}]
 *
 * Each thread owns fixed columns of every hidden layer (cols, whole SIMD lanes wide). It computes those
 * columns of the layer's output and delta for all B rows, and updates the weights and biases that produce
 * them. The output layer is narrow, so every thread computes it whole (the softmax needs whole rows), and
 * each of its weight rows is updated by the thread that owns the hidden column it leaves from. Every
 * element is still one sum over the same terms in the same order, so every bit is the reference's at any
 * thread count. Why columns rather than rows: a thread then reads the big first layer's weights only where
 * it writes them, so they never travel between cores (ARCHITECTURE.md, "Why columns").
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
  /** acts[0..L]: this thread's own X, the shared hidden outputs, its own output layer. */
  acts: Float32Array[];
  /** deltas[0..L-1]: the shared hidden deltas, then this thread's own output delta. */
  deltas: Float32Array[];
  /** This thread's columns [c0, c1) of acts[a], for a = 0..L-1. */
  cols: [number, number][];
  /** This thread's row losses (thread 0's are the step's). */
  rowLoss: Float64Array;
  /** This thread's profile samples (profileMarks(L) timestamps a step), or null when not profiling. */
  profile: Float64Array | null;
  /** Where the next profile timestamp goes. */
  mark: number;
  /** Steps this thread has trained: where the next profile sample goes. */
  steps: number;
}

export function createThreadContext(views: SharedViews, kernels: Kernels, thread: number, lr: number): ThreadContext {
  const { threads, profileSteps } = views.plan;
  const { sizes } = views.layout;
  const L = sizes.length - 1;
  const own = views.local[thread];
  const span = profileSteps * profileMarks(L);
  return {
    views, kernels, thread, threads, lr,
    layers: views.layout.layers.map((layer) => layerViews(views.params, layer)),
    acts: [own.X, ...views.hiddenActs, own.out],
    deltas: [...views.hiddenDeltas, own.outDelta],
    cols: sizes.slice(0, L).map((n) => columnsOf(n, thread, threads)),
    rowLoss: own.rowLoss,
    profile: profileSteps > 0 ? views.profile.subarray(thread * span, (thread + 1) * span) : null,
    mark: 0,
    steps: 0,
  };
}

/** Thread t's share of n columns: whole groups of 4 (a SIMD vector), as even as they come. */
export function columnsOf(n: number, thread: number, threads: number): [number, number] {
  const groups = Math.ceil(n / 4);
  const c0 = 4 * Math.floor((thread * groups) / threads);
  const c1 = 4 * Math.floor(((thread + 1) * groups) / threads);
  return [Math.min(n, c0), Math.min(n, c1)];
}

/** One SGD step on the batch order[start .. start+rows), this thread's part: the textbook's step, cut where a thread needs what the others wrote. */
export function trainStep(ctx: ThreadContext, start: number, rows: number): void {
  const { views, kernels, acts, deltas, cols, layers: P } = ctx;
  const { sizes } = views.layout;
  const L = sizes.length - 1;
  startProfile(ctx);
  injectTestFault(views.control, ctx.thread);

  // Forward: this thread's columns of each hidden layer, for every row; the next layer reads all columns.
  kernels.gatherInputs(views.trainPixels, views.order, start, rows, sizes[0], acts[0]);
  for (let l = 0; l < L - 1; l++) {
    const [j0, j1] = cols[l + 1];
    kernels.denseForward(acts[l], P[l].W, P[l].b, acts[l + 1], rows, sizes[l], sizes[l + 1], true, j0, j1);
    meet(ctx);
  }
  // The output layer and the loss gradient, whole. The loss gradient's 1/rows is the whole batch's.
  kernels.denseForward(acts[L - 1], P[L - 1].W, P[L - 1].b, acts[L], rows, sizes[L - 1], sizes[L], false, 0, sizes[L]);
  softmaxCrossEntropyBackward(acts[L], deltas[L - 1], views.trainLabels, views.order, start, rows, sizes[L], rows, ctx.rowLoss);
  // A 1-layer network's update writes weights every thread has just read whole.
  if (L === 1) meet(ctx);

  // Backward: this thread's columns of each hidden delta. After the barrier no thread reads layer l's
  // weights again in this step, so each thread updates its part of them.
  for (let l = L - 1; l > 0; l--) {
    const [k0, k1] = cols[l];
    kernels.reluBackward(deltas[l], P[l].W, acts[l], deltas[l - 1], rows, sizes[l], sizes[l + 1], k0, k1);
    meet(ctx);
    update(ctx, l, rows);
  }
  update(ctx, 0, rows);
  // The step is whole: the coordinator may read the parameters, and the next forward may overwrite acts.
  meet(ctx);
  ctx.steps++;
}

/** What a thread does before each of a step's barriers, in trainStep's order (bench --profile's rows). */
export function stepPhases(L: number): string[] {
  if (L === 1) return ['forward 0, loss', 'update 0'];
  const phases: string[] = [];
  for (let l = 0; l < L - 1; l++) phases.push(`forward ${l}`);
  phases.push(`forward ${L - 1}, loss, backward ${L - 1}`);
  for (let l = L - 2; l > 0; l--) phases.push(`update ${l + 1}, backward ${l}`);
  phases.push('update 1, update 0');
  return phases;
}

/**
 * The gradient fused with SGD on this thread's parameters of layer l: a hidden layer's weight columns and
 * biases cols[l + 1]; the output layer's weight rows cols[l] (and its bias, on thread 0).
 */
function update(ctx: ThreadContext, l: number, rows: number): void {
  const { kernels, acts, deltas, lr } = ctx;
  const { nIn, nOut } = ctx.views.layout.layers[l];
  const { W, b } = ctx.layers[l];
  if (l + 1 < ctx.layers.length) {
    const [j0, j1] = ctx.cols[l + 1];
    kernels.weightGradSgd(acts[l], deltas[l], W, rows, nIn, nOut, 0, nIn, j0, j1, lr);
    kernels.biasGradSgd(deltas[l], b, rows, nOut, j0, j1, lr);
  } else {
    const [k0, k1] = ctx.cols[l];
    kernels.weightGradSgd(acts[l], deltas[l], W, rows, nIn, nOut, k0, k1, 0, nOut, lr);
    if (ctx.thread === 0) kernels.biasGradSgd(deltas[l], b, rows, nOut, 0, nOut, lr);
  }
}

/** A barrier, timed when profiling: this thread's arrival and departure. */
function meet(ctx: ThreadContext): void {
  const samples = ctx.profile;
  if (samples) samples[ctx.mark++] = performance.now();
  barrier(ctx.views.control, ctx.threads, ctx.views.plan.spinMs);
  if (samples) samples[ctx.mark++] = performance.now();
}

/** Starts this step's profile sample (a ring of the last profileSteps steps): its first timestamp. */
function startProfile(ctx: ThreadContext): void {
  const samples = ctx.profile;
  if (!samples) return;
  const marks = profileMarks(ctx.views.layout.sizes.length - 1);
  ctx.mark = (ctx.steps % (samples.length / marks)) * marks;
  samples[ctx.mark++] = performance.now();
}

/** The next piece from a counter the coordinator zeroes with each command. */
function take(ctx: ThreadContext, counter: Ctl.NextChunk): number {
  return Atomics.add(ctx.views.control, counter, 1);
}

/**
 * Evaluation of a split: chunks of EVAL_CHUNK examples taken in turn, each through this thread's own
 * scratch activations. Each example's predicted class and loss are written in place; the coordinator adds
 * them up in example order.
 */
export function evaluateSplit(ctx: ThreadContext, split: 'train' | 'test', count: number): void {
  const { views } = ctx;
  const { sizes } = views.layout;
  const L = sizes.length - 1;
  const pixels = split === 'train' ? views.trainPixels : views.testPixels;
  const labels = split === 'train' ? views.trainLabels : views.testLabels;
  const acts = views.scratch[ctx.thread];
  const chunks = Math.ceil(count / EVAL_CHUNK);
  for (let c = take(ctx, Ctl.NextChunk); c < chunks; c = take(ctx, Ctl.NextChunk)) {
    const at = c * EVAL_CHUNK;
    const n = Math.min(EVAL_CHUNK, count - at);
    ctx.kernels.gatherInputs(pixels, views.identity, at, n, sizes[0], acts[0]);
    for (let l = 0; l < L; l++) {
      const { W, b } = ctx.layers[l];
      ctx.kernels.denseForward(acts[l], W, b, acts[l + 1], n, sizes[l], sizes[l + 1], l < L - 1, 0, sizes[l + 1]);
    }
    softmaxEvaluate(acts[L], labels, at, n, sizes[L], views.evalPredicted.subarray(at, at + n), views.evalLoss.subarray(at, at + n));
  }
  barrier(views.control, ctx.threads, views.plan.spinMs);
}
