import { UserError } from '../errors.js';
import { describe } from '../words.js';
import { arraySplit, checkClasses, MAX_CLASSES } from './tables.js';
import { emptySplit, type Dataset } from './types.js';

/** One split held in memory: `x` row after row, `width` values a row, and one integer label a row in `y`. */
export interface ArraySplit {
  /** Bytes are pixels (0–255, scaled by 1/255 as MNIST's); floats are raw features (standardized, as a CSV's). */
  x: Uint8Array | Float32Array | Float64Array;
  /** Class numbers from 0, one a row. */
  y: ArrayLike<number>;
}

export interface ArrayData {
  train: ArraySplit;
  /** Rows to report test accuracy on (none: the run reports the training split's). */
  test?: ArraySplit;
  /** Inputs per row: the first layer's width. */
  width: number;
  /** Class i's name (predict and eval show it, a safetensors export keeps it); its length is the class count. */
  classNames?: string[];
  /** The inputs' names, as a CSV's header: predict --csv then reads a table's columns by them. */
  featureNames?: string[];
}

const WHERE = 'datasetFromArrays';

/**
 * Training data held in memory, for `train(options, { dataset })`: what --data reads from a file, checked as
 * a file is (finite float32 values, integer labels 0–255, two classes or more). The run's arithmetic is the
 * same as on a CSV or .npy of the same values: floats are standardized by default, bytes scaled by 1/255.
 */
export function datasetFromArrays(data: ArrayData): Dataset {
  if (typeof data !== 'object' || data === null)
    throw new UserError(`${WHERE}: expected {train: {x, y}, width}; got ${describe(data)}`);
  const { train, test, width, classNames, featureNames } = data;
  if (!Number.isSafeInteger(width) || width < 1)
    throw new UserError(`${WHERE}: width must be a positive integer (inputs per row); got ${describe(width)}`);
  const split = (name: 'train' | 'test', s: ArraySplit) => {
    const { x, y } = s ?? ({} as Partial<ArraySplit>);
    const dtype =
      x instanceof Uint8Array ? '|u1' : x instanceof Float32Array ? '<f4' : x instanceof Float64Array ? '<f8' : null;
    if (dtype === null)
      throw new UserError(`${WHERE}: ${name}.x must be a Uint8Array, Float32Array or Float64Array; got ${describe(x)}`);
    if (x!.length % width !== 0)
      throw new UserError(`${WHERE}: ${name}.x holds ${x!.length} values, not rows of ${width} (width)`);
    if (typeof y !== 'object' || y === null || typeof y.length !== 'number')
      throw new UserError(`${WHERE}: ${name}.y must be an array of class numbers; got ${describe(y)}`);
    const labels = Array.from(y, Number);
    const bad = labels.findIndex((v) => !Number.isInteger(v));
    if (bad >= 0)
      throw new UserError(`${WHERE}: ${name}.y[${bad}] is ${describe(y[bad])}; labels are class numbers from 0`);
    return arraySplit(WHERE, `${name}.x`, { dtype, shape: [x!.length / width, width], data: x! }, `${name}.y`, {
      dtype: '<i4',
      shape: [labels.length],
      data: Int32Array.from(labels),
    });
  };
  const trained = split('train', train);
  const tested = test === undefined ? null : split('test', test);
  checkClasses(WHERE, trained.split.labels, 'train.y');
  const classes = Math.max(trained.classes, tested?.classes ?? 0);
  const dataset: Dataset = {
    dir: 'arrays in memory',
    train: trained.split,
    test: tested?.split ?? emptySplit(width),
    classes,
  };
  if (classNames !== undefined) {
    if (!Array.isArray(classNames) || classNames.some((n) => typeof n !== 'string') || classNames.length > MAX_CLASSES)
      throw new UserError(
        `${WHERE}: classNames must be an array of at most ${MAX_CLASSES} strings; got ${describe(classNames)}`,
      );
    if (classes > classNames.length)
      throw new UserError(`${WHERE}: label ${classes - 1} has no class name (${classNames.length} given)`);
    dataset.classes = classNames.length;
    dataset.classNames = classNames;
  }
  if (featureNames !== undefined) {
    if (
      !Array.isArray(featureNames) ||
      featureNames.length !== width ||
      featureNames.some((n) => typeof n !== 'string')
    )
      throw new UserError(
        `${WHERE}: featureNames must be ${width} strings, one per input; got ${describe(featureNames)}`,
      );
    dataset.featureNames = featureNames;
  }
  return dataset;
}
