import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, it, expect } from 'vitest';
import { createJsKernels, type Kernels } from '../src/kernels/kernels.js';
import {
  biasGrad,
  denseForward as refDenseForward,
  PIXEL_SCALE,
  updateParams,
  weightGrad,
} from '../src/kernels/reference.js';
import { nativeStatus } from '../src/kernels/native.js';
import { createKernels, resolveKernels, type KernelName } from '../src/kernels/select.js';
import { UserError } from '../src/errors.js';
import { createWasmKernels, WASM_SCRATCH, wasmKernelPath, wasmSimdSupported } from '../src/kernels/wasm.js';
import { RESERVED_BYTES, SharedArena } from '../src/memory/arena.js';
import { Rng } from '../src/random/rng.js';
import { cpuFlags, runCli } from './helpers.js';
import {
  sgdSettings,
  stateArrays,
  UPDATE_WORDS,
  updateStep,
  writeUpdate,
  type OptimizerSettings,
} from '../src/optim/optimizer.js';

/**
 * Every method of the WebAssembly and native kernel sets must give the reference kernels' bits exactly: outputs are
 * compared as Uint32 words, so a -0 for +0 or a different NaN is a failure. Inputs come from one seeded
 * generator and include MNIST-like sparse rows, ReLU-like zeros, all-zero rows, -0, negative values, and
 * awkward shapes (1, 3, 10, 17, 127; batch 1 and 63; a layer of width 1; slices not starting at 0).
 */

const js = createJsKernels();
const f = Math.fround;

interface Fill {
  zeros?: number; // fraction of exact zeros (half of them -0 when negZero)
  negZero?: boolean;
  positive?: boolean; // only values >= 0 (activations)
  zeroRows?: number[]; // rows (of width `width`) forced all +0
  width?: number;
  scale?: number;
}

function fill(rng: Rng, a: Float32Array, opt: Fill = {}): Float32Array {
  const zeros = opt.zeros ?? 0;
  const scale = opt.scale ?? 1;
  for (let i = 0; i < a.length; i++) {
    if (rng.nextDouble() < zeros) {
      a[i] = opt.negZero && rng.nextDouble() < 0.5 ? -0 : 0;
      continue;
    }
    const v = rng.nextNormal() * scale;
    a[i] = opt.positive ? Math.abs(v) : v;
  }
  if (opt.zeroRows && opt.width) {
    for (const r of opt.zeroRows) if ((r + 1) * opt.width <= a.length) a.fill(0, r * opt.width, (r + 1) * opt.width);
  }
  return a;
}

/** MNIST-like activations: about 81% zeros, clustered in runs (strokes), values p/255. */
function fillSparseInputs(rng: Rng, a: Float32Array, rows: number, nIn: number): void {
  a.fill(0);
  for (let r = 0; r < rows; r++) {
    let on = false;
    for (let k = 0; k < nIn; k++) {
      if (rng.nextDouble() < (on ? 0.25 : 0.06)) on = !on;
      if (on) a[r * nIn + k] = PIXEL_SCALE[1 + rng.nextInt(255)];
    }
  }
}

function bitsEqual(actual: Float32Array, expected: Float32Array, what: string): void {
  expect(actual.length).toBe(expected.length);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  let first = -1;
  let count = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i]) {
      if (first < 0) first = i;
      count++;
    }
  }
  if (count > 0) {
    const msg = `${what}: ${count} of ${a.length} differ, first at ${first}: kernel ${actual[first]} (0x${a[first].toString(16)}) vs reference ${expected[first]} (0x${e[first].toString(16)})`;
    expect.fail(msg);
  }
}

/** The kernel sets that work on shared memory: wasm and each native set this CPU runs. */
const FAST_KERNELS: KernelName[] = ['wasm', ...nativeStatus().isas];

/**
 * A shared arena sized for `floats` float32 values plus `bytes` bytes, and a kernel set of `kind` on it
 * (named `wasm` for the tests written for it first; the suites below run for every FAST_KERNELS kind).
 */
function setup(
  floatCounts: number[],
  byteCounts: number[] = [],
  kind: KernelName = 'wasm',
): { arena: SharedArena; wasm: Kernels } {
  const sizes = [...floatCounts.map((n) => n * 4), ...byteCounts, 4096];
  const arena = new SharedArena(SharedArena.bytesFor(sizes));
  return { arena, wasm: createKernels(kind, arena.memory) };
}

/** The native kernel sets on `memory` (none where not built). */
const nativeSets = (memory: WebAssembly.Memory): Kernels[] =>
  nativeStatus().isas.map((isa) => createKernels(isa, memory));

const NO_STATE = new Float32Array(0);
const SGD_STEP = updateStep(sgdSettings(1), 1, 0);

/** Writes plain SGD at the float32 rate lr into the update descriptor u (the tests' rates need not be valid --lr values). */
function sgdStep(u: Float32Array, lr: number): Float32Array {
  writeUpdate(u, { ...SGD_STEP, lr }, u, NO_STATE);
  return u;
}

/** p = p − lr·g on [i0, i1), the reference's plain SGD. */
function sgdReference(p: Float32Array, g: Float32Array, lr: number, i0: number, i1: number): void {
  updateParams(p, g, NO_STATE, NO_STATE, i0, i1, { ...SGD_STEP, lr });
}

/** Output buffers start as garbage (a NaN pattern), so an element the kernel forgets to write is caught. */
function garbage(a: Float32Array): Float32Array {
  new Uint32Array(a.buffer, a.byteOffset, a.length).fill(0x7fa5a5a5);
  return a;
}

interface Shape {
  rows: number;
  nIn: number;
  nOut: number;
}

const AWKWARD: Shape[] = [
  { rows: 1, nIn: 1, nOut: 1 },
  { rows: 1, nIn: 3, nOut: 10 },
  { rows: 3, nIn: 17, nOut: 10 },
  { rows: 63, nIn: 127, nOut: 17 },
  { rows: 10, nIn: 1, nOut: 127 },
  { rows: 17, nIn: 10, nOut: 3 },
  { rows: 127, nIn: 5, nOut: 33 },
  { rows: 2, nIn: 70, nOut: 1 },
  { rows: 65, nIn: 33, nOut: 40 },
  { rows: 1, nIn: 200, nOut: 130 },
  { rows: 63, nIn: 64, nOut: 10 },
  { rows: 9, nIn: 129, nOut: 61 },
  { rows: 200, nIn: 6, nOut: 47 },
  { rows: 257, nIn: 9, nOut: 7 },
  { rows: 300, nIn: 14, nOut: 36 },
];

