import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadDataset } from '../src/data/dataset.js';
import { UserError } from '../src/errors.js';
import { paramsSha256 } from '../src/model/hash.js';
import { initHeNormal, modelLayout } from '../src/model/layout.js';
import { readCheckpoint, writeCheckpoint } from '../src/model-io/checkpoint.js';
import { exportModel, exportSafetensors } from '../src/model-io/export.js';
import { loadModel } from '../src/model-io/model-file.js';
import { predictRows } from '../src/inference/predict.js';
import { decodeSafetensors, encodeSafetensors, readSafetensors } from '../src/model-io/safetensors.js';
import { stateArrays } from '../src/optim/optimizer.js';
import { Rng } from '../src/random/rng.js';
import { BYTE_SCALING } from '../src/data/scaling.js';
import { DEFAULTS, resumeOptions, type TrainOptions } from '../src/train/config.js';
import { train, type TrainSnapshot } from '../src/train/train.js';
import { bitsEqual, runCli, SLOW_TEST_TIMEOUT, tempDir, userErrorOf, writeIdxDir } from './helpers.js';

// 2000 examples: 32 steps per epoch at batch 64 (the last of 16 rows).
const mnist = loadDataset(undefined, { inputSize: 784, classes: 10, trainLimit: 2000, testLimit: 200 });
const RUN: TrainOptions = { epochs: 3, seed: 11, kernels: 'wasm' };

/** Runs until `stopAt` steps, checkpointing; then resumes from the checkpoint on other threads. */
async function stopAndResume(stopAt: number, threadsBefore: number, threadsAfter: number) {
  const path = join(tempDir(), 'run.ckpt');
  const save = (s: TrainSnapshot) => writeCheckpoint(path, s);
  await train({ ...RUN, threads: threadsBefore, maxSteps: stopAt }, { dataset: mnist, onCheckpoint: save });
  const checkpoint = readCheckpoint(path);
  expect(checkpoint.state.steps).toBe(stopAt);
  const options = resumeOptions(checkpoint.config, { threads: threadsAfter }, path);
  return train(options, {
    dataset: mnist,
    resume: { params: checkpoint.params, state: checkpoint.state },
    onCheckpoint: save,
  });
}

describe('checkpoints resume bit-identically', { timeout: SLOW_TEST_TIMEOUT }, () => {
  it('at an epoch boundary and mid-epoch, across thread counts (1→2, 3→1, 2→3)', async () => {
    const uninterrupted = await train({ ...RUN, threads: 2 }, { dataset: mnist });
    expect(uninterrupted.steps).toBe(96);
    for (const [stopAt, before, after] of [
      [32, 1, 2],
      [45, 3, 1],
      [64, 2, 3],
      [95, 1, 1],
    ]) {
      const resumed = await stopAndResume(stopAt, before, after);
      expect({ stopAt, hash: resumed.paramsSha256 }).toEqual({ stopAt, hash: uninterrupted.paramsSha256 });
      // The per-epoch reports, the mid-epoch running loss included, are those of the run that never stopped.
      expect(resumed.history.map((h) => [h.epoch, h.epochSteps, h.trainLoss, h.testAccuracy])).toEqual(
        uninterrupted.history.map((h) => [h.epoch, h.epochSteps, h.trainLoss, h.testAccuracy]),
      );
    }
  });

  it('a resumed run refuses flags that would change its arithmetic', () => {
    const config = {
      ...DEFAULTS,
      ...RUN,
      layers: [784, 128, 64, 10],
      batchSize: 64,
      lr: 0.5,
      seed: 11,
      threads: 2,
      kernels: 'wasm' as const,
      reference: false,
      evaluate: true,
      epochs: 3,
    };
    expect(() => resumeOptions(config, { lr: 0.1 }, 'x.ckpt')).toThrow(/--lr 0.1: x.ckpt was trained with 0.5/);
    expect(() => resumeOptions(config, { layers: [784, 10] }, 'x.ckpt')).toThrow(UserError);
    expect(resumeOptions(config, { epochs: 5, threads: 1 }, 'x.ckpt')).toMatchObject({
      epochs: 5,
      threads: 1,
      lr: 0.5,
    });
  });

  it('a resume on other, smaller data is refused as other data, not by a batch size the user never gave', async () => {
    let saved: TrainSnapshot | undefined;
    await train(
      { ...RUN, epochs: 1, maxSteps: 3, threads: 1 },
      { dataset: mnist, onCheckpoint: (s) => void (saved = structuredClone(s)) },
    );
    const small = loadDataset(undefined, { inputSize: 784, classes: 10, trainLimit: 60, testLimit: 10 });
    const resumed = train(resumeOptions(saved!.config, {}, 'x.ckpt'), {
      dataset: small,
      resume: { params: saved!.params, state: saved!.state, dataSha256: saved!.dataSha256 },
    });
    await expect(resumed).rejects.toThrow(/not the data this checkpoint was trained on/);
  });
});

