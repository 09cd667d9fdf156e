import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/model-io/model-file.js';
import { paramsSha256 } from '../src/model/hash.js';
import { predict } from '../src/inference/predict.js';
import { loadDataset } from '../src/data/dataset.js';
import { runCli, SLOW_TEST_TIMEOUT, tempDir } from './helpers.js';

/** A Python that imports torch: Debian's python3-torch (installed by .ci/run) is under /usr/bin/python3. */
function torchPython(): string | undefined {
  return ['python3', '/usr/bin/python3'].find(
    (python) => spawnSync(python, ['-c', 'import torch, numpy'], { timeout: 60_000 }).status === 0,
  );
}

const python = torchPython();
const LAYERS = [784, 16, 12, 10];
const IMAGES = 8;

/** A safetensors file with the given tensor names, each F32 of the given shape filled with zeros. */
function safetensorsWith(path: string, tensors: Record<string, number[]>): void {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape] of Object.entries(tensors)) {
    const bytes = 4 * shape.reduce((a, d) => a * d, 1);
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([length, json, Buffer.alloc(offset)]));
}

describe('--init with weights named neither way', () => {
  it('lists the names it found and the ones it reads, in one line, exit 2', () => {
    const dir = tempDir();
    const file = join(dir, 'fc.safetensors');
    safetensorsWith(file, { 'fc1.weight': [4, 784], 'fc1.bias': [4], 'fc2.weight': [10, 4], 'fc2.bias': [10] });
    const r = runCli(['train', '--init', file, '--epochs', '1', '--max-steps', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `lockstep: --init ${file}: invalid safetensors: no tensor named layers.0.weight or 0.weight; tensors found: fc1.weight, fc1.bias, fc2.weight, fc2.bias; ` +
        'lockstep reads layers.0.weight, layers.0.bias, layers.1.weight, … (lockstep export) or 0.weight, 0.bias, 2.weight, … ' +
        '(the state_dict of nn.Sequential(Linear, ReLU, Linear, …); any numbers, in order)\n',
    );
  });

  it('names a stray tensor beside nn.Sequential names', () => {
    const file = join(tempDir(), 'extra.safetensors');
    safetensorsWith(file, { '0.weight': [10, 784], '0.bias': [10], scale: [1] });
    const r = runCli(['eval', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^lockstep: .*extra\.safetensors: invalid safetensors: unexpected tensor scale; tensors found: 0\.weight, 0\.bias, scale; lockstep reads /,
    );
  });

  it('reads nn.Sequential names with a Flatten in front (1.weight, 3.weight) as the same network', () => {
    const file = join(tempDir(), 'flatten.safetensors');
    safetensorsWith(file, { '1.weight': [16, 784], '1.bias': [16], '3.weight': [10, 16], '3.bias': [10] });
    expect(loadModel(file).layout.layers).toEqual([784, 16, 10]);
  });
});

describe.skipIf(!python && !process.env.CI)('PyTorch both ways (Python with torch)', () => {
  let dir: string;
  let checkpoint: string;
  beforeAll(() => {
    dir = tempDir();
    checkpoint = join(dir, 'run.ckpt');
    const trained = runCli(
      [
        'train',
        '--layers',
        LAYERS.join(','),
        '--epochs',
        '1',
        '--max-steps',
        '200',
        '--threads',
        '2',
        '--checkpoint',
        checkpoint,
      ],
      { timeout: SLOW_TEST_TIMEOUT },
    );
    expect(trained.code, trained.stderr).toBe(0);
  }, SLOW_TEST_TIMEOUT);

  it(
    'loads both namings into PyTorch modules with the probabilities of lockstep predict, and a PyTorch state_dict back bit for bit',
    () => {
      expect(python, 'no Python with torch: apt-get install python3-torch (.ci/run does)').toBeDefined();
      const lockstepNames = join(dir, 'model.safetensors');
      const sequentialNames = join(dir, 'sequential.safetensors');
      expect(runCli(['export', checkpoint, '--to', lockstepNames]).code).toBe(0);
      const exported = runCli(['export', checkpoint, '--to', sequentialNames, '--names', 'sequential']);
      expect(exported.code, exported.stderr).toBe(0);

      const test = loadDataset(undefined, { inputSize: 784, classes: 10, only: 'test' }).test;
      const images = Array.from({ length: IMAGES }, (_, i) => Array.from(test.images.subarray(i * 784, (i + 1) * 784)));
      const labels = Array.from(test.labels.subarray(0, IMAGES));
      const pixels = join(dir, 'pixels.json');
      writeFileSync(pixels, JSON.stringify({ layers: LAYERS, images, labels }));
      const back = join(dir, 'back.safetensors');
      const r = spawnSync(
        python!,
        [join(import.meta.dirname, 'torch_roundtrip.py'), lockstepNames, sequentialNames, pixels, back],
        {
          encoding: 'utf8',
          timeout: SLOW_TEST_TIMEOUT,
        },
      );
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as {
        lockstepNames: number[][];
        sequentialNames: number[][];
        backProbabilities: number[][];
        backSha256: string;
      };

      const close = (got: number[][], model: string) => {
        for (let i = 0; i < IMAGES; i++) {
          const expected = predict(model, { index: i }).probabilities;
          for (let c = 0; c < 10; c++) expect(Math.abs(got[i][c] - expected[c])).toBeLessThanOrEqual(1e-5);
        }
      };
      close(out.lockstepNames, checkpoint);
      close(out.sequentialNames, checkpoint);

      // Back: the file PyTorch wrote is read bit for bit, predicts as PyTorch does, and starts a run.
      expect(paramsSha256(loadModel(back).params)).toBe(out.backSha256);
      close(out.backProbabilities, back);
      const init = runCli(['train', '--init', back, '--epochs', '1', '--max-steps', '2', '--threads', '2', '--json'], {
        timeout: SLOW_TEST_TIMEOUT,
      });
      expect(init.code, init.stderr).toBe(0);
      expect(JSON.parse(init.stdout.trim().split('\n').pop()!).steps).toBe(2);
    },
    SLOW_TEST_TIMEOUT,
  );
});