// Row strides of a multiple of 256 floats crowd a few cache sets, so the native kernels copy those rows first
// (rowProducts in native/kernels.cc): W in denseForward, D in weightGradUpdate, W's transpose in reluBackward.
const CROWDED: Shape[] = [
  { rows: 40, nIn: 70, nOut: 256 },
  { rows: 33, nIn: 256, nOut: 100 },
  { rows: 130, nIn: 20, nOut: 512 },
];

const TEXTBOOK: Shape[] = [
  { rows: 64, nIn: 784, nOut: 128 },
  { rows: 64, nIn: 128, nOut: 64 },
  { rows: 64, nIn: 64, nOut: 10 },
];

function randomShapes(seed: number, n: number): Shape[] {
  const rng = new Rng(seed);
  const pick = (): number => (rng.nextDouble() < 0.3 ? 1 + rng.nextInt(5) : 1 + rng.nextInt(150));
  return Array.from({ length: n }, () => ({ rows: pick(), nIn: pick(), nOut: pick() }));
}

const SHAPES = [...AWKWARD, ...CROWDED, ...TEXTBOOK, ...randomShapes(7, 24)];
const label = (s: Shape): string => `${s.rows}x${s.nIn}->${s.nOut}`;

describe('wasm kernels: environment', () => {
  it('supports WebAssembly SIMD here', () => {
    expect(wasmSimdSupported()).toBe(true);
  });

  it('imports only the shared memory and has no data segment, globals or start function', () => {
    const bytes = readFileSync(wasmKernelPath());
    const module = new WebAssembly.Module(bytes);
    expect(WebAssembly.Module.imports(module)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
    expect(
      WebAssembly.Module.exports(module)
        .map((e) => e.name)
        .sort(),
    ).toEqual(['biasGradUpdate', 'denseForward', 'gatherInputs', 'reluBackward', 'weightGradUpdate']);
    // walk the sections: 6 = global, 8 = start, 11 = data, 12 = data count
    const ids: number[] = [];
    let at = 8;
    const uleb = (): number => {
      let v = 0;
      let shift = 0;
      for (;;) {
        const byte = bytes[at++];
        v += (byte & 0x7f) * 2 ** shift;
        if (byte < 0x80) return v;
        shift += 7;
      }
    };
    while (at < bytes.length) {
      const id = bytes[at++];
      const size = uleb();
      ids.push(id);
      at += size;
    }
    expect(ids.filter((id) => id === 6 || id === 8 || id === 11 || id === 12)).toEqual([]);
    const { firstSlotByteOffset, slots, slotBytes } = WASM_SCRATCH;
    expect(firstSlotByteOffset + slots * slotBytes).toBeLessThanOrEqual(RESERVED_BYTES);
  });

  it('refuses arrays that are not views of its memory', () => {
    const { arena, wasm } = setup([16]);
    const b = arena.f32(4);
    const u = sgdStep(arena.f32(UPDATE_WORDS), f(0.1));
    const plain = new Float32Array(4);
    expect(() => wasm.biasGradUpdate(plain, b, 1, 4, 0, 4, u)).toThrow(/not a view/);
    expect(() => wasm.biasGradUpdate(b, b, 2, 4, 0, 4, u)).toThrow(RangeError);
    expect(() => wasm.biasGradUpdate(b, b, 1, 4, 2, 5, u)).toThrow(RangeError);
    const reserved = new Float32Array(arena.buffer, 0, 4);
    expect(() => wasm.biasGradUpdate(b, reserved, 1, 4, 0, 4, u)).toThrow(/belong to the kernels/);
    expect(() => wasm.biasGradUpdate(b, b, 1, 4, 0, 4, sgdStep(new Float32Array(UPDATE_WORDS), 0.1))).toThrow(
      /not a view/,
    );
  });

  it('works from two instances on one memory (as worker threads do)', () => {
    const { arena, wasm } = setup([64 * 2 + 16]);
    const second = createWasmKernels(arena.memory);
    const D = fill(new Rng(1), arena.f32(64));
    const b1 = arena.f32(16);
    const b2 = arena.f32(16);
    const u = sgdStep(arena.f32(UPDATE_WORDS), f(0.5));
    wasm.biasGradUpdate(D, b1, 4, 16, 0, 16, u);
    second.biasGradUpdate(D, b2, 4, 16, 0, 16, u);
    bitsEqual(b2, b1, 'second instance');
  });
});

describe('native kernels: environment', () => {
  it('are built here, for every instruction set of this CPU they have, widest first', () => {
    const { isas, missing } = nativeStatus();
    expect(missing).toBeUndefined(); // a machine with a C++ compiler builds them in npm ci
    if (process.arch !== 'x64') {
      expect(isas).toEqual([]);
      return;
    }
    const flags = cpuFlags();
    expect(isas).toEqual([...(flags.has('avx512f') ? ['avx512'] : []), ...(flags.has('avx2') ? ['avx2'] : [])]);
  });

  it('contain no fused multiply-add instruction', () => {
    const addon = readFileSync(new URL('../native/build/Release/lockstep.node', import.meta.url));
    // VEX/EVEX FMA opcodes are 0x98-0xBF in map 0F38 with a 66 prefix; a disassembler is not at hand, so objdump when there is one
    const dump = spawnSync(
      'objdump',
      ['-d', fileURLToPath(new URL('../native/build/Release/lockstep.node', import.meta.url))],
      { encoding: 'utf8', maxBuffer: 1 << 28 },
    );
    expect(addon.length).toBeGreaterThan(0);
    if (dump.status !== 0) return;
    expect(dump.stdout).toMatch(/vmulps/);
    expect(dump.stdout.match(/\bvf(n)?m(add|sub)\w*/g) ?? []).toEqual([]);
  });
});

describe('--kernels on other machines', () => {
  it('refuses a set the CPU or the build lacks in one line, and takes the widest for native', () => {
    expect(resolveKernels('native', { isas: ['avx512', 'avx2'] })).toBe('avx512');
    expect(resolveKernels(undefined, { isas: ['avx2'] })).toBe('avx2');
    expect(resolveKernels('avx2', { isas: ['avx512', 'avx2'] })).toBe('avx2');
    expect(resolveKernels(undefined, { isas: [], missing: 'no C++ compiler' })).toBe('wasm');
    expect(() => resolveKernels('avx512', { isas: ['avx2'] })).toThrow(
      new UserError(
        '--kernels avx512: this CPU does not have AVX-512F; use --kernels avx2 (what native picks here) or wasm',
      ),
    );
    expect(() => resolveKernels('avx2', { isas: [] })).toThrow(
      new UserError('--kernels avx2: this CPU does not have AVX2; use --kernels wasm'),
    );
    expect(() => resolveKernels('native', { isas: [] })).toThrow(
      new UserError('--kernels native: this CPU has none of avx512, avx2; use --kernels wasm'),
    );
    expect(() => resolveKernels('avx2', { isas: [], missing: 'no C++ compiler' })).toThrow(
      /^--kernels avx2: native kernels not built \(no C\+\+ compiler\); use --kernels wasm$/,
    );
  });

  it('without the addon: a bad flag is one line, the fallback notice comes once the flags are checked', () => {
    const env = { LOCKSTEP_TEST_NATIVE_ADDON: '/nonexistent/lockstep.node' };
    const small = ['--train-limit', '200', '--test-limit', '50', '--threads', '1'];
    for (const flags of [
      ['--epochs', '0'],
      ['--lr-gamma', '0.5'],
      ['--momentum', '0.9', '--optimizer', 'adam'],
    ]) {
      const r = runCli(['train', ...flags, ...small], { env });
      expect(r.stderr.trim().split('\n'), flags.join(' ')).toHaveLength(1);
      expect(r.stderr).toMatch(new RegExp(`^lockstep: ${flags[0]} `));
      expect(r.code).toBe(2);
    }
    for (const command of [
      ['bench', '--data', '/nonexistent'],
      ['verify', '--data', '/nonexistent', '--threads', '1,2,3'],
      ['sweep', '--epochs', '0'],
    ]) {
      const r = runCli(command, { env });
      expect(r.stderr, command.join(' ')).toMatch(/^lockstep: --(data|epochs) [^\n]*\n$/);
      expect(r.code).toBe(2);
    }
    const trained = runCli(['train', '--epochs', '1', ...small], { env });
    expect(trained.stderr).toMatch(/^lockstep: notice: native kernels not built \([^\n]*\); using wasm\n$/);
    expect(trained.code).toBe(0);
  }, 60_000);
});

for (const kind of FAST_KERNELS)
  describe(`${kind} kernels: gatherInputs`, () => {
    it('maps every byte value to PIXEL_SCALE exactly', () => {
      const nIn = 256 + 13; // a tail that is not a multiple of 16
      const rows = 3;
      const { arena, wasm } = setup([rows * nIn, rows], [rows * nIn], kind);
      const pixels = arena.u8(rows * nIn);
      for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7 + (i >> 8)) & 255;
      for (let p = 0; p < 256; p++) pixels[p] = p; // row 0 is 0..255 in order
      const order = arena.u32(rows);
      order.set([2, 0, 1]);
      const X = garbage(arena.f32(rows * nIn));
      wasm.gatherInputs(pixels, order, 0, rows, nIn, X);
      bitsEqual(X.subarray(nIn, nIn + 256), PIXEL_SCALE, 'PIXEL_SCALE');
      const expected = new Float32Array(rows * nIn);
      js.gatherInputs(pixels, order, 0, rows, nIn, expected);
      bitsEqual(X, expected, 'gather');
    });

    it('gathers sparse images through a shuffled order, from any start', () => {
      const rng = new Rng(11);
      for (const [n, nIn, start, rows] of [
        [100, 784, 5, 64],
        [40, 784, 39, 1],
        [50, 31, 3, 17],
        [9, 1, 0, 9],
        [70, 17, 1, 63],
      ]) {
        const { arena, wasm } = setup([rows * nIn, n], [n * nIn], kind);
        const pixels = arena.u8(n * nIn);
        for (let i = 0; i < pixels.length; i++) pixels[i] = rng.nextDouble() < 0.81 ? 0 : rng.nextInt(256);
        const order = arena.u32(n);
        rng.permutation(order);
        const X = garbage(arena.f32(rows * nIn));
        wasm.gatherInputs(pixels, order, start, rows, nIn, X);
        const expected = new Float32Array(rows * nIn);
        js.gatherInputs(pixels, order, start, rows, nIn, expected);
        bitsEqual(X, expected, `gather n=${n} nIn=${nIn} start=${start} rows=${rows}`);
      }
    });
  });

