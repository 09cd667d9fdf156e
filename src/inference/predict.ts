import { loadDataset } from '../data/dataset.js';
import { checkSavedSplit } from '../data/saved-data.js';
import { UserError } from '../errors.js';
import { denseForward, PIXEL_SCALE } from '../kernels/reference.js';
import { argmaxRow, softmaxRow } from '../kernels/softmax.js';
import { layerViews, type ModelLayout } from '../model/layout.js';
import type { Model } from '../model-io/model.js';
import { imageInput } from './image.js';
import { inputNotices } from './input-range.js';
import { checkSplitAndData } from './data-options.js';
import { featureColumns, isLabelName, labelBesideFeatures, preview, readCsvHeader, readCsvTable } from '../data/csv.js';
import { applyScaling, outputLabels, outputNames, type ModelInput } from '../data/scaling.js';
import { checkOptions, resolveModel, type ModelSource } from '../model-io/model-source.js';
import { describe } from '../words.js';

export { readImage } from './image.js';

const PREDICT_OPTIONS = ['index', 'split', 'data', 'image'] as const;

export interface PredictOptions {
  /** An example of a dataset split... */
  index?: number;
  split?: 'train' | 'test';
  data?: string;
  /**
   * ...or an image file: PGM (P2/P5) or PNG, grayscale, RGB or RGBA, white digit on black like MNIST; a
   * size other than the model's input is resized (area averaging) to its square.
   */
  image?: string;
}

export interface Prediction {
  predicted: number;
  probabilities: number[];
  /** The true label, when the example comes from a dataset. */
  label?: number;
  pixels: Uint8Array;
  width: number;
  height: number;
  /** One-line remarks on an image file: resized, alpha read as ink, empty, dark on light. */
  notices: string[];
}

/**
 * Classifies one example with the reference arithmetic (one row: speed is irrelevant, clarity is not). The
 * model is a file's path or a model in memory (what train() returns); the example, an index into a split of
 * the data (the model's own by default) or an image file.
 */
export function predict(source: ModelSource, options: PredictOptions = {}): Prediction {
  checkOptions(options, PREDICT_OPTIONS, 'predict');
  const model = resolveModel(source, 'predict');
  const { layers } = model.layout;
  let pixels: Uint8Array;
  let label: number | undefined;
  let width: number;
  let height: number;
  let notices: string[] = [];
  if (options.image !== undefined) {
    if (options.index !== undefined) throw new UserError('--image and --index: give one or the other');
    if (typeof options.image !== 'string')
      throw new UserError(`predict: image must be a file path; got ${describe(options.image)}`);
    // A table's features are not pixels, even when their count is a square.
    if (model.input.featureNames) throw tableRowsError(model.name, '--image');
    ({ pixels, width, height, notices } = imageInput(options.image, layers[0]));
  } else {
    const split = checkSplitAndData(options, 'predict');
    // Said before any data is read, as the CLI does: a table's test split is often empty, and an index into it would be refused as out of range.
    if (model.input.featureNames) throw tableRowsError(model.name);
    if (options.data?.toLowerCase().endsWith('.csv'))
      throw new UserError(
        `--data ${options.data}: predict reads images (--index) from an IDX directory; classify a table's rows with --csv ${options.data}`,
      );
    if (options.data === undefined) checkSavedSplit(model.name, model.data, split, model.dataFlags?.labels);
    const dataset = loadDataset(options.data ?? model.data, {
      inputSize: layers[0],
      classes: layers[layers.length - 1],
      layersOf: model.name,
      only: split,
      // An .npy run's --labels, with its own data.
      ...(options.data === undefined ? model.dataFlags : {}),
    });
    const data = split === 'train' ? dataset.train : dataset.test;
    // --index draws an image: a table's rows go through --csv.
    if (data.features) throw tableRowsError(model.name);
    if (data.count === 0)
      throw new UserError(
        `--data ${dataset.dir}: has no ${split} rows${split === 'test' ? ' (give --split train)' : ''}`,
      );
    const index = options.index ?? 0;
    if (!Number.isSafeInteger(index) || index < 0 || index >= data.count) {
      throw new UserError(`--index ${describe(index)}: must be from 0 to ${data.count - 1} (${split} split)`);
    }
    pixels = data.images.slice(index * layers[0], (index + 1) * layers[0]);
    label = data.labels[index];
    width = height = Math.round(Math.sqrt(layers[0]));
    if (width * height !== layers[0]) [width, height] = [layers[0], 1];
  }
  const { predicted, probabilities } = classifyRow(model, pixels, undefined);
  return {
    predicted,
    probabilities,
    label,
    pixels,
    width,
    height,
    notices,
  };
}

