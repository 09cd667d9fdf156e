import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { readCsvTable } from '../src/data/csv.js';
import { loadDataset } from '../src/data/dataset.js';
import { encodeNpy, parseNpy } from '../src/data/npy.js';
import { prepareDataset } from '../src/data/prepare.js';
import { fitScaling } from '../src/data/scaling.js';
import { UserError } from '../src/errors.js';
import { Rng } from '../src/random/rng.js';
import { blobsCsv, runCli, SLOW_TEST_TIMEOUT, tempDir, writeNpz } from './helpers.js';

const write = (dir: string, name: string, text: string | Uint8Array): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe('CSV tables', () => {
  it('reads numbers, string labels (sorted class names) and the label column by name, else "label", else the last', () => {
    const dir = tempDir();
    const path = write(dir, 't.csv', 'x,y,kind\n1,2.5,b\n-3e2,0.1,a\n4,.5,c\n');
    const data = loadDataset(path, {});
    expect(data.classNames).toEqual(['a', 'b', 'c']);
    expect(Array.from(data.train.labels)).toEqual([1, 0, 2]);
    expect(Array.from(data.train.features!)).toEqual([1, 2.5, -300, 0.1, 4, 0.5].map(Math.fround));
    expect(data.featureNames).toEqual(['x', 'y']);
    const named = loadDataset(write(dir, 'u.csv', 'label,x\n1,5\n0,6\n'), {});
    expect(named.classNames).toBeUndefined();
    expect(Array.from(named.train.labels)).toEqual([1, 0]);
    const byName = loadDataset(write(dir, 'v.csv', 'a,cls,b\n1,0,2\n3,1,4\n'), { label: 'cls' });
    expect(Array.from(byName.train.labels)).toEqual([0, 1]);
    expect(Array.from(byName.train.features!)).toEqual([1, 2, 3, 4]);
  });

  it('parses each number as fround(Number(text)), on the fast path and through csv-parse (quoted fields) alike', () => {
    const dir = tempDir();
    const cells = [
      '0.1',
      '123456.789',
      '1e-7',
      '-0',
      '16777217',
      '3.4028234663852886e38',
      '9007199254740993',
      '0.30000000000000004',
      ' 7 ',
    ];
    const plain = write(
      dir,
      'plain.csv',
      `${cells.map((_, i) => `c${i}`).join(',')},label\n${cells.join(',')},0\n${cells.join(',')},1\n`,
    );
    const quoted = write(
      dir,
      'quoted.csv',
      `${cells.map((_, i) => `"c${i}"`).join(',')},label\n${cells.map((c) => `"${c}"`).join(',')},"0"\n${cells.join(',')},1\n`,
    );
    const expected = cells.map((c) => Math.fround(Number(c)));
    for (const path of [plain, quoted]) {
      const table = readCsvTable(path, undefined);
      expect(Array.from(table.features.subarray(0, cells.length))).toEqual(expected);
      expect(Object.is(table.features[3], -0)).toBe(true);
    }
  });

  it('reads quoted fields with commas and newlines inside, and gives their real line numbers', () => {
    const dir = tempDir();
    const path = write(dir, 'q.csv', 'a,name\n1,"x, y"\n2,"multi\nline"\n3,"z"\nfour,w\n');
    expect(() => readCsvTable(path, 'name')).toThrow(/q\.csv: line 6, column 1 \(a\): "four" is not a number/);
    const ok = readCsvTable(write(dir, 'r.csv', 'a,name\n1,"x, y"\n2,"multi\nline"\n'), 'name');
    expect(ok.labels).toEqual(['x, y', 'multi\nline']);
    expect(Array.from(ok.lines)).toEqual([2, 3]);
  });
});