for (const kind of FAST_KERNELS)
  describe(`${kind} kernels: denseForward`, () => {
    const rng = new Rng(101);
    for (const s of SHAPES) {
      it(`matches the reference bit for bit, ${label(s)}`, () => {
        const { rows, nIn, nOut } = s;
        const { arena, wasm } = setup([rows * nIn, nIn * nOut, nOut, rows * nOut], [], kind);
        const X = arena.f32(rows * nIn);
        const W = fill(rng, arena.f32(nIn * nOut), { scale: Math.sqrt(2 / nIn), zeros: 0.02, negZero: true });
        const b = fill(rng, arena.f32(nOut), { scale: 0.1, zeros: 0.2, negZero: true });
        const out = arena.f32(rows * nOut);
        const expected = new Float32Array(rows * nOut);
        const inputs: [string, () => void][] = [
          ['dense', () => fill(rng, X, { negZero: true })],
          ['sparse', () => fillSparseInputs(rng, X, rows, nIn)],
          [
            'relu-like',
            () => fill(rng, X, { zeros: 0.5, positive: true, zeroRows: [0, rows - 1, rows >> 1], width: nIn }),
          ],
          ['signed, -0', () => fill(rng, X, { zeros: 0.3, negZero: true })],
          ['all zero', () => X.fill(0)],
        ];
        for (const [what, make] of inputs) {
          make();
          for (const relu of [true, false]) {
            garbage(out);
            wasm.denseForward(X, W, b, out, rows, nIn, nOut, relu, 0, nOut);
            js.denseForward(X, W, b, expected, rows, nIn, nOut, relu, 0, nOut);
            bitsEqual(out, expected, `${label(s)} ${what} relu=${relu}`);
          }
        }
      });
    }
  });

for (const kind of FAST_KERNELS)
  describe(`${kind} kernels: reluBackward`, () => {
    const rng = new Rng(202);
    for (const s of SHAPES) {
      it(`matches the reference bit for bit, ${label(s)}`, () => {
        const { rows, nIn, nOut } = s;
        const { arena, wasm } = setup([rows * nOut, nIn * nOut, rows * nIn, rows * nIn], [], kind);
        const D = arena.f32(rows * nOut);
        const W = fill(rng, arena.f32(nIn * nOut), { scale: Math.sqrt(2 / nIn), zeros: 0.02, negZero: true });
        const A = arena.f32(rows * nIn);
        const Dprev = arena.f32(rows * nIn);
        const expected = new Float32Array(rows * nIn);
        const cases: [string, () => void][] = [
          [
            'dense D',
            () => {
              fill(rng, D, { scale: 0.01 });
              fill(rng, A, { zeros: 0.5, positive: true, zeroRows: [rows - 1], width: nIn });
            },
          ],
          [
            'relu-masked D, -0',
            () => {
              fill(rng, D, { scale: 0.01, zeros: 0.5, negZero: true, zeroRows: [0], width: nOut });
              fill(rng, A, { zeros: 0.3 }); // negative values count as ReLU off too
            },
          ],
          [
            'A all active',
            () => {
              fill(rng, D, { scale: 0.01, zeros: 0.1 });
              fill(rng, A, { positive: true, scale: 3 });
              for (let i = 0; i < A.length; i++) if (A[i] === 0) A[i] = 1;
            },
          ],
        ];
        for (const [what, make] of cases) {
          make();
          garbage(Dprev);
          wasm.reluBackward(D, W, A, Dprev, rows, nIn, nOut);
          js.reluBackward(D, W, A, expected, rows, nIn, nOut);
          bitsEqual(Dprev, expected, `${label(s)} ${what}`);
        }
      });
    }
  });

