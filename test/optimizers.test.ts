import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { loadDataset, type Dataset } from '../src/data/dataset.js';
import { UserError } from '../src/errors.js';
import { PIXEL_SCALE } from '../src/kernels/reference.js';
import { nativeStatus } from '../src/kernels/native.js';
import type { KernelChoice } from '../src/kernels/select.js';
import { modelLayout } from '../src/model/layout.js';
import { Rng } from '../src/random/rng.js';
import { CHECKPOINT_FORMAT, encodeCheckpoint, readCheckpoint, writeCheckpoint } from '../src/model-io/checkpoint.js';
import { exportSafetensors } from '../src/model-io/export.js';
import { readSafetensors } from '../src/model-io/safetensors.js';
import { Engine } from '../src/coordinator/engine.js';
import { readUpdate, stateArrays, type OptimizerName } from '../src/optim/optimizer.js';
import { learningRate, type ScheduleName } from '../src/optim/schedule.js';
import { formatEpoch } from '../src/cli/format.js';
import { resolveConfig, resumeOptions, type TrainOptions } from '../src/train/config.js';
import { train, type TrainSnapshot } from '../src/train/train.js';
import { runCli, SLOW_TEST_TIMEOUT, syntheticImages, tempDir } from './helpers.js';

const OPTIMIZERS: OptimizerName[] = ['sgd', 'momentum', 'nesterov', 'adam', 'adamw'];
const LR: Record<OptimizerName, number> = { sgd: 0.3, momentum: 0.05, nesterov: 0.05, adam: 0.003, adamw: 0.003 };

// Real MNIST rows (their zero patterns take every path of the fused kernels), a small network whose widths
// leave SIMD tails (20 = 16 + 4, 12, 10 = 8 + 2), batch 50: 6 steps an epoch, the last of 6 rows.
const mnist = loadDataset(undefined, { inputSize: 784, classes: 10, trainLimit: 256, testLimit: 64 });
const SMALL: TrainOptions = { layers: [784, 20, 12, 10], batchSize: 50, epochs: 2, seed: 5, evaluate: false };

/** With and without weight decay, each schedule, with and without warm-up (step: every epoch, ×0.5). */
const RECIPES: TrainOptions[] = [
  { lrSchedule: 'constant' },
  { lrSchedule: 'constant', weightDecay: 0.01, warmupSteps: 4 },
  { lrSchedule: 'step', lrStepEpochs: 1, lrGamma: 0.5, weightDecay: 0.05 },
  { lrSchedule: 'step', lrStepEpochs: 1, warmupSteps: 3 },
  { lrSchedule: 'cosine', weightDecay: 0.02 },
  { lrSchedule: 'cosine', warmupSteps: 5 },
];

describe('every optimizer and schedule is bit-identical across trainers, kernels and thread counts', {
  timeout: 4 * SLOW_TEST_TIMEOUT,
}, () => {
  for (const optimizer of OPTIMIZERS) {
    it(`${optimizer}: --reference, native, wasm and js at 1, 2, 3 and 5 threads end with one paramsSha256`, async () => {
      const hashes = new Set<string>();
      for (const recipe of RECIPES) {
        const options = { ...SMALL, ...recipe, optimizer, lr: LR[optimizer] };
        const reference = await train({ ...options, reference: true, threads: 1 }, { dataset: mnist });
        expect(reference.steps).toBe(12);
        for (const kernels of [...nativeStatus().isas, 'wasm', 'js'] as const) {
          for (const threads of [1, 2, 3, 5]) {
            const run = await train({ ...options, kernels, threads }, { dataset: mnist });
            expect({ recipe, kernels, threads, hash: run.paramsSha256 }).toEqual({
              recipe,
              kernels,
              threads,
              hash: reference.paramsSha256,
            });
          }
        }
        hashes.add(reference.paramsSha256);
      }
      // Each recipe changes the arithmetic: a setting that was ignored would leave two hashes equal.
      expect(hashes.size).toBe(RECIPES.length);
    });
  }
});

// ---------------------------------------------------------------------------------------------------------
// Against PyTorch's definitions: an independent float64 trainer of a tiny network, written from torch.optim's
// documentation, and lockstep's float32 runs of the same steps, compared within float32 rounding.

