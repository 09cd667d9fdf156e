import { extname } from 'node:path';
import { UserError } from '../errors.js';
import {
  headerOfNumbers,
  isLabelName,
  isNumberText,
  labelLikeColumn,
  preview,
  readCsvTable,
  type CsvTable,
} from './csv.js';
import { emptySplit, type Dataset, type DatasetOptions, type LabeledRows } from './types.js';
import { readNpyFile, readNpzFile, type NpyArray } from './npy.js';

/** Labels are bytes: at most this many classes. */
export const MAX_CLASSES = 256;

/**
 * --labels, --test-data and --label each belong to one kind of --data file: with any other data (an IDX
 * directory, the default MNIST included) they are refused rather than ignored. `data` names the data.
 */
export function checkDataFlags(data: string, ext: string, options: DatasetOptions): void {
  if (options.labels !== undefined && ext !== '.npy')
    throw new UserError(`--labels ${options.labels}: goes with --data X.npy, not ${data}`);
  if (options.testData !== undefined && ext !== '.csv')
    throw new UserError(`--test-data ${options.testData}: goes with --data FILE.csv, not ${data}`);
  if (options.label !== undefined && ext !== '.csv')
    throw new UserError(`--label ${options.label}: names a column of a --data FILE.csv, not of ${data}`);
}

/** --data FILE: a .csv table (with --test-data), an .npz in Keras' mnist.npz convention, or an .npy with --labels. */
export function loadTableFiles(path: string, options: DatasetOptions): Dataset {
  const ext = extname(path).toLowerCase();
  checkDataFlags(path, ext, options);
  if (ext === '.csv') return loadCsv(path, options);
  if (ext === '.npz') return loadNpz(path, options);
  if (ext === '.npy') return loadNpyPair(path, options);
  throw new UserError(`--data ${path}: not a directory of IDX files, nor a .csv, .npz or .npy file`);
}

function loadCsv(path: string, options: DatasetOptions): Dataset {
  const train = options.only === 'test' ? null : readCsvTable(path, options.label, '--data');
  let test: CsvTable | null = null;
  if (options.testData !== undefined && options.only !== 'train') {
    // Evaluation may read the test file alone: its label column is then the one the training file had.
    test = readCsvTable(options.testData, options.label, '--test-data');
    if (train && test.header.join(',') !== train.header.join(',')) {
      const at = train.header.findIndex((name, i) => test?.header[i] !== name);
      throw new UserError(
        `--test-data ${options.testData}: its columns differ from ${path}'s: column ${at + 1} is ${JSON.stringify(test.header[at] ?? '(missing)')}` +
          ` where ${path} has ${JSON.stringify(train.header[at] ?? '(none)')}`,
      );
    }
  }
  const labelled = [train, test].filter((t): t is CsvTable => t !== null);
  const mapping = classMapping(labelled, options.classNames);
  const split = (table: CsvTable | null, limit: number | undefined): LabeledRows => {
    if (!table) return emptySplit(labelled[0]?.featureNames.length ?? 0);
    const width = table.featureNames.length;
    const n = limit === undefined ? table.count : Math.min(limit, table.count);
    const labels = new Uint8Array(n);
    for (let r = 0; r < n; r++) labels[r] = mapping.code(table, r);
    return {
      imagesPath: table.path,
      labelsPath: table.path,
      count: n,
      featureCount: width,
      images: new Uint8Array(0),
      features: table.features.subarray(0, n * width),
      labels,
    };
  };
  const dataset: Dataset = {
    dir: path,
    train: split(train, options.trainLimit),
    test: split(test, options.testLimit),
    classes: mapping.classes,
    featureNames: labelled[0]?.featureNames,
  };
  if (labelled[0]) dataset.labelName = labelled[0].label;
  if (mapping.classNames) dataset.classNames = mapping.classNames;
  const notices = [
    ...(train && !options.classNames ? trainingTableNotices(train, mapping.classes, options.label !== undefined) : []),
    ...(mapping.notice ? [mapping.notice] : []),
  ];
  if (notices.length > 0) dataset.notices = notices;
  if (train && !options.classNames)
    checkClasses(train.path, dataset.train.labels, `column "${train.label}"`, mapping.classNames);
  return dataset;
}

/**
 * Labels that are all integers 0…255 are classes by number; otherwise they are class names, sorted (or the
 * model's, when it brings them). `code` gives a row's class, naming the file and line of one it cannot map.
 */
