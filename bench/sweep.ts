/**
 * The sweep benchmark (issue 15): 8 one-epoch runs (seeds 0..7, MNIST, the textbook recipe) four ways, in
 * alternating rounds so that a slow spell of the machine falls on each alike:
 *   sweep     `lockstep sweep --seed 0..7 --epochs 1 --parallel 2 --threads 1`
 *   queue     `lockstep sweep --seed 0..7 --epochs 1 --queue URL` drained by 2 `lockstep worker --parallel 1
 *             --threads 1` started before the rounds (issue 23; a redis-server of its own, emptied each round)
 *   serial 1  the same 8 runs one after another, `lockstep train --seed K --epochs 1 --threads 1`
 *   serial 2  the same at `--threads 2`
 * Wall seconds of each, measured from outside (start-up and data loading included), the ratios per round and
 * their medians, against the targets: sweep ≤ 0.65 × serial 1, sweep ≤ serial 2, and queue ≤ 0.65 × serial 1,
 * with the queue's own cost per run: enqueue (or the worker's previous run's end) to start, and result to the
 * sweep's table. Every run's paramsSha256 is checked equal across the four ways. Writes bench/results/sweep.json.
 *
 * Usage: npm run bench:sweep -- [--rounds 3] [--parallel 2] [--runs 8]
 */
