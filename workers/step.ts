import type { Kernels } from '../src/kernels/kernels.js';
import { gatherRows } from '../src/kernels/reference.js';
import type { SplitName } from '../src/model/trainer.js';
import { softmaxCrossEntropyBackward, softmaxEvaluate } from '../src/kernels/softmax.js';
import { layerViews } from '../src/model/layout.js';
import { EVAL_CHUNK, PROFILE_MARKS, type SharedViews } from '../src/shared/buffers.js';
import { barrier, Ctl, Home, homeWord, injectTestFault } from '../src/shared/control.js';

/**
 * The training step, as every thread runs it: the coordinator as thread 0 and each piscina worker as
 * thread 1..N-1 call trainStep() with the same arguments (ARCHITECTURE.md, "The step").
 *
 * Shapes (B rows in the batch, n_l = sizes[l], L layers, layer l maps n_l inputs to n_{l+1} outputs):
 *   acts[0] X [threads][B][n_0] (each thread's own copy)   acts[l+1] layer l's output [B][n_{l+1}]
 *   deltas[l] dLoss/dZ of layer l [B][n_{l+1}]   W_l [n_l][n_{l+1}]   b_l [n_{l+1}]
 *
 * The work of each part comes in pieces: layer 0's columns (most of the weights), chunks of the batch's
 * rows, blocks of the other layers' parameters. Every thread has the same pieces each step (its home) and
 * takes them from the front; a thread that runs out takes another's from the back. A piece is done whole
 * by whoever takes it, every output and every gradient is one thread's sum, each gradient over all rows of
 * the batch in row order: so every bit is the same for any thread count and whoever took which piece.
 */
export interface ThreadContext {
  views: SharedViews;
  kernels: Kernels;
  thread: number;
  threads: number;
  /** Each layer's weight and bias, views made once. */
  layers: { W: Float32Array; b: Float32Array }[];
  /** This thread's own copy of the batch's inputs X [B][n_0]: any column of layer 0 needs every row. */
  X: Float32Array;
  /** Each thread's home pieces of layer 0's columns [j0, j1), the first part's work. */
  homeColumns: [number, number][][];
  /** Each thread's home parameter blocks: its layer-0 columns first, then blocks of the other layers. */
  homeBlocks: ParameterBlock[][];
  /** Views of rows [r0, r1) of every activation and delta buffer, made once per chunk (see chunkViews). */
  chunkViews: Map<number, ChunkViews>;
  /** This thread's profile samples (PROFILE_MARKS timestamps a step), or null when not profiling. */
  profile: Float64Array | null;
  /** Steps this thread has trained: where the next profile sample goes. */
  steps: number;
}

/** A parameter block: rows [k0, k1) and columns [j0, j1) of layer `layer`'s weights, and its bias's columns [j0, j1) when `bias`. */
export interface ParameterBlock {
  layer: number;
  k0: number;
  k1: number;
  j0: number;
  j1: number;
  bias: boolean;
}

interface ChunkViews {
  acts: Float32Array[];
  deltas: Float32Array[];
  rowLoss: Float64Array;
}

/** Rows of the batch per chunk when threads share a batch: the reluBackward kernel's row block. */
const CHUNK_ROWS = 8;
/** Weights per block of layers 1..: enough to outweigh taking it, small enough to even out the threads' ends. */
const BLOCK_WEIGHTS = 4096;

