import { UserError } from '../errors.js';
import type { Rng } from '../random/rng.js';
import type { Dataset, LabeledRows } from './dataset.js';
import { applyScaling, fitScaling, scaledBytes, type InputScaling, type ScaleKind } from './scaling.js';

export interface PrepareOptions {
  /** --scale; default 255 for byte rows (IDX, uint8 arrays), standard for float rows. */
  scale?: ScaleKind;
  /** --val-split: the fraction of the training rows held out for validation. */
  valSplit?: number;
  /** Scale float rows where they are (the caller owns the loaded data and will not read it again): saves a copy. */
  inPlace?: boolean;
}

/** --scale's default for this data: 255 for byte images (today's arithmetic), standard for everything else. */
export function defaultScale(dataset: Dataset): ScaleKind {
  return dataset.train.features || dataset.test.features ? 'standard' : '255';
}

/** The rows --val-split holds out of n training rows. */
export function heldOut(valSplit: number | undefined, n: number): number {
  return valSplit === undefined ? 0 : Math.round(valSplit * n);
}

/**
 * A loaded dataset made ready to train: the validation rows drawn from `rng` (a permutation of the
 * training rows, its first round(F·n) held out, both parts kept in file order), then the scaling's
 * statistics from the rows that train, applied to every split. Byte rows scaled by 255 stay bytes.
 */
export function prepareDataset(raw: Dataset, options: PrepareOptions, rng: Rng): Dataset {
  const kind = options.scale ?? defaultScale(raw);
  let { train } = raw;
  let val: LabeledRows | undefined;
  if (options.valSplit !== undefined) {
    const n = train.count;
    const held = heldOut(options.valSplit, n);
    if (held < 1 || held >= n) {
      throw new UserError(
        `--val-split ${options.valSplit}: holds out ${held} of the ${n} training rows; it must leave at least one row on each side`,
      );
    }
    const order = new Uint32Array(n);
    rng.permutation(order);
    const isVal = new Uint8Array(n);
    for (let i = 0; i < held; i++) isVal[order[i]] = 1;
    val = pickRows(train, isVal, 1);
    train = pickRows(train, isVal, 0);
  }
  const width = train.featureCount;
  // Statistics need the rows as floats; 255 and none have none, and a float copy of MNIST's bytes is 188 MB.
  const needsRows = kind === 'standard' || kind === 'minmax';
  const rows = train.features ?? (needsRows ? Float32Array.from(train.images) : new Float32Array(0));
  const scaling = fitScaling(kind, rows, train.count, width);
  // Rows picked for the split are fresh copies: those are always scaled where they are.
  const scale = (split: LabeledRows): LabeledRows =>
    scaleSplit(split, scaling, options.inPlace || (split !== raw.train && split !== raw.test));
  return { ...raw, train: scale(train), test: scale(raw.test), ...(val ? { val: scale(val) } : {}), scaling };
}

/** A split's rows through a model's scaling (evaluation and prediction). */
export function scaleSplit(split: LabeledRows, scaling: InputScaling, inPlace = false): LabeledRows {
  if (!split.features && scaling.kind === '255') return split;
  const features = split.features
    ? applyScaling(scaling, inPlace ? split.features : Float32Array.from(split.features), split.featureCount)
    : scaledBytes(scaling, split.images, split.featureCount);
  return { ...split, images: new Uint8Array(0), features };
}

/** The rows r whose mark[r] is `keep`, in file order. */
function pickRows(split: LabeledRows, mark: Uint8Array, keep: number): LabeledRows {
  const width = split.featureCount;
  let count = 0;
  for (let r = 0; r < split.count; r++) if (mark[r] === keep) count++;
  const labels = new Uint8Array(count);
  const source = split.features ?? split.images;
  const rows = split.features ? new Float32Array(count * width) : new Uint8Array(count * width);
  for (let r = 0, i = 0; r < split.count; r++) {
    if (mark[r] !== keep) continue;
    rows.set(source.subarray(r * width, (r + 1) * width), i * width);
    labels[i++] = split.labels[r];
  }
  return split.features
    ? { ...split, count, labels, features: rows as Float32Array }
    : { ...split, count, labels, images: rows as Uint8Array };
}