import { spawn, spawnSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { median } from '../src/train/calibrate.js';
import { distPath, packageRoot } from '../src/paths.js';
import type { QueueFacts } from '../src/queue/index.js';
import { startRedis } from './redis-server.js';
import { countFlag } from './args.js';

const rounds = countFlag('bench/sweep', 'rounds', 3);
const parallel = countFlag('bench/sweep', 'parallel', 2);
const runs = countFlag('bench/sweep', 'runs', 8);
const cli = distPath('src', 'cli', 'main.js');

/** Runs lockstep, returns its wall seconds and the paramsSha256 of each JSON line that has one (keyed by seed). */
function timed(
  args: string[],
  seedOf: (row: Record<string, unknown>) => number,
): { seconds: number; hashes: Map<number, string>; queue: QueueFacts[] } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [cli, ...args, '--json'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`bench/sweep: lockstep ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  const hashes = new Map<number, string>();
  const queue: QueueFacts[] = [];
  for (const line of r.stdout.trim().split('\n')) {
    const row = JSON.parse(line) as Record<string, unknown>;
    if (typeof row.paramsSha256 === 'string') hashes.set(seedOf(row), row.paramsSha256);
    if (row.event === 'sweep-run' && row.queue) queue.push(row.queue as QueueFacts);
  }
  return { seconds, hashes, queue };
}

function serial(threads: number, seedsHashes: Map<number, string>): number {
  let seconds = 0;
  for (let seed = 0; seed < runs; seed++) {
    const r = timed(['train', '--seed', String(seed), '--epochs', '1', '--threads', String(threads)], () => seed);
    seconds += r.seconds;
    seedsHashes.set(seed, r.hashes.get(seed)!);
  }
  return seconds;
}

/**
 * The queue's own cost per run, in ms: from the moment a run could start (enqueued, or its worker's previous
 * run done) to its start, plus from its end to the sweep printing it.
 */
function queueCosts(facts: QueueFacts[]): { pickup: number[]; report: number[] } {
  const pickup: number[] = [];
  for (const worker of new Set(facts.map((f) => f.worker))) {
    const runsOfOne = facts.filter((f) => f.worker === worker);
    runsOfOne.sort((a, b) => a.startedAt - b.startedAt);
    runsOfOne.forEach((f, i) =>
      pickup.push(f.startedAt - Math.max(f.queuedAt, i > 0 ? runsOfOne[i - 1].finishedAt : 0)),
    );
  }
  return { pickup, report: facts.map((f) => f.reportedAt - f.finishedAt) };
}

// The workers are up before the rounds, as on machines that wait for sweeps: their start-up is not a sweep's.
const redis = await startRedis();
const workers = Array.from({ length: parallel }, () => {
  const w = spawn(
    process.execPath,
    [cli, 'worker', '--queue', redis.url, '--parallel', '1', '--threads', '1', '--json'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  // Their Ctrl-C lines at the end are expected; anything else they say is shown if one ends otherwise.
  let stderr = '';
  w.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  w.on('close', (code) => code !== 130 && process.stderr.write(`bench/sweep: a worker exited ${code}: ${stderr}`));
  return w;
});
await Promise.all(workers.map((w) => new Promise((resolve) => w.stdout.once('data', resolve))));
for (const w of workers) w.stdout.resume();
const flush = async () => {
  const client = new Redis(redis.url);
  await client.flushdb();
  client.disconnect();
};

const ways = ['sweep', 'queue', 'serial 1', 'serial 2'] as const;
const seconds = new Map<string, number[]>(ways.map((w) => [w, []]));
const hashes = new Map<string, Map<number, string>>(ways.map((w) => [w, new Map()]));
const costs = { pickup: [] as number[], report: [] as number[] };
for (let round = 0; round < rounds; round++) {
  const sweep = timed(
    ['sweep', '--seed', `0..${runs - 1}`, '--epochs', '1', '--parallel', String(parallel), '--threads', '1'],
    (row) => row.seed as number,
  );
  seconds.get('sweep')!.push(sweep.seconds);
  for (const [seed, hash] of sweep.hashes) hashes.get('sweep')!.set(seed, hash);
  // Each round's queue sweep finds an empty queue: otherwise it would find its runs done.
  await flush();
  const queued = timed(
    ['sweep', '--seed', `0..${runs - 1}`, '--epochs', '1', '--queue', redis.url],
    (row) => row.seed as number,
  );
  seconds.get('queue')!.push(queued.seconds);
  for (const [seed, hash] of queued.hashes) hashes.get('queue')!.set(seed, hash);
  const c = queueCosts(queued.queue);
  costs.pickup.push(...c.pickup);
  costs.report.push(...c.report);
  seconds.get('serial 1')!.push(serial(1, hashes.get('serial 1')!));
  seconds.get('serial 2')!.push(serial(2, hashes.get('serial 2')!));
  process.stderr.write(
    `round ${round + 1}/${rounds}: ${ways.map((w) => `${w} ${seconds.get(w)![round].toFixed(2)} s`).join(', ')}\n`,
  );
}
const ratio = (a: string, b: string) => seconds.get(a)!.map((s, i) => s / seconds.get(b)![i]);
const vsSerial1 = ratio('sweep', 'serial 1');
const vsSerial2 = ratio('sweep', 'serial 2');
const queueVsSerial1 = ratio('queue', 'serial 1');
for (const w of workers) w.kill('SIGINT');
await Promise.all(workers.map((w) => new Promise((resolve) => w.on('close', resolve))));
await redis.stop();
const identical = Array.from(
  { length: runs },
  (_, seed) => new Set(ways.map((w) => hashes.get(w)!.get(seed))).size === 1,
).every(Boolean);
const range = (xs: number[]) =>
  `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;

console.log(
  `lockstep sweep benchmark: ${runs} one-epoch runs, ${rounds} alternating rounds; wall seconds, median (min–max)`,
);
for (const w of ways) console.log(`${w.padEnd(9)} ${range(seconds.get(w)!)}`);
console.log(
  `sweep / serial 1: ${range(vsSerial1)} (target ≤ 0.65: ${median(vsSerial1) <= 0.65 ? 'met' : 'missed'} in the median, ${vsSerial1.filter((r) => r <= 0.65).length} of ${rounds} rounds)`,
);
console.log(
  `sweep / serial 2: ${range(vsSerial2)} (target ≤ 1: ${median(vsSerial2) <= 1 ? 'met' : 'missed'} in the median, ${vsSerial2.filter((r) => r <= 1).length} of ${rounds} rounds)`,
);
console.log(
  `queue / serial 1: ${range(queueVsSerial1)} (target ≤ 0.65: ${median(queueVsSerial1) <= 0.65 ? 'met' : 'missed'} in the median, ${queueVsSerial1.filter((r) => r <= 0.65).length} of ${rounds} rounds; ${parallel} workers × 1 thread)`,
);
const perRun = costs.pickup.map((p, i) => p + costs.report[i]);
console.log(
  `queue's own cost per run: ${median(perRun).toFixed(0)} ms median (enqueue or previous run to start ${median(costs.pickup).toFixed(0)} ms, result to table ${median(costs.report).toFixed(0)} ms; max ${Math.max(...perRun).toFixed(0)} ms)`,
);
console.log(`every run's paramsSha256 equal across the four ways: ${identical ? 'yes' : 'NO'}`);
const dir = join(packageRoot(), 'bench', 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(
  join(dir, 'sweep.json'),
  `${JSON.stringify({ runs, rounds, parallel, seconds: Object.fromEntries(seconds), vsSerial1, vsSerial2, queueVsSerial1, queueCostMs: costs, identical }, null, 2)}\n`,
);