describe('.npy and .npz', () => {
  it('reads uint8, float32 and float64 examples of any shape (flattened) and any integer labels', () => {
    const dir = tempDir();
    const x8 = Uint8Array.from({ length: 2 * 2 * 3 }, (_, i) => i * 20);
    const y = BigInt64Array.from([1n, 0n]);
    const path = writeNpz(join(dir, 'd.npz'), {
      x_train: encodeNpy('|u1', [2, 2, 3], x8),
      y_train: encodeNpy('<i8', [2], y),
      x_test: encodeNpy('<f8', [1, 6], Float64Array.from([0.5, 1, 2, 3, 4, 1e-3])),
      y_test: encodeNpy('<u2', [1], Uint16Array.from([1])),
    });
    const data = loadDataset(path, {});
    expect(data.train.featureCount).toBe(6);
    expect(Array.from(data.train.images)).toEqual(Array.from(x8));
    expect(Array.from(data.train.labels)).toEqual([1, 0]);
    expect(Array.from(data.test.features!)).toEqual([0.5, 1, 2, 3, 4, 1e-3].map(Math.fround));
    expect(data.classes).toBe(2);
  });

  it(
    "eval and predict read an .npy run's own data with its --labels; eval takes other .npy data with --labels of its own",
    () => {
      const dir = tempDir();
      const rows = 120;
      const y = Uint8Array.from({ length: rows }, (_, r) => r % 3);
      // Bytes: predict --index draws them (float rows are a table's, classified with --csv).
      const x = Uint8Array.from({ length: rows * 4 }, (_, i) => y[Math.floor(i / 4)] * 80 + ((i * 37) % 11));
      write(dir, 'x.npy', encodeNpy('|u1', [rows, 4], x));
      write(dir, 'y.npy', encodeNpy('|u1', [rows], y));
      write(
        dir,
        'd.npz',
        zipSync({
          'x_train.npy': encodeNpy('|u1', [rows, 4], x),
          'y_train.npy': encodeNpy('|u1', [rows], y),
          'x_test.npy': encodeNpy('|u1', [rows, 4], x),
          'y_test.npy': encodeNpy('|u1', [rows], y),
        }),
      );
      const cli = (...args: string[]) => runCli(args, { cwd: dir, timeout: SLOW_TEST_TIMEOUT });
      const trained = cli(
        'train',
        '--data',
        'x.npy',
        '--labels',
        'y.npy',
        '--hidden',
        '6',
        '--epochs',
        '3',
        '--batch-size',
        '16',
        '--checkpoint',
        'np.ckpt',
        '--threads',
        '1',
      );
      expect(trained.code, trained.stderr).toBe(0);
      const own = cli('eval', 'np.ckpt', '--split', 'train', '--json');
      expect(own.code, own.stderr).toBe(0);
      const accuracy = JSON.parse(own.stdout).accuracy;
      const predicted = cli('predict', 'np.ckpt', '--split', 'train', '--index', '1', '--json');
      expect(predicted.code, predicted.stderr).toBe(0);
      expect(JSON.parse(predicted.stdout).label).toBe(1);
      // Other data: an .npz needs no --labels (the run's are not carried over), an .npy brings its own.
      const npz = cli('eval', 'np.ckpt', '--data', 'd.npz', '--json');
      expect(npz.code, npz.stderr).toBe(0);
      expect(JSON.parse(npz.stdout).accuracy).toBe(accuracy);
      // Every row of another .npy is evaluated, as a CSV's are, whatever the split.
      const npy = cli('eval', 'np.ckpt', '--data', 'x.npy', '--labels', 'y.npy', '--json');
      expect(npy.code, npy.stderr).toBe(0);
      expect(JSON.parse(npy.stdout)).toMatchObject({ accuracy, count: rows });
      expect(cli('eval', 'np.ckpt', '--labels', 'y.npy').stderr).toBe(
        'lockstep: --labels "y.npy": goes with --data X.npy, the examples they label\n',
      );
      // The run's labels file gone: said in the checkpoint's terms, as a moved data file is.
      rmSync(join(dir, 'y.npy'));
      expect(cli('eval', 'np.ckpt', '--split', 'train').stderr).toBe(
        `lockstep: np.ckpt: its labels file ${join(dir, 'y.npy')} no longer exists; give --data FILE (and eval's --labels FILE)\n`,
      );
    },
    SLOW_TEST_TIMEOUT,
  );

  it('reads a deflated .npz (np.savez_compressed) as the stored one, float32 data at any offset', () => {
    const dir = tempDir();
    const arrays = {
      x_train: encodeNpy('<f4', [3, 2], Float32Array.from([1.5, -2, 3, 4, 5e-3, 6])),
      y_train: encodeNpy('<i4', [3], Int32Array.from([0, 1, 2])),
      x_test: encodeNpy('<f4', [1, 2], Float32Array.from([7, 8])),
      y_test: encodeNpy('|u1', [1], Uint8Array.from([2])),
    };
    const stored = loadDataset(writeNpz(join(dir, 's.npz'), arrays), {});
    const deflated = loadDataset(write(dir, 'd.npz', zipped(arrays, 6)), {});
    for (const data of [stored, deflated]) {
      expect(Array.from(data.train.features!)).toEqual([1.5, -2, 3, 4, 5e-3, 6].map(Math.fround));
      expect(Array.from(data.train.labels)).toEqual([0, 1, 2]);
      expect(Array.from(data.test.features!)).toEqual([7, 8]);
    }
  });

  it('round-trips a header of version 1 and refuses big-endian, Fortran order and unknown dtypes by name', () => {
    const a = parseNpy(encodeNpy('<f4', [3], Float32Array.from([1, 2, 3])), 'a.npy');
    expect(a.shape).toEqual([3]);
    expect(Array.from(a.data as Float32Array)).toEqual([1, 2, 3]);
    const bytes = (dtype: string, options = {}) =>
      encodeNpy(dtype, [2], new Uint8Array(dtype.endsWith('8') ? 16 : 8), options);
    expect(() => parseNpy(bytes('>f4'), 'b.npy')).toThrow(/b\.npy: big-endian dtype '>f4'/);
    expect(() => parseNpy(bytes('<f4', { fortran: true }), 'f.npy')).toThrow(/f\.npy: Fortran-order/);
    expect(() => parseNpy(bytes('<c8'), 'c.npy')).toThrow(/c\.npy: unknown dtype '<c8'/);
  });
});

