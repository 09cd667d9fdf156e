import type { Dataset } from '../data/dataset.js';
import { SharedArena } from '../memory/arena.js';
import { modelLayout, type ModelLayout } from '../model/layout.js';
import { CONTROL_WORDS } from './control.js';

/**
 * Everything the threads share, as offsets into one shared WebAssembly.Memory. The coordinator allocates
 * it once (createSharedBuffers) and sends the plan — numbers only — to each worker, which rebuilds the same
 * views over the same memory (viewsOf). Nothing here is ever copied between threads.
 *
 * Shapes (B = batch size, n_l = sizes[l], L layers; a step's buffers as workers/step.ts names them):
 *   params  the flat parameter vector (src/model/layout.ts)     order    [trainCount] the epoch's order
 *   hiddenActs[l-1]   acts[l], hidden layer l-1's output [B][n_l], for l = 1..L-1 (every thread writes its columns)
 *   hiddenDeltas[l]   deltas[l], dLoss/dZ of hidden layer l [B][n_{l+1}], for l = 0..L-2 (likewise)
 *   local[t]          what thread t alone uses in a step: X = acts[0] [B][n_0], out = acts[L] and
 *                     outDelta = deltas[L-1] [B][n_L], rowLoss [B] float64 (thread 0's are the step's)
 *   evalPredicted, evalLoss [max(train, test)]   identity [max(train, test)] = 0, 1, 2, …: an evaluation's "order"
 *   scratch[t][l] thread t's evaluation activations [EVAL_CHUNK][n_l]
 *   profile [threads][profileSteps][profileMarks(L)] float64 timestamps (bench --profile; empty otherwise)
 */
export const EVAL_CHUNK = 128;

/** Barriers in one training step of an L-layer network (workers/step.ts): after each hidden layer's forward and each backward through a hidden layer, and the step's end; a 1-layer network needs one before its update. */
export function stepBarriers(L: number): number {
  return Math.max(2, 2 * L - 1);
}

/** Timestamps a thread records per profiled step: the start, then its arrival at and departure from each barrier. */
export function profileMarks(L: number): number {
  return 1 + 2 * stepBarriers(L);
}

interface Region {
  offset: number;
  length: number;
}

export interface SharedPlan {
  sizes: number[];
  threads: number;
  /** Milliseconds a thread spins before Atomics.wait (see waitForChange). */
  spinMs: number;
  /** Steps each thread keeps profile samples of (the last ones); 0: not profiling. */
  profileSteps: number;
  batchSize: number;
  trainCount: number;
  testCount: number;
  control: Region;
  params: Region;
  order: Region;
  trainPixels: Region;
  trainLabels: Region;
  testPixels: Region;
  testLabels: Region;
  hiddenActs: Region[];
  hiddenDeltas: Region[];
  local: LocalRegions<Region>[];
  evalPredicted: Region;
  evalLoss: Region;
  identity: Region;
  scratch: Region[][];
  profile: Region;
}

/** One thread's own buffers for a step: see the shapes above. */
export interface LocalRegions<F, D = F> {
  X: F;
  out: F;
  outDelta: F;
  rowLoss: D;
}

export interface SharedViews {
  plan: SharedPlan;
  layout: ModelLayout;
  control: Int32Array;
  params: Float32Array;
  order: Uint32Array;
  trainPixels: Uint8Array;
  trainLabels: Uint8Array;
  testPixels: Uint8Array;
  testLabels: Uint8Array;
  hiddenActs: Float32Array[];
  hiddenDeltas: Float32Array[];
  local: LocalRegions<Float32Array, Float64Array>[];
  evalPredicted: Uint8Array;
  evalLoss: Float64Array;
  identity: Uint32Array;
  scratch: Float32Array[][];
  profile: Float64Array;
}

