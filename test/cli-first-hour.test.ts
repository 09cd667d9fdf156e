import { copyFileSync, cpSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IDX_FILES } from '../src/data/dataset.js';
import { runCli, tempDir, writeIdxDir, type CliOutcome } from './helpers.js';

/**
 * What a new user meets in the first hour: nothing they made is replaced unless they say so, and every
 * refusal is one line that names what they typed. Each test runs the real CLI.
 */
const SMALL = ['--layers', '16,8,10', '--batch-size', '16', '--threads', '1'];

function lockstep(...args: string[]): CliOutcome {
  return runCli(args, { timeout: 100_000 });
}

/** Exit 2 and a single `lockstep: …` line on stderr containing every fragment, and nothing on stdout. */
function refused(r: CliOutcome, ...fragments: string[]): string {
  expect({ code: r.code, stdout: r.stdout }, r.stderr).toEqual({ code: 2, stdout: '' });
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^lockstep: /);
  for (const f of fragments) expect(lines[0]).toContain(f);
  return lines[0];
}

function succeeded(r: CliOutcome): CliOutcome {
  expect(r.code, r.stderr).toBe(0);
  return r;
}

/** Trains a small run on `data` with checkpoint `path`; returns the checkpoint's bytes. */
function smallRun(data: string, path: string, ...flags: string[]): Buffer {
  succeeded(lockstep('train', '--data', data, ...SMALL, '--checkpoint', path, ...flags));
  return readFileSync(path);
}

/** A directory holding a copy of a small dataset, `data/`, that a test may delete. */
function movableData(): { base: string; data: string } {
  const base = tempDir();
  const data = join(base, 'data');
  cpSync(writeIdxDir(), data, { recursive: true });
  return { base, data };
}

describe('checkpoints of other runs are kept', { timeout: 120_000 }, () => {
  it("refuses --checkpoint naming another run's checkpoint, before reading any data, and leaves it byte for byte", () => {
    const data = writeIdxDir();
    const dir = tempDir();
    const finished = join(dir, 'finished.ckpt');
    const before = smallRun(data, finished, '--epochs', '2');

    const line = refused(
      lockstep('train', '--data', data, ...SMALL, '--epochs', '1', '--checkpoint', finished),
      `--checkpoint ${finished}`,
    );
    expect(line).toContain(`--resume ${finished}`);
    expect(line).toContain('--force');
    // A data directory that does not exist is not what is reported: the refusal comes before the data is read.
    refused(
      lockstep('train', '--data', join(dir, 'no-such-dir'), ...SMALL, '--checkpoint', finished),
      `--checkpoint ${finished}`,
    );
    refused(lockstep('train', '--data', data, ...SMALL, '--init', finished, '--checkpoint', finished), '--force');
    expect(readFileSync(finished).equals(before)).toBe(true);
    expect(readdirSync(dir)).toEqual(['finished.ckpt']);

    succeeded(lockstep('train', '--data', data, ...SMALL, '--epochs', '1', '--checkpoint', finished, '--force'));
    expect(readFileSync(finished).equals(before)).toBe(false);
  });

  it('lets a resumed run write to its own checkpoint, and to another one only with --force', () => {
    const data = writeIdxDir();
    const dir = tempDir();
    const [a, b] = [join(dir, 'a.ckpt'), join(dir, 'b.ckpt')];
    const [aBefore, bBefore] = [smallRun(data, a, '--epochs', '1'), smallRun(data, b, '--epochs', '1', '--seed', '7')];

    const resumed = succeeded(lockstep('train', '--resume', a, '--epochs', '2', '--threads', '1'));
    expect(resumed.stdout).toMatch(/^Epoch 2:/m);
    expect(readFileSync(a).equals(aBefore)).toBe(false);
    const aAfter = readFileSync(a);
    succeeded(lockstep('train', '--resume', a, '--checkpoint', a, '--epochs', '3', '--threads', '1'));
    expect(readFileSync(a).equals(aAfter)).toBe(false);

    const line = refused(
      lockstep('train', '--resume', a, '--checkpoint', b, '--epochs', '4', '--threads', '1'),
      `--checkpoint ${b}`,
      '--force',
    );
    expect(line).toContain(`--resume ${b}`);
    expect(readFileSync(b).equals(bBefore)).toBe(true);
    succeeded(lockstep('train', '--resume', a, '--checkpoint', b, '--epochs', '4', '--threads', '1', '--force'));
    expect(readFileSync(b).equals(bBefore)).toBe(false);

    // A copy of the checkpoint being resumed is the same run at the same point: no --force needed to continue into it.
    const copy = join(dir, 'copy.ckpt');
    copyFileSync(a, copy);
    succeeded(lockstep('train', '--resume', a, '--checkpoint', copy, '--epochs', '5', '--threads', '1'));
    expect(readFileSync(copy).equals(readFileSync(a))).toBe(false);
  });
});

