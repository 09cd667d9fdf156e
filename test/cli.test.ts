import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IDX_FILES } from '../src/data/dataset.js';
import { runCli, writeIdxDir } from './helpers.js';

const lockstep = (...args: string[]) => runCli(args);

function expectOneLineError(r: ReturnType<typeof lockstep>, ...fragments: string[]) {
  expect(r.code).toBe(2);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(r.stderr).not.toMatch(/^\s+at /m); // no stack frame on any line
  for (const f of fragments) expect(lines[0]).toContain(f);
}

describe('lockstep CLI', () => {
  it('documents every train flag and its default in --help', () => {
    const r = lockstep('train', '--help');
    expect(r.code).toBe(0);
    for (const flag of ['--epochs', '--batch-size', '--lr', '--layers', '--seed', '--data', '--max-steps', '--json']) {
      expect(r.stdout).toContain(flag);
    }
    for (const shown of [
      '[default: 20]',
      '[default: 64]',
      '[default: 0.5]',
      '[default: 784,128,64,10]',
      '[default: 0]',
      '[default: no limit]',
    ]) {
      expect(r.stdout).toContain(shown);
    }
  });

  it('trains on a small IDX directory and prints JSON lines with the documented fields', () => {
    const dir = writeIdxDir();
    const r = lockstep('train', '--data', dir, '--layers', '16,8,10', '--epochs', '2', '--batch-size', '16', '--json');
    expect(r.code).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(3);
    for (const key of ['event', 'epoch', 'trainAccuracy', 'testAccuracy', 'trainLoss', 'trainSeconds', 'evalSeconds']) {
      expect(lines[0]).toHaveProperty(key);
    }
    // steps counts the run's steps so far, in every event as in --log; epochSteps the epoch's own
    expect(lines[1]).toMatchObject({ epoch: 2, epochSteps: Math.ceil(200 / 16), steps: 2 * Math.ceil(200 / 16) });
    expect(lines[2]).toMatchObject({ event: 'done', epochs: 2, steps: 2 * Math.ceil(200 / 16) });
    expect(lines[2].paramsSha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses a truncated image file with one line naming it', () => {
    const dir = writeIdxDir();
    const path = join(dir, IDX_FILES.trainImages);
    writeFileSync(path, readFileSync(path).subarray(0, 100));
    expectOneLineError(lockstep('train', '--data', dir, '--layers', '16,10'), path, 'truncated');
  });

  it.each([
    [['--epochs', '1.5'], '--epochs 1.5'],
    [['--epochs', '0'], '--epochs 0'],
    [['--lr', 'abc'], '--lr abc'],
    [['--lr', '-1'], '--lr -1'],
    [['--layers', '784,0,10'], '--layers 784,0,10'],
    [['--batch-size', '0'], '--batch-size 0'],
    [['--max-steps', '-3'], '--max-steps -3'],
    [['--epoch', '3'], '--epoch: not a flag of `train` (see --help)'],
  ])('refuses %j with one line naming the flag', (args, fragment) => {
    expectOneLineError(lockstep('train', ...args), fragment);
  });
});

describe('kernel fallback', () => {
  it('notices a missing WebAssembly SIMD in one line, unless the user chose the kernels', async () => {
    const { kernelFallbackNotice } = await import('../src/cli/flags.js');
    expect(kernelFallbackNotice({ reference: false }, false)).toMatch(
      /^this runtime has no WebAssembly SIMD; using the js kernels/,
    );
    expect(kernelFallbackNotice({ reference: false }, true)).toBeNull();
    expect(kernelFallbackNotice({ kernels: 'js', reference: false }, false)).toBeNull();
    expect(kernelFallbackNotice({ reference: true }, false)).toBeNull();
  });
});
