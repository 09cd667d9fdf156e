/**
 * bench:peers' table by model size: lockstep (native and wasm kernels) against PyTorch doing the same SGD
 * steps (bench/peers/torch_steps.py: same layers, batch, MNIST rows, torch.set_num_threads) at 1 and 2
 * threads, then the whole 20-epoch default recipe (`lockstep train`) against NumPy float32 with one BLAS thread.
 * Every side runs as its own process; the sides take turns within each round and the table gives the
 * medians of the rounds, so a machine that changes speed between hours moves all sides alike.
 *
 * PyTorch: a current CPU wheel found on the machine (a torch-*.whl in LOCKSTEP_TORCH_WHEELS, /opt/wheels or
 * the repository root) installed once into bench/.torch-venv (a venv with --system-site-packages, nothing
 * downloaded), or LOCKSTEP_TORCH_PYTHON. A torch older than 2 (Debian's 1.13 ran these steps 26× slower than
 * the 2.13 wheel on the same machine) is not a peer: the table then says the peer is missing.
 *
 * Usage: npm run bench:peers -- --models [--rounds 3] [--quick]   (writes bench/results/models.json and .svg)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import { defaultDataDir } from '../../src/data/dataset.js';
import { median } from '../../src/train/calibrate.js';
import { nativeStatus } from '../../src/kernels/native.js';
import { distPath, packageRoot } from '../../src/paths.js';
import { flag } from '../args.js';

const root = packageRoot();
const cli = distPath('src', 'cli', 'main.js');
const outDir = join(root, 'bench', 'results');

const quick = process.argv.includes('--quick');
const rounds = Number(flag('rounds', quick ? '1' : '3'));

/** The models of the table, each with its batch and enough steps for about a second of PyTorch's time. */
const MODELS = [
  { layers: '784,128,64,10', batch: 64, steps: quick ? 300 : 1500, warmup: 50 },
  { layers: '784,512,256,10', batch: 128, steps: quick ? 60 : 300, warmup: 10 },
  { layers: '784,1024,1024,10', batch: 256, steps: quick ? 15 : 50, warmup: 3 },
];
const THREADS = [1, 2];

interface Torch {
  python: string | null;
  version: string;
  note: string;
}

const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(cmd, args, { encoding: 'utf8', cwd: root, env, maxBuffer: 64 << 20 });

/** torch's major version under `python`, or null where it has none. */
function torchVersion(python: string): string | null {
  const r = run(python, ['-c', 'import torch; print(torch.__version__)']);
  return r.status === 0 ? r.stdout.trim() : null;
}

/** A current PyTorch: LOCKSTEP_TORCH_PYTHON, bench/.torch-venv, or a wheel on the machine installed there. */
function findTorch(): Torch {
  const candidates = [process.env.LOCKSTEP_TORCH_PYTHON, join(root, 'bench', '.torch-venv', 'bin', 'python')].filter(
    (p): p is string => !!p,
  );
  for (const python of candidates) {
    const version = existsSync(python) || !python.includes('/') ? torchVersion(python) : null;
    if (version && Number(version.split('.')[0]) >= 2) return { python, version, note: '' };
  }
  const dirs = [process.env.LOCKSTEP_TORCH_WHEELS, '/opt/wheels', join(homedir(), 'wheels'), root].filter(
    (d): d is string => !!d && existsSync(d),
  );
  const wheels = dirs.flatMap((d) =>
    readdirSync(d)
      .filter((f) => /^torch-\d.*\+cpu.*\.whl$/.test(f))
      .map((f) => join(d, f)),
  );
  wheels.sort((a, b) => b.localeCompare(a, undefined, { numeric: true }));
  if (wheels.length > 0) {
    const venv = join(root, 'bench', '.torch-venv');
    process.stderr.write(`installing ${wheels[0]} into ${venv} (once) …\n`);
    const made = run('python3', ['-m', 'venv', '--system-site-packages', venv]);
    const pip = join(venv, 'bin', 'pip');
    const installed = made.status === 0 ? run(pip, ['install', '-q', '--no-deps', '--no-index', wheels[0]]) : made;
    // threadpoolctl names the BLAS kernel NumPy runs; where no index has it, the table says so instead
    if (installed.status === 0) run(pip, ['install', '-q', '--retries', '0', '--timeout', '5', 'threadpoolctl']);
    const python = join(venv, 'bin', 'python');
    const version = installed.status === 0 ? torchVersion(python) : null;
    if (version) return { python, version, note: '' };
    return {
      python: null,
      version: '',
      note: `peer missing: ${wheels[0]} did not install (${(installed.stderr || '').trim().split('\n').pop()})`,
    };
  }
  const system = torchVersion('python3');
  if (system && Number(system.split('.')[0]) < 2) {
    return {
      python: null,
      version: system,
      note: `peer missing: only torch ${system} found, a build too old to compare with (no torch-*+cpu.whl on this machine)`,
    };
  }
  return system
    ? { python: 'python3', version: system, note: '' }
    : { python: null, version: '', note: 'peer missing: no PyTorch 2 and no torch-*+cpu.whl on this machine' };
}