describe('nothing to do, nothing lost', { timeout: 120_000 }, () => {
  it('a resume of a finished run says there is nothing to train; export never writes over the checkpoint it reads', () => {
    const dir = tempDir();
    const ckpt = join(dir, 'done.ckpt');
    const before = smallRun(writeIdxDir(), ckpt, '--epochs', '1');
    const r = succeeded(lockstep('train', '--resume', ckpt, '--threads', '1'));
    expect(r.stderr.trim()).toBe(
      `lockstep: notice: ${ckpt} has already taken 13 steps (1 epoch): nothing to train; give a larger --epochs to go on`,
    );
    expect(r.stdout).not.toMatch(/^Epoch/m);
    // A cosine schedule ended with its epochs, which a resume keeps: the notice does not offer a larger --epochs.
    const cosine = join(dir, 'cosine.ckpt');
    smallRun(writeIdxDir(), cosine, '--epochs', '1', '--lr-schedule', 'cosine');
    expect(succeeded(lockstep('train', '--resume', cosine, '--threads', '1')).stderr.trim()).toBe(
      `lockstep: notice: ${cosine} has already taken 13 steps (1 epoch): nothing to train; its cosine schedule has ended (train anew with a larger --epochs to go further)`,
    );
    refused(lockstep('export', ckpt, '--to', `${dir}/./done.ckpt`, '--force'), 'is the checkpoint being exported');
    expect(readFileSync(ckpt).equals(before)).toBe(true);
  });
});

describe('a checkpoint whose data directory has gone', { timeout: 120_000 }, () => {
  it('is named, with what is missing and --data DIR as the way out, by eval, predict and a resume', () => {
    const { base, data } = movableData();
    const ckpt = join(base, 'run.ckpt');
    smallRun(data, ckpt, '--epochs', '1');

    rmSync(join(data, IDX_FILES.testLabels));
    refused(
      lockstep('eval', ckpt),
      `${ckpt}: its data directory ${data} has no ${IDX_FILES.testLabels}; give --data DIR`,
    );
    rmSync(data, { recursive: true });
    for (const args of [
      ['eval', ckpt],
      ['predict', ckpt, '--index', '3'],
      ['train', '--resume', ckpt, '--epochs', '2'],
    ]) {
      const line = refused(lockstep(...args), `${ckpt}: its data directory ${data} no longer exists; give --data DIR`);
      expect(line).not.toContain(`--data ${data}`);
    }
    const elsewhere = writeIdxDir();
    expect(succeeded(lockstep('eval', ckpt, '--data', elsewhere)).stdout).toContain('test accuracy');
  });

  it('eval says when the checkpoint was trained on part of the split it reads whole', () => {
    const ckpt = join(tempDir(), 'limited.ckpt');
    smallRun(writeIdxDir(), ckpt, '--epochs', '1', '--test-limit', '20');
    const r = succeeded(lockstep('eval', ckpt));
    expect(r.stderr.trim()).toBe(
      `lockstep: notice: ${ckpt} was trained with --test-limit 20; eval reads the whole test split`,
    );
    expect(r.stdout).toMatch(/test accuracy [\d.]+ \(\d+\/50\)/);
    // other data was not cut by the run's limit: no notice
    expect(succeeded(lockstep('eval', ckpt, '--data', writeIdxDir())).stderr).toBe('');
  });
});

