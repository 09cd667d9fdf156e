import { readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { IDX_FILES, loadDataset } from '../src/data/dataset.js';
import { encodeIdx, readIdxFile } from '../src/data/idx.js';
import { UserError } from '../src/errors.js';
import { tempDir, writeIdxDir } from './helpers.js';

const OPTS = { inputSize: 16, classes: 10 };

function expectUserError(fn: () => unknown, ...fragments: string[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(UserError);
  const message = (caught as Error).message;
  expect(message).not.toContain('\n');
  for (const f of fragments) expect(message).toContain(f);
}

describe('IDX reader', () => {
  it('round-trips raw and gzipped files, gzip detected by content not name', () => {
    const dir = tempDir();
    const data = Uint8Array.from({ length: 3 * 2 * 5 }, (_, i) => (i * 37) % 256);
    const bytes = encodeIdx([3, 2, 5], data);
    const raw = join(dir, 'raw-images');
    const gz = join(dir, 'named-like-raw'); // gzipped content without a .gz name
    writeFileSync(raw, bytes);
    writeFileSync(gz, gzipSync(bytes));
    for (const path of [raw, gz]) {
      const idx = readIdxFile(path, 3);
      expect(idx.dims).toEqual([3, 2, 5]);
      expect(Array.from(idx.data)).toEqual(Array.from(data));
    }
  });

  it('loads a directory of raw files and one of .gz files identically', () => {
    const raw = loadDataset(writeIdxDir(), OPTS);
    const gz = loadDataset(writeIdxDir({ gzip: true }), OPTS);
    expect(raw.train.count).toBe(200);
    expect(raw.test.count).toBe(50);
    expect(Buffer.compare(raw.train.images, gz.train.images)).toBe(0);
    expect(Buffer.compare(raw.test.labels, gz.test.labels)).toBe(0);
  });

  /** Rewrites one file of a fresh, valid dataset directory and expects loadDataset to name it. */
  function corrupt(name: string, mutate: (bytes: Uint8Array) => Uint8Array, opts = OPTS) {
    const dir = writeIdxDir();
    const path = join(dir, name);
    writeFileSync(path, mutate(new Uint8Array(readFileSync(path))));
    return { dir, path, load: () => loadDataset(dir, opts) };
  }

  it('rejects a wrong magic number', () => {
    const c = corrupt(IDX_FILES.trainImages, (b) => {
      b.set([0x50, 0x4b], 0);
      return b;
    });
    expectUserError(c.load, c.path, 'wrong magic number');
  });

  it('rejects a wrong type byte', () => {
    const c = corrupt(IDX_FILES.trainLabels, (b) => {
      b[2] = 0x0d;
      return b;
    });
    expectUserError(c.load, c.path, 'wrong type byte 0x0d');
  });

  it('rejects a truncated header', () => {
    const c = corrupt(IDX_FILES.testImages, (b) => b.subarray(0, 10));
    expectUserError(c.load, c.path, 'truncated header');
  });

  it('rejects truncated data', () => {
    const c = corrupt(IDX_FILES.trainImages, (b) => b.subarray(0, b.length - 1));
    expectUserError(c.load, c.path, 'truncated data');
  });

  it('rejects an image/label count mismatch', () => {
    const c = corrupt(IDX_FILES.testLabels, () => encodeIdx([49], new Uint8Array(49)));
    expectUserError(c.load, c.path, '49 labels for 50 images');
  });

  it('rejects a label beyond the number of classes', () => {
    const c = corrupt(IDX_FILES.trainLabels, (b) => {
      b[8 + 17] = 10;
      return b;
    });
    expectUserError(c.load, c.path, 'label 10 at index 17');
  });

  it('rejects images whose size differs from the first layer', () => {
    const dir = writeIdxDir();
    expectUserError(
      () => loadDataset(dir, { inputSize: 784, classes: 10 }),
      join(dir, IDX_FILES.trainImages),
      '16 pixels',
      '784 inputs',
    );
  });

  it('names a missing file and a missing directory', () => {
    const dir = writeIdxDir();
    unlinkSync(join(dir, IDX_FILES.testLabels));
    expectUserError(() => loadDataset(dir, OPTS), dir, `missing ${IDX_FILES.testLabels}`);
    rmSync(dir, { recursive: true });
    expectUserError(() => loadDataset(dir, OPTS), dir, 'no such file or directory');
  });
});
