import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { zipSync } from 'fflate';
import { expect } from 'vitest';
import { encodeIdx } from '../src/data/idx.js';
import type { LabeledRows } from '../src/data/dataset.js';
import { IDX_FILES } from '../src/data/dataset.js';
import { UserError } from '../src/errors.js';
import { Rng } from '../src/random/rng.js';

/** The CLI as a user runs it: the compiled dist/src/cli/main.js (npm test builds first). */
export const CLI = join(import.meta.dirname, '..', 'dist', 'src', 'cli', 'main.js');

/**
 * The limit of a test that starts lockstep processes or trains: several times what the slowest of them (a
 * scalar 200-step run) takes on a busy 2-core machine, so that only a hang reaches it.
 */
export const SLOW_TEST_TIMEOUT = 120_000;

export interface CliOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The ids of the processes whose command line holds `text` (a run's config folder, a marker in its flags). */
export function processesWith(text: string): string[] {
  return readdirSync('/proc').filter((pid) => {
    if (!/^\d+$/.test(pid)) return false;
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text);
    } catch {
      return false;
    }
  });
}

/** This CPU's feature flags (/proc/cpuinfo), e.g. avx2 and avx512f; empty where there is no such file. */
export function cpuFlags(): Set<string> {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '';
    return new Set(line.trim().split(/\s+/));
  } catch {
    return new Set();
  }
}

/** Runs `lockstep ARGS` in a child process and waits for it. */
export function runCli(
  args: string[],
  options: { env?: Record<string, string>; uid?: number; cwd?: string; timeout?: number } = {},
): CliOutcome {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: options.timeout ?? 60_000,
    env: { ...process.env, ...options.env },
    uid: options.uid,
    gid: options.uid,
    cwd: options.cwd,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * What the tests made and must undo, newest last: test/setup.ts undoes a test's share when it ends, pass or
 * fail, and the rest (made outside any test, e.g. in beforeAll) when its file ends.
 */
const cleanups: (() => void | Promise<void>)[] = [];

/** How many cleanups are pending: test/setup.ts marks where a test's own begin. */
export function pendingCleanups(): number {
  return cleanups.length;
}

/** Undoes, newest first, everything made since the first `from` cleanups (a process is ended before its directory goes). */
export async function cleanUp(from = 0): Promise<void> {
  for (const undo of cleanups.splice(from).reverse()) await undo();
}

/** A new empty directory in the system's temporary directory, removed when the test ends. */
export function tempDir(prefix = 'lockstep-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface StartedCli {
  child: ChildProcess;
  /** Resolves once stdout (or stderr) has printed a line matching `pattern`; rejects if the process ends first. */
  printed(pattern: RegExp, stream?: 'stdout' | 'stderr'): Promise<void>;
  /** Resolves when the process has ended, with everything it printed. */
  exit: Promise<CliOutcome>;
}

/**
 * Starts `lockstep ARGS` without waiting for it, for tests that act while it runs (send a signal after a
 * given line). A process still running when the test ends is killed, and waited for, before the test's
 * directories are removed.
 */
export function startCli(args: string[], options: { env?: Record<string, string> } = {}): StartedCli {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exit = new Promise<CliOutcome>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exit;
  });
  const printed = (pattern: RegExp, stream: 'stdout' | 'stderr' = 'stdout') =>
    new Promise<void>((resolve, reject) => {
      const seen = () =>
        (stream === 'stdout' ? stdout : stderr)
          .split('\n')
          .slice(0, -1)
          .some((line) => pattern.test(line));
      if (seen()) return resolve();
      const onData = () => {
        if (!seen()) return;
        child[stream].off('data', onData);
        resolve();
      };
      child[stream].on('data', onData);
      void exit.then((r) =>
        reject(new Error(`lockstep ended (code ${r.code}) before printing ${pattern}; stderr: ${r.stderr}`)),
      );
    });
  return { child, printed, exit };
}

/** Random byte images, about `zeroFraction` of pixels exactly 0 (MNIST: ~0.81), labels below `classes`. */
export function syntheticImages(
  count: number,
  featureCount: number,
  classes: number,
  seed: number,
  zeroFraction = 0.5,
): LabeledRows {
  const rng = new Rng(seed);
  const images = new Uint8Array(count * featureCount);
  for (let i = 0; i < images.length; i++) images[i] = rng.nextDouble() < zeroFraction ? 0 : 1 + rng.nextInt(255);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) labels[i] = rng.nextInt(classes);
  return { imagesPath: '(synthetic)', labelsPath: '(synthetic)', count, featureCount, images, labels };
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

/** The message of the UserError that `run` throws, or 'accepted' when it throws nothing (any other error fails the test). */
export function userErrorOf(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  return 'accepted';
}

export function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

/** Writes `arrays` (name → an .npy's bytes, see encodeNpy) as an .npz file, as np.savez does. */
export function writeNpz(path: string, arrays: Record<string, Uint8Array>): string {
  writeFileSync(
    path,
    zipSync(Object.fromEntries(Object.entries(arrays).map(([name, bytes]) => [`${name}.npy`, bytes])), { level: 0 }),
  );
  return path;
}

/**
 * A CSV table of `count` rows: `features` numeric columns f0…, a string label column `species` of three
 * classes (a, b, c) whose means differ, so a network learns it; drawn from `seed`.
 */
export function blobsCsv(count: number, seed: number, features = 4): string {
  const rng = new Rng(seed);
  const names = ['alpha', 'beta', 'gamma'];
  const lines = [[...Array.from({ length: features }, (_, k) => `f${k}`), 'species'].join(',')];
  for (let r = 0; r < count; r++) {
    const c = rng.nextInt(3);
    const cells = Array.from({ length: features }, (_, k) =>
      (c * (k + 1) + 3 * (rng.nextDouble() - 0.5) + 10 * k).toFixed(3),
    );
    lines.push([...cells, names[c]].join(','));
  }
  return `${lines.join('\n')}\n`;
}