export function createThreadContext(views: SharedViews, kernels: Kernels, thread: number): ThreadContext {
  const { threads, profileSteps, batchSize } = views.plan;
  const span = profileSteps * PROFILE_MARKS;
  const inputs = batchSize * views.layout.sizes[0];
  const homeColumns = columnPieces(views.layout.sizes[1], threads);
  return {
    views, kernels, thread, threads,
    layers: views.layout.layers.map((layer) => layerViews(views.params, layer)),
    X: views.acts[0].subarray(thread * inputs, (thread + 1) * inputs),
    homeColumns,
    homeBlocks: homeBlocks(views, homeColumns),
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
  const { views, kernels, thread, threads, X } = ctx;
  const { sizes, layers } = views.layout;
  const L = layers.length;
  const mark = profiler(ctx);
  injectTestFault(views.control, thread);

  // 1. Layer 0's forward, column pieces for every row of the batch, from this thread's own copy of the
  //    inputs. Why columns: a thread that computes and updates the same columns every step keeps those
  //    weights in its own cache; split by rows, every thread would read the weights the others just wrote.
  gatherRows(kernels.gatherInputs, views.trainPixels, views.order, start, rows, sizes[0], X);
  for (let k = 0; k < threads; k++) {
    const home = (thread + k) % threads;
    const pieces = ctx.homeColumns[home];
    for (let i = take(ctx, home, Home.Columns, pieces.length); i >= 0; i = take(ctx, home, Home.Columns, pieces.length)) {
      const [j0, j1] = pieces[i];
      kernels.denseForward(X, ctx.layers[0].W, ctx.layers[0].b, views.acts[1], rows, sizes[0], sizes[1], L > 1, j0, j1);
    }
  }
  mark(1);
  barrier(views.control, threads, views.plan.spinMs);
  mark(2);

  // 2. The other layers' forward, softmax with the loss gradient, and the backward deltas down to layer 0's,
  //    by chunks of the batch's rows. One thread takes the batch whole: chunks cost calls.
  const chunk = threads === 1 ? rows : Math.min(CHUNK_ROWS, Math.ceil(rows / threads));
  const chunks = Math.ceil(rows / chunk);
  for (let k = 0; k < threads; k++) {
    const home = (thread + k) % threads;
    const first = homeChunk(chunks, threads, home);
    const count = homeChunk(chunks, threads, home + 1) - first;
    for (let i = take(ctx, home, Home.Chunk, count); i >= 0; i = take(ctx, home, Home.Chunk, count)) {
      const c = first + i;
      trainChunk(ctx, start, rows, c * chunk, Math.min(rows, (c + 1) * chunk));
    }
  }
  mark(3);
  barrier(views.control, threads, views.plan.spinMs);
  mark(4);

  // 3. The all-reduce fused with the optimizer: for each parameter block, the gradient summed over all rows
  //    of the batch in row order, then the update (its state at the parameters' indices).
  for (let k = 0; k < threads; k++) {
    const home = (thread + k) % threads;
    const blocks = ctx.homeBlocks[home];
    for (let i = take(ctx, home, Home.Block, blocks.length); i >= 0; i = take(ctx, home, Home.Block, blocks.length)) {
      const { layer: l, k0, k1, j0, j1, bias } = blocks[i];
      const { nIn, nOut } = layers[l];
      const { W, b } = ctx.layers[l];
      const Aprev = l === 0 ? X : views.acts[l];
      if (k1 > k0) kernels.weightGradUpdate(Aprev, views.deltas[l], W, rows, nIn, nOut, k0, k1, j0, j1, views.update);
      if (bias) kernels.biasGradUpdate(views.deltas[l], b, rows, nOut, j0, j1, views.update);
    }
  }
  mark(5);
  barrier(views.control, threads, views.plan.spinMs);
  mark(6);
  ctx.steps++;
}

/** The second part of a step for rows [r0, r1) of the batch, whose layer-0 outputs are in acts[1]. */
function trainChunk(ctx: ThreadContext, start: number, rows: number, r0: number, r1: number): void {
  const { views, kernels } = ctx;
  const { sizes, layers } = views.layout;
  const L = layers.length;
  const n = r1 - r0;
  const { acts, deltas, rowLoss } = chunkViews(ctx, r0, r1);
  for (let l = 1; l < L; l++) {
    const { W, b } = ctx.layers[l];
    kernels.denseForward(acts[l], W, b, acts[l + 1], n, sizes[l], sizes[l + 1], l < L - 1, 0, sizes[l + 1]);
  }
  // The loss gradient's 1/rows is the whole batch's.
  softmaxCrossEntropyBackward(acts[L], deltas[L - 1], views.trainLabels, views.order, start + r0, n, sizes[L], rows, rowLoss);
  for (let l = L - 1; l > 0; l--) {
    kernels.reluBackward(deltas[l], ctx.layers[l].W, acts[l], deltas[l - 1], n, layers[l].nIn, layers[l].nOut);
  }
}

/** Forward through every layer for `n` rows whose inputs are in acts[0]: acts[l+1] = layer l's output. */
function forward(ctx: ThreadContext, acts: Float32Array[], n: number): void {
  const { sizes } = ctx.views.layout;
  const L = sizes.length - 1;
  for (let l = 0; l < L; l++) {
    const { W, b } = ctx.layers[l];
    ctx.kernels.denseForward(acts[l], W, b, acts[l + 1], n, sizes[l], sizes[l + 1], l < L - 1, 0, sizes[l + 1]);
  }
}

/** The first of `home`'s chunks when the batch's `chunks` are dealt out to `threads` in runs. */
function homeChunk(chunks: number, threads: number, home: number): number {
  return Math.floor((home * chunks) / threads);
}

/**
 * The index of the next of `home`'s `count` pieces, or -1 when none is left: a thread takes its own from
 * the front, another thread's from the back, so a thread that finished early takes what the owner would
 * have reached last. The front and back counts share one word (back in the high half), so no piece is
 * taken twice.
 */
function take(ctx: ThreadContext, home: number, which: Home, count: number): number {
  const ctl = ctx.views.control;
  const word = homeWord(home, which);
  const own = home === ctx.thread;
  for (;;) {
    const taken = Atomics.load(ctl, word);
    const front = taken & 0xffff;
    const back = taken >>> 16;
    if (front + back >= count) return -1;
    if (Atomics.compareExchange(ctl, word, taken, own ? taken + 1 : taken + 0x10000) === taken) {
      return own ? front : count - 1 - back;
    }
  }
}

/** Evaluation's next chunk, from a counter the coordinator zeroes with each command. */
function takeEval(ctx: ThreadContext): number {
  return Atomics.add(ctx.views.control, Ctl.NextChunk, 1);
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
    const { sizes } = layout;
    views = {
      acts: acts.map((buf, l) => buf.subarray(r0 * sizes[l], r1 * sizes[l])),
      deltas: deltas.map((buf, l) => buf.subarray(r0 * sizes[l + 1], r1 * sizes[l + 1])),
      rowLoss: rowLoss.subarray(r0, r1),
    };
    ctx.chunkViews.set(key, views);
  }
  return views;
}

