import { copyFileSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { blobsCsv, runCli, SLOW_TEST_TIMEOUT, tempDir, writeIdxDir, type CliOutcome } from './helpers.js';

/** What a new user meets around model files: each refusal is one line naming the file or flag, exit 2. */
const SMALL = ['--layers', '16,8,10', '--batch-size', '16', '--epochs', '1', '--max-steps', '3', '--threads', '1'];

/** Exit 2, nothing on stdout, and exactly `line` on stderr. */
function refused(r: CliOutcome, line: string): void {
  expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 2, stdout: '', stderr: `${line}\n` });
}

function succeeded(r: CliOutcome): CliOutcome {
  expect(r.code, r.stderr).toBe(0);
  return r;
}

describe('export --to: the format goes by the extension', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir();
    succeeded(runCli(['train', '--data', writeIdxDir(), ...SMALL, '--checkpoint', 'run.ckpt'], { cwd: dir }));
  }, SLOW_TEST_TIMEOUT);

  it(
    'refuses any extension but .safetensors, .st and .onnx, with or without --force, and writes nothing',
    () => {
      refused(
        runCli(['export', 'run.ckpt', '--to', 'model.npz'], { cwd: dir }),
        'lockstep: --to model.npz: export writes .safetensors (or .st) or .onnx',
      );
      writeFileSync(join(dir, 'run.csv'), 'a,b\n1,2\n');
      refused(
        runCli(['export', 'run.ckpt', '--to', 'run.csv', '--force'], { cwd: dir }),
        'lockstep: --to run.csv: export writes .safetensors (or .st) or .onnx',
      );
      expect(readFileSync(join(dir, 'run.csv'), 'utf8')).toBe('a,b\n1,2\n');
      // The checkpoint itself is named as such, whatever its extension.
      refused(
        runCli(['export', 'run.ckpt', '--to', 'run.ckpt', '--force'], { cwd: dir }),
        'lockstep: --to run.ckpt: is the checkpoint being exported; name another file',
      );
      expect(readdirSync(dir).sort()).toEqual(['run.ckpt', 'run.csv']);
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    '--resume of a safetensors model says what reads one and what needs a checkpoint',
    () => {
      succeeded(runCli(['export', 'run.ckpt', '--to', 'model.safetensors', '--force'], { cwd: dir }));
      refused(
        runCli(['train', '--resume', 'model.safetensors'], { cwd: dir }),
        'lockstep: --resume model.safetensors: a safetensors model, not a checkpoint (eval, predict, export and --init read it; --resume needs a checkpoint)',
      );
      // export does read it, as the message says.
      succeeded(runCli(['export', 'model.safetensors', '--to', 'again.onnx', '--force'], { cwd: dir }));
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'writes safetensors to .safetensors and .st, ONNX to .onnx (any case)',
    () => {
      for (const [to, format] of [
        ['a.safetensors', 'safetensors'],
        ['b.st', 'safetensors'],
        ['c.ONNX', 'onnx'],
      ]) {
        const r = succeeded(runCli(['export', 'run.ckpt', '--to', to, '--json'], { cwd: dir }));
        expect(JSON.parse(r.stdout)).toMatchObject({ event: 'export', to, format });
      }
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'names --to when it has no value or is given twice',
    () => {
      const before = readdirSync(dir);
      refused(runCli(['export', 'run.ckpt', '--to'], { cwd: dir }), 'lockstep: --to: needs a value');
      refused(runCli(['export', 'run.ckpt', '--to', ' '], { cwd: dir }), 'lockstep: --to: needs a value');
      refused(
        runCli(['export', 'run.ckpt', '--to', 'a.onnx', '--to', 'b.onnx'], { cwd: dir }),
        'lockstep: --to given 2 times (a.onnx, b.onnx); give it once',
      );
      expect(readdirSync(dir)).toEqual(before);
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'eval, predict and export of an ONNX file (found by content, whatever its name) say lockstep does not read ONNX back',
    () => {
      succeeded(runCli(['export', 'run.ckpt', '--to', 'model.onnx'], { cwd: dir }));
      copyFileSync(join(dir, 'model.onnx'), join(dir, 'model.bin'));
      const notRead = (file: string) =>
        `lockstep: ${file}: an ONNX model, which lockstep writes but does not read back; give a checkpoint or a .safetensors model`;
      refused(runCli(['eval', 'model.onnx'], { cwd: dir }), notRead('model.onnx'));
      refused(runCli(['predict', 'model.bin', '--index', '0'], { cwd: dir }), notRead('model.bin'));
      refused(runCli(['export', 'model.onnx', '--to', 'again.safetensors'], { cwd: dir }), notRead('model.onnx'));
    },
    SLOW_TEST_TIMEOUT,
  );
});

describe('a model trained on a CSV table', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir();
    writeFileSync(join(dir, 'tr.csv'), blobsCsv(60, 31));
    succeeded(
      runCli(
        [
          'train',
          '--data',
          'tr.csv',
          '--hidden',
          '8',
          '--batch-size',
          '16',
          '--epochs',
          '1',
          '--threads',
          '1',
          '--checkpoint',
          'nt.ckpt',
        ],
        { cwd: dir },
      ),
    );
    succeeded(runCli(['export', 'nt.ckpt', '--to', 'nt.safetensors'], { cwd: dir }));
  }, SLOW_TEST_TIMEOUT);

  it(
    'predict without --csv says the model reads rows, on the test split (the default) as on the train split',
    () => {
      const rows = (model: string) =>
        `lockstep: --index: ${model} reads rows of numbers, not images; classify a table's rows with --csv ROWS.csv`;
      refused(runCli(['predict', 'nt.ckpt'], { cwd: dir }), rows('nt.ckpt'));
      refused(runCli(['predict', 'nt.ckpt', '--index', '2'], { cwd: dir }), rows('nt.ckpt'));
      refused(runCli(['predict', 'nt.ckpt', '--split', 'train', '--index', '0'], { cwd: dir }), rows('nt.ckpt'));
      refused(runCli(['predict', 'nt.safetensors', '--data', 'tr.csv'], { cwd: dir }), rows('nt.safetensors'));
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'eval of a table with no test rows names the flag eval takes; an image model refuses a table with its own name',
    () => {
      refused(
        runCli(['eval', 'nt.ckpt'], { cwd: dir }),
        `lockstep: --data ${join(dir, 'tr.csv')}: has no test rows (evaluate a table of test rows with --data FILE.csv, or give --split train)`,
      );
      const image = join(dir, 'image.ckpt');
      succeeded(runCli(['train', '--data', writeIdxDir(), ...SMALL, '--checkpoint', image], { cwd: dir }));
      const predicted = runCli(['predict', image, '--data', 'tr.csv'], { cwd: dir });
      refused(
        predicted,
        "lockstep: --data tr.csv: predict reads images (--index) from an IDX directory; classify a table's rows with --csv tr.csv",
      );
      refused(
        runCli(['eval', image, '--data', 'tr.csv', '--split', 'train'], { cwd: dir }),
        `lockstep: tr.csv: rows of 4 inputs, but ${image}'s first layer has 16`,
      );
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'eval and train --resume, once the CSV file has moved, name it as a data file and --data FILE as the way out',
    () => {
      renameSync(join(dir, 'tr.csv'), join(dir, 'moved.csv'));
      const gone = `lockstep: nt.ckpt: its data file ${join(dir, 'tr.csv')} no longer exists; give --data FILE`;
      refused(runCli(['eval', 'nt.ckpt'], { cwd: dir }), gone);
      refused(runCli(['eval', 'nt.ckpt', '--split', 'train'], { cwd: dir }), gone);
      refused(runCli(['train', '--resume', 'nt.ckpt', '--epochs', '2'], { cwd: dir }), gone);
      expect(
        succeeded(runCli(['eval', 'nt.ckpt', '--split', 'train', '--data', 'moved.csv'], { cwd: dir })).stdout,
      ).toMatch(/^nt\.ckpt: train accuracy /);
    },
    SLOW_TEST_TIMEOUT,
  );
});
