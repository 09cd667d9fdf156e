import type { ModelInput } from '../data/scaling.js';
import { fourDigits } from '../words.js';

/** A table feature this many standard deviations from its training mean is far outside the training rows. */
export const FAR_DEVIATIONS = 10;

/**
 * Notices for inputs unlike those the model was trained on, judged from what it stores: an image model
 * takes pixels 0–255 (a file of 0–1 values was scaled already); a table model's features lie near its
 * training rows (standard: within FAR_DEVIATIONS of the mean; minmax: within the range widened by its width
 * each side). `values` are rows of `width` raw inputs, before the model's scaling; one line per kind of
 * trouble for all the rows, naming the first. `at(row, k)` names a value ("line 5, column "x"").
 */
export function inputNotices(
  input: ModelInput,
  values: ArrayLike<number>,
  width: number,
  subject: string,
  at: (row: number, k: number) => string,
): string[] {
  const { kind, offset, divisor } = input.scaling;
  const rows = width > 0 ? values.length / width : 0;
  if (rows === 0 || kind === 'none') return [];
  if (kind === '255') {
    let max = Number.NEGATIVE_INFINITY;
    let min = Number.POSITIVE_INFINITY;
    for (let i = 0; i < values.length; i++) {
      if (values[i] > max) max = values[i];
      if (values[i] < min) min = values[i];
    }
    if (min >= 0 && max <= 1 && max > 0)
      return [
        `${subject}: every value is from 0 to 1, but the model takes pixels from 0 to 255 (it divides by 255 itself); multiply values already scaled by 255`,
      ];
    return farRows(
      values,
      width,
      subject,
      at,
      (v) => v < 0 || v > 255,
      () => `outside 0–255, the pixels the model was trained on`,
    );
  }
  if (kind === 'standard')
    return farRows(
      values,
      width,
      subject,
      at,
      (v, k) => Math.abs((v - offset[k]) / divisor[k]) > FAR_DEVIATIONS,
      (v, k) =>
        `${fourDigits(Math.abs(v - offset[k]) / divisor[k])} standard deviations from the training rows' mean ${fourDigits(offset[k])}`,
    );
  return farRows(
    values,
    width,
    subject,
    at,
    (v, k) => (v - offset[k]) / divisor[k] < -1 || (v - offset[k]) / divisor[k] > 2,
    (_v, k) => `far outside the training rows' range ${fourDigits(offset[k])} to ${fourDigits(offset[k] + divisor[k])}`,
  );
}

/** One notice for the rows with a value that is `far`: how many, and the first such value described. */
function farRows(
  values: ArrayLike<number>,
  width: number,
  subject: string,
  at: (row: number, k: number) => string,
  far: (v: number, k: number) => boolean,
  describe: (v: number, k: number) => string,
): string[] {
  const rows = values.length / width;
  let count = 0;
  let first = '';
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < width; k++) {
      const v = values[r * width + k];
      if (!far(v, k)) continue;
      if (count === 0) first = `${at(r, k)} is ${float32Text(v)}, ${describe(v, k)}`;
      count++;
      break;
    }
  }
  if (count === 0) return [];
  if (rows === 1) return [`${subject}: ${first}, so the model's answer means little`];
  return [
    `${subject}: ${count} of ${rows} rows ${count === 1 ? 'is' : 'are'} unlike the training data (the first: ${first}); the model's answers for them mean little`,
  ];
}

/** A float32 value as the shortest text that reads back as it: what the file most likely said (900.1, not 900.0999755859375). */
function float32Text(v: number): string {
  for (let digits = 1; digits < 9; digits++) {
    const text = String(Number(v.toPrecision(digits)));
    if (Math.fround(Number(text)) === Math.fround(v)) return text;
  }
  return String(v);
}
