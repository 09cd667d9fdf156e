import { availableParallelism } from 'node:os';
import { Engine } from '../coordinator/engine.js';
import { checkThreads } from '../coordinator/threads.js';
import { featureColumns, labelBesideFeatures, readCsvHeader } from '../data/csv.js';
import { checkAgainstLayers, loadDataset, type Dataset, type LabeledRows } from '../data/dataset.js';
import { scaleSplit } from '../data/prepare.js';
import { checkCounts } from '../options/check.js';
import { checkSplitAndData } from './data-options.js';
import { checkSavedSplit } from '../data/saved-data.js';
import { outputNames } from '../data/scaling.js';
import { UserError } from '../errors.js';
import { resolveKernels, type KernelChoice } from '../kernels/select.js';
import { checkOptions, resolveModel, type ModelSource } from '../model-io/model-source.js';
import { describe } from '../words.js';

/** The default data's row: 28×28 pixels. */
const MNIST_INPUTS = 784;

export interface EvaluateOptions {
  data?: string;
  /** The labels (.npy) of a `data` X.npy. */
  labels?: string;
  /** Rows held in memory instead of a file (datasetFromArrays): their `split` is evaluated. */
  dataset?: Dataset;
  split?: 'train' | 'test';
  threads?: number;
  kernels?: KernelChoice;
  testLimit?: number;
  trainLimit?: number;
}

const EVALUATE_OPTIONS = [
  'data',
  'labels',
  'dataset',
  'split',
  'threads',
  'kernels',
  'testLimit',
  'trainLimit',
] as const;

export interface Evaluation {
  /** The model file's path, or "model in memory". */
  model: string;
  split: 'train' | 'test';
  count: number;
  accuracy: number;
  loss: number;
  /** confusion[trueClass][predictedClass] = count. */
  confusion: number[][];
  /** The model's class names (string labels), in class order; absent for integer labels. */
  classNames?: string[];
}

/**
 * Accuracy, mean cross-entropy and confusion matrix of a model on a split: a saved model (checkpoint or
 * safetensors path) or one in memory (what train() returns). The data defaults to the model's own.
 */
export async function evaluate(source: ModelSource, options: EvaluateOptions = {}): Promise<Evaluation> {
  checkOptions(options, EVALUATE_OPTIONS, 'evaluate');
  const model = resolveModel(source, 'evaluate');
  const { layers } = model.layout;
  const classes = layers[layers.length - 1];
  const split = checkSplitAndData(options, 'evaluate');
  const kernels = resolveKernels(options.kernels);
  for (const [flag, limit] of [
    ['--test-limit', options.testLimit],
    ['--train-limit', options.trainLimit],
  ] as const) {
    if (limit !== undefined) checkCounts({ [flag]: limit });
  }
  const threads = options.threads ?? availableParallelism();
  checkThreads(threads); // before the data is read; Engine.create checks again
  if (options.labels !== undefined && (typeof options.labels !== 'string' || options.data === undefined))
    throw new UserError(`--labels ${describe(options.labels)}: goes with --data X.npy, the examples they label`);
  if (options.dataset !== undefined && options.data !== undefined)
    throw new UserError('evaluate: data and dataset: give one or the other');
  if (options.dataset !== undefined && (typeof options.dataset !== 'object' || options.dataset?.train === undefined))
    throw new UserError(
      `evaluate: dataset must be a Dataset (datasetFromArrays makes one); got ${describe(options.dataset)}`,
    );
  if (options.data === undefined && options.dataset === undefined && model.data === undefined) {
    if (model.input.featureNames)
      throw new UserError(`${model.name}: a model of a CSV table; give the rows to evaluate with --data FILE.csv`);
    // Its data is the default, MNIST, unless it was trained on rows held in memory, which it cannot name.
    if (layers[0] !== MNIST_INPUTS)
      throw new UserError(
        `${model.name}: takes ${layers[0]} inputs, not MNIST's ${MNIST_INPUTS}; give the rows to evaluate (--data FILE, or the library's dataset: datasetFromArrays(…))`,
      );
  }
  // A CSV, or an .npy with its --labels, given with --data is the rows to evaluate, whatever the split; otherwise the model's own files.
  const ownTable = options.data?.toLowerCase().endsWith('.csv');
  const ownRows = ownTable || options.data?.toLowerCase().endsWith('.npy');
  // A table's columns are the model's features by name, in any order, and one more, the label (as predict
  // --csv reads them); a model without feature names takes the label column as its training did.
  const names = model.input.featureNames;
  let label = model.dataFlags?.label;
  if (ownTable && options.data && names) {
    const what = `--data ${options.data}`;
    const beside = labelBesideFeatures(names, readCsvHeader(options.data, '--data'), what, model.input.labelName);
    if (beside === null)
      throw new UserError(
        `${what}: no label column beside the model's features; classify such rows with predict --csv`,
      );
    label = beside;
  }
  if (options.data === undefined && options.dataset === undefined)
    checkSavedSplit(model.name, model.data, split, model.dataFlags?.labels);
  const sizes = { inputSize: layers[0], classes, layersOf: model.name };
  const raw = options.dataset
    ? checkAgainstLayers({ ...options.dataset }, sizes)
    : loadDataset(options.data ?? model.data, {
        ...sizes,
        trainLimit: options.trainLimit,
        testLimit: options.testLimit,
        only: ownRows ? 'train' : split,
        // The run's own data flags go with its own data only: other --data brings its own --labels.
        ...(ownTable ? { label } : options.data === undefined ? model.dataFlags : { labels: options.labels }),
        classNames: model.input.classNames,
      });
  if (ownRows) {
    if (ownTable && names)
      raw.train = inModelOrder(raw.train, featureColumns(names, raw.featureNames ?? [], `--data ${options.data}`));
    [raw.train, raw.test] = split === 'train' ? [raw.train, raw.test] : [raw.test, raw.train];
  }
  if (raw[split].count === 0)
    throw new UserError(
      options.dataset
        ? `evaluate: the dataset has no ${split} rows (give split: '${split === 'test' ? 'train' : 'test'}', or rows of this split)`
        : `--data ${raw.dir}: has no ${split} rows${split === 'test' ? ' (evaluate a table of test rows with --data FILE.csv, or give --split train)' : ''}`,
    );
  // Rows read for this evaluation are scaled in place; rows the caller holds are copied first.
  const dataset = { ...raw, [split]: scaleSplit(raw[split], model.input.scaling, options.dataset === undefined) };
  const engine = await Engine.create(layers, model.params, dataset, {
    threads,
    kernels,
    batchSize: 1,
  });
  try {
    const result = await engine.evaluate(split);
    const labels = split === 'train' ? dataset.train.labels : dataset.test.labels;
    const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
    for (let i = 0; i < result.count; i++) confusion[labels[i]][result.predictions[i]]++;
    return {
      model: model.name,
      split,
      count: result.count,
      accuracy: result.correct / result.count,
      loss: result.lossSum / result.count,
      confusion,
      ...(model.input.classNames ? { classNames: outputNames(model.input, classes) } : {}),
    };
  } finally {
    await engine.close();
  }
}

/** A table's rows with their features in the model's order: feature k is the table's column at[k]. */
function inModelOrder(rows: LabeledRows, at: number[]): LabeledRows {
  if (at.every((c, i) => c === i) || !rows.features) return rows;
  const from = rows.features;
  const width = at.length;
  const reordered = new Float32Array(rows.count * width);
  for (let r = 0; r < rows.count; r++)
    for (let k = 0; k < width; k++) reordered[r * width + k] = from[r * width + at[k]];
  return { ...rows, features: reordered };
}
