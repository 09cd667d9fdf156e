import type { Dataset } from '../data/dataset.js';
import { paramsSha256 } from '../model/hash.js';
import type { ModelLayout } from '../model/layout.js';
import { type TrainOptions } from '../train/config.js';
import { train } from '../train/train.js';

/**
 * Determinism check: the same run at several thread counts against the single-thread reference trainer
 * (the specification's arithmetic), compared bit for bit over every parameter.
 */
export interface VerifyOptions extends TrainOptions {
  threadCounts: number[];
  steps: number;
}

export interface VerifyRow {
  threads: number | 'reference';
  kernels: string;
  paramsSha256: string;
  equal: boolean;
  differing: number;
  maxAbsDiff: number;
  maxUlp: number;
  /** The first differing parameter, e.g. "layers.0.weight[out=3, in=17]", or null. */
  firstDifference: string | null;
}

export async function verify(options: VerifyOptions, dataset: Dataset, onRow?: (row: VerifyRow) => void): Promise<VerifyRow[]> {
  const { threadCounts, steps, ...trainOptions } = options;
  const base = { ...trainOptions, maxSteps: steps, epochs: Number.MAX_SAFE_INTEGER, evaluate: false };
  const reference = await train({ ...base, reference: true, threads: 1, kernels: 'js' }, { dataset });
  const rows: VerifyRow[] = [];
  const emit = (row: VerifyRow) => {
    rows.push(row);
    onRow?.(row);
  };
  emit(compare('reference', 'js', reference.params, reference.params, reference.layout));
  for (const threads of threadCounts) {
    const run = await train({ ...base, threads }, { dataset });
    testPerturbation(threads, run.params);
    emit(compare(threads, run.config.kernels, run.params, reference.params, reference.layout));
  }
  return rows;
}

/** Test-only: LOCKSTEP_TEST_PERTURB=threads:index flips the last bit of one parameter of that run (one ULP). */
function testPerturbation(threads: number, params: Float32Array): void {
  const spec = process.env.LOCKSTEP_TEST_PERTURB;
  if (!spec) return;
  const [t, index] = spec.split(':').map(Number);
  if (t === threads) new Uint32Array(params.buffer, params.byteOffset, params.length)[index] ^= 1;
}

export function compare(
  threads: number | 'reference', kernels: string, params: Float32Array, reference: Float32Array, layout: ModelLayout,
): VerifyRow {
  const a = new Uint32Array(params.buffer, params.byteOffset, params.length);
  const b = new Uint32Array(reference.buffer, reference.byteOffset, reference.length);
  let differing = 0;
  let maxAbsDiff = 0;
  let maxUlp = 0;
  let first = -1;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    differing++;
    if (first < 0) first = i;
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(params[i] - reference[i]));
    maxUlp = Math.max(maxUlp, ulpDistance(a[i], b[i]));
  }
  return {
    threads,
    kernels,
    paramsSha256: paramsSha256(params),
    equal: differing === 0,
    differing,
    maxAbsDiff,
    maxUlp,
    firstDifference: first < 0 ? null : parameterName(layout, first),
  };
}

/** Distance in representable float32 values: the bit patterns mapped onto one ordered integer line. */
export function ulpDistance(bitsA: number, bitsB: number): number {
  const ordered = (bits: number) => (bits & 0x80000000 ? -(bits & 0x7fffffff) : bits);
  return Math.abs(ordered(bitsA) - ordered(bitsB));
}

/** A parameter's name in the safetensors/PyTorch convention: weight [out, in], bias [out]. */
export function parameterName(layout: ModelLayout, index: number): string {
  for (let l = 0; l < layout.layers.length; l++) {
    const { nOut, weightOffset, biasOffset } = layout.layers[l];
    if (index >= weightOffset && index < biasOffset) {
      const k = Math.floor((index - weightOffset) / nOut);
      const j = (index - weightOffset) % nOut;
      return `layers.${l}.weight[out=${j}, in=${k}] (parameter ${index})`;
    }
    if (index >= biasOffset && index < biasOffset + nOut) return `layers.${l}.bias[${index - biasOffset}] (parameter ${index})`;
  }
  throw new RangeError(`parameter index ${index} out of range`);
}