describe('scaling and the validation split', () => {
  it('standard scaling: statistics from the training rows only (not validation, not test), in float64', () => {
    const dir = tempDir();
    const path = write(dir, 't.csv', blobsCsv(50, 3));
    const test = write(dir, 'test.csv', blobsCsv(10, 4));
    const raw = loadDataset(path, { testData: test });
    const rawTrain = Float32Array.from(raw.train.features!);
    const prepared = prepareDataset(raw, { valSplit: 0.2 }, new Rng(9));
    expect(prepared.val!.count).toBe(10);
    expect(prepared.train.count).toBe(40);
    // The held-out rows are a permutation's first 10, drawn from the generator: the same Rng gives the same rows.
    const again = prepareDataset(loadDataset(path, { testData: test }), { valSplit: 0.2 }, new Rng(9));
    expect(Array.from(again.val!.labels)).toEqual(Array.from(prepared.val!.labels));
    const trainRows: number[] = [];
    const isVal = new Uint8Array(50);
    const order = new Uint32Array(50);
    new Rng(9).permutation(order);
    for (let i = 0; i < 10; i++) isVal[order[i]] = 1;
    for (let r = 0; r < 50; r++) if (!isVal[r]) trainRows.push(...rawTrain.subarray(r * 4, r * 4 + 4));
    const stats = fitScaling('standard', Float32Array.from(trainRows), 40, 4);
    expect(prepared.scaling).toEqual(stats);
    let mean = 0;
    for (let r = 0; r < 40; r++) mean += trainRows[r * 4];
    expect(stats.offset[0]).toBe(mean / 40);
    expect(prepared.train.features![0]).toBe(Math.fround((trainRows[0] - stats.offset[0]) / stats.divisor[0]));
    expect(prepared.test.features![5]).toBe(Math.fround((raw.test.features![5] - stats.offset[1]) / stats.divisor[1]));
  });

  it('255 on float rows gives the bits of the byte path; a constant feature gets divisor 1', () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const data = {
      dir: 'x',
      classes: 2,
      train: {
        imagesPath: '',
        labelsPath: '',
        count: 256,
        featureCount: 1,
        images: new Uint8Array(0),
        features: Float32Array.from(bytes),
        labels: new Uint8Array(256),
      },
      test: {
        imagesPath: '',
        labelsPath: '',
        count: 0,
        featureCount: 1,
        images: new Uint8Array(0),
        labels: new Uint8Array(0),
      },
    };
    const scaled = prepareDataset(data, { scale: '255' }, new Rng(0)).train.features!;
    expect(Array.from(scaled)).toEqual(Array.from(bytes, (p) => Math.fround(p / 255)));
    expect(fitScaling('minmax', Float32Array.from([2, 2, 2]), 3, 1).divisor).toEqual([1]);
    expect(fitScaling('standard', Float32Array.from([2, 2, 2]), 3, 1)).toEqual({
      kind: 'standard',
      offset: [2],
      divisor: [1],
    });
  });
});

