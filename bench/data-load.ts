/**
 * Loading benchmark (docs/benchmarks.md, "Loading data"): each round, in alternation and each in a fresh process,
 *   csv          lockstep's CSV load of FILE.csv         against NumPy's np.loadtxt(FILE, delimiter=",", skiprows=1, dtype=np.float32)
 *   npz          lockstep's load of an np.savez .npz      against the same data as raw IDX files
 *   npz-gz       of an np.savez_compressed .npz           against gzipped IDX files
 * and prints the medians and their ratios. Each process times the load alone (not its start-up).
 *
 *   node dist/bench/data-load.js --csv mnist_train.csv --npz mnist.npz --idx idxdir --npz-gz mnist_c.npz --idx-gz idxgzdir [--rounds 5]
 *   node dist/bench/data-load.js --one PATH      (a child: loads PATH with loadDataset, prints the seconds)
 */
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { loadDataset } from '../src/data/dataset.js';
import { median } from '../src/train/calibrate.js';
import { flag as arg } from './args.js';

function child(path: string): number {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--one', path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`loading ${path} failed: ${r.stderr}`);
  return Number(r.stdout.trim());
}

function numpyLoadtxt(path: string): number {
  const code =
    'import sys, time, numpy as np\nt = time.perf_counter()\nnp.loadtxt(sys.argv[1], delimiter=",", skiprows=1, dtype=np.float32)\nprint(time.perf_counter() - t)';
  const r = spawnSync('python3', ['-c', code, path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`np.loadtxt failed: ${r.stderr}`);
  return Number(r.stdout.trim());
}

const one = arg('one');
if (one !== undefined) {
  const t = performance.now();
  const data = loadDataset(one, {});
  if (data.train.count === 0) throw new Error('no rows');
  console.log(((performance.now() - t) / 1000).toFixed(4));
} else {
  const rounds = Number(arg('rounds') ?? 5);
  const pairs: [string, () => number, string, () => number][] = [];
  const csv = arg('csv');
  if (csv) pairs.push([`lockstep ${csv}`, () => child(csv), 'np.loadtxt', () => numpyLoadtxt(csv)]);
  for (const [npzFlag, idxFlag] of [
    ['npz', 'idx'],
    ['npz-gz', 'idx-gz'],
  ]) {
    const npz = arg(npzFlag);
    const idx = arg(idxFlag);
    if (npz && idx) pairs.push([`lockstep ${npz}`, () => child(npz), `lockstep ${idx} (IDX)`, () => child(idx)]);
  }
  const times = pairs.map(() => [[] as number[], [] as number[]]);
  for (let round = 0; round < rounds; round++) {
    pairs.forEach(([, a, , b], i) => {
      times[i][0].push(a());
      times[i][1].push(b());
    });
  }
  pairs.forEach(([nameA, , nameB], i) => {
    const [a, b] = times[i].map(median);
    console.log(
      `${nameA}: ${a.toFixed(2)} s, ${nameB}: ${b.toFixed(2)} s, ratio ${(a / b).toFixed(2)} (medians of ${rounds}; all: ${times[i][0].map((t) => t.toFixed(2)).join(' ')} | ${times[i][1].map((t) => t.toFixed(2)).join(' ')})`,
    );
  });
}