/** The tiny problem: 6 examples of 5 inputs, 5-4-3 network, the whole set as one batch (one step an epoch). */
const tinyTrain = syntheticImages(6, 5, 3, 21, 0.2);
const tiny: Dataset = { dir: '(tiny)', train: tinyTrain, test: tinyTrain, classes: 3 };
const TINY_LAYERS = [5, 4, 3];
/** Its starting parameters, biases included (He init would leave them 0). */
const init = (() => {
  const rng = new Rng(2);
  return Float32Array.from({ length: modelLayout(TINY_LAYERS).paramCount }, () => 0.5 * rng.nextNormal());
})();

interface TorchSettings {
  optimizer: OptimizerName;
  lr: number;
  momentum?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay: number;
}

/** Mean softmax cross-entropy's gradient of the tiny network at p (float64), layout as lockstep's (W [in][out], b). */
function gradient64(p: Float64Array): Float64Array {
  const layout = modelLayout(TINY_LAYERS);
  const g = new Float64Array(p.length);
  const B = tinyTrain.count;
  for (let r = 0; r < B; r++) {
    const acts: number[][] = [Array.from(tinyTrain.images.subarray(r * 5, r * 5 + 5), (b) => PIXEL_SCALE[b])];
    layout.dense.forEach((l, i) => {
      const z = Array.from({ length: l.nOut }, (_, j) => {
        let s = p[l.biasOffset + j];
        for (let k = 0; k < l.nIn; k++) s += acts[i][k] * p[l.weightOffset + k * l.nOut + j];
        return s;
      });
      acts.push(i < layout.dense.length - 1 ? z.map((v) => Math.max(v, 0)) : z);
    });
    const logits = acts[acts.length - 1];
    const max = Math.max(...logits);
    const e = logits.map((v) => Math.exp(v - max));
    const sum = e.reduce((a, b) => a + b, 0);
    let delta = e.map((v, j) => (v / sum - (j === tinyTrain.labels[r] ? 1 : 0)) / B);
    for (let i = layout.dense.length - 1; i >= 0; i--) {
      const l = layout.dense[i];
      for (let j = 0; j < l.nOut; j++) {
        g[l.biasOffset + j] += delta[j];
        for (let k = 0; k < l.nIn; k++) g[l.weightOffset + k * l.nOut + j] += acts[i][k] * delta[j];
      }
      delta = Array.from({ length: l.nIn }, (_, k) => {
        if (!(acts[i][k] > 0)) return 0;
        let s = 0;
        for (let j = 0; j < l.nOut; j++) s += delta[j] * p[l.weightOffset + k * l.nOut + j];
        return s;
      });
    }
  }
  return g;
}

/** torch.optim.SGD / Adam / AdamW, as their documentation's algorithms, in float64, lr given per step. */
function torchSteps(p0: Float32Array, s: TorchSettings, rates: number[]): Float64Array {
  const p = Float64Array.from(p0);
  const buf = new Float64Array(p.length);
  const m = new Float64Array(p.length);
  const v = new Float64Array(p.length);
  rates.forEach((lr, index) => {
    const t = index + 1;
    const grad = gradient64(p);
    for (let i = 0; i < p.length; i++) {
      let g = grad[i];
      if (s.optimizer === 'adamw') p[i] -= lr * s.weightDecay * p[i];
      else if (s.weightDecay !== 0) g += s.weightDecay * p[i];
      if (s.optimizer === 'sgd') {
        p[i] -= lr * g;
      } else if (s.optimizer === 'momentum' || s.optimizer === 'nesterov') {
        buf[i] = t === 1 ? g : s.momentum! * buf[i] + g;
        p[i] -= lr * (s.optimizer === 'nesterov' ? g + s.momentum! * buf[i] : buf[i]);
      } else {
        const [b1, b2] = s.betas!;
        m[i] = b1 * m[i] + (1 - b1) * g;
        v[i] = b2 * v[i] + (1 - b2) * g * g;
        const mHat = m[i] / (1 - b1 ** t);
        const vHat = v[i] / (1 - b2 ** t);
        p[i] -= (lr * mHat) / (Math.sqrt(vHat) + s.eps!);
      }
    }
  });
  return p;
}