describe('checkpoint files', () => {
  const layout = modelLayout([6, 4, 3]);
  const params = new Float32Array(layout.paramCount);
  initHeNormal(layout, params, new Rng(1));
  const snapshot: TrainSnapshot = {
    dataSha256: '',
    config: {
      ...DEFAULTS,
      layers: [6, 4, 3],
      epochs: 1,
      batchSize: 2,
      lr: 0.5,
      seed: 1,
      threads: 1,
      kernels: 'js',
      reference: false,
      evaluate: true,
    },
    layout,
    params,
    state: {
      epoch: 1,
      stepInEpoch: 3,
      steps: 3,
      rngState: [1, 2, 3, 4],
      epochLossSum: 1,
      epochSeen: 6,
      epochTrainSeconds: 0.1,
      history: [],
    },
    input: { scaling: BYTE_SCALING },
  };

  it('round-trips exactly', () => {
    const path = join(tempDir(), 'a.ckpt');
    writeCheckpoint(path, snapshot);
    const back = readCheckpoint(path);
    expect(bitsEqual(back.params, params)).toBe(true);
    expect(back.state).toEqual(snapshot.state);
    expect(back.layout.layers).toEqual([6, 4, 3]);
  });

  it("gives the history of a checkpoint written before the epoch reports took the --log's names today's names", () => {
    const path = join(tempDir(), 'older.ckpt');
    const older = { event: 'epoch', epoch: 2, steps: 3, totalSteps: 8, loss: 0.5, trainAcc: 0.75, testAcc: 0.8 };
    const history = [older] as unknown as TrainSnapshot['state']['history'];
    writeCheckpoint(path, { ...snapshot, state: { ...snapshot.state, history } });
    expect(readCheckpoint(path).state.history).toEqual([
      { event: 'epoch', epoch: 2, epochSteps: 3, steps: 8, trainLoss: 0.5, trainAccuracy: 0.75, testAccuracy: 0.8 },
    ]);
  });

  it("round-trips the optimizer's state bit for bit: momentum's buffer, Adam's two moments", {
    timeout: SLOW_TEST_TIMEOUT,
  }, async () => {
    for (const optimizer of ['momentum', 'adam'] as const) {
      let saved: TrainSnapshot | undefined;
      await train(
        { ...RUN, epochs: 1, maxSteps: 3, threads: 1, optimizer },
        { dataset: mnist, onCheckpoint: (s) => void (saved = structuredClone(s)) },
      );
      const state = saved!.optimizerState!;
      expect(state, optimizer).toHaveLength(stateArrays(optimizer) * saved!.layout.paramCount);
      // Not vacuous: after three steps most of the state is non-zero (a buffer saved as zeros fails here or below).
      expect(state.filter((v) => v !== 0).length, optimizer).toBeGreaterThan(state.length / 2);
      const path = join(tempDir(), `${optimizer}.ckpt`);
      writeCheckpoint(path, saved!);
      const back = readCheckpoint(path);
      expect(bitsEqual(back.optimizerState, state), optimizer).toBe(true);
      expect(back.config.optimizer).toBe(optimizer);
    }
  });

  it('rejects truncated, corrupt and foreign files with one line naming the file', () => {
    const dir = tempDir();
    const good = join(dir, 'good.ckpt');
    writeCheckpoint(good, snapshot);
    const bytes = readFileSync(good);
    const cases: [string, Uint8Array, RegExp][] = [
      ['truncated.ckpt', bytes.subarray(0, bytes.length - 100), /: corrupt checkpoint: cut short \(\d+ bytes\)$/],
      ['header.ckpt', bytes.subarray(0, 100), /: corrupt checkpoint: cut short \(100 bytes\)$/],
      [
        'flipped.ckpt',
        Uint8Array.from(bytes, (b, i) => (i === bytes.length - 50 ? b ^ 0xff : b)),
        /corrupt checkpoint|not a lockstep checkpoint/,
      ],
      ['foreign.ckpt', Buffer.from('{"hello": "world"}'), /not a lockstep checkpoint/],
      ['empty.ckpt', new Uint8Array(0), /not a lockstep checkpoint/],
    ];
    for (const [name, content, message] of cases) {
      const path = join(dir, name);
      writeFileSync(path, content);
      expect(() => readCheckpoint(path)).toThrow(message);
      expect(() => readCheckpoint(path)).toThrow(path);
    }
  });

  it(
    'train --checkpoint replaces a damaged checkpoint only with --force',
    () => {
      const dir = tempDir();
      const path = join(dir, 'cut.ckpt');
      writeCheckpoint(path, snapshot);
      writeFileSync(path, readFileSync(path).subarray(0, 200));
      const args = ['train', '--checkpoint', path, '--data', writeIdxDir(), '--layers', '16,8,10', '--epochs', '1'];
      const refused = runCli(args);
      expect(refused.stderr).toBe(
        `lockstep: --checkpoint ${path}: a damaged lockstep checkpoint; pass --force to replace it, or name another file\n`,
      );
      expect(refused.code).toBe(2);
      expect(readFileSync(path).length).toBe(200);
      expect(runCli([...args, '--force']).code).toBe(0);
      expect(readCheckpoint(path).state.epoch).toBe(2);
    },
    SLOW_TEST_TIMEOUT,
  );

  it('refuses to overwrite a file that is not a checkpoint', () => {
    const path = join(tempDir(), 'notes.txt');
    writeFileSync(path, 'my precious notes');
    expect(() => writeCheckpoint(path, snapshot)).toThrow(/not a lockstep checkpoint; refusing to overwrite/);
    expect(readFileSync(path, 'utf8')).toBe('my precious notes');
  });

  it('a failure while writing leaves the previous checkpoint intact and no temp file behind', () => {
    const dir = tempDir();
    const path = join(dir, 'run.ckpt');
    writeCheckpoint(path, snapshot);
    const before = readFileSync(path);
    const changed = { ...snapshot, params: params.map((p) => p + 1), state: { ...snapshot.state, steps: 4 } };
    process.env.LOCKSTEP_TEST_DISK_FULL = '1';
    try {
      expect(() => writeCheckpoint(path, changed)).toThrow(/ENOSPC.*previous file is unchanged/);
    } finally {
      delete process.env.LOCKSTEP_TEST_DISK_FULL;
    }
    expect(Buffer.compare(readFileSync(path), before)).toBe(0);
    expect(readdirSync(dir)).toEqual(['run.ckpt']);
  });

  it('names a missing directory', () => {
    const path = join(tempDir(), 'missing', 'run.ckpt');
    expect(() => writeCheckpoint(path, snapshot)).toThrow(/does not exist/);
    expect(existsSync(path)).toBe(false);
  });
});