function classMapping(
  tables: CsvTable[],
  known?: string[],
): { classes: number; classNames?: string[]; notice?: string; code: (t: CsvTable, r: number) => number } {
  const integer = /^\d{1,3}$/;
  const isClassNumber = (l: string) => integer.test(l) && Number(l) < MAX_CLASSES;
  const allIntegers = known === undefined && tables.every((t) => t.labels.every(isClassNumber));
  if (allIntegers) {
    let classes = 0;
    for (const t of tables) for (const l of t.labels) classes = Math.max(classes, Number(l) + 1);
    return { classes, code: (t, r) => Number(t.labels[r]) };
  }
  const names = known ?? [...new Set(tables[0]?.labels ?? [])].sort();
  if (names.length > MAX_CLASSES) {
    throw new UserError(
      `${tables[0].path}: ${names.length} distinct labels in column "${tables[0].label}"; lockstep trains at most ${MAX_CLASSES} classes`,
    );
  }
  const index = new Map(names.map((name, i) => [name, i]));
  return {
    classes: names.length,
    classNames: names,
    ...(known === undefined ? { notice: mixedLabelsNotice(tables, isClassNumber, names.length) } : {}),
    code: (t, r) => {
      const c = index.get(t.labels[r]);
      if (c === undefined) {
        const whose = known ? 'the model' : tables[0].path;
        throw new UserError(
          `${t.path}: line ${t.lines[r]}: label ${JSON.stringify(t.labels[r])} is not a class of ${whose} (${names.slice(0, 8).join(', ')}${names.length > 8 ? ', …' : ''})`,
        );
      }
      return c;
    },
  };
}

/**
 * Labels that look like class numbers but are names (`seven` among digits, `1.0`, `300`): said, naming the
 * first label that is not a class number and its line. Labels of text only (`cat`, `dog`) are names as meant.
 */
function mixedLabelsNotice(
  tables: CsvTable[],
  isClassNumber: (l: string) => boolean,
  names: number,
): string | undefined {
  if (!tables.some((t) => t.labels.some((l) => isClassNumber(l) || isNumberText(l)))) return undefined;
  for (const t of tables) {
    const r = t.labels.findIndex((l) => !isClassNumber(l));
    if (r >= 0)
      return `${t.path}: line ${t.lines[r]}: label ${JSON.stringify(t.labels[r])} is not an integer from 0 to ${MAX_CLASSES - 1}: the labels are read as ${names} class names`;
  }
  return undefined;
}

/**
 * What a training table's first line and labels suggest was meant otherwise: a file without a header (its
 * first row of numbers taken as column names), a feature named as labels often are ("target") beside a
 * last column taken as the label by default (`chosen`: --label named it), or a label column that is a
 * measurement or an id (about one class per row).
 */
function trainingTableNotices(table: CsvTable, classes: number, chosen: boolean): string[] {
  const notices: string[] = [];
  // The features' names only: a file without a header whose labels are names still starts with numbers.
  if (headerOfNumbers(table.featureNames))
    notices.push(
      `${table.path}: line 1 (${preview(table.header)}) is read as the header, but every feature's name in it is a number; if it is a row of data, add a header line naming the columns`,
    );
  // Only where the label was the last column by default: a --label or a "label" column was chosen.
  const likely = chosen || isLabelName(table.label) ? undefined : labelLikeColumn(table);
  if (likely !== undefined)
    notices.push(
      `${table.path}: column "${table.label}" is read as the label (the last column; none is named "label"), and "${likely}" as a feature; if "${likely}" holds the classes, give --label ${likely}`,
    );
  if (classes > 10 && classes * 2 > table.count)
    notices.push(
      `${table.path}: column "${table.label}" names ${classes} classes for ${table.count} rows; lockstep trains a classifier, so a label that is a measured value or an id gives about one class per row`,
    );
  return notices;
}

/** A classifier needs two classes among its training labels. */
export function checkClasses(path: string, labels: Uint8Array, what: string, classNames?: string[]): void {
  for (let i = 1; i < labels.length; i++) if (labels[i] !== labels[0]) return;
  const only = classNames ? JSON.stringify(classNames[labels[0]]) : String(labels[0]);
  throw new UserError(`${path}: every label in ${what} is ${only}: one class only; a classifier needs at least two`);
}