describe("against PyTorch's definitions (an independent float64 implementation)", {
  timeout: SLOW_TEST_TIMEOUT,
}, () => {
  const cases: (TorchSettings & { schedule?: TrainOptions })[] = [
    { optimizer: 'sgd', lr: 0.5, weightDecay: 0 },
    { optimizer: 'sgd', lr: 0.5, weightDecay: 0.1 },
    { optimizer: 'momentum', lr: 0.2, momentum: 0.9, weightDecay: 0 },
    { optimizer: 'momentum', lr: 0.2, momentum: 0.7, weightDecay: 0.1 },
    { optimizer: 'nesterov', lr: 0.2, momentum: 0.9, weightDecay: 0.05 },
    { optimizer: 'adam', lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 },
    { optimizer: 'adam', lr: 0.01, betas: [0.8, 0.99], eps: 1e-3, weightDecay: 0.1 },
    { optimizer: 'adamw', lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.5 },
    {
      optimizer: 'adamw',
      lr: 0.05,
      betas: [0.9, 0.999],
      eps: 1e-8,
      weightDecay: 0.1,
      schedule: { lrSchedule: 'cosine', warmupSteps: 2 },
    },
    {
      optimizer: 'momentum',
      lr: 0.2,
      momentum: 0.9,
      weightDecay: 0,
      schedule: { lrSchedule: 'step', lrStepEpochs: 2, lrGamma: 0.3 },
    },
  ];
  for (const c of cases) {
    it(`${c.optimizer}, weight decay ${c.weightDecay}${c.schedule ? `, ${c.schedule.lrSchedule} schedule` : ''}: 6 steps within float32 rounding`, async () => {
      const steps = 6;
      const options: TrainOptions = {
        layers: TINY_LAYERS,
        batchSize: tiny.train.count,
        epochs: steps,
        seed: 2,
        evaluate: false,
        threads: 2,
        optimizer: c.optimizer,
        lr: c.lr,
        weightDecay: c.weightDecay,
        momentum: c.momentum,
        beta1: c.betas?.[0],
        beta2: c.betas?.[1],
        eps: c.eps,
        ...c.schedule,
      };
      const rates = Array.from({ length: steps }, (_, s) => torchRate(c, s, steps));
      const expected = torchSteps(init, c, rates);
      for (const reference of [false, true]) {
        const run = await train(
          { ...options, reference, threads: reference ? 1 : 2 },
          { dataset: tiny, initialParams: init },
        );
        let worst = 0;
        for (let i = 0; i < expected.length; i++) {
          const scale = Math.max(Math.abs(expected[i]), 1e-3);
          worst = Math.max(worst, Math.abs(run.params[i] - expected[i]) / scale);
        }
        // float32 rounds each operation by up to 6e-8 (relative); Adam's m/√v amplifies the gradients' rounding, and
        // six steps of it stay below 5e-5, while a wrong definition (a missing bias correction, coupled decay for
        // adamw, eps inside the root) moves these parameters by 1e-4 or more
        expect(worst).toBeLessThan(5e-5);
        expect(worst).toBeGreaterThan(0); // float32 against float64: equal would mean the comparison compared nothing
      }
    });
  }
});

/** The PyTorch schedulers' rates, written independently: LambdaLR warm-up, StepLR, CosineAnnealingLR. */
function torchRate(c: TorchSettings & { schedule?: TrainOptions }, step: number, total: number): number {
  const s = c.schedule ?? {};
  const warmup = s.warmupSteps ?? 0;
  if (step < warmup) return (c.lr * step) / warmup;
  if (s.lrSchedule === 'step') return c.lr * (s.lrGamma ?? 0.1) ** Math.floor(step / s.lrStepEpochs!);
  if (s.lrSchedule === 'cosine') return 0.5 * c.lr * (1 + Math.cos((Math.PI * (step - warmup)) / (total - warmup)));
  return c.lr;
}

// ---------------------------------------------------------------------------------------------------------
// Resuming: the optimizer's state is in the checkpoint, and a resumed run ends where an uninterrupted one does.

const paramCount = modelLayout(SMALL.layers!).paramCount;
const RESUMED: TrainOptions = { ...SMALL, epochs: 3, weightDecay: 0.01, lrSchedule: 'cosine', warmupSteps: 3 };

