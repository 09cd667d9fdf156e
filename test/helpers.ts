import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { encodeIdx } from '../src/data/idx.js';
import type { LabeledImages } from '../src/data/dataset.js';
import { IDX_FILES } from '../src/data/dataset.js';
import { Rng } from '../src/random/rng.js';

/** The CLI as a user runs it: the compiled dist/src/cli.js (npm test builds first). */
export const CLI = join(import.meta.dirname, '..', 'dist', 'src', 'cli.js');

export interface CliOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `lockstep ARGS` in a child process and waits for it. */
export function runCli(
  args: string[], options: { env?: Record<string, string>; uid?: number; cwd?: string; timeout?: number } = {},
): CliOutcome {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8', timeout: options.timeout ?? 60_000, env: { ...process.env, ...options.env },
    uid: options.uid, gid: options.uid, cwd: options.cwd,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function tempDir(prefix = 'lockstep-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Random byte images, about `zeroFraction` of pixels exactly 0 (MNIST: ~0.81), labels below `classes`. */
export function syntheticImages(count: number, imageSize: number, classes: number, seed: number, zeroFraction = 0.5): LabeledImages {
  const rng = new Rng(seed);
  const images = new Uint8Array(count * imageSize);
  for (let i = 0; i < images.length; i++) images[i] = rng.nextDouble() < zeroFraction ? 0 : 1 + rng.nextInt(255);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) labels[i] = rng.nextInt(classes);
  return { imagesPath: '(synthetic)', labelsPath: '(synthetic)', count, imageSize, images, labels };
}

export interface IdxDirOptions {
  trainCount?: number;
  testCount?: number;
  height?: number;
  width?: number;
  classes?: number;
  gzip?: boolean;
}

/** Writes the four standard IDX files of a small random dataset into a new directory. */
export function writeIdxDir(options: IdxDirOptions = {}): string {
  const { trainCount = 200, testCount = 50, height = 4, width = 4, classes = 10, gzip = false } = options;
  const dir = tempDir();
  const write = (name: string, bytes: Uint8Array) =>
    writeFileSync(join(dir, gzip ? `${name}.gz` : name), gzip ? gzipSync(bytes) : bytes);
  const train = syntheticImages(trainCount, height * width, classes, 1);
  const test = syntheticImages(testCount, height * width, classes, 2);
  write(IDX_FILES.trainImages, encodeIdx([trainCount, height, width], train.images));
  write(IDX_FILES.trainLabels, encodeIdx([trainCount], train.labels));
  write(IDX_FILES.testImages, encodeIdx([testCount, height, width], test.images));
  write(IDX_FILES.testLabels, encodeIdx([testCount], test.labels));
  return dir;
}

export function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}
