import {
  biasGrad,
  denseForward,
  gatherInputs,
  gatherRows,
  reluBackward,
  updateParams,
  weightGrad,
} from '../kernels/reference.js';
import { softmaxCrossEntropyBackward, softmaxEvaluate } from '../kernels/softmax.js';
import { emptySplit, type LabeledRows } from '../data/dataset.js';
import { layerViews, type ModelLayout } from '../model/layout.js';
import { summarizeEvaluation, type EvalResult, type SplitName, type Trainer } from '../model/trainer.js';
import { stateArrays, updateStep, type OptimizerSettings } from '../optim/optimizer.js';
import { epochSteps } from '../optim/schedule.js';

/** Rows per evaluation chunk: bounds the activation buffers, changes no result (evaluation is per row). */
const EVAL_CHUNK = 256;

/**
 * The plain single-thread trainer: the textbook's algorithm written with the reference kernels, full
 * gradient buffers, then the optimizer's step over all parameters (updateParams). It is the specification
 * every fast path must equal bit for bit, and is itself checked against finite differences
 * (test/gradcheck.test.ts).
 */
export class ReferenceTrainer implements Trainer {
  readonly params: Float32Array;
  readonly order: Uint32Array;
  readonly optimizerState: Float32Array;
  private readonly stepsPerEpoch: number;
  /** acts[0] is the input batch X; acts[l+1] is layer l's output (logits for the last layer). */
  private readonly acts: Float32Array[];
  /** deltas[l] is dLoss/dZ of layer l, [rows][nOut]. */
  private readonly deltas: Float32Array[];
  /** The last step's gradient, laid out like params. */
  readonly grads: Float32Array;
  private readonly rowLoss: Float64Array;

  constructor(
    private readonly layout: ModelLayout,
    initialParams: Float32Array,
    private readonly train: LabeledRows,
    private readonly test: LabeledRows,
    batchSize: number,
    private readonly optimizer: OptimizerSettings,
    initialState: Float32Array | undefined = undefined,
    private readonly val: LabeledRows | undefined = undefined,
  ) {
    this.params = Float32Array.from(initialParams);
    this.order = new Uint32Array(train.count);
    this.optimizerState = initialState
      ? Float32Array.from(initialState)
      : new Float32Array(stateArrays(optimizer.optimizer) * layout.paramCount);
    this.stepsPerEpoch = epochSteps(train.count, batchSize);
    const rows = Math.max(batchSize, EVAL_CHUNK);
    this.acts = layout.layers.map((n) => new Float32Array(rows * n));
    this.deltas = layout.dense.map((l) => new Float32Array(rows * l.nOut));
    this.grads = new Float32Array(layout.paramCount);
    this.rowLoss = new Float64Array(rows);
  }

  /** Forward over `rows` rows whose inputs are already in acts[0]. */
  private forward(rows: number): void {
    const last = this.layout.dense.length - 1;
    this.layout.dense.forEach((layer, l) => {
      const { W, b } = layerViews(this.params, layer);
      denseForward(this.acts[l], W, b, this.acts[l + 1], rows, layer.nIn, layer.nOut, l < last);
    });
  }

  trainStep(start: number, rows: number, step: number): number {
    const lossSum = this.gradients(start, rows);
    const n = this.params.length;
    const state = (i: number) => this.optimizerState.subarray(i * n, Math.min((i + 1) * n, this.optimizerState.length));
    updateParams(
      this.params,
      this.grads,
      state(0),
      state(1),
      0,
      n,
      updateStep(this.optimizer, this.stepsPerEpoch, step),
    );
    return lossSum;
  }

  /** Forward and backward over order[start .. start+rows): fills `grads`, returns the sum of the rows' losses. */
  gradients(start: number, rows: number): number {
    const { dense, layers } = this.layout;
    const L = dense.length;
    gatherRows(
      gatherInputs,
      this.train.features ?? this.train.images,
      this.order,
      start,
      rows,
      layers[0],
      this.acts[0],
    );
    this.forward(rows);
    softmaxCrossEntropyBackward(
      this.acts[L],
      this.deltas[L - 1],
      this.train.labels,
      this.order,
      start,
      rows,
      layers[L],
      rows,
      this.rowLoss,
    );
    for (let l = L - 1; l >= 0; l--) {
      const layer = dense[l];
      const { W } = layerViews(this.params, layer);
      const { W: dW, b: db } = layerViews(this.grads, layer);
      weightGrad(this.acts[l], this.deltas[l], dW, rows, layer.nIn, layer.nOut, 0, layer.nIn);
      biasGrad(this.deltas[l], db, rows, layer.nOut, 0, layer.nOut);
      if (l > 0) reluBackward(this.deltas[l], W, this.acts[l], this.deltas[l - 1], rows, layer.nIn, layer.nOut);
    }
    let lossSum = 0;
    for (let r = 0; r < rows; r++) lossSum += this.rowLoss[r];
    return lossSum;
  }

  evaluate(split: SplitName): EvalResult {
    const data =
      (split === 'val' ? this.val : split === 'train' ? this.train : this.test) ?? emptySplit(this.layout.layers[0]);
    const { layers } = this.layout;
    const nIn = layers[0];
    const L = this.layout.dense.length;
    const predictions = new Uint8Array(data.count);
    const losses = new Float64Array(data.count);
    const identity = new Uint32Array(EVAL_CHUNK);
    for (let first = 0; first < data.count; first += EVAL_CHUNK) {
      const rows = Math.min(EVAL_CHUNK, data.count - first);
      for (let r = 0; r < rows; r++) identity[r] = first + r;
      gatherRows(gatherInputs, data.features ?? data.images, identity, 0, rows, nIn, this.acts[0]);
      this.forward(rows);
      softmaxEvaluate(
        this.acts[L],
        data.labels,
        first,
        rows,
        layers[L],
        predictions.subarray(first),
        losses.subarray(first),
      );
    }
    return summarizeEvaluation(predictions, data.labels, losses);
  }

  async close(): Promise<void> {}
}