/** Trains to `stopAt` steps with a checkpoint at `threads`, and returns the checkpoint read back. */
async function stopAt(options: TrainOptions, steps: number, threads: number, kernels?: KernelChoice) {
  const path = join(tempDir(), 'run.ckpt');
  await train(
    { ...options, threads, maxSteps: steps, kernels },
    { dataset: mnist, onCheckpoint: (s: TrainSnapshot) => writeCheckpoint(path, s) },
  );
  return { path, checkpoint: readCheckpoint(path) };
}

describe('resume mid-epoch with each optimizer equals the uninterrupted run', {
  timeout: 2 * SLOW_TEST_TIMEOUT,
}, () => {
  for (const optimizer of OPTIMIZERS) {
    it(`${optimizer}: stopped at 1, 3 and 2 threads, resumed at 3, 1 threads and on the reference trainer`, async () => {
      const options = { ...RESUMED, optimizer, lr: LR[optimizer] };
      const uninterrupted = await train({ ...options, threads: 2 }, { dataset: mnist });
      expect(uninterrupted.steps).toBe(18);
      for (const [steps, before, after] of [
        [8, 1, 3],
        [13, 3, 1],
        [6, 2, 0],
      ]) {
        const { path, checkpoint } = await stopAt(options, steps, before);
        expect(checkpoint.state.steps).toBe(steps);
        expect(checkpoint.optimizerState.length).toBe(stateArrays(optimizer) * paramCount);
        const resumed = await train(
          resumeOptions(checkpoint.config, after === 0 ? { reference: true, threads: 1 } : { threads: after }, path),
          {
            dataset: mnist,
            resume: { params: checkpoint.params, state: checkpoint.state, optimizerState: checkpoint.optimizerState },
          },
        );
        expect({ steps, before, after, hash: resumed.paramsSha256 }).toEqual({
          steps,
          before,
          after,
          hash: uninterrupted.paramsSha256,
        });
      }
    });
  }

  it('a checkpoint written with one kernel set resumes with any other: wasm → native → js, same hash', async () => {
    const options = { ...RESUMED, optimizer: 'adam' as const, lr: LR.adam };
    const uninterrupted = await train({ ...options, threads: 2, kernels: 'js' }, { dataset: mnist });
    const kinds: KernelChoice[] = ['wasm', ...nativeStatus().isas, 'js'];
    for (let i = 0; i + 1 < kinds.length; i++) {
      const { path, checkpoint } = await stopAt(options, 5 + 3 * i, 2, kinds[i]);
      expect(checkpoint.config.kernels).toBe(kinds[i]);
      const resumed = await train(resumeOptions(checkpoint.config, { threads: 3, kernels: kinds[i + 1] }, path), {
        dataset: mnist,
        resume: { params: checkpoint.params, state: checkpoint.state, optimizerState: checkpoint.optimizerState },
      });
      expect({ from: kinds[i], to: resumed.kernels, hash: resumed.paramsSha256 }).toEqual({
        from: kinds[i],
        to: kinds[i + 1],
        hash: uninterrupted.paramsSha256,
      });
    }
  });

  it('the saved state matters: adam resumed with zeroed moments ends elsewhere', async () => {
    const options = { ...RESUMED, optimizer: 'adam' as const, lr: LR.adam };
    const uninterrupted = await train({ ...options, threads: 2 }, { dataset: mnist });
    const { path, checkpoint } = await stopAt(options, 8, 2);
    const zeroed = new Float32Array(checkpoint.optimizerState.length);
    const resumed = await train(resumeOptions(checkpoint.config, { threads: 2 }, path), {
      dataset: mnist,
      resume: { params: checkpoint.params, state: checkpoint.state, optimizerState: zeroed },
    });
    expect(resumed.paramsSha256).not.toBe(uninterrupted.paramsSha256);
  });

  it('a checkpoint from before optimizers (format version 1) resumes as plain SGD, bit-identically', async () => {
    const options: TrainOptions = { ...SMALL, epochs: 3, lr: 0.3 };
    const uninterrupted = await train({ ...options, threads: 2 }, { dataset: mnist });
    const path = join(tempDir(), 'v1.ckpt');
    let snapshot: TrainSnapshot | undefined;
    await train(
      { ...options, threads: 1, maxSteps: 9 },
      { dataset: mnist, onCheckpoint: (s) => void (snapshot = structuredClone(s)) },
    );
    writeFileSync(path, encodeVersion1(snapshot!));
    const checkpoint = readCheckpoint(path);
    expect(checkpoint.config.optimizer).toBeUndefined();
    expect(checkpoint.optimizerState.length).toBe(0);
    const resumed = await train(resumeOptions(checkpoint.config, { threads: 3 }, path), {
      dataset: mnist,
      resume: { params: checkpoint.params, state: checkpoint.state, optimizerState: checkpoint.optimizerState },
    });
    expect(resumed.config.optimizer).toBe('sgd');
    expect(resumed.paramsSha256).toBe(uninterrupted.paramsSha256);
    // and a new run's checkpoint is version 2, with the state
    expect(() => encodeCheckpoint({ ...snapshot!, config: { ...snapshot!.config, optimizer: 'adam' } })).toThrow(
      /optimizer state/,
    );
  });

  it(
    'on the command line: adam stopped by --max-steps and resumed with --resume ends as the uninterrupted run',
    () => {
      const dir = tempDir();
      const flags = [
        '--train-limit',
        '256',
        '--test-limit',
        '64',
        '--layers',
        '784,20,12,10',
        '--batch-size',
        '50',
        '--epochs',
        '2',
        '--optimizer',
        'adam',
        '--lr',
        '0.003',
        '--lr-schedule',
        'cosine',
        '--warmup-steps',
        '2',
        '--json',
      ];
      const hashOf = (out: string) => JSON.parse(out.trim().split('\n').pop()!).paramsSha256 as string;
      const full = runCli(['train', ...flags, '--threads', '2']);
      expect(full.stderr).toBe('');
      const ckpt = join(dir, 'run.ckpt');
      const first = runCli(['train', ...flags, '--threads', '1', '--max-steps', '7', '--checkpoint', ckpt]);
      expect(first.code).toBe(0);
      const resumed = runCli(['train', '--resume', ckpt, '--threads', '3', '--json']);
      const cores = availableParallelism();
      const crowded =
        cores < 3
          ? `lockstep: notice: --threads 3: more threads than the ${cores} available cores; they take turns on the cores, so the run is slower than on fewer threads (its weights are the same)\n`
          : '';
      expect({ code: resumed.code, stderr: resumed.stderr }).toEqual({ code: 0, stderr: crowded });
      expect(hashOf(resumed.stdout)).toBe(hashOf(full.stdout));
      const refused = runCli(['train', '--resume', ckpt, '--optimizer', 'adamw']);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toBe(
        `lockstep: --optimizer adamw: ${ckpt} was trained with adam; a resumed run keeps it\n`,
      );
    },
    SLOW_TEST_TIMEOUT,
  );
});