for (const kind of FAST_KERNELS)
  describe(`${kind} kernels: weightGradUpdate and biasGradUpdate, plain SGD`, () => {
    const rng = new Rng(303);
    for (const s of SHAPES) {
      it(`match the reference bit for bit, ${label(s)}`, () => {
        const { rows, nIn, nOut } = s;
        const { arena, wasm } = setup([rows * nIn, rows * nOut, nIn * nOut, nOut], [], kind);
        const A = arena.f32(rows * nIn);
        const D = arena.f32(rows * nOut);
        const W = arena.f32(nIn * nOut);
        const b = arena.f32(nOut);
        const u = arena.f32(UPDATE_WORDS);
        const W0 = fill(rng, new Float32Array(nIn * nOut), { scale: Math.sqrt(2 / nIn), zeros: 0.05, negZero: true });
        const b0 = fill(rng, new Float32Array(nOut), { scale: 0.1, zeros: 0.3, negZero: true });
        const Wref = new Float32Array(nIn * nOut);
        const bref = new Float32Array(nOut);
        const k0 = nIn > 2 ? 1 + rng.nextInt(nIn - 2) : 0;
        const k1 = k0 + rng.nextInt(nIn - k0 + 1);
        const j0 = nOut > 2 ? 1 + rng.nextInt(nOut - 2) : 0;
        const j1 = j0 + rng.nextInt(nOut - j0 + 1);
        const slices: [number, number, number, number][] = [
          [0, nIn, 0, nOut],
          [k0, k1, j0, j1],
          [k0, k0, j0, j0],
        ];
        const inputs: [string, () => void][] = [
          [
            'sparse A',
            () => {
              fillSparseInputs(rng, A, rows, nIn);
              fill(rng, D, { scale: 0.01, zeroRows: [0], width: nOut });
            },
          ],
          [
            'relu-like A, masked D',
            () => {
              fill(rng, A, { zeros: 0.5, positive: true, zeroRows: [rows >> 1], width: nIn });
              fill(rng, D, { scale: 0.01, zeros: 0.5, negZero: true });
            },
          ],
          [
            'signed A, -0',
            () => {
              fill(rng, A, { zeros: 0.2, negZero: true });
              fill(rng, D, { scale: 0.01, zeros: 0.1, negZero: true });
            },
          ],
          [
            'A all zero',
            () => {
              A.fill(0);
              fill(rng, D, { scale: 0.01 });
            },
          ],
        ];
        for (const [what, make] of inputs) {
          make();
          for (const lr of [f(0.1), f(-0.03), 0]) {
            for (const [ka, kb, ja, jb] of slices) {
              W.set(W0);
              Wref.set(W0);
              b.set(b0);
              bref.set(b0);
              sgdStep(u, lr);
              wasm.weightGradUpdate(A, D, W, rows, nIn, nOut, ka, kb, 0, nOut, u);
              js.weightGradUpdate(A, D, Wref, rows, nIn, nOut, ka, kb, 0, nOut, u);
              bitsEqual(W, Wref, `W ${label(s)} ${what} lr=${lr} k=${ka}..${kb}`);
              wasm.biasGradUpdate(D, b, rows, nOut, ja, jb, u);
              js.biasGradUpdate(D, bref, rows, nOut, ja, jb, u);
              bitsEqual(b, bref, `b ${label(s)} ${what} lr=${lr} j=${ja}..${jb}`);
            }
          }
        }
      });
    }
  });

