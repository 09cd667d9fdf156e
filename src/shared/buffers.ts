import { emptySplit, type Dataset, type LabeledRows } from '../data/dataset.js';
import { SharedArena } from '../memory/arena.js';
import { modelLayout, type ModelLayout } from '../model/layout.js';
import { UPDATE_WORDS } from '../optim/optimizer.js';
import { CONTROL_WORDS } from './control.js';

/**
 * Everything the threads share, as offsets into one shared WebAssembly.Memory. The coordinator allocates
 * it once (createSharedBuffers) and sends the plan — numbers only — to each worker, which rebuilds the same
 * views over the same memory (viewsOf). Nothing here is ever copied between threads.
 *
 * Shapes (B = batch size, n_l = layers[l], L layers):
 *   params  the flat parameter vector (src/model/layout.ts)     order    [trainCount] the epoch's order
 *   acts[0] X [B][n_0], acts[l+1] layer l's output [B][n_{l+1}]  deltas[l] dLoss/dZ of layer l [B][n_{l+1}]
 *   rowLoss [B] float64                                          evalPredicted, evalLoss [max(train, test)]
 *   identity [max(train, test)] = 0, 1, 2, …: the "order" of an evaluation pass
 *   trainInputs, testInputs, valInputs: the rows, bytes, or float32 values when plan.floats (InputRows)
 *   scratch[t][l] thread t's evaluation activations [EVAL_CHUNK][n_l]
 *   profile [threads][profileSteps][PROFILE_MARKS] float64 timestamps (bench --profile; empty otherwise)
 *   optimizerState [arrays][paramCount]: each state array (momentum buffer, Adam's moments) laid out like params
 *   update  the step's update descriptor [UPDATE_WORDS] (src/optim/optimizer.ts), written by the coordinator
 */
export const EVAL_CHUNK = 128;
/** Timestamps a thread records per profiled step: the start, then the end of each half and each barrier. */
export const PROFILE_MARKS = 5;

/** A split's rows: bytes (scaled by 1/255 when gathered) or float32 values already scaled. */
export type InputRows = Uint8Array | Float32Array;

interface Region {
  offset: number;
  length: number;
}

export interface SharedPlan {
  /** The layer sizes, input to output. */
  layers: number[];
  threads: number;
  /** Milliseconds a thread spins before Atomics.wait (see waitForChange). */
  spinMs: number;
  /** Steps each thread keeps profile samples of (the last ones); 0: not profiling. */
  profileSteps: number;
  batchSize: number;
  trainCount: number;
  testCount: number;
  valCount: number;
  /** The rows are float32 values (a LabeledRows' features), not bytes. */
  floats: boolean;
  control: Region;
  params: Region;
  order: Region;
  trainInputs: Region;
  trainLabels: Region;
  testInputs: Region;
  testLabels: Region;
  valInputs: Region;
  valLabels: Region;
  acts: Region[];
  deltas: Region[];
  rowLoss: Region;
  evalPredicted: Region;
  evalLoss: Region;
  identity: Region;
  scratch: Region[][];
  profile: Region;
  optimizerState: Region;
  update: Region;
}

export interface SharedViews {
  plan: SharedPlan;
  layout: ModelLayout;
  control: Int32Array;
  params: Float32Array;
  order: Uint32Array;
  trainInputs: InputRows;
  trainLabels: Uint8Array;
  testInputs: InputRows;
  testLabels: Uint8Array;
  valInputs: InputRows;
  valLabels: Uint8Array;
  acts: Float32Array[];
  deltas: Float32Array[];
  rowLoss: Float64Array;
  evalPredicted: Uint8Array;
  evalLoss: Float64Array;
  identity: Uint32Array;
  scratch: Float32Array[][];
  profile: Float64Array;
  optimizerState: Float32Array;
  update: Float32Array;
}

/**
 * Allocates the shared memory for a run and copies in the dataset (once), the initial parameters and the
 * optimizer's initial state (its length: the state arrays times the parameter count).
 */