type Side = 'native' | 'wasm' | 'torch';
interface Cell {
  layers: string;
  batch: number;
  threads: number;
  side: Side;
  samples: number[];
}

/** lockstep bench at 1 and 2 threads (its 1-thread baseline is always run): steps/s by thread count. */
function lockstepSteps(kernels: string, m: (typeof MODELS)[number]): Map<number, number> {
  const r = run(process.execPath, [
    cli,
    'bench',
    '--layers',
    m.layers,
    '--batch-size',
    String(m.batch),
    '--threads',
    THREADS.join(','),
    '--steps',
    String(m.steps),
    '--warmup',
    String(m.warmup),
    '--repeats',
    '1',
    '--lr',
    '0.1',
    '--kernels',
    kernels,
    '--json',
  ]);
  if (r.status !== 0) throw new Error(`lockstep bench --kernels ${kernels} failed: ${r.stderr.trim()}`);
  const rows = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((e) => e.event === 'bench');
  return new Map(rows.map((e) => [e.threads as number, e.stepsPerSec as number]));
}

function torchSteps(python: string, m: (typeof MODELS)[number], threads: number): number {
  const r = run(python, [
    join(root, 'bench', 'peers', 'torch_steps.py'),
    defaultDataDir(),
    m.layers,
    String(m.batch),
    String(threads),
    String(m.steps),
    String(m.warmup),
  ]);
  if (r.status !== 0) throw new Error(`torch_steps.py failed: ${r.stderr.trim().split('\n').pop()}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!).stepsPerSec;
}

/** NumPy with its BLAS on one thread and its own kernel choice (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset). */
function numpyEnv(): NodeJS.ProcessEnv {
  const { OPENBLAS_CORETYPE: _c, OPENBLAS_L2_SIZE: _l, ...env } = process.env;
  return { ...env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1' };
}

function wallSeconds(cmd: string, args: string[], env?: NodeJS.ProcessEnv): number {
  const t0 = performance.now();
  const r = run(cmd, args, env);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.trim().split('\n').pop()}`);
  return (performance.now() - t0) / 1000;
}

