/** The shapes of loaded data, apart from the loaders (dataset.ts dispatches to the IDX, CSV and NumPy readers). */
import type { InputScaling } from './scaling.js';

/**
 * One split: `count` rows of `featureCount` inputs each, and one label byte each. The rows are bytes in
 * `images` (IDX files, uint8 arrays: pixels stay bytes, scaled by 1/255 when gathered), or float32 values in
 * `features` (CSV, float arrays, or any other --scale), and then `images` is empty.
 */
export interface LabeledRows {
  imagesPath: string;
  labelsPath: string;
  count: number;
  featureCount: number;
  images: Uint8Array;
  features?: Float32Array;
  labels: Uint8Array;
}

export interface Dataset {
  dir: string;
  train: LabeledRows;
  test: LabeledRows;
  /** Training rows held out by --val-split (prepareDataset). */
  val?: LabeledRows;
  /** How many classes the labels name: the highest integer label + 1, or the number of class names. */
  classes: number;
  /** String labels' class names, sorted: label i is classNames[i]. Absent for integer labels. */
  classNames?: string[];
  /** The features' names (a CSV header), when the file has them. */
  featureNames?: string[];
  /** The label column's name (a CSV header), when the file has one. */
  labelName?: string;
  /** Set by prepareDataset: `features` are then scaled; before, they hold the file's values. */
  scaling?: InputScaling;
  /** One-line remarks on how the files were read (a label column read as class names), for the caller to show. */
  notices?: string[];
}

export interface DatasetOptions {
  /** The first layer's width, when known: every row must have exactly this many inputs. */
  inputSize?: number;
  /** The last layer's width, when known: every label must be below it. */
  classes?: number;
  /** The model file these sizes are from (eval, predict), for errors; absent, they are --layers'. */
  layersOf?: string;
  /** --labels: the labels of a --data X.npy. */
  labels?: string;
  /** --label: a CSV table's label column. */
  label?: string;
  /** --test-data: a CSV table's test rows. */
  testData?: string;
  /** A model's class names: string labels are mapped to these (evaluation of a trained model). */
  classNames?: string[];
  /** Use only the first N examples of a split (for quick runs and tests). */
  trainLimit?: number;
  /** Read only this split; the other is left empty (evaluation needs just one). */
  only?: 'train' | 'test';
  testLimit?: number;
}

/** A split with no rows, of rows `featureCount` wide. */
export function emptySplit(featureCount: number): LabeledRows {
  return {
    imagesPath: '',
    labelsPath: '',
    count: 0,
    featureCount,
    images: new Uint8Array(0),
    labels: new Uint8Array(0),
  };
}