for (const kind of FAST_KERNELS)
  describe(`${kind} kernels: weightGradUpdate and biasGradUpdate, every optimizer`, () => {
    const rules: [string, OptimizerSettings][] = [
      ['sgd, weight decay', { ...sgdSettings(0.1), weightDecay: 0.01 }],
      ['momentum', { ...sgdSettings(0.1), optimizer: 'momentum', momentum: 0.9 }],
      ['momentum, weight decay', { ...sgdSettings(0.1), optimizer: 'momentum', momentum: 0.5, weightDecay: 0.02 }],
      ['nesterov, weight decay', { ...sgdSettings(0.1), optimizer: 'nesterov', momentum: 0.9, weightDecay: 0.01 }],
      ['adam', { ...sgdSettings(0.01), optimizer: 'adam', beta1: 0.9, beta2: 0.999, eps: 1e-8 }],
      [
        'adam, weight decay',
        { ...sgdSettings(0.01), optimizer: 'adam', beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1 },
      ],
      [
        'adamw, weight decay',
        { ...sgdSettings(0.01), optimizer: 'adamw', beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 },
      ],
    ];
    const shapes = [...AWKWARD, ...TEXTBOOK, ...randomShapes(11, 6)];
    for (const s of shapes) {
      it(`every rule gives the reference's parameters and state, bit for bit, whole and in rectangles, ${label(s)}`, () => {
        const { rows, nIn, nOut } = s;
        const rng = new Rng(rows * 31 + nIn * 7 + nOut);
        const n = nIn * nOut + nOut;
        const { arena, wasm } = setup(
          [rows * nIn, rows * nOut, n, 2 * n, n, 2 * n, UPDATE_WORDS, UPDATE_WORDS],
          [],
          kind,
        );
        const A = arena.f32(rows * nIn);
        const D = arena.f32(rows * nOut);
        // the parameters (W then b) and their two state arrays, for each kernel set
        const sets = [wasm, js].map((k) => ({
          k,
          p: arena.f32(n),
          state: arena.f32(2 * n),
          u: arena.f32(UPDATE_WORDS),
        }));
        const p0 = fill(rng, new Float32Array(n), { scale: Math.sqrt(2 / nIn), zeros: 0.05 });
        const state0 = fill(rng, new Float32Array(2 * n), { scale: 0.01 });
        for (let i = n; i < 2 * n; i++) state0[i] = Math.abs(state0[i]) * 0.01; // Adam's second moment is ≥ 0
        const g = new Float32Array(n);
        const expected = new Float32Array(n);
        const expectedState = new Float32Array(2 * n);
        for (const [what, make] of [
          ['sparse A', () => fillSparseInputs(rng, A, rows, nIn)],
          ['A all zero', () => A.fill(0)],
        ] as const) {
          make();
          fill(rng, D, { scale: 0.01, zeros: 0.1, negZero: true });
          for (const [name, settings] of rules) {
            const step = updateStep(settings, 10, 2);
            const arrays = stateArrays(settings.optimizer);
            weightGrad(A, D, g, rows, nIn, nOut, 0, nIn);
            biasGrad(D, g.subarray(nIn * nOut), rows, nOut, 0, nOut);
            expected.set(p0);
            expectedState.set(state0);
            updateParams(expected, g, expectedState.subarray(0, n), expectedState.subarray(n, 2 * n), 0, n, step);
            for (const { k, p, state, u } of sets) {
              const W = p.subarray(0, nIn * nOut);
              const b = p.subarray(nIn * nOut);
              writeUpdate(u, step, p, state.subarray(0, arrays * n));
              const check = (how: string) => {
                bitsEqual(p, expected, `${k.name} ${name} ${what} ${how} ${label(s)}: parameters`);
                bitsEqual(
                  state.subarray(0, arrays * n),
                  expectedState.subarray(0, arrays * n),
                  `${k.name} ${name} ${what} ${how} ${label(s)}: state`,
                );
              };
              const reset = () => {
                p.set(p0);
                state.set(state0);
              };
              reset();
              k.weightGradUpdate(A, D, W, rows, nIn, nOut, 0, nIn, 0, nOut, u);
              k.biasGradUpdate(D, b, rows, nOut, 0, nOut, u);
              check('whole');
              reset();
              const cells = blocksOf(nIn, rng).flatMap((kb) => blocksOf(nOut, rng).map((jb) => [...kb, ...jb]));
              const order = new Uint32Array(cells.length);
              rng.permutation(order);
              for (const i of order)
                k.weightGradUpdate(A, D, W, rows, nIn, nOut, cells[i][0], cells[i][1], cells[i][2], cells[i][3], u);
              for (const [j0, j1] of blocksOf(nOut, rng)) k.biasGradUpdate(D, b, rows, nOut, j0, j1, u);
              check(`as ${cells.length} rectangles`);
              if (k === wasm) {
                reset();
                withoutScratch(arena.memory, () => k.weightGradUpdate(A, D, W, rows, nIn, nOut, 0, nIn, 0, nOut, u));
                k.biasGradUpdate(D, b, rows, nOut, 0, nOut, u);
                check('without scratch');
              }
            }
          }
        }
      });
    }

    it('the wasm wrapper refuses an update whose state lies outside its memory', () => {
      const { arena, wasm } = setup([4 * 6, 4 * 5, 6 * 5, UPDATE_WORDS], [], kind);
      const A = arena.f32(4 * 6);
      const D = arena.f32(4 * 5);
      const W = arena.f32(6 * 5);
      const u = arena.f32(UPDATE_WORDS);
      const settings: OptimizerSettings = {
        ...sgdSettings(0.01),
        optimizer: 'adam',
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
      };
      const words = new Int32Array(u.buffer, u.byteOffset, UPDATE_WORDS);
      writeUpdate(u, updateStep(settings, 1, 0), W, new Float32Array(0));
      words[1] = u.buffer.byteLength; // state 1 past the end of the memory
      expect(() => wasm.weightGradUpdate(A, D, W, 4, 6, 5, 0, 6, 0, 5, u)).toThrow(
        /state 1 lies outside the kernels' memory/,
      );
      words[1] = 0;
      words[2] = -W.byteOffset; // state 2 in the kernels' reserved bytes
      expect(() => wasm.weightGradUpdate(A, D, W, 4, 6, 5, 0, 6, 0, 5, u)).toThrow(/state 2 lies outside/);
    });
  });

/** Runs fn while every scratch slot of the memory is taken, so the kernels take their no-scratch paths. */
function withoutScratch(memory: WebAssembly.Memory, fn: () => void): void {
  const flags = new Int32Array(memory.buffer, WASM_SCRATCH.flagsByteOffset, WASM_SCRATCH.slots);
  for (let i = 0; i < flags.length; i++) expect(Atomics.compareExchange(flags, i, 0, 1)).toBe(0);
  try {
    fn();
  } finally {
    for (let i = 0; i < flags.length; i++) Atomics.store(flags, i, 0);
  }
}

describe('wasm kernels: paths without scratch and adaptive blocks', () => {
  it('reluBackward and gatherInputs give the same bits when every scratch slot is taken', () => {
    const rng = new Rng(505);
    for (const s of [...AWKWARD.slice(0, 8), TEXTBOOK[1], TEXTBOOK[2]]) {
      const { rows, nIn, nOut } = s;
      const { arena, wasm } = setup([rows * nOut, nIn * nOut, rows * nIn, rows * nIn, rows * nIn], [rows * nIn]);
      const D = fill(rng, arena.f32(rows * nOut), { scale: 0.01, zeros: 0.4, negZero: true });
      const W = fill(rng, arena.f32(nIn * nOut), { scale: Math.sqrt(2 / nIn) });
      const A = fill(rng, arena.f32(rows * nIn), { zeros: 0.3 });
      const Dprev = garbage(arena.f32(rows * nIn));
      const expected = new Float32Array(rows * nIn);
      withoutScratch(arena.memory, () => wasm.reluBackward(D, W, A, Dprev, rows, nIn, nOut));
      js.reluBackward(D, W, A, expected, rows, nIn, nOut);
      bitsEqual(Dprev, expected, `reluBackward without scratch ${label(s)}`);

      const pixels = arena.u8(rows * nIn);
      for (let i = 0; i < pixels.length; i++) pixels[i] = rng.nextDouble() < 0.7 ? 0 : rng.nextInt(256);
      const order = arena.u32(rows);
      rng.permutation(order);
      const X = garbage(arena.f32(rows * nIn));
      withoutScratch(arena.memory, () => wasm.gatherInputs(pixels, order, 0, rows, nIn, X));
      const Xref = new Float32Array(rows * nIn);
      js.gatherInputs(pixels, order, 0, rows, nIn, Xref);
      bitsEqual(X, Xref, `gatherInputs without scratch ${label(s)}`);
    }
  });

  it('weightGradUpdate matches for neighbouring inputs with equal, nested and disjoint zero patterns', () => {
    // equal patterns in pairs of columns take the two-k blocks, disjoint ones the one-k blocks
    const rng = new Rng(606);
    for (const [rows, nIn, nOut] of [
      [64, 40, 128],
      [37, 9, 21],
      [130, 12, 16],
      [8, 6, 33],
      [64, 784, 128],
    ]) {
      const { arena, wasm } = setup([rows * nIn, rows * nOut, nIn * nOut]);
      const A = arena.f32(rows * nIn);
      const D = fill(rng, arena.f32(rows * nOut), { scale: 0.01, zeros: 0.2 });
      const W = arena.f32(nIn * nOut);
      const W0 = fill(rng, new Float32Array(nIn * nOut), { scale: 0.1 });
      const Wref = new Float32Array(nIn * nOut);
      const u = arena.f32(UPDATE_WORDS);
      for (let r = 0; r < rows; r++) {
        for (let k = 0; k < nIn; k++) {
          const mode = (k >> 1) % 3;
          const on = mode === 0 ? (r * 7 + (k >> 1)) % 5 < 2 : mode === 1 ? (r + k) % 3 === 0 : rng.nextDouble() < 0.3;
          A[r * nIn + k] = on ? rng.nextDouble() + 0.01 : 0;
        }
      }
      for (const lr of [f(0.25), f(-0.5)]) {
        W.set(W0);
        Wref.set(W0);
        sgdStep(u, lr);
        wasm.weightGradUpdate(A, D, W, rows, nIn, nOut, 0, nIn, 0, nOut, u);
        js.weightGradUpdate(A, D, Wref, rows, nIn, nOut, 0, nIn, 0, nOut, u);
        bitsEqual(W, Wref, `weightGradUpdate patterns ${rows}x${nIn}->${nOut} lr=${lr}`);
        W.set(W0);
        Wref.set(W0);
        wasm.weightGradUpdate(A, D, W, rows, nIn, nOut, 1, nIn - 1, 0, nOut, u);
        js.weightGradUpdate(A, D, Wref, rows, nIn, nOut, 1, nIn - 1, 0, nOut, u);
        bitsEqual(W, Wref, `weightGradUpdate patterns, odd slice ${rows}x${nIn}->${nOut} lr=${lr}`);
      }
    }
  });
});