export function createSharedBuffers(
  sizes: number[],
  threads: number,
  batchSize: number,
  dataset: Dataset,
  initialParams: Float32Array,
  options: { spinMs: number; profileSteps: number; optimizerState?: Float32Array },
): { memory: WebAssembly.Memory; views: SharedViews } {
  const layout = modelLayout(sizes);
  const { train, test } = dataset;
  const val = dataset.val ?? emptySplit(train.featureCount);
  const floats = [train, test, val].some((split) => split.features !== undefined);
  const rowsOf = (split: LabeledRows): InputRows => split.features ?? split.images;
  const B = batchSize;
  const evalRows = Math.max(train.count, test.count, val.count);
  const { spinMs, profileSteps } = options;
  const stateLength = options.optimizerState?.length ?? 0;
  const bytes = [
    CONTROL_WORDS * 4,
    layout.paramCount * 4,
    train.count * 4,
    rowsOf(train).byteLength,
    train.count,
    rowsOf(test).byteLength,
    test.count,
    rowsOf(val).byteLength,
    val.count,
    ...sizes.map((n) => B * n * 4),
    ...layout.dense.map((l) => B * l.nOut * 4),
    B * 8,
    evalRows,
    evalRows * 8,
    evalRows * 4,
    ...Array.from({ length: threads }, () => sizes.map((n) => EVAL_CHUNK * n * 4)).flat(),
    threads * profileSteps * PROFILE_MARKS * 8,
    stateLength * 4,
    UPDATE_WORDS * 4,
  ];
  const arena = new SharedArena(SharedArena.bytesFor(bytes));
  const region = (view: ArrayBufferView & { length: number }): Region => ({
    offset: view.byteOffset,
    length: view.length,
  });

  const control = arena.i32(CONTROL_WORDS);
  const params = arena.f32(layout.paramCount);
  const order = arena.u32(train.count);
  const rows = (split: LabeledRows): InputRows =>
    floats ? arena.f32(rowsOf(split).length) : arena.u8(rowsOf(split).length);
  const trainInputs = rows(train);
  const trainLabels = arena.u8(train.count);
  const testInputs = rows(test);
  const testLabels = arena.u8(test.count);
  const valInputs = rows(val);
  const valLabels = arena.u8(val.count);
  const acts = sizes.map((n) => arena.f32(B * n));
  const deltas = layout.dense.map((l) => arena.f32(B * l.nOut));
  const rowLoss = arena.f64(B);
  const evalPredicted = arena.u8(evalRows);
  const evalLoss = arena.f64(evalRows);
  const identity = arena.u32(evalRows);
  const scratch = Array.from({ length: threads }, () => sizes.map((n) => arena.f32(EVAL_CHUNK * n)));
  const profile = arena.f64(threads * profileSteps * PROFILE_MARKS);
  const optimizerState = arena.f32(stateLength);
  const update = arena.f32(UPDATE_WORDS);

  params.set(initialParams);
  if (options.optimizerState) optimizerState.set(options.optimizerState);
  for (const [split, to] of [
    [train, trainInputs],
    [test, testInputs],
    [val, valInputs],
  ] as const) {
    if (split.count > 0 && (split.features !== undefined) !== floats)
      throw new RangeError('every split must hold bytes, or every split float32 rows');
    to.set(rowsOf(split));
  }
  trainLabels.set(train.labels);
  testLabels.set(test.labels);
  valLabels.set(val.labels);
  for (let i = 0; i < evalRows; i++) identity[i] = i;

  const plan: SharedPlan = {
    layers: [...sizes],
    threads,
    spinMs,
    profileSteps,
    batchSize,
    trainCount: train.count,
    testCount: test.count,
    valCount: val.count,
    floats,
    control: region(control),
    params: region(params),
    order: region(order),
    trainInputs: region(trainInputs),
    trainLabels: region(trainLabels),
    testInputs: region(testInputs),
    testLabels: region(testLabels),
    valInputs: region(valInputs),
    valLabels: region(valLabels),
    acts: acts.map(region),
    deltas: deltas.map(region),
    rowLoss: region(rowLoss),
    evalPredicted: region(evalPredicted),
    evalLoss: region(evalLoss),
    identity: region(identity),
    scratch: scratch.map((s) => s.map(region)),
    profile: region(profile),
    optimizerState: region(optimizerState),
    update: region(update),
  };
  return {
    memory: arena.memory,
    views: {
      plan,
      layout,
      control,
      params,
      order,
      trainInputs,
      trainLabels,
      testInputs,
      testLabels,
      valInputs,
      valLabels,
      acts,
      deltas,
      rowLoss,
      evalPredicted,
      evalLoss,
      identity,
      scratch,
      profile,
      optimizerState,
      update,
    },
  };
}

/** The same views over the same memory, from the plan alone: what a worker does at start-up. */
export function viewsOf(memory: WebAssembly.Memory, plan: SharedPlan): SharedViews {
  const buf = memory.buffer;
  const f32 = (r: Region) => new Float32Array(buf, r.offset, r.length);
  const u8 = (r: Region) => new Uint8Array(buf, r.offset, r.length);
  const rows = (r: Region): InputRows => (plan.floats ? f32(r) : u8(r));
  return {
    plan,
    layout: modelLayout(plan.layers),
    control: new Int32Array(buf, plan.control.offset, plan.control.length),
    params: f32(plan.params),
    order: new Uint32Array(buf, plan.order.offset, plan.order.length),
    trainInputs: rows(plan.trainInputs),
    trainLabels: u8(plan.trainLabels),
    testInputs: rows(plan.testInputs),
    testLabels: u8(plan.testLabels),
    valInputs: rows(plan.valInputs),
    valLabels: u8(plan.valLabels),
    acts: plan.acts.map(f32),
    deltas: plan.deltas.map(f32),
    rowLoss: new Float64Array(buf, plan.rowLoss.offset, plan.rowLoss.length),
    evalPredicted: u8(plan.evalPredicted),
    evalLoss: new Float64Array(buf, plan.evalLoss.offset, plan.evalLoss.length),
    identity: new Uint32Array(buf, plan.identity.offset, plan.identity.length),
    scratch: plan.scratch.map((s) => s.map(f32)),
    profile: new Float64Array(buf, plan.profile.offset, plan.profile.length),
    optimizerState: f32(plan.optimizerState),
    update: f32(plan.update),
  };
}