describe('safetensors', { timeout: SLOW_TEST_TIMEOUT }, () => {
  const layout = modelLayout([5, 3, 2]);
  const params = new Float32Array(layout.paramCount);
  initHeNormal(layout, params, new Rng(2));
  params[layout.dense[1].biasOffset] = -0; // a sign bit that must survive

  it('export then import is bit-exact, weights as [out, in]', () => {
    const bytes = encodeSafetensors(layout, params, { note: 'x' });
    const back = decodeSafetensors(bytes, 'mem');
    expect(bitsEqual(back.params, params)).toBe(true);
    expect(back.layout.layers).toEqual([5, 3, 2]);
    expect(back.metadata.note).toBe('x');
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLength)).toString());
    expect(header['layers.0.weight'].shape).toEqual([3, 5]);
    expect((8 + headerLength) % 8).toBe(0);
  });

  /** A file built by hand, as NumPy code would: header JSON written here, not by lockstep's encoder. */
  function handMade(header: object, data: Float32Array): Uint8Array {
    const json = Buffer.from(JSON.stringify(header));
    const out = new Uint8Array(8 + json.length + data.byteLength);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    out.set(new Uint8Array(data.buffer), 8 + json.length);
    return out;
  }

  it('loads a hand-built file (PyTorch layout: weight [out, in], any tensor order)', () => {
    // One layer 2 → 3: W (PyTorch) = [[1, 2], [3, 4], [5, 6]], b = [7, 8, 9]; bias stored first.
    const data = Float32Array.from([7, 8, 9, 1, 2, 3, 4, 5, 6]);
    const bytes = handMade(
      {
        'layers.0.bias': { dtype: 'F32', shape: [3], data_offsets: [0, 12] },
        'layers.0.weight': { dtype: 'F32', shape: [3, 2], data_offsets: [12, 36] },
      },
      data,
    );
    const model = decodeSafetensors(bytes, 'hand.safetensors');
    expect(model.layout.layers).toEqual([2, 3]);
    // lockstep's layout is W[in][out]: row k=0 is (1, 3, 5), row k=1 is (2, 4, 6); then the bias.
    expect(Array.from(model.params)).toEqual([1, 3, 5, 2, 4, 6, 7, 8, 9]);
  });

  it.each([
    [
      'wrong name',
      { 'layer.0.weight': { dtype: 'F32', shape: [3, 2], data_offsets: [0, 24] } },
      24,
      /no tensor named layers.0.weight|unexpected tensor/,
    ],
    [
      'wrong dtype',
      {
        'layers.0.weight': { dtype: 'F16', shape: [3, 2], data_offsets: [0, 12] },
        'layers.0.bias': { dtype: 'F32', shape: [3], data_offsets: [12, 24] },
      },
      24,
      /dtype F16/,
    ],
    [
      'wrong shape',
      {
        'layers.0.weight': { dtype: 'F32', shape: [3, 2], data_offsets: [0, 24] },
        'layers.0.bias': { dtype: 'F32', shape: [2], data_offsets: [24, 32] },
      },
      32,
      /layers.0.bias is missing or not of shape \[3\]/,
    ],
    [
      'offsets beyond the data',
      {
        'layers.0.weight': { dtype: 'F32', shape: [3, 2], data_offsets: [0, 24] },
        'layers.0.bias': { dtype: 'F32', shape: [3], data_offsets: [24, 36] },
      },
      30,
      /fall outside/,
    ],
    [
      'overlapping tensors',
      {
        'layers.0.weight': { dtype: 'F32', shape: [3, 2], data_offsets: [0, 24] },
        'layers.0.bias': { dtype: 'F32', shape: [3], data_offsets: [12, 24] },
      },
      24,
      /overlap/,
    ],
  ])('rejects %s', (_name, header, dataBytes, message) => {
    const bytes = handMade(header, new Float32Array(dataBytes / 4));
    expect(() => decodeSafetensors(bytes, 'bad.safetensors')).toThrow(message);
    expect(() => decodeSafetensors(bytes, 'bad.safetensors')).toThrow(/^bad.safetensors: invalid safetensors/);
  });

  it('a model file is refused when a weight is not finite, its hash is not the recorded one, or it has more class names than outputs', () => {
    const dir = tempDir();
    const file = (name: string, p: Float32Array, metadata: Record<string, string> = {}) => {
      const path = join(dir, name);
      writeFileSync(path, encodeSafetensors(layout, p, { params_sha256: paramsSha256(p), ...metadata }));
      return path;
    };
    const good = file('good.st', params);
    expect(loadModel(good).params).toEqual(params);
    // Weight (out 1, in 2) of layer 0 sits at W[in 2][out 1] in lockstep's order: named as export names it.
    const nan = Float32Array.from(params);
    nan[2 * 3 + 1] = NaN;
    expect(userErrorOf(() => loadModel(file('nan.st', nan)))).toBe(
      `${dir}/nan.st: layers.0.weight[1, 2] is NaN; a model's parameters must be finite numbers`,
    );
    const inf = Float32Array.from(params);
    inf[layout.dense[1].biasOffset + 1] = -Infinity;
    expect(userErrorOf(() => loadModel(file('inf.st', inf)))).toBe(
      `${dir}/inf.st: layers.1.bias[1] is -Infinity; a model's parameters must be finite numbers`,
    );
    expect(userErrorOf(() => predictRows({ params: nan, layers: [5, 3, 2] }, [[1, 2, 3, 4, 5]]))).toBe(
      "predictRows: the model: layers.0.weight[1, 2] is NaN; a model's parameters must be finite numbers",
    );
    // One flipped weight, the recorded hash kept: damaged. Without the hash it loads.
    const flipped = Float32Array.from(params);
    flipped[0] = 0.5;
    const path = join(dir, 'flipped.st');
    writeFileSync(path, encodeSafetensors(layout, flipped, { params_sha256: paramsSha256(params) }));
    expect(userErrorOf(() => loadModel(path))).toBe(
      `${path}: its weights' sha256 is not the params_sha256 its metadata records (${paramsSha256(params).slice(0, 16)}…): damaged, or changed since it was written; remove params_sha256 from __metadata__ to use it anyway`,
    );
    writeFileSync(path, encodeSafetensors(layout, flipped, {}));
    expect(loadModel(path).params).toEqual(flipped);
    // Two outputs: three class names are refused; one is a model with a spare output, named by its number.
    expect(userErrorOf(() => loadModel(file('three.st', params, { class_names: '["a","b","c"]' })))).toBe(
      `${dir}/three.st: 3 class names for 2 output classes`,
    );
    const one = file('one.st', params, { class_names: '["a"]' });
    expect(predictRows(one, [[1, 2, 3, 4, 5]])[0].className).toMatch(/^(a|1)$/);
    expect(userErrorOf(() => exportModel(one, join(dir, 'one.onnx')))).toBe('accepted');
  });

  it('rejects a header length beyond the file', () => {
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setBigUint64(0, 1000n, true);
    expect(() => decodeSafetensors(bytes, 'short.safetensors')).toThrow(/header length 1000 exceeds the file/);
  });

  it('a checkpoint exported and used as --init continues from exactly those weights', async () => {
    const dir = tempDir();
    const ckpt = join(dir, 'a.ckpt');
    const first = await train(
      { ...RUN, epochs: 1, threads: 2 },
      { dataset: mnist, onCheckpoint: (s) => writeCheckpoint(ckpt, s) },
    );
    const st = join(dir, 'a.safetensors');
    exportSafetensors(ckpt, st);
    const model = readSafetensors(st);
    expect(paramsSha256(model.params)).toBe(first.paramsSha256);
    // One more step from the imported weights equals one more step from the original ones.
    const fromImported = await train(
      { ...RUN, epochs: 1, maxSteps: 1 },
      { dataset: mnist, initialParams: model.params },
    );
    const fromOriginal = await train(
      { ...RUN, epochs: 1, maxSteps: 1 },
      { dataset: mnist, initialParams: first.params },
    );
    expect(fromImported.paramsSha256).toBe(fromOriginal.paramsSha256);
    expect(fromImported.paramsSha256).not.toBe(first.paramsSha256);
  });
});

