import { describe, expect, it } from 'vitest';
import { initHeNormal, layerViews, modelLayout, type ModelLayout } from '../src/model/layout.js';
import { PIXEL_SCALE } from '../src/kernels/reference.js';
import { Rng } from '../src/random/rng.js';
import { ReferenceTrainer } from '../src/train/reference-trainer.js';
import { sgdSettings } from '../src/optim/optimizer.js';
import { syntheticImages } from './helpers.js';
import type { LabeledRows } from '../src/data/dataset.js';

/**
 * An independent float64 model of the same network: plain loops, no shared code with the kernels but the
 * pixel table. The loss is the batch mean of -log softmax(z)[label].
 */
function lossFloat64(layout: ModelLayout, params: Float64Array, data: LabeledRows, rows: number): number {
  let total = 0;
  for (let r = 0; r < rows; r++) {
    let a = Array.from(data.images.subarray(r * data.featureCount, (r + 1) * data.featureCount), (p) => PIXEL_SCALE[p]);
    layout.dense.forEach((layer, l) => {
      const z = new Array<number>(layer.nOut).fill(0);
      for (let j = 0; j < layer.nOut; j++) {
        let s = params[layer.biasOffset + j];
        for (let k = 0; k < layer.nIn; k++) s += a[k] * params[layer.weightOffset + k * layer.nOut + j];
        z[j] = l < layout.dense.length - 1 ? Math.max(0, s) : s;
      }
      a = z;
    });
    const m = Math.max(...a);
    const logSum = Math.log(a.reduce((s, v) => s + Math.exp(v - m), 0)) + m;
    total += logSum - a[data.labels[r]];
  }
  return total / rows;
}

describe('reference backward against central finite differences', () => {
  // Tolerance: |analytic - numeric| <= 1e-3·max(|numeric|, |analytic|) + 2e-5. The analytic gradient is
  // float32 (relative error ~1e-6 per operation); the numeric one is float64 with h = 1e-5 and error O(h²).
  it.each([
    { sizes: [6, 5, 4, 3], rows: 7 },
    { sizes: [9, 8, 3], rows: 4 },
    { sizes: [4, 1, 2], rows: 5 },
  ])('every parameter of $sizes, batch $rows', ({ sizes, rows }) => {
    const layout = modelLayout(sizes);
    const data = syntheticImages(rows, sizes[0], sizes[sizes.length - 1], 42, 0.3);
    const params = new Float32Array(layout.paramCount);
    initHeNormal(layout, params, new Rng(7));
    // Non-zero biases (mostly positive, so no hidden unit is dead): their gradients and the bias-last sums count too.
    const biasRng = new Rng(8);
    for (const layer of layout.dense)
      layerViews(params, layer).b.forEach((_, j, b) => (b[j] = 0.1 + 0.1 * biasRng.nextNormal()));

    const trainer = new ReferenceTrainer(layout, params, data, data, rows, sgdSettings(0.5));
    for (let r = 0; r < rows; r++) trainer.order[r] = r;
    trainer.gradients(0, rows);

    const p64 = Float64Array.from(params);
    const h = 1e-5;
    expect(trainer.grads).toHaveLength(layout.paramCount);
    const mismatches: string[] = [];
    let agreed = 0;
    for (let i = 0; i < layout.paramCount; i++) {
      const saved = p64[i];
      p64[i] = saved + h;
      const up = lossFloat64(layout, p64, data, rows);
      p64[i] = saved - h;
      const down = lossFloat64(layout, p64, data, rows);
      p64[i] = saved;
      const numeric = (up - down) / (2 * h);
      const analytic = trainer.grads[i];
      const tol = 1e-3 * Math.max(Math.abs(numeric), Math.abs(analytic)) + 2e-5;
      // Agreement is asked, not disagreement: every comparison with NaN is false, so a NaN on either side is a mismatch.
      if (Math.abs(analytic - numeric) <= tol) agreed++;
      else mismatches.push(`parameter ${i}: analytic ${analytic}, numeric ${numeric}`);
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
    expect(agreed).toBe(layout.paramCount);
    // The check must not pass vacuously: most gradients are non-zero.
    expect(Array.from(trainer.grads).filter((g) => g !== 0).length).toBeGreaterThan(layout.paramCount / 2);
  });
});