describe('flags', { timeout: 120_000 }, () => {
  it('--version prints the package version', () => {
    const { version } = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as {
      version: string;
    };
    const r = succeeded(lockstep('--version'));
    expect(r.stdout.trim()).toBe(version);
  });

  it("only train's help speaks of --resume: sweep runs fresh trainings", () => {
    expect(succeeded(lockstep('train', '--help')).stdout).toMatch(/--epochs .*\(with --resume: the checkpoint's\)/);
    expect(succeeded(lockstep('sweep', '--help')).stdout).not.toContain('--resume');
  });

  it('refuses a switch given a value other than true or false, and accepts those two', () => {
    const tiny = ['--data', writeIdxDir(), '--layers', '16,8,10', '--epochs', '1', '--max-steps', '2'];
    refused(lockstep('train', ...tiny, '--json=yes'), '--json=yes: ');
    refused(lockstep('export', 'x.ckpt', '--to', 'y.safetensors', '--force=no'), '--force=no: ');
    refused(lockstep('--debug=1', 'train'), '--debug=1: ');
    refused(lockstep('train', ...tiny, '--no-json=yes'), '--no-json=yes: --json is a switch');
    refused(lockstep('train', '--no-jsn'), '--no-jsn: not a flag of `train`');
    refused(lockstep('train', '-xy'), '-x, -y: not a flag of `train`');
    // --json=false is taken: the refusal is about the next flag.
    refused(
      lockstep('train', ...tiny, '--json=false', '--reference=true', '--batch-size', '0'),
      '--batch-size 0: must be a positive integer',
    );
  });

  it('reports a stray word as the word typed, not as a flag', () => {
    const yes = refused(
      lockstep('train', '--json', 'yes'),
      'yes: unexpected argument to `train`',
      '--json takes no value',
    );
    expect(yes).not.toContain('--yes');
    expect(refused(lockstep('train', 'extra'), 'extra: unexpected argument to `train`')).not.toContain('--extra');
    refused(lockstep('eval', 'a.ckpt', 'b.ckpt'), 'b.ckpt: unexpected argument to `eval`');
    refused(lockstep('trian'), 'trian: not a command of lockstep; did you mean train?');
    refused(lockstep('frobnicate'), 'frobnicate: not a command of lockstep');
    refused(lockstep('--versio'), '--versio: not a flag of lockstep; name a command first (see lockstep --help)');
    refused(lockstep(), 'name a command: lockstep --help');
    refused(lockstep('train', '--epoch', '3'), '--epoch: not a flag of `train`');
  });

  it.each([
    [
      ['train', '--seed', '9007199254740993'],
      '--seed 9007199254740993: out of range; must be from 0 to 9007199254740991',
    ],
    [['train', '--seed', '-1'], '--seed -1: must be an integer from 0 to 9007199254740991'],
    [
      ['train', '--epochs', '99999999999999999999'],
      '--epochs 99999999999999999999: out of range; must be from 1 to 9007199254740991',
    ],
    [
      ['train', '--threads', '99999999999999999999'],
      '--threads 99999999999999999999: out of range; must be from 1 to 128',
    ],
    [
      ['bench', '--threads', '1,99999999999999999999'],
      '--threads 1,99999999999999999999: 99999999999999999999 is out of range; each must be from 1 to 128',
    ],
    [['bench', '--threads', '1,200'], '--threads 1,200: 200 is out of range; each must be from 1 to 128'],
    [['bench', '--threads', ''], '--threads: needs a value'],
    [
      ['verify', '--kernels', 'avx2,wasm'],
      '--kernels avx2,wasm: must be one of native, avx512, avx2, wasm, js (one value)',
    ],
    [['train', '--layers', ''], '--layers: needs a value'],
    // A flag with a default, written without its value: yargs would run the default without a word.
    [['verify', '--threads', '--steps', '1'], '--threads: needs a value'],
    [['bench', '--batch-size', '--threads', '1'], '--batch-size: needs a value'],
    [['verify', '--threads', '1', '--steps'], '--steps: needs a value'],
    [['train', '--data', '-'], '--data: needs a value'],
    [['sweep', '--lr', '-0.1,0.5'], '--lr: needs a value (a value that starts with -: --lr=-0.1,0.5)'],
    [['train', '--epochs', '1.5x'], '--epochs 1.5x: must be an integer'],
    [
      ['predict', 'm.ckpt', '--index', '99999999999999999999'],
      '--index 99999999999999999999: out of range; must be from 0 to 9007199254740991',
    ],
    [['predict', 'm.ckpt', '--index', '1e30'], '--index 1e30: must be an integer'],
  ])('%j: one line that says what is wrong with the number typed', (args, message) => {
    expect(refused(lockstep(...args))).toBe(`lockstep: ${message}`);
  });

  it('refuses --threads and --kernels beside --reference, which runs one plain thread', () => {
    const tiny = ['--data', writeIdxDir(), '--layers', '16,8,10', '--epochs', '1', '--max-steps', '2'];
    refused(lockstep('train', ...tiny, '--reference', '--threads', '2'), '--reference and --threads 2');
    refused(lockstep('train', ...tiny, '--reference', '--kernels', 'js'), '--reference and --kernels js');
    succeeded(lockstep('train', ...tiny, '--reference', '--threads', '1'));
  });

  it("lockstep --help says what predict classifies: an image by --index or --image, a table's rows by --csv", () => {
    const help = succeeded(lockstep('--help')).stdout;
    // The command's entry: its line and the wrapped lines under it, up to the next command.
    const predict = /^ {2}lockstep predict <model>([\s\S]*?)\n {2}lockstep /m.exec(help)?.[1].replace(/\s+/g, ' ');
    expect(predict).toBeDefined();
    for (const flag of ['--index', '--image FILE', '--csv ROWS.csv']) expect(predict).toContain(flag);
  });

  it('--help labels each flag with its kind: no numeric flag is a [string]', () => {
    const numeric =
      /^--(epochs|max-steps|batch-size|lr|layers|seed|train-limit|test-limit|threads|steps|warmup|repeats|index)$/;
    let checked = 0;
    for (const command of ['train', 'bench', 'verify', 'eval', 'predict']) {
      const help = succeeded(lockstep(command, '--help')).stdout;
      // One entry per flag: its line and the wrapped lines under it.
      for (const entry of help.split(/\n(?=\s{2}-)/)) {
        const name = /^\s*(--[a-z-]+)/.exec(entry)?.[1];
        if (!name || !numeric.test(name)) continue;
        expect(entry, `${command} ${name}`).not.toContain('[string]');
        expect(entry, `${command} ${name}`).toMatch(/\[(integer|number|list)\]/);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(25);
    const train = succeeded(lockstep('train', '--help')).stdout;
    for (const shown of [
      '[integer] [default: 20]',
      '[number] [default: 0.5]',
      '[list] [default: 784,128,64,10]',
      '[boolean] [default: false]',
    ]) {
      expect(train).toContain(shown);
    }
  });
});
