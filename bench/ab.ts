/**
 * A/B comparison of two lockstep builds on a noisy machine: the same `lockstep` command run alternately
 * with each build (A, B, A, B, …) for --rounds rounds, and the medians of its JSON results per build.
 *
 *   node dist/bench/ab.js --a /path/to/old/checkout --b . --rounds 8 -- bench --threads 1,2 --steps 1000
 *   node dist/bench/ab.js --a OLD --b NEW --rounds 5 -- train --threads 2
 *
 * Each checkout must be built (`npm run build`). `bench` commands are compared on steps/s, speedup and
 * (with --profile) ceilingSpeedup per thread count and batch size; `train` on the Done line's seconds.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { median } from '../src/train/calibrate.js';

interface Options {
  a: string;
  b: string;
  rounds: number;
  command: string[];
}

function parseArgs(argv: string[]): Options {
  const split = argv.indexOf('--');
  if (split < 0)
    throw new Error('ab: usage: node dist/bench/ab.js --a DIR --b DIR [--rounds N (5)] -- LOCKSTEP-COMMAND…');
  const own = argv.slice(0, split);
  const values = new Map<string, string>();
  for (let i = 0; i < own.length; i += 2) {
    const name = own[i].replace(/^--/, '');
    if (!['a', 'b', 'rounds'].includes(name) || !own[i].startsWith('--'))
      throw new Error(`ab: ${own[i]}: not a flag of ab (--a, --b, --rounds)`);
    const value = own[i + 1];
    if (value === undefined || value.startsWith('--')) throw new Error(`ab: --${name}: needs a value`);
    values.set(name, value);
  }
  const flag = (name: string, fallback?: string) => {
    const value = values.get(name) ?? fallback;
    if (value === undefined) throw new Error(`ab: --${name} is required`);
    return value;
  };
  const rounds = Number(flag('rounds', '5'));
  if (!Number.isSafeInteger(rounds) || rounds < 1)
    throw new Error(`ab: --rounds ${flag('rounds')}: must be a positive integer`);
  const command = argv.slice(split + 1);
  if (command.length === 0) throw new Error('ab: name a lockstep command after --, e.g. -- bench --threads 1,2');
  const a = resolve(flag('a'));
  const b = resolve(flag('b'));
  for (const dir of [a, b]) cliOf(dir);
  return { a, b, rounds, command };
}

/** A checkout's built CLI: dist/src/cli/main.js, or dist/src/cli.js in builds from before the CLI moved into src/cli/. */
function cliOf(dir: string): string {
  const cli = [join(dir, 'dist', 'src', 'cli', 'main.js'), join(dir, 'dist', 'src', 'cli.js')].find((path) =>
    existsSync(path),
  );
  if (cli === undefined) throw new Error(`ab: ${dir}: no dist/src/cli/main.js (run npm run build there)`);
  return cli;
}

/** One run of the command with one build: its measurements, keyed by what they measure. */
function runOnce(checkout: string, command: string[]): Map<string, number> {
  const r = spawnSync(process.execPath, [cliOf(checkout), ...command, '--json'], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`ab: ${checkout}: lockstep exited ${r.status}: ${r.stderr.trim()}`);
  const out = new Map<string, number>();
  for (const line of r.stdout.trim().split('\n')) {
    let row: Record<string, number | string>;
    try {
      row = JSON.parse(line) as Record<string, number | string>;
    } catch {
      throw new Error(`ab: \`lockstep ${command.join(' ')}\` printed a line that is not JSON: ${line.slice(0, 80)}`);
    }
    if (row.event === 'bench') {
      const key = `threads ${row.threads}, batch ${row.batchSize}`;
      out.set(`${key}: steps/s`, row.stepsPerSec as number);
      out.set(`${key}: speedup`, row.speedup as number);
      if (row.ceilingSpeedup !== undefined) out.set(`${key}: ceilingSpeedup`, row.ceilingSpeedup as number);
    } else if (row.event === 'done') {
      out.set('seconds', row.seconds as number);
    }
  }
  if (out.size === 0)
    throw new Error(`ab: \`lockstep ${command.join(' ')}\` measured nothing to compare (ab compares bench and train)`);
  return out;
}

function main(): void {
  const options = parseArgs(process.argv.slice(2));
  const results = { A: new Map<string, number[]>(), B: new Map<string, number[]>() };
  for (let round = 1; round <= options.rounds; round++) {
    for (const [name, checkout] of [
      ['A', options.a],
      ['B', options.b],
    ] as const) {
      const measured = runOnce(checkout, options.command);
      for (const [key, value] of measured) {
        const list = results[name].get(key) ?? [];
        list.push(value);
        results[name].set(key, list);
      }
      process.stderr.write(
        `round ${round} ${name}: ${[...measured].map(([k, v]) => `${k} ${v.toFixed(3)}`).join('; ')}\n`,
      );
    }
  }
  console.log(
    `A = ${options.a}\nB = ${options.b}\n${options.rounds} rounds of \`lockstep ${options.command.join(' ')}\`, alternating; medians:`,
  );
  for (const [key, a] of results.A) {
    const b = results.B.get(key) ?? [];
    const ma = median(a);
    const mb = median(b);
    console.log(
      `${key.padEnd(40)} A ${ma.toFixed(3).padStart(10)}  B ${mb.toFixed(3).padStart(10)}  B/A ${(mb / ma).toFixed(3)}`,
    );
  }
}

try {
  main();
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exitCode = 2;
}
