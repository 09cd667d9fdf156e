/**
 * bench:tables: lockstep's recipe for tables beside scikit-learn's MLPClassifier on scikit-learn's digits,
 * iris, wine and breast-cancer. bench/tables.py makes an 80/20 split of each as CSV files in a temp dir and
 * scores StandardScaler + MLPClassifier with its defaults; lockstep trains on the same files with RECIPE (its
 * default scaling is standard too). Both run once per seed 0..SEEDS-1; the table shows the mean test
 * accuracy and the range. The temp dir is removed pass or fail.
 *
 * Usage: npm run bench:tables -- [--seeds 5] [--python bench/.sklearn-venv/bin/python] [--recipe "FLAGS"]
 * (scikit-learn: python3 -m venv bench/.sklearn-venv && bench/.sklearn-venv/bin/pip install scikit-learn)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { distPath, packageRoot } from '../src/paths.js';
import { flag } from './args.js';

/** The README's recipe for tables: scikit-learn's MLPClassifier defaults, with a wider hidden layer. */
export const TABLE_RECIPE = '--optimizer adam --hidden 200 --batch-size 200 --epochs 150';

const root = packageRoot();
const cli = distPath('src', 'cli', 'main.js');
const venvPython = join(root, 'bench', '.sklearn-venv', 'bin', 'python');
const python = flag('python', existsSync(venvPython) ? venvPython : 'python3');
const seeds = Number(flag('seeds', '5'));
const recipe = flag('recipe', TABLE_RECIPE);
if (!Number.isSafeInteger(seeds) || seeds < 1) {
  process.stderr.write(`bench:tables: --seeds ${flag('seeds', '')}: must be a positive integer\n`);
  process.exit(2);
}

interface Scores {
  rows: [number, number];
  acc: number[];
}

function summary(acc: number[]): string {
  const mean = acc.reduce((a, b) => a + b, 0) / acc.length;
  return `${mean.toFixed(4)} [${Math.min(...acc).toFixed(4)}–${Math.max(...acc).toFixed(4)}]`;
}

function lockstepAcc(dir: string, name: string, seed: number): number {
  const args = [
    cli,
    'train',
    '--data',
    join(dir, `${name}-train.csv`),
    '--test-data',
    join(dir, `${name}-test.csv`),
    ...recipe.split(/\s+/).filter(Boolean),
    '--seed',
    String(seed),
    '--threads',
    '1',
    '--json',
    '--quiet',
  ];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0)
    throw new Error(`lockstep ${name} seed ${seed} failed: ${(r.stderr || String(r.error)).trim().split('\n').pop()}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!).testAccuracy;
}

const dir = mkdtempSync(join(tmpdir(), 'lockstep-tables-'));
try {
  process.stderr.write(`scikit-learn (${python}) …\n`);
  const py = spawnSync(python, [join(root, 'bench', 'tables.py'), dir, String(seeds)], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (py.status !== 0) {
    const why = (py.stderr || String(py.error)).trim().split('\n').pop();
    throw new Error(
      `${python} bench/tables.py failed (${why}); install scikit-learn: python3 -m venv bench/.sklearn-venv && bench/.sklearn-venv/bin/pip install scikit-learn`,
    );
  }
  const sklearn = JSON.parse(py.stdout) as Record<string, Scores>;
  const lines = [
    `test accuracy, mean [min–max] of ${seeds} seed${seeds === 1 ? '' : 's'}; lockstep: ${recipe}`,
    `${'dataset'.padEnd(14)}${'train/test'.padEnd(12)}${'MLPClassifier'.padEnd(26)}${'lockstep'.padEnd(26)}lockstep − sklearn`,
  ];
  for (const [name, s] of Object.entries(sklearn)) {
    process.stderr.write(`lockstep ${name} …\n`);
    const ours = Array.from({ length: seeds }, (_, seed) => lockstepAcc(dir, name, seed));
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    const diff = mean(ours) - mean(s.acc);
    lines.push(
      `${name.padEnd(14)}${`${s.rows[0]}/${s.rows[1]}`.padEnd(12)}${summary(s.acc).padEnd(26)}${summary(ours).padEnd(26)}${diff >= 0 ? '+' : '−'}${Math.abs(diff).toFixed(4)}`,
    );
  }
  console.log(lines.join('\n'));
} catch (err) {
  process.stderr.write(`bench:tables: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