const packr = new Packr({ useRecords: false });

/** A checkpoint as lockstep wrote it before optimizers: format version 1, no optimizer state or settings. */
function encodeVersion1(snapshot: TrainSnapshot): Uint8Array {
  const { optimizer: _o, weightDecay: _w, lrSchedule: _s, warmupSteps: _u, ...config } = snapshot.config;
  const params = Float32Array.from(snapshot.params);
  const body = {
    layers: snapshot.layout.layers,
    dataSha256: snapshot.dataSha256,
    params: new Uint8Array(params.buffer),
    paramsSha256: createHash('sha256').update(new Uint8Array(params.buffer)).digest('hex'),
    state: snapshot.state,
    config,
    savedAt: new Date().toISOString(),
  };
  const bodyBytes = Uint8Array.from(packr.pack(body));
  const sha256 = createHash('sha256').update(bodyBytes).digest('hex');
  return Uint8Array.from(packr.pack({ format: CHECKPOINT_FORMAT, version: 1, sha256, body: bodyBytes }));
}

// ---------------------------------------------------------------------------------------------------------
// Settings: defaults, refusals naming the flag, reports naming the optimizer and the epoch's rate.

describe('optimizer and schedule settings', () => {
  const refusals: [TrainOptions, RegExp][] = [
    [{ optimizer: 'momentum', momentum: -0.5 }, /^--momentum -0.5: must be a finite number ≥ 0$/],
    [{ optimizer: 'nesterov', momentum: 0 }, /^--momentum 0: --optimizer nesterov needs a momentum > 0$/],
    [{ optimizer: 'adam', beta1: 1 }, /^--beta1 1: must be in \[0, 1\)$/],
    [{ optimizer: 'adamw', beta2: -0.1 }, /^--beta2 -0.1: must be in \[0, 1\)$/],
    [{ optimizer: 'adam', eps: 0 }, /^--eps 0: must be a finite number > 0$/],
    [{ weightDecay: -1 }, /^--weight-decay -1: must be a finite number ≥ 0$/],
    [{ warmupSteps: 1.5 }, /^--warmup-steps 1.5: must be an integer ≥ 0$/],
    [
      { optimizer: 'rmsprop' as OptimizerName },
      /^--optimizer "rmsprop": must be one of sgd, momentum, nesterov, adam, adamw$/,
    ],
    [{ lrSchedule: 'linear' as ScheduleName }, /^--lr-schedule "linear": must be one of constant, step, cosine$/],
    [{ lrGamma: 0.5 }, /^--lr-gamma 0.5: only with --lr-schedule step \(this run has --lr-schedule constant\)$/],
    [
      { lrSchedule: 'cosine', lrStepEpochs: 2 },
      /^--lr-step-epochs 2: only with --lr-schedule step \(this run has --lr-schedule cosine\)$/,
    ],
    [{ lrSchedule: 'step' }, /^--lr-schedule step: needs --lr-step-epochs N/],
    [{ lrSchedule: 'step', lrStepEpochs: 2, lrGamma: 0 }, /^--lr-gamma 0: must be a finite number > 0$/],
    [
      { optimizer: 'adam', momentum: 0.9 },
      /^--momentum 0.9: only with --optimizer momentum or nesterov \(this run has --optimizer adam\)$/,
    ],
    [{ beta1: 0.9 }, /^--beta1 0.9: only with --optimizer adam or adamw \(this run has --optimizer sgd\)$/],
  ];
  it.each(refusals)('refuses %j naming the flag', (options, message) => {
    expect(() => resolveConfig(options)).toThrow(UserError);
    expect(() => resolveConfig(options)).toThrow(message);
  });

  it("fills in PyTorch's defaults for the chosen optimizer and schedule only", () => {
    expect(resolveConfig({})).toMatchObject({
      optimizer: 'sgd',
      lr: 0.5,
      weightDecay: 0,
      lrSchedule: 'constant',
      warmupSteps: 0,
    });
    expect(resolveConfig({}).momentum).toBeUndefined();
    expect(resolveConfig({ optimizer: 'momentum' })).toMatchObject({ momentum: 0.9, lr: 0.5 });
    const adam = resolveConfig({ optimizer: 'adamw', lrSchedule: 'step', lrStepEpochs: 3 });
    expect(adam).toMatchObject({ lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-8, lrGamma: 0.1, lrStepEpochs: 3 });
    expect(adam.momentum).toBeUndefined();
  });

  it('a resumed run keeps its optimizer and schedule (and, under cosine, its epochs)', () => {
    const saved = resolveConfig({ optimizer: 'adam', lrSchedule: 'cosine', epochs: 3 });
    expect(() => resumeOptions(saved, { optimizer: 'sgd' }, 'x.ckpt')).toThrow(
      /^--optimizer sgd: x.ckpt was trained with adam; a resumed run keeps it$/,
    );
    expect(() => resumeOptions(saved, { beta2: 0.99 }, 'x.ckpt')).toThrow(
      /^--beta2 0.99: x.ckpt was trained with 0.999/,
    );
    expect(() => resumeOptions(saved, { epochs: 5 }, 'x.ckpt')).toThrow(
      /^--epochs 5: x.ckpt anneals its cosine schedule over 3 epochs/,
    );
    expect(resumeOptions(saved, { optimizer: 'adam', epochs: 3, threads: 1 }, 'x.ckpt')).toMatchObject({
      optimizer: 'adam',
      epochs: 3,
    });
    // a checkpoint from before optimizers was plain SGD at a constant rate
    const { optimizer: _o, lrSchedule: _s, weightDecay: _w, warmupSteps: _u, ...old } = resolveConfig({});
    expect(() => resumeOptions(old as typeof saved, { optimizer: 'adam' }, 'x.ckpt')).toThrow(
      /^--optimizer adam: x.ckpt was trained with sgd/,
    );
    expect(resumeOptions(old as typeof saved, { epochs: 30 }, 'x.ckpt')).toMatchObject({ epochs: 30 });
  });

  it("each epoch's reported rate is the one its last step applied: the engine's update descriptor, read back after the step", async () => {
    const applied: number[] = [];
    const trainStep = Engine.prototype.trainStep;
    // The rate the kernels read is the descriptor's, written before the step is published and unchanged until the next.
    const spy = vi.spyOn(Engine.prototype, 'trainStep').mockImplementation(function (this: Engine, start, rows, step) {
      const loss = trainStep.call(this, start, rows, step);
      applied[step] = readUpdate((this as unknown as { views: { update: Float32Array } }).views.update).step.lr;
      return loss;
    });
    let result: Awaited<ReturnType<typeof train>>;
    try {
      // Warm-up, then cosine: every step's rate differs from its neighbours'.
      result = await train(
        { ...SMALL, epochs: 3, optimizer: 'adam', lr: 0.003, lrSchedule: 'cosine', warmupSteps: 4, threads: 2 },
        { dataset: mnist },
      );
    } finally {
      spy.mockRestore();
    }
    expect(applied).toHaveLength(18);
    expect(applied.slice(1).every((lr, i) => lr !== applied[i])).toBe(true);
    expect(result.history.map((h) => h.lr)).toEqual([applied[5], applied[11], applied[17]]);
  });

  it('each epoch names the optimizer and the rate of its last step', async () => {
    const options: TrainOptions = {
      ...SMALL,
      optimizer: 'adam',
      lr: 0.003,
      lrSchedule: 'cosine',
      warmupSteps: 5,
      threads: 2,
      evaluate: true,
    };
    const result = await train(options, { dataset: mnist });
    expect(result.history.map((h) => h.optimizer)).toEqual(['adam', 'adam']);
    // 12 steps: epoch 1 ends with step index 5 (warm-up just over: the full rate), epoch 2 with index 11
    const cosine = (step: number) => Math.fround((0.003 * (1 + Math.cos((Math.PI * (step - 5)) / 7))) / 2);
    expect(result.history.map((h) => h.lr)).toEqual([Math.fround(0.003), cosine(11)]);
    expect(learningRate({ lr: 0.003, lrSchedule: 'cosine', warmupSteps: 5, epochs: 2 }, 6, 2)).toBeCloseTo(0.0012, 15);
    expect(formatEpoch(result.history[0])).toMatch(/, adam lr 0\.003$/);
    expect(formatEpoch(result.history[1])).toMatch(/, adam lr 0\.000(1|2)\d*$/);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Weights only: export writes no optimizer state, and --init takes none.

describe('export and --init carry weights only', { timeout: SLOW_TEST_TIMEOUT }, () => {
  it('an adam checkpoint exports its weights alone, and --init from it equals --init from the export', () => {
    const dir = tempDir();
    const ckpt = join(dir, 'run.ckpt');
    const model = join(dir, 'model.safetensors');
    const flags = [
      '--train-limit',
      '256',
      '--test-limit',
      '64',
      '--layers',
      '784,20,12,10',
      '--batch-size',
      '50',
      '--epochs',
      '1',
      '--optimizer',
      'adam',
      '--lr',
      '0.003',
      '--threads',
      '2',
      '--json',
    ];
    expect(runCli(['train', ...flags, '--checkpoint', ckpt]).code).toBe(0);
    expect(readCheckpoint(ckpt).optimizerState.length).toBe(2 * paramCount);
    exportSafetensors(ckpt, model);
    const names = Object.keys(safetensorsHeader(model))
      .filter((n) => n !== '__metadata__')
      .sort();
    expect(names).toEqual([
      'layers.0.bias',
      'layers.0.weight',
      'layers.1.bias',
      'layers.1.weight',
      'layers.2.bias',
      'layers.2.weight',
    ]);
    expect(readSafetensors(model).params).toEqual(readCheckpoint(ckpt).params);
    const hashOf = (out: string) => JSON.parse(out.trim().split('\n').pop()!).paramsSha256 as string;
    const fromCheckpoint = runCli(['train', ...flags, '--init', ckpt]);
    const fromExport = runCli(['train', ...flags, '--init', model]);
    expect([fromCheckpoint.code, fromExport.code]).toEqual([0, 0]);
    expect(hashOf(fromCheckpoint.stdout)).toBe(hashOf(fromExport.stdout));
  });
});

function safetensorsHeader(path: string): Record<string, unknown> {
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  return JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
}