/**
 * Bad input through the CLI: each one line naming the file (and line and column where they exist), exit 2,
 * and nothing written (the --checkpoint and --log paths stay absent).
 */
describe('bad data files: one line, exit 2, nothing written', () => {
  const npy = (dtype: string, shape: number[], data: ArrayBufferView, options = {}) =>
    encodeNpy(dtype, shape, data, options);
  const u8 = (n: number) => new Uint8Array(n).map((_, i) => i % 3);
  const cases: { name: string; files: Record<string, string | Uint8Array>; args: string[]; expected: RegExp }[] = [
    {
      name: 'a ragged row',
      files: { 'd.csv': 'a,b,label\n1,2,x\n3,y\n' },
      args: ['--data', 'd.csv'],
      expected: /d\.csv: line 3: 2 fields, but the header has 3$/,
    },
    {
      name: 'a non-numeric cell',
      files: { 'd.csv': 'a,b,label\n1,2,x\n3,abc,y\n' },
      args: ['--data', 'd.csv'],
      expected: /d\.csv: line 3, column 2 \(b\): "abc" is not a number$/,
    },
    {
      name: 'an empty cell',
      files: { 'd.csv': 'a,b,label\n1,,x\n3,4,y\n' },
      args: ['--data', 'd.csv'],
      expected: /d\.csv: line 2, column 2 \(b\): empty cell$/,
    },
    {
      name: 'NaN',
      files: { 'd.csv': 'a,b,label\n1,NaN,x\n3,4,y\n' },
      args: ['--data', 'd.csv'],
      expected: /d\.csv: line 2, column 2 \(b\): NaN is not a finite number$/,
    },
    {
      name: 'Infinity',
      files: { 'd.csv': 'a,b,label\n1,2,x\n-Infinity,4,y\n' },
      args: ['--data', 'd.csv'],
      expected: /d\.csv: line 3, column 1 \(a\): -Infinity is not a finite number$/,
    },
    {
      name: 'a missing label column',
      files: { 'd.csv': 'a,b,c\n1,2,x\n3,4,y\n' },
      args: ['--data', 'd.csv', '--label', 'kind'],
      expected: /^lockstep: --label kind: .*d\.csv has no such column \(its columns: a, b, c\)$/,
    },
    {
      name: 'one class only',
      files: { 'd.csv': 'a,b,label\n1,2,x\n3,4,x\n' },
      args: ['--data', 'd.csv'],
      expected: /d\.csv: every label in column "label" is "x": one class only/,
    },
    {
      name: 'test columns that differ',
      files: { 'd.csv': 'a,b,label\n1,2,x\n3,4,y\n', 't.csv': 'a,c,label\n1,2,x\n' },
      args: ['--data', 'd.csv', '--test-data', 't.csv'],
      expected: /--test-data \S*t\.csv: its columns differ from \S*d\.csv's: column 2 is "c" where \S*d\.csv has "b"$/,
    },
    {
      name: 'an .npz missing an array',
      files: {
        'd.npz': zipped({
          x_train: npy('|u1', [3, 2], u8(6)),
          y_train: npy('|u1', [3], u8(3)),
          x_test: npy('|u1', [1, 2], u8(2)),
        }),
      },
      args: ['--data', 'd.npz'],
      expected:
        /d\.npz: no array y_test; an \.npz needs x_train, y_train, x_test and y_test \(it has x_train, y_train, x_test\)$/,
    },
    {
      name: 'an .npz with mismatched counts',
      files: {
        'd.npz': zipped({
          x_train: npy('|u1', [3, 2], u8(6)),
          y_train: npy('|u1', [2], u8(2)),
          x_test: npy('|u1', [1, 2], u8(2)),
          y_test: npy('|u1', [1], u8(1)),
        }),
      },
      args: ['--data', 'd.npz'],
      expected: /d\.npz: x_train has 3 examples but y_train has 2 labels$/,
    },
    {
      name: 'a big-endian .npy',
      files: { 'x.npy': npy('>f4', [2, 1], new Float32Array(2)), 'y.npy': npy('|u1', [2], u8(2)) },
      args: ['--data', 'x.npy', '--labels', 'y.npy'],
      expected: /x\.npy: big-endian dtype '>f4'; lockstep reads little-endian/,
    },
    {
      name: 'a Fortran-order .npy',
      files: { 'x.npy': npy('<f4', [2, 1], new Float32Array(2), { fortran: true }), 'y.npy': npy('|u1', [2], u8(2)) },
      args: ['--data', 'x.npy', '--labels', 'y.npy'],
      expected: /x\.npy: Fortran-order \(column-major\) array; lockstep reads C order/,
    },
    {
      name: 'an unknown dtype',
      files: { 'x.npy': npy('<c16', [2, 1], new Float64Array(4)), 'y.npy': npy('|u1', [2], u8(2)) },
      args: ['--data', 'x.npy', '--labels', 'y.npy'],
      expected: /x\.npy: unknown dtype '<c16'/,
    },
    // Two .npy files: each message names the one at fault, once.
    {
      name: 'float labels for an .npy',
      files: { 'x.npy': npy('|u1', [2, 1], u8(2)), 'yf.npy': npy('<f4', [2], new Float32Array(2)) },
      args: ['--data', 'x.npy', '--labels', 'yf.npy'],
      expected:
        /^lockstep: [^ :]*\/yf\.npy: labels of dtype '<f4'; labels must be integers \(in NumPy: y\.astype\(np\.int64\)\)$/,
    },
    {
      name: 'an .npy with more labels than examples',
      files: { 'x.npy': npy('|u1', [2, 1], u8(2)), 'y.npy': npy('|u1', [3], u8(3)) },
      args: ['--data', 'x.npy', '--labels', 'y.npy'],
      expected: /^lockstep: [^ :]*\/x\.npy has 2 examples but [^ :]*\/y\.npy has 3 labels$/,
    },
    {
      name: 'a zip that is not an .npz',
      files: { 'd.npz': zipSync({ 'readme.txt': new TextEncoder().encode('hello') }) },
      args: ['--data', 'd.npz'],
      expected: /d\.npz: a zip that is not an \.npz \(no \.npy arrays; it holds readme\.txt\)$/,
    },
  ];
  for (const { name, files, args, expected } of cases) {
    it(
      name,
      () => {
        const dir = tempDir();
        for (const [file, content] of Object.entries(files)) write(dir, file, content);
        const r = runCli(['train', ...args, '--epochs', '1', '--checkpoint', 'run.ckpt', '--log', 'log.csv'], {
          cwd: dir,
        });
        expect(r.code).toBe(2);
        const lines = r.stderr.trim().split('\n');
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(/^lockstep: /);
        expect(lines[0]).toMatch(expected);
        expect(r.stdout).toBe('');
        expect(existsSync(join(dir, 'run.ckpt'))).toBe(false);
        expect(existsSync(join(dir, 'log.csv'))).toBe(false);
      },
      SLOW_TEST_TIMEOUT,
    );
  }

  it('names the library error class too: a UserError', () => {
    const dir = tempDir();
    expect(() => loadDataset(write(dir, 'd.csv', 'a,label\n1,x\n2\n'), {})).toThrow(UserError);
  });
});

function zipped(arrays: Record<string, Uint8Array>, level: 0 | 6 = 0): Uint8Array {
  return zipSync(Object.fromEntries(Object.entries(arrays).map(([name, bytes]) => [`${name}.npy`, bytes])), { level });
}