describe('wasm kernels: threads', () => {
  it('give the reference bits when 4 threads run them at once on one memory, with scratch slots scarce', async () => {
    const rows = 40;
    const nIn = 96;
    const nOut = 64;
    const threads = 4;
    const rng = new Rng(707);
    const per = [rows * nOut, nIn * nOut, rows * nIn, rows * nIn, rows * nIn];
    const { arena } = setup(Array.from({ length: threads }, () => per).flat(), [threads * rows * nIn + 64]);
    const jobs = Array.from({ length: threads }, () => {
      const D = fill(rng, arena.f32(rows * nOut), { scale: 0.01, zeros: 0.3 });
      const W = fill(rng, arena.f32(nIn * nOut), { scale: 0.1 });
      const A = fill(rng, arena.f32(rows * nIn), { zeros: 0.4 });
      const P = garbage(arena.f32(rows * nIn));
      const X = garbage(arena.f32(rows * nIn));
      const pixels = arena.u8(rows * nIn);
      for (let i = 0; i < pixels.length; i++) pixels[i] = rng.nextDouble() < 0.6 ? 0 : rng.nextInt(256);
      const order = arena.u32(rows);
      rng.permutation(order);
      return { D, W, A, P, X, pixels, order };
    });
    // leave 2 of the 15 slots free, so some calls run with scratch and some without
    const flags = new Int32Array(arena.memory.buffer, WASM_SCRATCH.flagsByteOffset, WASM_SCRATCH.slots);
    for (let i = 2; i < flags.length; i++) Atomics.store(flags, i, 1);
    const code = `
      const { workerData, parentPort } = require('node:worker_threads');
      const { readFileSync } = require('node:fs');
      const w = workerData;
      const k = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(w.path)), { env: { memory: w.memory } }).exports;
      for (let rep = 0; rep < 300; rep++) {
        k.reluBackward(w.D, w.W, w.A, w.P, w.rows, w.nIn, w.nOut);
        k.gatherInputs(w.pixels, w.order, 0, w.rows, w.nIn, w.X);
      }
      parentPort.postMessage('done');`;
    try {
      await Promise.all(
        jobs.map(
          (j) =>
            new Promise<void>((resolve, reject) => {
              const worker = new Worker(code, {
                eval: true,
                workerData: {
                  path: wasmKernelPath(),
                  memory: arena.memory,
                  rows,
                  nIn,
                  nOut,
                  D: j.D.byteOffset,
                  W: j.W.byteOffset,
                  A: j.A.byteOffset,
                  P: j.P.byteOffset,
                  X: j.X.byteOffset,
                  pixels: j.pixels.byteOffset,
                  order: j.order.byteOffset,
                },
              });
              worker.once('message', () => resolve());
              worker.once('error', reject);
              worker.once('exit', (c) => (c === 0 ? resolve() : reject(new Error(`worker exit ${c}`))));
            }),
        ),
      );
      expect([flags[0], flags[1]]).toEqual([0, 0]); // every claimed slot was released
    } finally {
      for (let i = 0; i < flags.length; i++) Atomics.store(flags, i, 0);
    }
    for (const [t, j] of jobs.entries()) {
      const P = new Float32Array(rows * nIn);
      js.reluBackward(j.D, j.W, j.A, P, rows, nIn, nOut);
      bitsEqual(j.P, P, `thread ${t} reluBackward`);
      const X = new Float32Array(rows * nIn);
      js.gatherInputs(j.pixels, j.order, 0, rows, nIn, X);
      bitsEqual(j.X, X, `thread ${t} gatherInputs`);
    }
  });
});