/** Pixels through the network by the PIXEL_SCALE table, as the engine gathers them: the tests' oracle for every other path. */
export function forwardOne(layout: ModelLayout, params: Float32Array, pixels: Uint8Array | Float32Array): Float32Array {
  return forwardInputs(
    layout,
    params,
    Float32Array.from(pixels, (p) => PIXEL_SCALE[p]),
  );
}

/** One row of inputs, already scaled, through the network: the class probabilities. */
export function forwardInputs(layout: ModelLayout, params: Float32Array, inputs: Float32Array): Float32Array {
  let a = inputs;
  layout.dense.forEach((layer, l) => {
    const { W, b } = layerViews(params, layer);
    const out = new Float32Array(layer.nOut);
    denseForward(a, W, b, out, 1, layer.nIn, layer.nOut, l < layout.dense.length - 1);
    a = out;
  });
  softmaxRow(a, a, 0, a.length);
  return a;
}

/** One CSV row classified: its line, the predicted class (and its name), the probabilities, the true label when the file has one. */
export interface RowPrediction {
  line: number;
  predicted: number;
  className?: string;
  probabilities: number[];
  label?: string;
}

/** Where predictCsv and predictRows say what the user may not expect of the rows given (one line each). */
export interface InputHooks {
  /** Rows unlike the training data (pixels scaled already, features far outside the training rows), labels not among the model's classes. */
  onNotice?: (line: string) => void;
}

function checkInputHooks(hooks: InputHooks, caller: string): void {
  checkOptions(hooks, ['onNotice'], caller);
  if (hooks.onNotice !== undefined && typeof hooks.onNotice !== 'function')
    throw new UserError(`${caller}: hooks.onNotice must be a function; got ${describe(hooks.onNotice)}`);
}

/**
 * Classifies every row of a CSV table with the model's own scaling. The columns are the model's features by
 * name (any order), plus at most one more: the true label, shown beside the prediction.
 */
export function predictCsv(source: ModelSource, csvPath: string, hooks: InputHooks = {}): RowPrediction[] {
  checkInputHooks(hooks, 'predictCsv');
  const model = resolveModel(source, 'predict');
  const width = model.layout.layers[0];
  const header = readCsvHeader(csvPath, '--csv');
  const names = model.input.featureNames;
  let label: string | null = null;
  if (names) {
    label = labelBesideFeatures(names, header, `--csv ${csvPath}`, model.input.labelName);
  } else if (header.length === width + 1) {
    label = header.find(isLabelName) ?? header[header.length - 1];
  } else if (header.length !== width) {
    throw new UserError(
      `--csv ${csvPath}: ${header.length} columns, but the model takes ${width} inputs (and at most one label column)`,
    );
  }
  const table = readCsvTable(csvPath, label, '--csv');
  const columns = featureColumns(names ?? table.featureNames, table.featureNames, `--csv ${csvPath}`);
  const all = table.featureNames.length;
  // The model's inputs in its order, raw: checked against the training data, then scaled row by row.
  const raw = new Float32Array(table.count * width);
  for (let r = 0; r < table.count; r++)
    for (let k = 0; k < width; k++) raw[r * width + k] = table.features[r * all + columns[k]];
  const subject = `--csv ${csvPath}`;
  const inputNames = names ?? table.featureNames;
  const notices = inputNotices(
    model.input,
    raw,
    width,
    subject,
    (r, k) => `line ${table.lines[r]}, column "${inputNames[k]}"`,
  );
  const outputs = model.layout.layers[model.layout.layers.length - 1];
  const classes = outputNames(model.input, outputs);
  if (label !== null) notices.push(...unknownLabels(table, model.input, outputs, subject));
  for (const line of notices) hooks.onNotice?.(line);
  return Array.from({ length: table.count }, (_, r) => {
    const row: RowPrediction = {
      line: table.lines[r],
      ...classifyRow(model, raw.subarray(r * width, (r + 1) * width), classes, `${subject}: line ${table.lines[r]}`),
    };
    if (label !== null) row.label = table.labels[r];
    return row;
  });
}

