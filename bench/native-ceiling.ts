/**
 * bench:kernels' native rows: each native kernel against its ceiling, the plainest dense multiply-then-add
 * loop of the same instruction set (native/kernels.cc, plainForward: 4 rows × 4 vectors, every k) on the same
 * shape, inputs without zeros so no kernel skips anything. GFLOP/s counted as 2·rows·nIn·nOut for all; the
 * sides take turns every few milliseconds (a round: each side timed once, the first side rotating), so a load
 * that drifts over seconds falls on both sides of a round's ratio; each ratio is the median of the rounds'.
 * Target: ≥ 0.85 × the ceiling.
 */
import { SharedArena } from '../src/memory/arena.js';
import { createNativeKernels, nativePlainForward, nativeStatus } from '../src/kernels/native.js';
import { sgdSettings, updateStep, UPDATE_WORDS, writeUpdate } from '../src/optim/optimizer.js';
import { median } from '../src/train/calibrate.js';

export const TARGET_CEILING_RATIO = 0.85;

export interface CeilingRow {
  isa: string;
  shape: string;
  kernel: string;
  gflops: number;
  ceilingGflops: number;
  ratio: number;
}

/** The layers the textbook's step and the widest model of bench:peers run (reluBackward never runs on layer 1). */
const SHAPES = [
  { rows: 64, nIn: 784, nOut: 128 },
  { rows: 64, nIn: 128, nOut: 64 },
  { rows: 256, nIn: 1024, nOut: 1024 },
];

export const CEILING_ROUNDS = 41;

/** timeUs(fn, warm): fn's time per call, short (a few ms); warmed first where warm. */
export function nativeAgainstCeiling(
  timeUs: (fn: () => void, warm: boolean) => number,
  rounds = CEILING_ROUNDS,
): CeilingRow[] {
  const out: CeilingRow[] = [];
  for (const isa of nativeStatus().isas) {
    for (const { rows, nIn, nOut } of SHAPES) {
      const arena = new SharedArena(
        SharedArena.bytesFor([
          rows * nIn * 4,
          nIn * nOut * 4,
          nOut * 4,
          rows * nOut * 4,
          rows * nIn * 4,
          rows * nOut * 4,
          4096,
        ]),
      );
      const X = arena.f32(rows * nIn);
      const W = arena.f32(nIn * nOut);
      const b = arena.f32(nOut);
      const Z = arena.f32(rows * nOut);
      const P = arena.f32(rows * nIn);
      const u = arena.f32(UPDATE_WORDS);
      let seed = 7;
      const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
      for (let i = 0; i < X.length; i++) X[i] = 0.05 + next(); // no zeros: nothing to skip, ReLU always on
      for (let i = 0; i < W.length; i++) W[i] = (next() - 0.5) * 0.05;
      for (let i = 0; i < Z.length; i++) Z[i] = (next() - 0.5) * 1e-3;
      writeUpdate(u, updateStep(sgdSettings(1e-6), 1, 0), u, new Float32Array(0));
      const k = createNativeKernels(arena.memory, isa);
      const plain = nativePlainForward(arena.memory, isa);
      const D = arena.f32(rows * nOut);
      D.set(Z);
      const sides: [string, () => void][] = [
        ['ceiling', () => plain(X, W, Z, rows, nIn, nOut)],
        ['denseForward', () => k.denseForward(X, W, b, Z, rows, nIn, nOut, false, 0, nOut)],
        ['reluBackward', () => k.reluBackward(D, W, X, P, rows, nIn, nOut)],
        ['weightGradUpdate', () => k.weightGradUpdate(X, D, W, rows, nIn, nOut, 0, nIn, 0, nOut, u)],
      ];
      const ratios = new Map<string, number[]>();
      const speeds = new Map<string, number[]>();
      const flops = 2 * rows * nIn * nOut;
      for (const [, fn] of sides) timeUs(fn, true);
      for (let r = 0; r < rounds; r++) {
        const us = new Map<string, number>();
        for (let s = 0; s < sides.length; s++) {
          const [name, fn] = sides[(r + s) % sides.length];
          us.set(name, timeUs(fn, false));
        }
        for (const [name] of sides) {
          speeds.set(name, [...(speeds.get(name) ?? []), flops / us.get(name)! / 1e3]);
          ratios.set(name, [...(ratios.get(name) ?? []), us.get('ceiling')! / us.get(name)!]);
        }
      }
      for (const [name] of sides.slice(1)) {
        if (name === 'reluBackward' && nIn === 784) continue;
        out.push({
          isa,
          shape: `${rows}x${nIn}->${nOut}`,
          kernel: name,
          gflops: median(speeds.get(name)!),
          ceilingGflops: median(speeds.get('ceiling')!),
          ratio: median(ratios.get(name)!),
        });
      }
    }
  }
  return out;
}