function loadNpz(path: string, options: DatasetOptions): Dataset {
  const arrays = readNpzFile(path);
  const get = (name: string): NpyArray => {
    const read = arrays.get(name);
    if (!read) {
      throw new UserError(
        `${path}: no array ${name}; an .npz needs x_train, y_train, x_test and y_test (it has ${[...arrays.keys()].join(', ')})`,
      );
    }
    return read();
  };
  const split = (x: string, y: string, limit?: number) => arraySplit(path, x, get(x), y, get(y), limit);
  const train = options.only === 'test' ? null : split('x_train', 'y_train', options.trainLimit);
  const test = options.only === 'train' ? null : split('x_test', 'y_test', options.testLimit);
  if (train && test && train.split.featureCount !== test.split.featureCount) {
    throw new UserError(
      `${path}: x_test has ${test.split.featureCount} values per example, x_train ${train.split.featureCount}`,
    );
  }
  if (train) checkClasses(path, train.split.labels, 'y_train');
  const width = (train ?? test)?.split.featureCount ?? 0;
  return {
    dir: path,
    train: train?.split ?? emptySplit(width),
    test: test?.split ?? emptySplit(width),
    classes: Math.max(train?.classes ?? 0, test?.classes ?? 0),
  };
}

function loadNpyPair(path: string, options: DatasetOptions): Dataset {
  if (options.labels === undefined)
    throw new UserError(`--data ${path}: an .npy holds the examples only; give their labels with --labels Y.npy`);
  const { split, classes } = arraySplit(
    undefined,
    path,
    readNpyFile(path),
    options.labels,
    readNpyFile(options.labels),
    options.trainLimit,
  );
  checkClasses(options.labels, split.labels, 'the labels');
  return { dir: path, train: split, test: emptySplit(split.featureCount), classes };
}

/**
 * Examples (any shape, examples first, flattened; uint8, float32 or float64) and their integer labels: two
 * arrays of the .npz `archive`, or (archive undefined) two .npy files, each named by its own path.
 */
export function arraySplit(
  archive: string | undefined,
  xName: string,
  x: NpyArray,
  yName: string,
  y: NpyArray,
  limit?: number,
): { split: LabeledRows; classes: number } {
  const where = (name: string) => (archive === undefined ? name : `${archive}: ${name}`);
  if (x.shape.length < 1) throw new UserError(`${where(xName)}: a scalar; expected examples first, shape (N, …)`);
  const count = x.shape[0];
  const width = x.shape.slice(1).reduce((a, b) => a * b, 1);
  if (y.shape.length === 0 || y.shape.length > 2 || (y.shape.length === 2 && y.shape[1] !== 1)) {
    throw new UserError(`${where(yName)}: labels of shape (${y.shape.join(', ')}); expected (N,) or (N, 1)`);
  }
  if (y.shape[0] !== count)
    throw new UserError(`${where(xName)} has ${count} examples but ${yName} has ${y.shape[0]} labels`);
  if (count === 0) throw new UserError(`${where(xName)}: no examples`);
  if (!/^[<|=>][ui][1248]$/.test(y.dtype))
    throw new UserError(
      `${where(yName)}: labels of dtype '${y.dtype}'; labels must be integers (in NumPy: y.astype(np.int64))`,
    );
  const n = limit === undefined ? count : Math.min(limit, count);
  const labels = new Uint8Array(n);
  let classes = 0;
  for (let i = 0; i < count; i++) {
    const label = Number(y.data[i]);
    if (label < 0 || label >= MAX_CLASSES)
      throw new UserError(`${where(yName)}: label ${label} at index ${i}; labels must be 0 to ${MAX_CLASSES - 1}`);
    if (i < n) labels[i] = label;
    if (label >= classes) classes = label + 1;
  }
  const split: LabeledRows = {
    imagesPath: where(xName),
    labelsPath: where(yName),
    count: n,
    featureCount: width,
    images: new Uint8Array(0),
    labels,
  };
  const kind = x.dtype.slice(1);
  if (kind === 'u1') {
    split.images = (x.data as Uint8Array).subarray(0, n * width);
  } else if (kind === 'f4' || kind === 'f8') {
    const features = Float32Array.from((x.data as Float32Array | Float64Array).subarray(0, n * width));
    const bad = features.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      const value = (x.data as Float64Array)[bad];
      throw new UserError(
        `${where(xName)}: example ${Math.floor(bad / width)}, value ${bad % width} is ${value}, not a finite float32 number`,
      );
    }
    split.features = features;
  } else {
    throw new UserError(`${where(xName)}: examples of dtype '${x.dtype}'; lockstep reads uint8, float32 or float64`);
  }
  return { split, classes };
}
