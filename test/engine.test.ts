import { beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../src/data/dataset.js';
import { nativeStatus } from '../src/kernels/native.js';
import type { TrainOptions } from '../src/train/config.js';
import { train, type TrainResult } from '../src/train/train.js';
import { bitsEqual, runCli, SLOW_TEST_TIMEOUT } from './helpers.js';

// 4010 training examples: 63 steps per epoch at batch 64 (the last of 42 rows), 81 at batch 50 (the last of
// 10 rows), so 200 steps cross epoch boundaries, reshuffles and short last batches.
const mnist = loadDataset(undefined, { inputSize: 784, classes: 10, trainLimit: 4010, testLimit: 200 });
const STEPS = 200;

async function run(options: TrainOptions) {
  return train({ epochs: 10, maxSteps: STEPS, seed: 5, ...options }, { dataset: mnist });
}

describe('the data-parallel engine is bit-identical to the reference trainer', { timeout: SLOW_TEST_TIMEOUT }, () => {
  // One test per thread count and kernel set, so each slow scalar run (the reference, js) has the whole limit.
  for (const batchSize of [64, 50]) {
    describe(`batch ${batchSize}`, () => {
      let reference: TrainResult;
      beforeAll(async () => {
        reference = await run({ batchSize, reference: true });
      }, SLOW_TEST_TIMEOUT);

      // The js kernels (as slow as the reference) once, at the batch size with short last batches.
      const runs = [
        ...[1, 2, 3, 4, 5, 6, 7, 8].map((t) => [t, 'wasm'] as const),
        ...(batchSize === 50 ? [[3, 'js'] as const] : []),
      ];
      it.each(runs)('%i thread(s), %s kernels: equal to the reference bit for bit', async (threads, kernels) => {
        expect(reference.steps).toBe(STEPS);
        const result = await run({ batchSize, threads, kernels });
        expect(bitsEqual(result.params, reference.params)).toBe(true);
        expect(result.paramsSha256).toBe(reference.paramsSha256);
        // Evaluation on all threads reports exactly what the reference's evaluation reports.
        expect(result.history.map((h) => [h.trainAccuracy, h.testAccuracy, h.trainLoss, h.testLoss])).toEqual(
          reference.history.map((h) => [h.trainAccuracy, h.testAccuracy, h.trainLoss, h.testLoss]),
        );
      });
    });
  }

  // Other networks: no hidden layer, widths that are not multiples of 4 (SIMD lanes), a hidden layer
  // narrower than a parameter block, and three hidden layers.
  const shapes = [
    [784, 10],
    [784, 37, 10],
    [784, 50, 13, 6, 10],
    [784, 8, 10],
  ];
  it.each(shapes.map((layers) => [layers.join('-'), layers] as const))(
    'layers %s: equal to the reference at 1, 2, 3 and 5 threads',
    async (_name, layers) => {
      const steps = { batchSize: 50, maxSteps: 90, layers };
      const reference = await run({ ...steps, reference: true });
      for (const threads of [1, 2, 3, 5]) {
        const result = await run({ ...steps, threads, kernels: 'wasm' });
        expect(result.paramsSha256, `${threads} threads`).toBe(reference.paramsSha256);
      }
    },
  );

  // A layer of more weights than a core's cache holds (workers/step.ts): the first half in one chunk per thread
  // (44, 44 and 42 rows at 3 threads), native parameter blocks of 64 rows or more, and rows 512 floats apart,
  // which the native kernels copy before use.
  it('a layer bigger than the cache: native and wasm at 1, 2 and 3 threads equal the reference', async () => {
    const steps = { batchSize: 130, maxSteps: 3, layers: [784, 512, 10] };
    const reference = await run({ ...steps, reference: true });
    for (const kernels of [...nativeStatus().isas, 'wasm'] as const) {
      for (const threads of [1, 2, 3]) {
        const result = await run({ ...steps, threads, kernels });
        expect(result.paramsSha256, `${kernels}, ${threads} threads`).toBe(reference.paramsSha256);
      }
    }
  });

  it('works with more threads than rows in a batch', async () => {
    const reference = await run({ batchSize: 5, reference: true, maxSteps: 30 });
    const result = await run({ batchSize: 5, threads: 8, kernels: 'wasm', maxSteps: 30 });
    expect(result.paramsSha256).toBe(reference.paramsSha256);
  });
});

// A hang ends at runCli's 30 s and a slow end fails the 10 s check; the test's own limit is above both.
describe('a failing worker ends the run', { timeout: SLOW_TEST_TIMEOUT }, () => {
  const FAULTY_RUN = ['train', '--threads', '3', '--train-limit', '2000', '--test-limit', '100', '--epochs', '1'];
  it.each([
    ['throw', 'injected fault in worker thread 1 at step 3'],
    ['exit', 'worker thread 1 failed'],
  ])('a worker that fails (%s) ends the run promptly with one line and exit code 1', (kind, message) => {
    const started = Date.now();
    const r = runCli(FAULTY_RUN, { env: { LOCKSTEP_TEST_FAULT: `1:3:${kind}` }, timeout: 30_000 });
    expect(r.code).toBe(1);
    // On fewer than 3 cores the run first says its threads take turns (a notice, not the failure).
    const lines = r.stderr
      .trimEnd()
      .split('\n')
      .filter((line) => !line.startsWith('lockstep: notice: --threads 3: more threads than'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(message);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('the coordinator failing in the middle of a step ends the run too: the workers waiting at a barrier are released', () => {
    const started = Date.now();
    const r = runCli(FAULTY_RUN, { env: { LOCKSTEP_TEST_FAULT: '0:3' }, timeout: 30_000 });
    expect(r.code).toBe(1);
    // On fewer than 3 cores the run first says its threads take turns (a notice, not the failure).
    const lines = r.stderr
      .trimEnd()
      .split('\n')
      .filter((line) => !line.startsWith('lockstep: notice: --threads 3: more threads than'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('injected fault in the coordinator (thread 0) at step 3');
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
