/**
 * bench/peers: the textbook recipe timed side by side in one run — lockstep at 1 thread and at all threads,
 * NumPy float32 (bench/peers/numpy_mlp.py, when python3 with numpy is present) and TensorFlow.js with its
 * WebAssembly backend (bench/peers/tfjs-mlp.ts). Same network, batch, lr, epochs and per-epoch evaluation.
 * Each system runs as its own process and is timed from outside (wall seconds, start-up included).
 *
 * Also times lockstep's thread scaling (`lockstep bench`). Prints a table and JSON, and writes
 * bench/results/peers.json and an SVG chart (vega-lite, rendered by vega) to bench/results/peers.svg.
 *
 * Usage: npm run bench:peers -- [--epochs 20] [--skip tfjs,numpy] [--chart-only: redraw from peers.json]
 *        npm run bench:peers -- --models [--rounds 3] [--quick]: the table by model size against PyTorch (models.ts)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import { defaultDataDir } from '../../src/data/dataset.js';
import { distPath, packageRoot } from '../../src/paths.js';
import { runModels } from './models.js';
import { flag } from '../args.js';

interface PeerResult {
  system: string;
  seconds: number | null;
  ratio: number | null;
  testAccuracy: number | null;
  note: string;
}

interface ScalingRow {
  threads: number;
  stepsPerSec: number;
  speedup: number;
  efficiency: number;
}

const root = packageRoot();
const cli = distPath('src', 'cli', 'main.js');
const epochs = Number(flag('epochs', '20'));
const skip = new Set(flag('skip', '').split(',').filter(Boolean));
const maxThreads = availableParallelism();
const dataDir = defaultDataDir();

/** Runs one system to completion; wall time measured here, test accuracy from its last JSON line. */
function timeSystem(system: string, command: string, args: string[]): PeerResult {
  process.stderr.write(`running ${system} …\n`);
  const t0 = performance.now();
  const r = spawnSync(command, args, { encoding: 'utf8', cwd: root, maxBuffer: 64 << 20 });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0)
    return {
      system,
      seconds: null,
      ratio: null,
      testAccuracy: null,
      note: `failed: ${(r.stderr || String(r.error)).trim().split('\n')[0]}`,
    };
  const done = JSON.parse(r.stdout.trim().split('\n').pop()!);
  return { system, seconds, ratio: null, testAccuracy: done.testAccuracy, note: '' };
}

function numpyAvailable(): boolean {
  return spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;
}

const outDir = join(root, 'bench', 'results');
if (process.argv.includes('--models')) {
  await runModels();
} else if (process.argv.includes('--chart-only')) {
  const saved = JSON.parse(readFileSync(join(outDir, 'peers.json'), 'utf8')) as {
    epochs: number;
    results: PeerResult[];
    scaling: ScalingRow[];
  };
  await writeChart(saved.epochs, saved.results, saved.scaling);
} else {
  await runAll();
}