for (const kind of FAST_KERNELS)
  describe(`${kind} kernels: a whole training step`, () => {
    it('leaves the same parameter bits as the reference after several steps of 784-128-64-10', () => {
      const sizes = [784, 128, 64, 10];
      const B = 64;
      const rng = new Rng(404);
      const floats = [784 * 128, 128, 128 * 64, 64, 64 * 10, 10];
      const acts = [B * 784, B * 128, B * 64, B * 10, B * 128, B * 64];
      const { arena, wasm } = setup([...floats, ...floats, ...acts, ...acts, 600], [600 * 784], kind);
      const n = 600;
      const pixels = arena.u8(n * 784);
      for (let i = 0; i < pixels.length; i++) pixels[i] = rng.nextDouble() < 0.81 ? 0 : rng.nextInt(256);
      const order = arena.u32(n);
      rng.permutation(order);
      const make = (): { W: Float32Array[]; b: Float32Array[]; A: Float32Array[]; Dh: Float32Array[] } => {
        const W: Float32Array[] = [];
        const b: Float32Array[] = [];
        for (let l = 0; l < 3; l++) {
          W.push(arena.f32(sizes[l] * sizes[l + 1]));
          b.push(arena.f32(sizes[l + 1]));
        }
        const A = [arena.f32(B * 784), arena.f32(B * 128), arena.f32(B * 64), arena.f32(B * 10)];
        const Dh = [arena.f32(B * 128), arena.f32(B * 64)];
        return { W, b, A, Dh };
      };
      const nets = [make(), make()];
      for (let l = 0; l < 3; l++) {
        fill(rng, nets[0].W[l], { scale: Math.sqrt(2 / sizes[l]) });
        nets[1].W[l].set(nets[0].W[l]);
      }
      const u = sgdStep(arena.f32(UPDATE_WORDS), f(0.1));
      const kernelSets = [wasm, js];
      for (let step = 0; step < 4; step++) {
        for (let i = 0; i < 2; i++) {
          const k = kernelSets[i];
          const { W, b, A, Dh } = nets[i];
          k.gatherInputs(pixels, order, step * B, B, 784, A[0]);
          for (let l = 0; l < 3; l++) {
            k.denseForward(A[l], W[l], b[l], A[l + 1], B, sizes[l], sizes[l + 1], l < 2, 0, sizes[l + 1]);
          }
          // a simple output gradient (softmax is shared TypeScript, not a kernel): D = (Z - 0.5) / B
          const D3 = A[3];
          for (let j = 0; j < D3.length; j++) D3[j] = f(f(D3[j] - 0.5) / B);
          k.reluBackward(D3, W[2], A[2], Dh[1], B, 64, 10);
          k.reluBackward(Dh[1], W[1], A[1], Dh[0], B, 128, 64);
          const Ds = [Dh[0], Dh[1], D3];
          for (let l = 0; l < 3; l++) {
            k.weightGradUpdate(A[l], Ds[l], W[l], B, sizes[l], sizes[l + 1], 0, sizes[l], 0, sizes[l + 1], u);
            k.biasGradUpdate(Ds[l], b[l], B, sizes[l + 1], 0, sizes[l + 1], u);
          }
        }
        for (let l = 0; l < 3; l++) {
          bitsEqual(nets[0].W[l], nets[1].W[l], `step ${step} W${l + 1}`);
          bitsEqual(nets[0].b[l], nets[1].b[l], `step ${step} b${l + 1}`);
        }
      }
    });
  });

// -------------------------------------------------------------------------------------------------------
// Column ranges: a thread computes a block of a layer's columns (and, for the update, a rectangle of W).
// Each output element is its own sum, so a block must have exactly the bits of the reference's full call
// there, and must leave every other element alone: outputs start as the garbage() NaN pattern, and the
// inputs outside the block (W's and b's other columns, D's other columns, Aprev's other k) are poisoned
// with NaN, so a kernel that wrote or used them would show it.

const SENTINEL = 0x7fa5a5a5; // garbage()'s pattern

/** Bits of actual equal expected's on rows [r0, r1) × columns [c0, c1) of a [..][cols] array, SENTINEL elsewhere. */
function bitsInBlock(
  actual: Float32Array,
  expected: Float32Array,
  cols: number,
  r0: number,
  r1: number,
  c0: number,
  c1: number,
  what: string,
): void {
  const due = new Float32Array(expected.length);
  new Uint32Array(due.buffer).fill(SENTINEL);
  for (let r = r0; r < r1; r++) due.set(expected.subarray(r * cols + c0, r * cols + c1), r * cols + c0); // a byte copy
  bitsEqual(actual, due, `${what} (0x${SENTINEL.toString(16)} due outside the block)`);
}

/** Copies src into dst, then NaN (SENTINEL) on every column outside [c0, c1) of a [..][cols] array. */
function poisonOutside(dst: Float32Array, src: Float32Array, cols: number, c0: number, c1: number): Float32Array {
  dst.set(src);
  const u = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < u.length; i++) {
    const c = i % cols;
    if (c < c0 || c >= c1) u[i] = SENTINEL;
  }
  return dst;
}