describe('checkpoint CLI', { timeout: SLOW_TEST_TIMEOUT }, () => {
  it('SIGINT mid-epoch writes a checkpoint and exits 130; resuming reaches the uninterrupted hash', () => {
    const dir = tempDir();
    const ckpt = join(dir, 'run.ckpt');
    // All 60,000 images: 938 steps in the epoch.
    const args = ['train', '--epochs', '1', '--threads', '2', '--test-limit', '500', '--json'];
    const full = runCli(args);
    expect(full.code).toBe(0);
    const fullHash = JSON.parse(full.stdout.trim().split('\n').pop()!).paramsSha256;
    // A real SIGINT, raised by the process itself after step 100 (test-only LOCKSTEP_TEST_SIGNAL_AT_STEP);
    // the loop hears it at its next yield (at most 25 ms of steps later), far short of the epoch's end on any CPU.
    const stopped = runCli([...args, '--checkpoint', ckpt], { env: { LOCKSTEP_TEST_SIGNAL_AT_STEP: '100' } });
    expect(stopped.code).toBe(130);
    expect(stopped.stderr).toMatch(/interrupted by SIGINT at epoch 1, step \d+ .*checkpoint written/);
    const { steps } = readCheckpoint(ckpt).state;
    expect(steps).toBeGreaterThanOrEqual(100);
    expect(steps).toBeLessThan(938);
    const resumed = runCli(['train', '--resume', ckpt, '--threads', '1', '--json']);
    expect(resumed.code).toBe(0);
    const done = JSON.parse(resumed.stdout.trim().split('\n').pop()!);
    expect(done.paramsSha256).toBe(fullHash);
    // Its seconds are the resumed run's: the done event says where it started.
    expect(done).toMatchObject({ steps: 938, resumedAt: steps });
    const again = runCli(['train', '--resume', ckpt, '--epochs', '2', '--max-steps', '943', '--threads', '1']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('Done: 2 epochs, 943 steps (5 after resuming at step 938), test acc');
  });
});