async function runAll(): Promise<void> {
  const results: PeerResult[] = [];
  results.push(
    timeSystem('lockstep, 1 thread', process.execPath, [
      cli,
      'train',
      '--epochs',
      String(epochs),
      '--threads',
      '1',
      '--json',
    ]),
  );
  results.push(
    timeSystem(`lockstep, ${maxThreads} threads`, process.execPath, [
      cli,
      'train',
      '--epochs',
      String(epochs),
      '--threads',
      String(maxThreads),
      '--json',
    ]),
  );
  if (skip.has('numpy')) {
    results.push({
      system: 'NumPy float32 (OpenBLAS)',
      seconds: null,
      ratio: null,
      testAccuracy: null,
      note: 'skipped (--skip)',
    });
  } else if (!numpyAvailable()) {
    process.stderr.write('notice: python3 with numpy not found; the NumPy peer is skipped\n');
    results.push({
      system: 'NumPy float32 (OpenBLAS)',
      seconds: null,
      ratio: null,
      testAccuracy: null,
      note: 'skipped: no python3 with numpy',
    });
  } else {
    results.push(
      timeSystem('NumPy float32 (OpenBLAS)', 'python3', [
        join(root, 'bench', 'peers', 'numpy_mlp.py'),
        dataDir,
        String(epochs),
      ]),
    );
  }
  if (skip.has('tfjs')) {
    results.push({
      system: 'TensorFlow.js, wasm backend',
      seconds: null,
      ratio: null,
      testAccuracy: null,
      note: 'skipped (--skip)',
    });
  } else {
    results.push(
      timeSystem('TensorFlow.js, wasm backend', process.execPath, [
        join(root, 'dist', 'bench', 'peers', 'tfjs-mlp.js'),
        dataDir,
        String(epochs),
      ]),
    );
  }
  const base = results[1].seconds;
  for (const r of results) r.ratio = r.seconds !== null && base !== null ? r.seconds / base : null;

  process.stderr.write('running lockstep bench (thread scaling) …\n');
  const threadList = Array.from({ length: maxThreads }, (_, i) => i + 1).join(',');
  const benchRun = spawnSync(
    process.execPath,
    [cli, 'bench', '--threads', threadList, '--batch-size', '64', '--steps', '1000', '--repeats', '3', '--json'],
    { encoding: 'utf8', cwd: root },
  );
  // bench --json starts with a {"event":"machine"} line; the rows are its "bench" events.
  const scaling: ScalingRow[] =
    benchRun.status === 0
      ? benchRun.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l))
          .filter((r) => r.event === 'bench')
      : [];

  const fmt = (v: number | null, digits: number) => (v === null ? '-' : v.toFixed(digits));
  console.log(
    `\nThe textbook recipe, ${epochs} epochs (784-128-64-10, batch 64, lr 0.5, train and test accuracy every epoch)`,
  );
  console.log('| system | wall s | ratio to lockstep (all threads) | test acc | note |');
  console.log('| --- | ---: | ---: | ---: | --- |');
  for (const r of results)
    console.log(`| ${r.system} | ${fmt(r.seconds, 2)} | ${fmt(r.ratio, 2)} | ${fmt(r.testAccuracy, 4)} | ${r.note} |`);
  console.log('\nlockstep thread scaling, batch 64 (median of 3 runs of 1000 steps)');
  console.log('| threads | steps/s | speedup | efficiency |');
  console.log('| ---: | ---: | ---: | ---: |');
  for (const s of scaling)
    console.log(
      `| ${s.threads} | ${s.stepsPerSec.toFixed(0)} | ${s.speedup.toFixed(2)} | ${s.efficiency.toFixed(2)} |`,
    );

  const report = { epochs, machine: { cores: maxThreads, node: process.version }, results, scaling };
  console.log(JSON.stringify(report));
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'peers.json'), `${JSON.stringify(report, null, 2)}\n`);
  await writeChart(epochs, results, scaling);
}

async function writeChart(epochs: number, results: PeerResult[], scaling: ScalingRow[]): Promise<void> {
  const timed = results.filter((r) => r.seconds !== null);
  const longest = Math.max(...timed.map((r) => r.seconds!));
  const spec: vegaLite.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    hconcat: [
      {
        title: `The textbook recipe, ${epochs} epochs: wall seconds`,
        data: { values: timed },
        encoding: {
          y: { field: 'system', type: 'nominal', sort: null, title: null, axis: { labelLimit: 260 } },
          x: {
            field: 'seconds',
            type: 'quantitative',
            scale: { type: 'log', domain: [1, longest * 3] },
            title: 'wall seconds, log scale (lower is better)',
          },
        },
        layer: [
          // Bars on a log axis need an explicit base: they start at 1 s.
          { mark: 'bar', encoding: { x2: { datum: 1 } } },
          {
            mark: { type: 'text', align: 'left', dx: 4 },
            encoding: { text: { field: 'seconds', type: 'quantitative', format: '.1f' } },
          },
        ],
        width: 320,
      },
      {
        title: 'lockstep thread scaling (batch 64)',
        data: { values: scaling },
        layer: [
          {
            mark: { type: 'line', point: true },
            encoding: {
              x: { field: 'threads', type: 'quantitative' },
              y: { field: 'speedup', type: 'quantitative', title: 'speedup over 1 thread' },
            },
          },
          {
            mark: { type: 'line', strokeDash: [4, 4], color: 'gray' },
            encoding: { x: { field: 'threads', type: 'quantitative' }, y: { field: 'threads', type: 'quantitative' } },
          },
        ],
        width: 240,
      },
    ],
  };
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  writeFileSync(join(outDir, 'peers.svg'), await view.toSVG());
  process.stderr.write(`wrote ${join(outDir, 'peers.json')} and ${join(outDir, 'peers.svg')}\n`);
}