/** The notice for labels that name no class of the model: shown beside the prediction, they can never be "correct". */
function unknownLabels(
  table: ReturnType<typeof readCsvTable>,
  input: ModelInput,
  outputs: number,
  subject: string,
): string[] {
  const labels = outputLabels(input, outputs);
  const known = new Set(labels);
  const unknown = table.labels.flatMap((l, r) => (known.has(l) ? [] : [r]));
  if (unknown.length === 0) return [];
  const first = unknown[0];
  const classes = input.classNames ? preview(labels) : `the class numbers 0 to ${outputs - 1}`;
  const count = unknown.length === 1 ? `1 of ${table.count} rows has` : `${unknown.length} of ${table.count} rows have`;
  return [
    `${subject}: ${count} a label that is none of the model's classes (${classes}); the first: line ${table.lines[first]}, ${JSON.stringify(table.labels[first])}`,
  ];
}

/** One row of inputs given in memory, classified: its index in the rows given, the predicted class (and its name), the probabilities. */
export interface InputPrediction {
  row: number;
  predicted: number;
  className?: string;
  probabilities: number[];
}

/**
 * Classifies rows held in memory, each the model's inputs as its data holds them (an image model's pixels,
 * 0–255; a table model's raw features, in the order of its feature names), with the model's own scaling, as
 * predictCsv does for a file's rows.
 */
export function predictRows(
  source: ModelSource,
  rows: readonly ArrayLike<number>[],
  hooks: InputHooks = {},
): InputPrediction[] {
  checkInputHooks(hooks, 'predictRows');
  const model = resolveModel(source, 'predictRows');
  const width = model.layout.layers[0];
  const order = model.input.featureNames ? ` (${model.input.featureNames.join(', ')})` : '';
  if (!Array.isArray(rows))
    throw new UserError(
      `predictRows: rows must be an array of rows of ${width} numbers${order}; got ${describe(rows)}`,
    );
  const checked = rows.map((values: unknown, row) => {
    const length = (values as ArrayLike<number> | null)?.length;
    if (typeof values !== 'object' || values === null || length !== width)
      throw new UserError(`predictRows: row ${row} is ${describe(values)}; the model takes ${width} numbers${order}`);
    const inputs = Float32Array.from(values as ArrayLike<number>);
    const bad = Array.prototype.findIndex.call(values, (v: unknown) => typeof v !== 'number' || !Number.isFinite(v));
    if (bad >= 0)
      throw new UserError(
        `predictRows: row ${row}, value ${bad} is ${describe((values as ArrayLike<unknown>)[bad])}; each value is a finite number`,
      );
    // The model reads float32: a finite double beyond its range would be Infinity there.
    const over = inputs.findIndex((v) => !Number.isFinite(v));
    if (over >= 0)
      throw new UserError(
        `predictRows: row ${row}, value ${over} is ${(values as ArrayLike<number>)[over]}, beyond float32's range (±3.4e38)`,
      );
    return inputs;
  });
  const raw = new Float32Array(checked.length * width);
  checked.forEach((inputs, row) => raw.set(inputs, row * width));
  for (const line of inputNotices(model.input, raw, width, 'predictRows', (row, k) => `row ${row}, value ${k}`))
    hooks.onNotice?.(line);
  const names = outputNames(model.input, model.layout.layers[model.layout.layers.length - 1]);
  return checked.map((inputs, row) => ({ row, ...classifyRow(model, inputs, names, `predictRows: row ${row}`) }));
}

/** What a row is classified as: the class, the probabilities, and the class's name where the model names them. */
export type Answer = Omit<InputPrediction, 'row'>;

/**
 * One row of raw inputs (an image model's pixels 0–255, a table model's features) through the model with its
 * own scaling (255: the PIXEL_SCALE table's bits): its answer, named by `names` (outputNames) when given.
 */
export function classifyRow(
  model: Model,
  raw: ArrayLike<number>,
  names: string[] | undefined,
  where = 'the row',
): Answer {
  const inputs = applyScaling(model.input.scaling, Float32Array.from(raw), raw.length);
  const p = forwardInputs(model.layout, model.params, inputs);
  // Finite inputs can still overflow float32 inside the network (1e38 times a weight): no answer, not NaN named a class.
  if (p.some((q) => Number.isNaN(q)))
    throw new UserError(
      `${where}: its values overflow the network's float32 arithmetic, so it has no probabilities; are they in the training data's units?`,
    );
  const predicted = argmaxRow(p, 0, p.length);
  const out: Answer = { predicted, probabilities: Array.from(p) };
  if (names) out.className = names[predicted];
  return out;
}

/** --index of a model that reads a table's rows: it has no image to draw, and its rows go through --csv. */
export function tableRowsError(model: string, flag: '--index' | '--image' = '--index'): UserError {
  return new UserError(
    `${flag}: ${model} reads rows of numbers, not images; classify a table's rows with --csv ROWS.csv`,
  );
}