/**
 * Layer 0's `nOut` columns in pieces, dealt to the threads' homes in runs: one piece for one thread; else
 * whole cache lines of W's rows (16 columns), about two pieces a thread, so that a thread that finishes
 * early has something to take and no line of W is written by two threads.
 */
function columnPieces(nOut: number, threads: number): [number, number][][] {
  const width = threads === 1 ? nOut : Math.max(16, Math.ceil(nOut / (2 * threads) / 16) * 16);
  const count = Math.ceil(nOut / width);
  const homes: [number, number][][] = Array.from({ length: threads }, () => []);
  for (let p = 0; p < count; p++) homes[Math.floor((p * threads) / count)].push([p * width, Math.min(nOut, (p + 1) * width)]);
  return homes;
}

/**
 * Each thread's home parameter blocks: its layer-0 column pieces (weights and bias), then the other layers'
 * weight rows in blocks of about BLOCK_WEIGHTS and their biases, dealt biggest first to the home with the
 * fewest weights so far. Thieves take from the back: the small blocks, not the owner's columns.
 */
function homeBlocks(views: SharedViews, homeColumns: [number, number][][]): ParameterBlock[][] {
  const { layers } = views.layout;
  const nIn0 = layers[0].nIn;
  const homes = homeColumns.map((pieces) => pieces.map(([j0, j1]): ParameterBlock => ({ layer: 0, k0: 0, k1: nIn0, j0, j1, bias: true })));
  const weights = homes.map((blocks) => blocks.reduce((sum, { j0, j1 }) => sum + nIn0 * (j1 - j0), 0));
  const rest: (ParameterBlock & { size: number })[] = [];
  layers.forEach(({ nIn, nOut }, layer) => {
    if (layer === 0) return;
    const count = Math.max(1, Math.round((nIn * nOut) / BLOCK_WEIGHTS));
    for (let i = 0; i < count; i++) {
      const k0 = Math.floor((i * nIn) / count);
      const k1 = Math.floor(((i + 1) * nIn) / count);
      if (k1 > k0) rest.push({ layer, k0, k1, j0: 0, j1: nOut, bias: false, size: (k1 - k0) * nOut });
    }
    rest.push({ layer, k0: 0, k1: 0, j0: 0, j1: nOut, bias: true, size: nOut });
  });
  rest.sort((a, b) => b.size - a.size || a.layer - b.layer || a.k0 - b.k0);
  for (const { size, ...block } of rest) {
    const home = weights.indexOf(Math.min(...weights));
    homes[home].push(block);
    weights[home] += size;
  }
  return homes;
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
  const { sizes } = views.layout;
  const L = sizes.length - 1;
  const pixels = views[`${split}Pixels`];
  const labels = views[`${split}Labels`];
  const acts = views.scratch[ctx.thread];
  const chunks = Math.ceil(count / EVAL_CHUNK);
  for (let c = takeEval(ctx); c < chunks; c = takeEval(ctx)) {
    const at = c * EVAL_CHUNK;
    const n = Math.min(EVAL_CHUNK, count - at);
    gatherRows(ctx.kernels.gatherInputs, pixels, views.identity, at, n, sizes[0], acts[0]);
    forward(ctx, acts, n);
    softmaxEvaluate(acts[L], labels, at, n, sizes[L], views.evalPredicted.subarray(at, at + n), views.evalLoss.subarray(at, at + n));
  }
  barrier(views.control, ctx.threads, views.plan.spinMs);
}
