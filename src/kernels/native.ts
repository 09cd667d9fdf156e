/**
 * The native kernel set: native/kernels.cc compiled by node-gyp (`npm run build:native`) for AVX-512F and
 * for AVX2 into one addon, native/build/Release/lockstep.node, which picks by the CPU at run time. The same
 * arithmetic as the reference, bit for bit, at the CPU's whole vector width (ARCHITECTURE.md, "Kernels").
 *
 * Like the wasm module it works in place on the shared WebAssembly.Memory, through byte offsets, and every
 * thread loads it for itself (a context-aware addon). A machine without a compiler has no addon: the build
 * leaves a note saying why (native/build/failed.txt), and the default kernels are then wasm.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from '../paths.js';
import type { Blocking, Kernels } from './kernels.js';
import { offsetKernels, type OffsetKernels } from './offsets.js';

/** The instruction sets the native kernels are built for, widest first. */
export const NATIVE_ISAS = ['avx512', 'avx2'] as const;
export type NativeIsa = (typeof NATIVE_ISAS)[number];

/** Pieces of 2 vectors of rows (reluBackward's row block, native/kernels.cc); parameter blocks as wasm's, but
 * of 64 rows at least, enough to pay for copying crowded rows of the deltas (docs/benchmarks.md). */
const NATIVE_BLOCKING: Record<NativeIsa, Blocking> = {
  avx512: { chunkRows: 32, blockWeights: 8192, blockRows: 64 },
  avx2: { chunkRows: 16, blockWeights: 8192, blockRows: 64 },
};

interface Addon {
  isas(): NativeIsa[];
  bind(view: Uint8Array, isa: NativeIsa): OffsetKernels;
}

/** What this machine has: the addon's instruction sets that the CPU runs, or why there is no addon. */
export interface NativeStatus {
  isas: NativeIsa[];
  /** Why the addon could not be loaded (not built, failed build); absent when it loaded. */
  missing?: string;
}

const nativeDir = () => join(packageRoot(), 'native', 'build');
let addon: Addon | undefined;
let status: NativeStatus | undefined;

function load(): NativeStatus {
  if (status) return status;
  // tests only: an addon built elsewhere, e.g. by `node native/build.mjs --emulate-avx512 DIR` (test/avx512-emulated.test.ts)
  const path = process.env.LOCKSTEP_TEST_NATIVE_ADDON || join(nativeDir(), 'Release', 'lockstep.node');
  if (!existsSync(path)) {
    const failed = join(nativeDir(), 'failed.txt');
    const why = existsSync(failed)
      ? readFileSync(failed, 'utf8').trim()
      : `${path} is missing; run npm run build:native`;
    return (status = { isas: [], missing: why });
  }
  try {
    addon = createRequire(import.meta.url)(path) as Addon;
    return (status = { isas: addon.isas() });
  } catch (err) {
    return (status = { isas: [], missing: `${path}: ${(err as Error).message.split('\n')[0]}` });
  }
}

/** The native instruction sets this process can use, widest first (none where the addon is missing). */
export function nativeStatus(): NativeStatus {
  return load();
}

/** The native kernel set for `isa` over `memory` (a shared WebAssembly.Memory); the isa must be in nativeStatus(). */
export function createNativeKernels(memory: WebAssembly.Memory, isa: NativeIsa): Kernels {
  if (!load().isas.includes(isa)) throw new Error(`native kernels: ${isa} is not available here`);
  const view = new Uint8Array(memory.buffer);
  return offsetKernels(isa, NATIVE_BLOCKING[isa], memory, addon!.bind(view, isa));
}

/** bench:kernels' ceiling: `isa`'s plainest dense multiply-then-add loop (rows % 4 = 0, nOut a multiple of 4 vectors). */
export function nativePlainForward(
  memory: WebAssembly.Memory,
  isa: NativeIsa,
): (X: Float32Array, W: Float32Array, out: Float32Array, rows: number, nIn: number, nOut: number) => void {
  if (!load().isas.includes(isa)) throw new Error(`native kernels: ${isa} is not available here`);
  const bound = addon!.bind(new Uint8Array(memory.buffer), isa) as OffsetKernels & {
    plainForward(X: number, W: number, out: number, rows: number, nIn: number, nOut: number): void;
  };
  return (X, W, out, rows, nIn, nOut) =>
    bound.plainForward(X.byteOffset, W.byteOffset, out.byteOffset, rows, nIn, nOut);
}
