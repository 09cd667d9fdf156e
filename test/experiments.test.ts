import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { loadDataset } from '../src/data/dataset.js';
import { benchmark, hashAgreement, type BenchRow } from '../src/experiments/bench.js';
import { modelLayout } from '../src/model/layout.js';
import { checkAgainst, parameterName, ulpDistance } from '../src/experiments/verify.js';
import type { TraceFile } from '../src/experiments/trace.js';
import { UserError } from '../src/errors.js';
import { scalingChart } from '../src/experiments/charts.js';
import { defaultThreadCounts } from '../src/coordinator/threads.js';
import { machineFacts } from '../src/experiments/machine.js';
import { defaultKernels } from '../src/kernels/select.js';
import { renderSvg } from '../src/experiments/output.js';
import { formatAgreement, shortWindowNote } from '../src/cli/bench-command.js';
import { CLI, processesWith, runCli, SLOW_TEST_TIMEOUT, startCli, tempDir } from './helpers.js';

const SMALL = ['--train-limit', '3000', '--test-limit', '200'];

function lockstep(args: string[], env: Record<string, string> = {}) {
  const r = runCli(args, { env, timeout: 120_000 });
  return {
    ...r,
    json: () =>
      r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
  };
}

describe('lockstep verify', () => {
  it('exits 0 and reports identical hashes when all runs agree (JSON fields documented)', () => {
    const r = lockstep(['verify', '--threads', '1,3', '--steps', '40', ...SMALL, '--json']);
    expect(r.code).toBe(0);
    const [verdict, ...rows] = r.json().reverse();
    rows.reverse();
    // The last line is the verdict, as the text's "all identical".
    expect(verdict).toEqual({ event: 'verdict', identical: true });
    expect(rows.map((x) => x.threads)).toEqual(['reference', 1, 3]);
    // as train and bench do, it says when a thread count is above the cores
    const cores = availableParallelism();
    expect(r.stderr).toBe(
      cores < 3
        ? `lockstep: notice: --threads 3: more threads than the ${cores} available cores; they take turns on the cores, so it is slower (the bits compared are the same)\n`
        : '',
    );
    // The default list (1,2,4) runs 4 threads on any machine without a word; typed, it gets the notice too.
    const typed = lockstep(['verify', '--threads', '1,2,4', '--steps', '2', ...SMALL, '--json']);
    const untyped = lockstep(['verify', '--steps', '2', ...SMALL, '--json']);
    expect(untyped.stderr).toBe('');
    expect(typed.stderr).toBe(
      cores < 4
        ? `lockstep: notice: --threads 4: more threads than the ${cores} available cores; they take turns on the cores, so it is slower (the bits compared are the same)\n`
        : '',
    );
    for (const row of rows) {
      expect(row).toMatchObject({
        event: 'verify',
        equal: true,
        differing: 0,
        maxAbsDiff: 0,
        maxUlp: 0,
        firstDifference: null,
      });
      expect(row.paramsSha256).toBe(rows[0].paramsSha256);
    }
  }, 60_000);

  it("compares the first --steps steps of the run train would do: its --epochs set a cosine schedule's rates", () => {
    const flags = ['--train-limit', '640', '--batch-size', '64', '--lr-schedule', 'cosine', '--epochs', '2'];
    const r = lockstep(['verify', '--threads', '1,2', '--steps', '15', ...flags, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const hashes = new Set(r.json().flatMap((row) => (row.event === 'verify' ? [row.paramsSha256] : [])));
    const trained = lockstep(['train', '--max-steps', '15', ...flags, '--json'])
      .json()
      .at(-1);
    expect([...hashes]).toEqual([trained.paramsSha256]);
    // Another --epochs anneals otherwise: other weights by step 15.
    const longer = lockstep(['verify', '--threads', '1', '--steps', '15', ...flags.slice(0, -1), '3', '--json']);
    expect(longer.json()[0].paramsSha256).not.toBe(trained.paramsSha256);
    // More steps than the run has (verify's default 300 on a small table, say): the whole run, with a notice.
    const over = lockstep(['verify', '--threads', '1', '--steps', '21', ...flags]);
    expect({ code: over.code, stderr: over.stderr }).toEqual({
      code: 0,
      stderr: 'lockstep: notice: --steps 21: the run has 20 steps (2 epochs); verify compares them all\n',
    });
    expect(over.stdout).toMatch(/^lockstep verify: 20 steps at threads 1 against the reference trainer/);
    const whole = lockstep(['train', '--max-steps', '20', ...flags, '--json'])
      .json()
      .at(-1);
    expect(over.stdout).toContain(whole.paramsSha256);
  }, 60_000);

  it('exits non-zero and names the tensor and index when one parameter differs by one ULP', () => {
    // Parameter 100480 is the first weight of layer 1 (784·128 + 128 = 100480): layers.1.weight[out=0, in=0].
    const r = lockstep(['verify', '--threads', '2', '--steps', '20', ...SMALL], { LOCKSTEP_TEST_PERTURB: '2:100481' });
    expect(r.code).toBe(4);
    expect(r.stdout).toMatch(/^2 .* 1 {2}layers\.1\.weight\[out=1, in=0\] \(parameter 100481\)$/m);
    expect(r.stdout).toContain('NOT IDENTICAL');
  }, 60_000);

  it(
    '--trace names the first step, layer and parameter where a perturbed run parts from the reference, and its ULP distance',
    () => {
      const args = ['verify', '--threads', '1,2', '--steps', '12', ...SMALL, '--trace', '--json'];
      // One ULP added to layers.1.weight[out=1, in=0] of the 2-thread run, in its live parameters after step 7.
      const r = lockstep(args, { LOCKSTEP_TEST_PERTURB: '2:100481:7' });
      expect(r.code).toBe(4);
      const [reference, one, two, verdict] = r.json();
      expect(verdict).toEqual({ event: 'verdict', identical: false });
      expect(reference.trace).toEqual({ steps: 12, reference: null });
      expect(one.trace).toEqual({ steps: 12, reference: null });
      expect(two.trace).toEqual({
        steps: 12,
        reference: {
          step: 7,
          layers: ['layers.1'],
          firstParameter: 'layers.1.weight[out=1, in=0] (parameter 100481)',
          firstUlp: 1,
          differing: 1,
          maxUlp: 1,
        },
      });
      // Traced every 5 steps, the difference made after step 7 is first seen at step 10, by then spread further.
      const sparse = lockstep(
        ['verify', '--threads', '2', '--steps', '12', ...SMALL, '--trace', '--trace-every', '5'],
        { LOCKSTEP_TEST_PERTURB: '2:100481:7' },
      );
      expect(sparse.code).toBe(4);
      expect(sparse.stdout).toMatch(
        /^ {2}trace against the reference: first difference after step 10, in layers\.\d(, layers\.\d)*: layers\.\d\.\w+\[[^\]]*\] \(parameter \d+\) is \d+ ULP off; \d+ parameters differ there, by at most \d+ ULP$/m,
      );
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    '--save-trace writes a trace that --against compares with, naming the first differing step and layer',
    () => {
      const dir = tempDir();
      const file = join(dir, 'trace.json');
      const base = ['verify', '--threads', '2', '--steps', '10', ...SMALL];
      const saved = lockstep([...base, '--save-trace', file]);
      expect(saved.code, saved.stderr).toBe(0);
      const trace = JSON.parse(readFileSync(file, 'utf8'));
      expect(trace).toMatchObject({
        format: 'lockstep-trace',
        version: 1,
        every: 1,
        machine: { node: process.versions.node },
      });
      expect(
        trace.runs.map((run: { threads: unknown; steps: number[]; hashes: string[][] }) => [
          run.threads,
          run.steps.length,
          run.hashes[9].length,
        ]),
      ).toEqual([
        ['reference', 10, 3],
        [2, 10, 3],
      ]);
      const same = lockstep([...base, '--against', file, '--json']);
      expect(same.code, same.stderr).toBe(0);
      const sameRows = same.json().filter((row) => row.event === 'verify');
      expect(sameRows.map((row) => [row.trace.againstRun, row.trace.against, row.trace.againstSteps])).toEqual([
        ['reference', null, 10],
        [2, null, 10],
      ]);
      // A longer run is compared on the steps the file holds, and says how many those were.
      const longer = lockstep(['verify', '--threads', '2', '--steps', '12', ...SMALL, '--against', file]);
      expect(longer.code, longer.stderr).toBe(0);
      expect(longer.stdout).toContain(
        `  trace against ${file} (its 2-thread run): identical at all 10 steps the file holds too (of 12 traced here)`,
      );
      // No step in common: refused, not "identical" after comparing nothing.
      const apart = lockstep([
        'verify',
        '--threads',
        '2',
        '--steps',
        '12',
        '--trace-every',
        '11',
        ...SMALL,
        '--against',
        file,
      ]);
      expect(apart.code).toBe(2);
      expect(apart.stderr).toBe(
        'lockstep: --against: the trace holds steps 1–10 every 1, and none of them is traced here (--steps 12 --trace-every 11); give --trace-every 1\n',
      );
      const perturbed = lockstep([...base, '--against', file], { LOCKSTEP_TEST_PERTURB: '2:100481:4' });
      expect(perturbed.code).toBe(4);
      expect(perturbed.stdout).toContain(
        `  trace against ${file} (its 2-thread run): first difference after step 4, in layers.1 (the file holds hashes, not values)`,
      );
      expect(lockstep([...base, '--save-trace', file]).stderr).toBe(
        `lockstep: --save-trace ${file}: exists; pass --force to replace it\n`,
      );
      const other = lockstep(['verify', '--threads', '2', '--steps', '10', ...SMALL, '--lr', '0.1', '--against', file]);
      expect(other.code).toBe(2);
      expect(other.stderr).toBe(
        'lockstep: --against: the trace was made with other settings: --lr 0.5 there, 0.1 here\n',
      );
      expect(other.stdout).toBe('');
      const notTrace = join(dir, 'x.json');
      writeFileSync(notTrace, '{}');
      expect(lockstep([...base, '--against', notTrace]).stderr).toBe(
        `lockstep: --against ${notTrace}: not a lockstep trace (no "format": "lockstep-trace"); make one with verify --save-trace\n`,
      );
    },
    SLOW_TEST_TIMEOUT,
  );

  it('--against refuses a trace that shares no traced step with the run, saying which flag would fix it', () => {
    const file = {
      format: 'lockstep-trace',
      version: 1,
      run: '{"lr":0.5}',
      dataSha256: 'd',
      every: 5,
      machine: {},
      runs: [{ threads: 2, kernels: 'wasm', steps: [5, 10], hashes: [['a'], ['b']] }],
    } as unknown as TraceFile;
    const check = (every: number, steps: number) => () => checkAgainst(file, '{"lr":0.5}', 'd', { every, steps });
    expect(check(5, 3)).toThrow(
      new UserError(
        '--against: the trace holds steps 5–10 every 5, and none of them is traced here (--steps 3 --trace-every 5); give --steps 5 or more',
      ),
    );
    expect(check(3, 12)).toThrow(
      new UserError(
        '--against: the trace holds steps 5–10 every 5, and none of them is traced here (--steps 12 --trace-every 3); give --trace-every 5',
      ),
    );
    expect(check(5, 7)).not.toThrow();
    expect(check(3, 10)).not.toThrow(); // the last step is always traced
  });

  it('measures ULP distance across zero and names parameters in the [out, in] convention', () => {
    const bits = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0];
    expect(ulpDistance(bits(1), bits(1))).toBe(0);
    expect(ulpDistance(bits(1), bits(1) + 1)).toBe(1);
    expect(ulpDistance(bits(0), bits(-0))).toBe(0);
    expect(ulpDistance(bits(1e-45), bits(-1e-45))).toBe(2);
    const layout = modelLayout([3, 2, 4]);
    expect(parameterName(layout, 3)).toBe('layers.0.weight[out=1, in=1] (parameter 3)');
    expect(parameterName(layout, 7)).toBe('layers.0.bias[1] (parameter 7)');
    expect(parameterName(layout, 8)).toBe('layers.1.weight[out=0, in=0] (parameter 8)');
  });
});

describe('lockstep bench', () => {
  it("calls parameters that differ by thread count DIFFERENT, with each count's hash (and the CLI exits 4, as verify)", () => {
    const row = (threads: number, batchSize: number, paramsSha256: string) =>
      ({ threads, batchSize, paramsSha256 }) as BenchRow;
    const [same, differ] = hashAgreement([
      row(1, 64, 'a'.repeat(64)),
      row(2, 64, 'a'.repeat(64)),
      row(1, 32, 'b'.repeat(64)),
      row(2, 32, 'c'.repeat(64)),
    ]);
    expect(same).toEqual({ batchSize: 64, identical: true, paramsSha256: 'a'.repeat(64) });
    expect(differ).toEqual({
      batchSize: 32,
      identical: false,
      paramsSha256: 'b'.repeat(64),
      byThreads: { 1: 'b'.repeat(64), 2: 'c'.repeat(64) },
    });
    expect(formatAgreement(same)).toBe(
      `batch 64: identical parameters across thread counts (sha256 ${'a'.repeat(16)}…)`,
    );
    expect(formatAgreement(differ)).toBe(
      `batch 32: DIFFERENT parameters across thread counts (sha256 1 thread ${'b'.repeat(16)}…, 2 threads ${'c'.repeat(16)}…); lockstep verify names the first difference`,
    );
  });

  it('runs each batch size once, however often it is listed (as each thread count)', async () => {
    const dataset = loadDataset(undefined, { inputSize: 784, classes: 10, trainLimit: 500, testLimit: 50 });
    const rows = await benchmark(
      { threadCounts: [1, 1], batchSizes: [16, 16], steps: 2, warmup: 1, repeats: 1 },
      dataset,
    );
    expect(rows.map((r) => [r.threads, r.batchSize])).toEqual([[1, 16]]);
  });

  it(
    'prints the machine, then JSON rows with median, min and max, the 1-thread baseline always, and the same hash for every thread count',
    () => {
      const dir = tempDir();
      const [csv, svg] = [join(dir, 'b.csv'), join(dir, 'b.svg')];
      const crowded = availableParallelism() + 1;
      const r = lockstep([
        'bench',
        '--threads',
        `2,2,${crowded}`,
        '--batch-size',
        '32',
        '--steps',
        '30',
        '--warmup',
        '5',
        '--repeats',
        '2',
        ...SMALL,
        '--json',
        '--csv',
        csv,
        '--svg',
        svg,
      ]);
      expect(r.code, r.stderr).toBe(0);
      const [machine, ...events] = r.json();
      const rows = events.filter((e) => e.event === 'bench');
      // After the rows, one line per batch size: were the parameters identical at every thread count?
      expect(events.filter((e) => e.event !== 'bench')).toEqual([
        { event: 'agreement', batchSize: 32, identical: true, paramsSha256: rows[0].paramsSha256 },
      ]);
      expect(machine).toMatchObject({
        event: 'machine',
        cores: availableParallelism(),
        node: process.versions.node,
        v8: process.versions.v8,
        kernels: defaultKernels(),
      });
      expect(typeof machine.cpu).toBe('string');
      expect(r.stderr).toBe(
        `lockstep: notice: --threads ${crowded}: more threads than the ${availableParallelism()} available cores; they take turns on the cores, so their rows measure sharing, not scaling\n`,
      );
      expect(rows.map((row) => row.threads)).toEqual([1, 2, crowded]);
      for (const row of rows) {
        expect(row.event).toBe('bench');
        for (const key of [
          'threads',
          'batchSize',
          'stepsPerSec',
          'samplesPerSec',
          'speedup',
          'efficiency',
          'paramsSha256',
        ]) {
          expect(row).toHaveProperty(key);
        }
        expect(row.stepsPerSec).toBeGreaterThan(0);
        expect(row.stepsPerSecMin).toBeLessThanOrEqual(row.stepsPerSec);
        expect(row.stepsPerSecMax).toBeGreaterThanOrEqual(row.stepsPerSec);
        expect(row.speedupMin).toBeLessThanOrEqual(row.speedupMax);
        expect(row.samplesPerSec).toBeCloseTo(row.stepsPerSec * 32, 6);
        expect(row.paramsSha256).toBe(rows[0].paramsSha256);
        expect(row.layers).toEqual([784, 128, 64, 10]);
        expect(row.kernels).toBe(machine.kernels);
      }
      expect(rows[0]).toMatchObject({ threads: 1, speedup: 1, efficiency: 1, speedupMin: 1, speedupMax: 1 });
      const table = parse(readFileSync(csv, 'utf8'), { columns: true, cast: true }) as Record<string, unknown>[];
      expect(
        table.map((t) => [t.threads, t.batchSize, t.stepsPerSec, t.speedupMax, t.paramsSha256, t.layers, t.kernels]),
      ).toEqual(
        rows.map((row) => [
          row.threads,
          row.batchSize,
          row.stepsPerSec,
          row.speedupMax,
          row.paramsSha256,
          '784-128-64-10',
          machine.kernels,
        ]),
      );
      const chart = readFileSync(svg, 'utf8');
      expect(chart).toMatch(/^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]*>.*<\/svg>$/s);
      expect(chart).toContain('speedup over 1 thread');
      expect(chart).toContain('batch 32');
      // An existing file is replaced only with --force, and refused before anything runs.
      const again = lockstep(['bench', '--threads', '1', '--steps', '5', ...SMALL, '--csv', csv]);
      expect(again.code).toBe(2);
      expect(again.stderr).toBe(`lockstep: --csv ${csv}: exists; pass --force to replace it\n`);
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'Ctrl-C: bench and verify say what was finished and what was not written, exit 130, and leave no ceiling run behind',
    async () => {
      const dir = tempDir();
      const csv = join(dir, 'b.csv');
      // A seed no other test uses marks this bench's ceiling runs (their command line holds the run's JSON).
      const bench = startCli([
        'bench',
        ...['--threads', '1', '--batch-size', '16', '--steps', '10000', '--warmup', '1', '--repeats', '1'],
        ...['--profile', '--seed', '4242', ...SMALL, '--csv', csv],
      ]);
      const marker = '"seed":4242';
      try {
        await bench.printed(/^threads {2}batch/);
        // The 1-thread timed run (a few seconds), then the ceiling's run in a process of its own.
        for (let waited = 0; processesWith(marker).length === 0 && waited < 60_000; waited += 50)
          await new Promise((resolve) => setTimeout(resolve, 50));
        expect(processesWith(marker)).toHaveLength(1);
        bench.child.kill('SIGINT');
        const stopped = await bench.exit;
        expect(stopped.code).toBe(130);
        expect(stopped.stderr).toBe(
          `lockstep: SIGINT: bench stopped; the rows printed so far are complete, ${csv} not written\n`,
        );
        expect(existsSync(csv)).toBe(false);
        // Killed as the bench exits; a dying process stays listed for a moment.
        for (let waited = 0; processesWith(marker).length > 0 && waited < 10_000; waited += 50)
          await new Promise((resolve) => setTimeout(resolve, 50));
        expect(processesWith(marker)).toEqual([]);
      } finally {
        // A failed run of this test leaves no ceiling run behind either.
        for (const pid of processesWith(marker)) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // ended meanwhile
          }
        }
      }

      const verify = startCli(['verify', '--threads', '1', '--steps', '100000', '--epochs', '3000', ...SMALL]);
      await verify.printed(/^threads {4}kernels/);
      verify.child.kill('SIGINT');
      const ended = await verify.exit;
      expect(ended.code).toBe(130);
      expect(ended.stderr).toBe('lockstep: SIGINT: verify stopped before every run was compared\n');
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'names each file it writes, as plot and export do',
    () => {
      const dir = tempDir();
      const [csv, svg] = [join(dir, 'b.csv'), join(dir, 'b.svg')];
      const r = lockstep([
        'bench',
        '--threads',
        '1',
        '--batch-size',
        '16',
        '--steps',
        '3',
        '--warmup',
        '1',
        '--repeats',
        '1',
        ...SMALL,
        '--csv',
        csv,
        '--svg',
        svg,
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim().split('\n').slice(-2)).toEqual([
        `wrote ${csv}: 1 row, one per thread count and batch size`,
        `wrote ${svg}: speedup over 1 thread, 1 row`,
      ]);
      expect(existsSync(csv) && existsSync(svg)).toBe(true);
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    "says that speedups timed inside a fresh run's first epoch need not be training's, naming the epoch's steps",
    () => {
      const r = lockstep([
        'bench',
        '--threads',
        '1,2',
        '--batch-size',
        '16,3000',
        '--steps',
        '3',
        '--warmup',
        '1',
        '--repeats',
        '1',
        ...SMALL,
      ]);
      expect(r.code, r.stderr).toBe(0);
      // At batch 3000 an epoch is one step: the window is past it there, so the note names batch 16.
      expect(r.stdout).toContain(
        'speedups at batch 16: steps 2–4 of a fresh run, inside its first epoch (188 steps at batch 16)',
      );
      expect(r.stdout).toContain('(give --warmup 188 to time past it)');
      const long = lockstep([
        'bench',
        '--threads',
        '1,2',
        '--batch-size',
        '1000',
        '--steps',
        '3',
        '--warmup',
        '3',
        '--repeats',
        '1',
        ...SMALL,
      ]);
      expect(long.code, long.stderr).toBe(0);
      expect(long.stdout).not.toContain('speedups:');
      expect(shortWindowNote([1], [16], 1, 3, 3000)).toBeNull();
      // 60000 rows: batch 64's epoch is 938 steps, batch 256's 235; a window from step 301 is past only the second.
      expect(shortWindowNote([1, 2], [64, 256], 300, 500, 60000)).toMatch(
        /^speedups at batch 64: steps 301–800 of a fresh run, inside its first epoch \(938 steps at batch 64\)/,
      );
    },
    SLOW_TEST_TIMEOUT,
  );

  it("--svg draws the median, the round ratios' range, the ideal line and, with --profile, the ceiling", async () => {
    const row = (threads: number, speedup: number, ceilingSpeedup?: number) => ({
      threads,
      batchSize: 64,
      stepsPerSec: 100 * speedup,
      stepsPerSecMin: 90,
      stepsPerSecMax: 110,
      samplesPerSec: 6400 * speedup,
      speedup,
      speedupMin: speedup - 0.1,
      speedupMax: speedup + 0.2,
      efficiency: speedup / threads,
      paramsSha256: 'x',
      layers: [784, 128, 64, 10],
      kernels: 'wasm' as const,
      runs: [],
      ceilingSpeedup,
    });
    const labels = (svg: string) => [...new Set([...svg.matchAll(/aria-label="([^"]*)"/g)].map((m) => m[1]))];
    const machine = machineFacts('wasm');
    const plain = labels(await renderSvg(scalingChart([row(1, 1), row(2, 1.5)], machine)));
    expect(plain).toContain('threads: 2; speedup: 1.5; batch: batch 64');
    expect(plain).toContain('threads: 0; speedup (median; bars: min–max over the rounds): 0'); // the ideal line's start
    expect(plain).toContain('threads: 2; speedupMin: 1.4; speedupMax: 1.7; batch: batch 64');
    expect(plain.some((l) => l.startsWith('threads: 2; ceiling'))).toBe(false);
    const svg = await renderSvg(scalingChart([row(1, 1), row(2, 1.5, 1.9)], machine));
    expect(labels(svg)).toContain('threads: 2; ceiling: 1.9; batch: batch 64');
    expect(svg).toContain('triangles: the ceiling');
  });

  it('defaults to 1, 2, 4, … threads up to the available cores', () => {
    expect(defaultThreadCounts(1)).toEqual([1]);
    expect(defaultThreadCounts(2)).toEqual([1, 2]);
    expect(defaultThreadCounts(6)).toEqual([1, 2, 4, 6]);
    expect(defaultThreadCounts(8)).toEqual([1, 2, 4, 8]);
    expect(runCli(['bench', '--help']).stdout).toContain(`[default: ${defaultThreadCounts().join(',')}]`);
  });

  it("--profile: each thread's halves, waits and whole step, and the ceiling of independent runs", () => {
    const r = lockstep([
      'bench',
      '--threads',
      '2',
      '--batch-size',
      '32',
      '--steps',
      '40',
      '--warmup',
      '5',
      '--repeats',
      '1',
      ...SMALL,
      '--profile',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const [, base, row] = r.json();
    expect(base).toMatchObject({ threads: 1 });
    expect(base.ceilingSpeedup).toBeUndefined();
    expect(row.threads).toBe(2);
    // Two 1-thread processes at once against one: anything from a crowded machine's ~0.5 to a bit over 2.
    expect(row.ceilingSpeedup).toBeGreaterThan(0.2);
    expect(row.ceilingSpeedup).toBeLessThan(4);
    expect(row.phases.map((p: { thread: number }) => p.thread)).toEqual([0, 1]);
    for (const p of row.phases) {
      for (const key of ['rows', 'wait1', 'update', 'wait2', 'between', 'step']) {
        expect(p[key].median).toBeGreaterThanOrEqual(0);
        // Every sample is a duration: a stale mark read before a worker wrote it made a mean negative.
        expect(p[key].mean).toBeGreaterThanOrEqual(0);
        expect(p[key].p90).toBeGreaterThanOrEqual(p[key].median);
      }
      expect(p.rows.median).toBeGreaterThan(0);
      expect(p.step.mean).toBeGreaterThan(0);
      expect(p.stalls.fraction).toBeGreaterThanOrEqual(0);
      expect(p.stalls.fraction).toBeLessThan(0.5); // over twice the median: fewer than half, by definition of a median
      expect(p.update.median).toBeGreaterThan(0);
      // Medians do not add exactly, but no part can take longer than the whole step's 90th percentile.
      for (const key of ['rows', 'wait1', 'update', 'wait2', 'between'])
        expect(p[key].median).toBeLessThanOrEqual(p.step.p90);
    }
    const one = lockstep(['bench', '--threads', '2', '--steps', '1', ...SMALL, '--profile']);
    expect(one.code).toBe(2);
    expect(one.stderr).toBe('lockstep: --steps 1: --profile needs at least 2 timed steps\n');
  }, 120_000);
});

describe('lockstep train --threads auto', () => {
  it(
    'times a few steps per thread count, says which it chose, and trains to the same weights as any count',
    () => {
      const args = ['train', '--epochs', '1', ...SMALL, '--json'];
      const auto = lockstep([...args, '--threads', 'auto']);
      expect(auto.code, auto.stderr).toBe(0);
      const counts = defaultThreadCounts();
      const rates = counts.map((t) => `${t}: \\d+`).join(', ');
      expect(auto.stderr).toMatch(
        new RegExp(
          `^lockstep: --threads auto: (${counts.join('|')}) threads? \\(steps/s ${rates}; median of 2 rounds of 100 steps at batch 64\\)\\n$`,
        ),
      );
      const one = lockstep([...args, '--threads', '1']);
      expect(auto.json().at(-1).paramsSha256).toBe(one.json().at(-1).paramsSha256);
      // The done event says what ran: the count auto chose, the kernels, the model.
      const chosen = Number(/--threads auto: (\d+) thread/.exec(auto.stderr)![1]);
      expect(auto.json().at(-1)).toMatchObject({ event: 'done', threads: chosen, layers: [784, 128, 64, 10] });
      expect(one.json().at(-1)).toMatchObject({ threads: 1, kernels: defaultKernels() });
      expect(lockstep(['train', '--threads', 'autox']).stderr).toBe(
        'lockstep: --threads autox: must be an integer or auto\n',
      );
    },
    SLOW_TEST_TIMEOUT,
  );
});

describe('live progress', () => {
  it('is shown only on a terminal and never with --json', async () => {
    const { progressEnabled } = await import('../src/cli/progress.js');
    expect(progressEnabled({ isTTY: true }, false)).toBe(true);
    expect(progressEnabled({ isTTY: true }, true)).toBe(false);
    expect(progressEnabled({ isTTY: false }, false)).toBe(false);
    expect(progressEnabled({}, false)).toBe(false);
  });

  it('draws under a pseudo-terminal and not into a pipe', () => {
    const args = ['train', '--epochs', '2', '--train-limit', '20000', '--test-limit', '200'];
    const piped = lockstep(args);
    expect(piped.code).toBe(0);
    expect(piped.stdout).not.toContain('samples/s');
    expect(piped.stdout).not.toContain('\r');
    // util-linux `script` runs the command under a pseudo-terminal (Debian ships it in bsdutils).
    const command = [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(' ');
    const tty = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
    expect(tty.status).toBe(0);
    expect(tty.stdout).toMatch(/epoch 1\/2 \[[#.]+\] step \d+\/313 .* samples\/s {2}loss \d\.\d{4} {2}ETA/);
    expect(tty.stdout).toContain('test accuracy (%) per epoch');
  }, 60_000);
});