/** Full, empty (at 0, the middle, the end), single, 16-aligned and unaligned column ranges of 0..n. */
function columnRanges(n: number, rng: Rng): [number, number][] {
  const m = n >> 1;
  const out: [number, number][] = [
    [0, n],
    [0, 0],
    [m, m],
    [n, n],
    [0, 1],
    [n - 1, n],
    [m, m + 1],
  ];
  for (let j = 0; j < n; j += 16) out.push([j, Math.min(n, j + 16)]); // the engine's cache-line blocks
  if (n > 16) out.push([16, Math.min(n, 48)]);
  out.push([1, n - 1], [3, Math.min(n, 20)], [5, Math.min(n, 5 + 35)], [n - Math.min(n, 19), n]);
  const a = rng.nextInt(n + 1);
  out.push([a, a + rng.nextInt(n - a + 1)]);
  const seen = new Set<string>();
  return out.filter(([j0, j1]) => {
    const key = `${j0},${j1}`;
    if (j0 < 0 || j0 > j1 || j1 > n || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** [0, n) cut at random places (or every `width`), the pieces in a random order. */
function blocksOf(n: number, rng: Rng, width = 0): [number, number][] {
  const cuts = [0];
  for (let j = 1; j < n; j++) if (width > 0 ? j % width === 0 : rng.nextDouble() < 0.15) cuts.push(j);
  cuts.push(n);
  const blocks = cuts.slice(1).map((c, i): [number, number] => [cuts[i], c]);
  const order = new Uint32Array(blocks.length);
  rng.permutation(order);
  return Array.from(order, (i) => blocks[i]);
}

const RANGE_SHAPES: Shape[] = [
  ...[
    [5, 7],
    [33, 61],
    [70, 50],
    [129, 33],
    [17, 16],
    [64, 100],
    [3, 1],
    [100, 49],
    [40, 18],
  ].map(([nIn, nOut], i): Shape => ({ rows: i + 1, nIn, nOut })),
  { rows: 64, nIn: 784, nOut: 128 },
  { rows: 64, nIn: 128, nOut: 64 },
  { rows: 64, nIn: 64, nOut: 10 },
  ...CROWDED,
  { rows: 64, nIn: 96, nOut: 37 },
  { rows: 300, nIn: 14, nOut: 37 },
  { rows: 300, nIn: 9, nOut: 16 },
];

describe('column ranges and rectangles, every kernel set', () => {
  for (const s of RANGE_SHAPES) {
    const { rows, nIn, nOut } = s;
    const inputs: [string, (rng: Rng, X: Float32Array) => void][] = [
      ['sparse', (rng, X) => fillSparseInputs(rng, X, rows, nIn)],
      ['dense', (rng, X) => fill(rng, X, { zeros: 0.05, negZero: true })],
    ];

    it(`denseForward columns [j0, j1) have the reference's bits and nothing else is written, ${label(s)}`, () => {
      const rng = new Rng(rows * 1000 + nIn * 7 + nOut);
      const { arena, wasm } = setup([rows * nIn, nIn * nOut, nIn * nOut, nOut, nOut, rows * nOut]);
      const X = arena.f32(rows * nIn);
      const W = fill(rng, arena.f32(nIn * nOut), { scale: Math.sqrt(2 / nIn), zeros: 0.02, negZero: true });
      const Wp = arena.f32(nIn * nOut);
      const b = fill(rng, arena.f32(nOut), { scale: 0.1, zeros: 0.2, negZero: true });
      const bp = arena.f32(nOut);
      const out = arena.f32(rows * nOut);
      const expected = new Float32Array(rows * nOut);
      const ranges = columnRanges(nOut, rng);
      for (const [what, make] of inputs) {
        make(rng, X);
        for (const relu of [true, false]) {
          refDenseForward(X, W, b, expected, rows, nIn, nOut, relu);
          for (const k of [wasm, ...nativeSets(arena.memory), js]) {
            const tag = `${k.name} ${label(s)} ${what} relu=${relu}`;
            for (const [j0, j1] of ranges) {
              poisonOutside(Wp, W, nOut, j0, j1);
              poisonOutside(bp, b, nOut, j0, j1);
              garbage(out);
              k.denseForward(X, Wp, bp, out, rows, nIn, nOut, relu, j0, j1);
              bitsInBlock(out, expected, nOut, 0, rows, j0, j1, `${tag} j=${j0}..${j1}`);
            }
            for (const width of [16, 0]) {
              garbage(out);
              for (const [j0, j1] of blocksOf(nOut, rng, width)) {
                k.denseForward(X, W, b, out, rows, nIn, nOut, relu, j0, j1);
              }
              bitsEqual(out, expected, `${tag} in blocks of ${width || 'random widths'}`);
            }
          }
        }
      }
    });

    it(`weightGradUpdate on rectangles [k0, k1) × [j0, j1): reference bits, nothing else moves, ${label(s)}`, () => {
      const rng = new Rng(rows * 1000 + nIn * 7 + nOut + 1);
      const { arena, wasm } = setup([rows * nIn, rows * nIn, rows * nOut, rows * nOut, nIn * nOut]);
      const A = arena.f32(rows * nIn);
      const Ap = arena.f32(rows * nIn);
      const D = arena.f32(rows * nOut);
      const Dp = arena.f32(rows * nOut);
      const W = arena.f32(nIn * nOut);
      const u = arena.f32(UPDATE_WORDS);
      const W0 = fill(rng, new Float32Array(nIn * nOut), { scale: Math.sqrt(2 / nIn), zeros: 0.05, negZero: true });
      const dW = new Float32Array(nIn * nOut);
      const expected = new Float32Array(nIn * nOut);
      const big = nIn * nOut > 20000;
      const cols = columnRanges(nOut, rng).filter((_, i) => !big || i % 2 === 0);
      const ka = nIn > 2 ? 1 + rng.nextInt(nIn - 2) : 0;
      const kRanges: [number, number][] = [
        [0, nIn],
        [1, Math.max(1, nIn - 1)],
        [ka, Math.min(nIn, ka + 5)],
        [ka, ka],
        [nIn - 1, nIn],
      ];
      for (const [what, make] of inputs) {
        make(rng, A);
        fill(rng, D, { scale: 0.01, zeros: 0.1, negZero: true, zeroRows: [rows >> 1], width: nOut });
        for (const lr of big ? [f(0.1)] : [f(0.1), f(-0.03), 0]) {
          weightGrad(A, D, dW, rows, nIn, nOut, 0, nIn);
          expected.set(W0);
          sgdReference(expected, dW, lr, 0, nIn * nOut);
          sgdStep(u, lr);
          for (const k of [wasm, ...nativeSets(arena.memory), js]) {
            const tag = `${k.name} ${label(s)} ${what} lr=${lr}`;
            for (const [k0, k1] of kRanges) {
              for (const [j0, j1] of cols) {
                garbage(W);
                for (let kk = k0; kk < k1; kk++) W.set(W0.subarray(kk * nOut + j0, kk * nOut + j1), kk * nOut + j0);
                poisonOutside(Ap, A, nIn, k0, k1);
                poisonOutside(Dp, D, nOut, j0, j1);
                k.weightGradUpdate(Ap, Dp, W, rows, nIn, nOut, k0, k1, j0, j1, u);
                bitsInBlock(W, expected, nOut, k0, k1, j0, j1, `${tag} k=${k0}..${k1} j=${j0}..${j1}`);
              }
            }
            // the whole matrix as a grid of rectangles, taken in a random order
            const kBlocks = blocksOf(nIn, rng);
            for (const width of [16, 0]) {
              const jBlocks = blocksOf(nOut, rng, width);
              const cells = kBlocks.flatMap((kb) => jBlocks.map((jb) => [...kb, ...jb]));
              const order = new Uint32Array(cells.length);
              rng.permutation(order);
              W.set(W0);
              for (const i of order) {
                const [k0, k1, j0, j1] = cells[i];
                k.weightGradUpdate(A, D, W, rows, nIn, nOut, k0, k1, j0, j1, u);
              }
              bitsEqual(W, expected, `${tag} as ${cells.length} rectangles, column blocks ${width || 'random'}`);
            }
          }
        }
      }
    });
  }

  it('the wasm wrapper refuses column and row ranges outside the layer', () => {
    const { arena, wasm } = setup([4 * 6, 6 * 5, 5, 4 * 5]);
    const X = arena.f32(4 * 6);
    const W = arena.f32(6 * 5);
    const b = arena.f32(5);
    const out = arena.f32(4 * 5);
    const u = sgdStep(arena.f32(UPDATE_WORDS), f(0.1));
    for (const [j0, j1] of [
      [0, 6],
      [3, 2],
      [-1, 2],
      [0.5, 2],
      [5, 6],
      [NaN, 1],
    ]) {
      expect(() => wasm.denseForward(X, W, b, out, 4, 6, 5, true, j0, j1)).toThrow(RangeError);
      expect(() => wasm.weightGradUpdate(X, out, W, 4, 6, 5, 0, 6, j0, j1, u)).toThrow(RangeError);
    }
    for (const [k0, k1] of [
      [0, 7],
      [4, 3],
      [-1, 1],
    ]) {
      expect(() => wasm.weightGradUpdate(X, out, W, 4, 6, 5, k0, k1, 0, 5, u)).toThrow(RangeError);
    }
    expect(() => wasm.denseForward(X, W, b, out, 4, 6, 5, true, 5, 5)).not.toThrow();
    expect(() => wasm.weightGradUpdate(X, out, W, 4, 6, 5, 6, 6, 0, 0, u)).not.toThrow();
  });
});