export async function runModels(): Promise<void> {
  const torch = findTorch();
  const native = nativeStatus().isas[0];
  const sides: Side[] = [...(native ? ['native' as const] : []), 'wasm', ...(torch.python ? ['torch' as const] : [])];
  console.log(
    `lockstep native kernels: ${native ?? `none (${nativeStatus().missing ?? 'this CPU has neither AVX-512F nor AVX2'})`}`,
  );
  if (torch.python) {
    const config = run(torch.python, [join(root, 'bench', 'peers', 'torch_steps.py'), '--config'])
      .stdout.trim()
      .split('\n');
    const build = (config.find((l) => l.includes('Build settings')) ?? '')
      .split(', ')
      .filter((kv) => /^(BLAS_INFO|USE_MKLDNN|USE_OPENMP|TORCH_VERSION)=/.test(kv));
    const lines = config.filter((l) => /^torch |GCC|CPU capability/.test(l.trim())).map((l) => l.trim());
    console.log(`PyTorch: ${torch.python}\n  ${[...lines, build.join(', ')].join('\n  ')}`);
  } else {
    console.log(`PyTorch: ${torch.note}`);
  }

  const cells: Cell[] = [];
  const cell = (layers: string, batch: number, threads: number, side: Side): Cell => {
    let c = cells.find((x) => x.layers === layers && x.batch === batch && x.threads === threads && x.side === side);
    if (!c) cells.push((c = { layers, batch, threads, side, samples: [] }));
    return c;
  };
  const recipe = { lockstep: [] as number[], numpy: [] as number[] };
  const numpyOk = run('python3', ['-c', 'import numpy']).status === 0;
  for (let round = 1; round <= rounds; round++) {
    for (const m of MODELS) {
      for (const side of sides) {
        process.stderr.write(`round ${round}/${rounds}: ${m.layers} batch ${m.batch}, ${side} …\n`);
        if (side === 'torch') {
          for (const t of THREADS) cell(m.layers, m.batch, t, side).samples.push(torchSteps(torch.python!, m, t));
        } else {
          for (const [t, s] of lockstepSteps(side === 'native' ? native! : 'wasm', m))
            cell(m.layers, m.batch, t, side).samples.push(s);
        }
      }
    }
    if (numpyOk) {
      process.stderr.write(`round ${round}/${rounds}: the 20-epoch recipe, lockstep train and NumPy …\n`);
      recipe.lockstep.push(wallSeconds(process.execPath, [cli, 'train', '--json']));
      recipe.numpy.push(
        wallSeconds('python3', [join(root, 'bench', 'peers', 'numpy_mlp.py'), defaultDataDir(), '20'], numpyEnv()),
      );
    }
  }

  const med = (layers: string, batch: number, threads: number, side: Side) => {
    const c = cells.find((x) => x.layers === layers && x.batch === batch && x.threads === threads && x.side === side);
    return c ? median(c.samples) : null;
  };
  const fmt = (v: number | null, d: number) => (v === null ? '-' : v.toFixed(d));
  const rows = MODELS.flatMap((m) =>
    THREADS.map((t) => {
      const [n, w, p] = (['native', 'wasm', 'torch'] as const).map((s) => med(m.layers, m.batch, t, s));
      return {
        layers: m.layers,
        batch: m.batch,
        threads: t,
        native: n,
        wasm: w,
        torch: p,
        nativeOverTorch: n !== null && p !== null ? n / p : null,
        nativeOverWasm: n !== null && w !== null ? n / w : null,
      };
    }),
  );
  console.log(
    `\nSGD steps per second, median of ${rounds} round${rounds === 1 ? '' : 's'} (sides alternating within each round)`,
  );
  console.log(
    `| layers, batch | threads | lockstep ${native ?? 'native'} | lockstep wasm | PyTorch ${torch.version || ''} | native ÷ PyTorch | native ÷ wasm |`,
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    console.log(
      `| ${r.layers}, ${r.batch} | ${r.threads} | ${fmt(r.native, 1)} | ${fmt(r.wasm, 1)} | ${r.torch === null ? torch.note || '-' : fmt(r.torch, 1)} | ${fmt(r.nativeOverTorch, 2)} | ${fmt(r.nativeOverWasm, 2)} |`,
    );
  }
  let recipeRow = null;
  if (numpyOk) {
    const blas = run(
      torch.python ?? 'python3',
      ['-c', 'import numpy, threadpoolctl, json; print(json.dumps(threadpoolctl.threadpool_info()))'],
      numpyEnv(),
    );
    const info =
      blas.status === 0
        ? (JSON.parse(blas.stdout) as { internal_api: string; version: string; architecture: string }[])
        : [];
    const kernel =
      info.map((i) => `${i.internal_api} ${i.version}, kernel ${i.architecture}`).join('; ') ||
      'threadpoolctl not available';
    recipeRow = { lockstep: median(recipe.lockstep), numpy: median(recipe.numpy), blas: kernel };
    console.log(`\nThe 20-epoch default recipe, wall seconds (start-up included), median of ${rounds}:`);
    console.log(
      `  lockstep train (defaults) ${recipeRow.lockstep.toFixed(2)} s; NumPy float32, 1 BLAS thread (${kernel}) ${recipeRow.numpy.toFixed(2)} s; ratio ${(recipeRow.lockstep / recipeRow.numpy).toFixed(2)}`,
    );
  }
  const report = {
    rounds,
    torch: { version: torch.version, note: torch.note },
    native: native ?? null,
    rows,
    recipe: recipeRow,
    samples: cells,
  };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'models.json'), `${JSON.stringify(report, null, 2)}\n`);
  await chart(rows, torch.version);
  console.log(`wrote ${join(outDir, 'models.json')} and ${join(outDir, 'models.svg')}`);
}

async function chart(
  rows: {
    layers: string;
    batch: number;
    threads: number;
    native: number | null;
    wasm: number | null;
    torch: number | null;
  }[],
  torchVersion: string,
) {
  const values = rows.flatMap((r) =>
    (
      [
        ['lockstep native', r.native],
        ['lockstep wasm', r.wasm],
        [`PyTorch ${torchVersion}`, r.torch],
      ] as const
    )
      .filter(([, v]) => v !== null)
      .map(([system, v]) => ({
        model: `${r.layers} (batch ${r.batch})`,
        threads: `${r.threads} thread${r.threads === 1 ? '' : 's'}`,
        system,
        stepsPerSec: v,
      })),
  );
  const spec: vegaLite.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'SGD steps per second by model size (higher is better)',
    data: { values },
    facet: {
      column: { field: 'threads', type: 'nominal', title: null },
      row: { field: 'model', type: 'nominal', title: null, header: { labelAngle: 0, labelAlign: 'left' } },
    },
    spec: {
      width: 260,
      height: 60,
      layer: [
        {
          mark: 'bar',
          encoding: {
            y: { field: 'system', type: 'nominal', title: null },
            x: { field: 'stepsPerSec', type: 'quantitative', title: 'steps/s' },
            color: { field: 'system', type: 'nominal', legend: null },
          },
        },
        {
          mark: { type: 'text', align: 'left', dx: 3 },
          encoding: {
            y: { field: 'system', type: 'nominal' },
            x: { field: 'stepsPerSec', type: 'quantitative' },
            text: { field: 'stepsPerSec', type: 'quantitative', format: '.1f' },
          },
        },
      ],
    },
    resolve: { scale: { x: 'independent' } },
  };
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  writeFileSync(join(outDir, 'models.svg'), await view.toSVG());
}
