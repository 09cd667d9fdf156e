import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { modelLayout } from '../src/model/layout.js';
import { parameterName, ulpDistance } from '../src/experiments/verify.js';
import { CLI, runCli } from './helpers.js';

const SMALL = ['--train-limit', '3000', '--test-limit', '200'];
/** bench --profile's stretches of a step for the default 784-128-64-10 network. */
const STEP_PHASES = ['forward 0', 'forward 1', 'forward 2, loss, backward 2', 'update 2, backward 1', 'update 1, update 0'];

function lockstep(args: string[], env: Record<string, string> = {}) {
  const r = runCli(args, { env, timeout: 120_000 });
  return { ...r, json: () => r.stdout.trim().split('\n').map((l) => JSON.parse(l)) };
}

describe('lockstep verify', () => {
  it('exits 0 and reports identical hashes when all runs agree (JSON fields documented)', () => {
    const r = lockstep(['verify', '--threads', '1,3', '--steps', '40', ...SMALL, '--json']);
    expect(r.code).toBe(0);
    const rows = r.json();
    expect(rows.map((x) => x.threads)).toEqual(['reference', 1, 3]);
    for (const row of rows) {
      expect(row).toMatchObject({ event: 'verify', equal: true, differing: 0, maxAbsDiff: 0, maxUlp: 0, firstDifference: null });
      expect(row.paramsSha256).toBe(rows[0].paramsSha256);
    }
  }, 60_000);

  it('exits non-zero and names the tensor and index when one parameter differs by one ULP', () => {
    // Parameter 100480 is the first weight of layer 1 (784·128 + 128 = 100480): layers.1.weight[out=0, in=0].
    const r = lockstep(['verify', '--threads', '2', '--steps', '20', ...SMALL], { LOCKSTEP_TEST_PERTURB: '2:100481' });
    expect(r.code).toBe(4);
    expect(r.stdout).toMatch(/^2 .* 1  layers\.1\.weight\[out=1, in=0\] \(parameter 100481\)$/m);
    expect(r.stdout).toContain('NOT IDENTICAL');
  }, 60_000);

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
  it('prints JSON lines with the documented fields and the same hash for every thread count (a repeated count once)', () => {
    const r = lockstep(['bench', '--threads', '1,2,2', '--batch-size', '32', '--steps', '30', '--warmup', '5', '--repeats', '1', ...SMALL, '--json']);
    expect(r.code).toBe(0);
    const rows = r.json();
    expect(rows.map((row) => row.threads)).toEqual([1, 2]);
    for (const row of rows) {
      for (const key of ['threads', 'batchSize', 'stepsPerSec', 'samplesPerSec', 'speedup', 'efficiency', 'paramsSha256']) {
        expect(row).toHaveProperty(key);
      }
      expect(row.stepsPerSec).toBeGreaterThan(0);
      expect(row.samplesPerSec).toBeCloseTo(row.stepsPerSec * 32, 6);
    }
    expect(rows[0]).toMatchObject({ threads: 1, speedup: 1, efficiency: 1 });
    expect(rows[1].paramsSha256).toBe(rows[0].paramsSha256);
  }, 60_000);

  it('--profile: each thread\'s halves, waits and whole step, and the ceiling of independent runs', () => {
    const r = lockstep(['bench', '--threads', '2', '--batch-size', '32', '--steps', '40', '--warmup', '5', '--repeats', '1', ...SMALL, '--profile', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const [row] = r.json();
    expect(row.threads).toBe(2);
    // Two 1-thread processes at once against one: anything from a crowded machine's ~0.5 to a bit over 2.
    expect(row.ceilingSpeedup).toBeGreaterThan(0.2);
    expect(row.ceilingSpeedup).toBeLessThan(4);
    expect(row.phases.map((p: { thread: number }) => p.thread)).toEqual([0, 1]);
    for (const p of row.phases) {
      // The stretches of workers/step.ts for this network (SMALL's layers), each ending at a barrier.
      expect(p.parts.map((part: { name: string }) => part.name)).toEqual(STEP_PHASES);
      const spreads = [...p.parts.flatMap((part: { work: unknown; wait: unknown }) => [part.work, part.wait]), p.work, p.wait, p.between, p.step];
      for (const s of spreads) {
        expect(s.median).toBeGreaterThanOrEqual(0);
        expect(s.p90).toBeGreaterThanOrEqual(s.median);
      }
      for (const part of p.parts) expect(part.work.median).toBeGreaterThan(0);
      expect(p.step.mean).toBeGreaterThan(0);
      expect(p.stalls.fraction).toBeGreaterThanOrEqual(0);
      expect(p.stalls.fraction).toBeLessThan(0.5); // over twice the median: fewer than half, by definition of a median
      // Medians do not add exactly, but no part can take longer than the whole step's 90th percentile.
      for (const s of [p.work, p.wait, p.between]) expect(s.median).toBeLessThanOrEqual(p.step.p90);
    }
    const one = lockstep(['bench', '--threads', '2', '--steps', '1', ...SMALL, '--profile']);
    expect(one.code).toBe(2);
    expect(one.stderr).toBe('lockstep: --steps 1: --profile needs at least 2 timed steps\n');
  }, 120_000);
});

describe('live progress', () => {
  it('is shown only on a terminal and never with --json', async () => {
    const { progressEnabled } = await import('../src/report/progress.js');
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
