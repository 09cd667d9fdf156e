import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultDataDir, IDX_FILES, loadDataset } from '../src/data/dataset.js';
import { evaluate } from '../src/inference/evaluate.js';
import { inputNotices } from '../src/inference/input-range.js';
import { predict, readImage } from '../src/inference/predict.js';
import { writeCheckpoint } from '../src/model-io/checkpoint.js';
import { train } from '../src/train/train.js';
import { runCli, tempDir } from './helpers.js';

const mnist = loadDataset(undefined, { inputSize: 784, classes: 10, trainLimit: 5000, testLimit: 10000 });

async function trainedCheckpoint(): Promise<{ path: string; testAccuracy: number }> {
  const path = join(tempDir(), 'model.ckpt');
  const result = await train(
    { epochs: 2, threads: 2 },
    { dataset: mnist, onCheckpoint: (s) => writeCheckpoint(path, s) },
  );
  return { path, testAccuracy: result.testAccuracy };
}

describe('eval and predict', () => {
  it('eval reports the accuracy the training run measured, a consistent confusion matrix, on any thread count', async () => {
    const { path, testAccuracy } = await trainedCheckpoint();
    const one = await evaluate(path, { threads: 1, kernels: 'js' });
    const two = await evaluate(path, { threads: 2 });
    expect(one.accuracy).toBe(testAccuracy);
    expect(two).toEqual(one);
    expect(one.count).toBe(10000);
    const total = one.confusion.flat().reduce((a, b) => a + b, 0);
    const diagonal = one.confusion.reduce((a, row, i) => a + row[i], 0);
    expect(total).toBe(10000);
    expect(diagonal / total).toBe(one.accuracy);

    // Only the evaluated split's files are needed.
    const testOnly = tempDir();
    for (const f of [IDX_FILES.testImages, IDX_FILES.testLabels])
      copyFileSync(join(defaultDataDir(), f), join(testOnly, f));
    const r = runCli(['eval', path, '--json', '--data', testOnly]);
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout);
    expect(json).toMatchObject({ event: 'eval', split: 'test', count: 10000, accuracy: testAccuracy });
    expect(json.confusion).toHaveLength(10);
  }, 60_000);

  it('predict draws the image and gives ten probabilities; a PGM of the same pixels gives the same answer', async () => {
    const { path } = await trainedCheckpoint();
    const fromSet = predict(path, { index: 3 });
    expect(fromSet.label).toBe(mnist.test.labels[3]);
    expect(fromSet.probabilities).toHaveLength(10);
    expect(fromSet.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(fromSet.predicted).toBe(fromSet.probabilities.indexOf(Math.max(...fromSet.probabilities)));

    const pgm = join(tempDir(), 'digit.pgm');
    const pixels = mnist.test.images.subarray(3 * 784, 4 * 784);
    writeFileSync(pgm, Buffer.concat([Buffer.from('P5\n# a test digit\n28 28\n255\n'), Buffer.from(pixels)]));
    expect(Buffer.compare(Buffer.from(readImage(pgm).pixels), Buffer.from(pixels))).toBe(0);
    const fromFile = predict(path, { image: pgm });
    expect(fromFile.probabilities).toEqual(fromSet.probabilities);

    const r = runCli(['predict', path, '--index', '3']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/[#%@]/);
    expect(r.stdout).toMatch(new RegExp(`predicted ${fromSet.predicted}`));
    expect(r.stdout).toMatch(/ 9: \d\.\d{4}/);
    const bad = runCli(['predict', path, '--index', '10000']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe('lockstep: --index 10000: must be from 0 to 9999 (test split)');
  }, 60_000);
});

describe('inputNotices: inputs unlike the training data, judged from what the model stores', () => {
  const at = (r: number, k: number) => `row ${r}, value ${k}`;
  it('says so once for all the rows, naming the first, for each scaling; nothing for rows like the training data', () => {
    const pixels = { scaling: { kind: '255' as const, offset: [], divisor: [] } };
    expect(inputNotices(pixels, [0, 255, 3, 4], 2, 'f', at)).toEqual([]);
    expect(inputNotices(pixels, [0, 0.5, 1, 0], 2, 'f', at)).toEqual([
      'f: every value is from 0 to 1, but the model takes pixels from 0 to 255 (it divides by 255 itself); multiply values already scaled by 255',
    ]);
    expect(inputNotices(pixels, [0, 2, 300, 0, -1, 0], 2, 'f', at)).toEqual([
      "f: 2 of 3 rows are unlike the training data (the first: row 1, value 0 is 300, outside 0–255, the pixels the model was trained on); the model's answers for them mean little",
    ]);
    const minmax = { scaling: { kind: 'minmax' as const, offset: [10, 0], divisor: [5, 1] } };
    // Up to a range's width beyond the training range is near enough (test rows stray a little).
    expect(inputNotices(minmax, [5, -1, 20, 2], 2, 'f', at)).toEqual([]);
    expect(inputNotices(minmax, [10, 0.5, 4.5, 0.5], 2, 'f', at)).toEqual([
      "f: 1 of 2 rows is unlike the training data (the first: row 1, value 0 is 4.5, far outside the training rows' range 10 to 15); the model's answers for them mean little",
    ]);
    const standard = { scaling: { kind: 'standard' as const, offset: [1, 2], divisor: [0.5, 3] } };
    expect(inputNotices(standard, [6, -28], 2, 'f', at)).toEqual([]);
    expect(inputNotices(standard, [1, -29.1], 2, 'one row', at)).toEqual([
      "one row: row 0, value 1 is -29.1, 10.37 standard deviations from the training rows' mean 2, so the model's answer means little",
    ]);
    const none = { scaling: { kind: 'none' as const, offset: [], divisor: [] } };
    expect(inputNotices(none, [1e30, -1e30], 2, 'f', at)).toEqual([]);
  });
});