/** Allocates the shared memory for a run and copies in the dataset (once) and the initial parameters. */
export function createSharedBuffers(
  sizes: number[], threads: number, batchSize: number, dataset: Dataset, initialParams: Float32Array,
  options: { spinMs: number; profileSteps: number },
): { memory: WebAssembly.Memory; views: SharedViews } {
  const layout = modelLayout(sizes);
  const { train, test } = dataset;
  const B = batchSize;
  const evalRows = Math.max(train.count, test.count);
  const { spinMs, profileSteps } = options;
  const L = sizes.length - 1;
  const hidden = sizes.slice(1, L);
  const nOutput = sizes[L];
  const marks = profileMarks(L);
  const bytes = [
    CONTROL_WORDS * 4, layout.paramCount * 4, train.count * 4,
    train.images.length, train.count, test.images.length, test.count,
    ...hidden.map((n) => B * n * 4), ...hidden.map((n) => B * n * 4),
    ...Array.from({ length: threads }, () => [B * sizes[0] * 4, B * nOutput * 4, B * nOutput * 4, B * 8]).flat(),
    evalRows, evalRows * 8, evalRows * 4,
    ...Array.from({ length: threads }, () => sizes.map((n) => EVAL_CHUNK * n * 4)).flat(),
    threads * profileSteps * marks * 8,
  ];
  const arena = new SharedArena(SharedArena.bytesFor(bytes));
  const region = (view: ArrayBufferView & { length: number }): Region => ({ offset: view.byteOffset, length: view.length });

  const control = arena.i32(CONTROL_WORDS);
  const params = arena.f32(layout.paramCount);
  const order = arena.u32(train.count);
  const trainPixels = arena.u8(train.images.length);
  const trainLabels = arena.u8(train.count);
  const testPixels = arena.u8(test.images.length);
  const testLabels = arena.u8(test.count);
  const hiddenActs = hidden.map((n) => arena.f32(B * n));
  const hiddenDeltas = hidden.map((n) => arena.f32(B * n));
  const local = Array.from({ length: threads }, () => ({
    X: arena.f32(B * sizes[0]), out: arena.f32(B * nOutput), outDelta: arena.f32(B * nOutput), rowLoss: arena.f64(B),
  }));
  const evalPredicted = arena.u8(evalRows);
  const evalLoss = arena.f64(evalRows);
  const identity = arena.u32(evalRows);
  const scratch = Array.from({ length: threads }, () => sizes.map((n) => arena.f32(EVAL_CHUNK * n)));
  const profile = arena.f64(threads * profileSteps * marks);

  params.set(initialParams);
  trainPixels.set(train.images);
  trainLabels.set(train.labels);
  testPixels.set(test.images);
  testLabels.set(test.labels);
  for (let i = 0; i < evalRows; i++) identity[i] = i;

  const plan: SharedPlan = {
    sizes: [...sizes], threads, spinMs, profileSteps, batchSize, trainCount: train.count, testCount: test.count,
    control: region(control), params: region(params), order: region(order),
    trainPixels: region(trainPixels), trainLabels: region(trainLabels),
    testPixels: region(testPixels), testLabels: region(testLabels),
    hiddenActs: hiddenActs.map(region), hiddenDeltas: hiddenDeltas.map(region),
    local: local.map((t) => ({ X: region(t.X), out: region(t.out), outDelta: region(t.outDelta), rowLoss: region(t.rowLoss) })),
    evalPredicted: region(evalPredicted), evalLoss: region(evalLoss), identity: region(identity), scratch: scratch.map((s) => s.map(region)),
    profile: region(profile),
  };
  return {
    memory: arena.memory,
    views: {
      plan, layout, control, params, order, trainPixels, trainLabels, testPixels, testLabels,
      hiddenActs, hiddenDeltas, local, evalPredicted, evalLoss, identity, scratch, profile,
    },
  };
}

/** The same views over the same memory, from the plan alone: what a worker does at start-up. */
export function viewsOf(memory: WebAssembly.Memory, plan: SharedPlan): SharedViews {
  const buf = memory.buffer;
  const f32 = (r: Region) => new Float32Array(buf, r.offset, r.length);
  const u8 = (r: Region) => new Uint8Array(buf, r.offset, r.length);
  return {
    plan,
    layout: modelLayout(plan.sizes),
    control: new Int32Array(buf, plan.control.offset, plan.control.length),
    params: f32(plan.params),
    order: new Uint32Array(buf, plan.order.offset, plan.order.length),
    trainPixels: u8(plan.trainPixels),
    trainLabels: u8(plan.trainLabels),
    testPixels: u8(plan.testPixels),
    testLabels: u8(plan.testLabels),
    hiddenActs: plan.hiddenActs.map(f32),
    hiddenDeltas: plan.hiddenDeltas.map(f32),
    local: plan.local.map((t) => ({
      X: f32(t.X), out: f32(t.out), outDelta: f32(t.outDelta), rowLoss: new Float64Array(buf, t.rowLoss.offset, t.rowLoss.length),
    })),
    evalPredicted: u8(plan.evalPredicted),
    evalLoss: new Float64Array(buf, plan.evalLoss.offset, plan.evalLoss.length),
    identity: new Uint32Array(buf, plan.identity.offset, plan.identity.length),
    scratch: plan.scratch.map((s) => s.map(f32)),
    profile: new Float64Array(buf, plan.profile.offset, plan.profile.length),
  };
}
