import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import onnxProto from 'onnx-proto';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../src/data/dataset.js';
import { forwardOne } from '../src/inference/predict.js';
import { loadModel } from '../src/model-io/model-file.js';
import { encodeOnnx } from '../src/model-io/onnx.js';
import { modelLayout } from '../src/model/layout.js';
import { blobsCsv, runCli, SLOW_TEST_TIMEOUT, tempDir } from './helpers.js';

const { onnx } = onnxProto;

/** A Python with the onnx package: Debian's python3-onnx (installed by .ci/run) is under /usr/bin/python3. */
const onnxPython = ['python3', '/usr/bin/python3'].find(
  (python) => spawnSync(python, ['-c', 'import onnx, numpy'], { timeout: 60_000 }).status === 0,
);

/** Checks the model with the onnx package (full check: types and shapes inferred), runs it with NumPy, prints the probabilities. */
const PYTHON_ONNX = `
import sys, json, numpy as np, onnx
from onnx import numpy_helper
model = onnx.load(sys.argv[1])
onnx.checker.check_model(model, full_check=True)
w = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
x = np.array(json.loads(sys.argv[2]), dtype=np.float32)
for node in model.graph.node:
    if node.op_type == "Div": x = x / w[node.input[1]]
    elif node.op_type == "Sub": x = x - w[node.input[1]]
    elif node.op_type == "Identity": pass
    elif node.op_type == "Gemm": x = x @ w[node.input[1]] + w[node.input[2]]
    elif node.op_type == "Relu": x = np.maximum(x, 0)
    elif node.op_type == "Softmax": x = np.exp(x - x.max(axis=1, keepdims=True)); x /= x.sum(axis=1, keepdims=True)
print(json.dumps({"metadata": {p.key: p.value for p in model.metadata_props}, "probabilities": x.tolist()}))
`;

/** Runs an ONNX model's input (rows × width floats) in onnxruntime-node: its "probabilities" output. */
const RUN_ONNX = `
import { readFileSync, writeFileSync } from 'node:fs';
import ort from '${pathToFileURL(createRequire(import.meta.url).resolve('onnxruntime-node')).href}';
const [model, inputFile, rows, width, outputFile] = process.argv.slice(2);
const input = new Float32Array(new Uint8Array(readFileSync(inputFile)).buffer);
const session = await ort.InferenceSession.create(model);
const { probabilities } = await session.run({ input: new ort.Tensor('float32', input, [Number(rows), Number(width)]) });
const data = probabilities.data;
writeFileSync(outputFile, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
console.log(JSON.stringify(probabilities.dims));
`;

/**
 * onnxruntime-node runs in a process of its own whose TMPDIR is one of the test's directories: its telemetry
 * leaves an empty mat-debug-PID.log in the temp folder, at times after the model has run, and it is removed with
 * the directory (in this process it landed in /tmp once TMPDIR was given back).
 */
function runOnnx(
  model: string | Uint8Array,
  input: Float32Array,
  rows: number,
): { probabilities: Float32Array; dims: number[] } {
  const work = tempDir();
  const modelFile = typeof model === 'string' ? model : join(work, 'model.onnx');
  if (typeof model !== 'string') writeFileSync(modelFile, model);
  const script = join(work, 'run-onnx.mjs');
  writeFileSync(script, RUN_ONNX);
  writeFileSync(join(work, 'input.bin'), new Uint8Array(input.buffer, input.byteOffset, input.byteLength));
  const r = spawnSync(
    process.execPath,
    [script, modelFile, join(work, 'input.bin'), String(rows), String(input.length / rows), join(work, 'output.bin')],
    { encoding: 'utf8', env: { ...process.env, TMPDIR: work }, timeout: 120_000 },
  );
  if (r.status !== 0) throw new Error(`onnxruntime-node: ${r.stderr}`);
  const bytes = readFileSync(join(work, 'output.bin'));
  return {
    probabilities: new Float32Array(new Uint8Array(bytes).buffer),
    dims: JSON.parse(r.stdout),
  };
}

describe('encodeOnnx', () => {
  it('stores class names as JSON in the metadata, and refuses a count other than the classes', async () => {
    const layout = modelLayout([4, 3, 2]);
    const params = Float32Array.from({ length: layout.paramCount }, (_, i) => (i % 7) / 7 - 0.4);
    const bytes = encodeOnnx(layout, params, { classNames: ['cat', 'dog'] });
    const proto = onnx.ModelProto.decode(bytes);
    expect(proto.metadataProps.find((p) => p.key === 'class_names')?.value).toBe('["cat","dog"]');
    expect(() => encodeOnnx(layout, params, { classNames: ['cat'] })).toThrow('1 class names for 2 output classes');
    // Another scaling is the graph's: inputs 2p + 3, less 3 and divided by 510, are lockstep's pixels p divided by 255.
    const scaling = { kind: 'minmax' as const, offset: [3, 3, 3, 3], divisor: [510, 510, 510, 510] };
    const pixels = Uint8Array.of(0, 17, 200, 255);
    const { probabilities } = runOnnx(
      encodeOnnx(layout, params, { scaling }),
      Float32Array.from(pixels, (p) => 2 * p + 3),
      1,
    );
    const expected = forwardOne(layout, params, pixels);
    for (let c = 0; c < 2; c++) expect(Math.abs(probabilities[c] - expected[c])).toBeLessThanOrEqual(1e-6);
  });
});

describe('lockstep export --to FILE.onnx', () => {
  let dir: string;
  let checkpoint: string;
  beforeAll(() => {
    dir = tempDir();
    checkpoint = join(dir, 'run.ckpt');
    const trained = runCli(
      ['train', '--epochs', '1', '--max-steps', '300', '--threads', '2', '--checkpoint', checkpoint],
      { timeout: SLOW_TEST_TIMEOUT },
    );
    expect(trained.code, trained.stderr).toBe(0);
  }, SLOW_TEST_TIMEOUT);

  it(
    'runs in onnxruntime-node with the classes of lockstep eval and probabilities within 1e-5, on the whole MNIST test set',
    async () => {
      const model = join(dir, 'model.onnx');
      const exported = runCli(['export', checkpoint, '--to', model, '--json']);
      expect(exported.code, exported.stderr).toBe(0);
      const { paramsSha256, format } = JSON.parse(exported.stdout);
      expect(format).toBe('onnx');

      const test = loadDataset(undefined, { inputSize: 784, classes: 10, only: 'test' }).test;
      expect(test.count).toBe(10000);
      const input = Float32Array.from(test.images); // raw pixels: the graph's Div node scales them
      const { probabilities, dims } = runOnnx(model, input, test.count);
      expect(dims).toEqual([test.count, 10]);

      const { layout, params } = loadModel(checkpoint);
      const confusion = Array.from({ length: 10 }, () => new Array<number>(10).fill(0));
      let worst = 0;
      let classesDiffer = 0;
      for (let i = 0; i < test.count; i++) {
        const expected = forwardOne(layout, params, test.images.subarray(i * 784, (i + 1) * 784));
        const row = probabilities.subarray(i * 10, (i + 1) * 10);
        for (let c = 0; c < 10; c++) worst = Math.max(worst, Math.abs(row[c] - expected[c]));
        const predicted = row.indexOf(Math.max(...row));
        if (predicted !== expected.indexOf(Math.max(...expected))) classesDiffer++;
        confusion[test.labels[i]][predicted]++;
      }
      expect(worst).toBeLessThanOrEqual(1e-5);
      expect(classesDiffer).toBe(0);

      // lockstep eval's confusion matrix counts each example's predicted class: the ONNX model's must be the same.
      const evaluated = runCli(['eval', checkpoint, '--json', '--threads', '2'], { timeout: SLOW_TEST_TIMEOUT });
      expect(evaluated.code, evaluated.stderr).toBe(0);
      expect(confusion).toEqual(JSON.parse(evaluated.stdout).confusion);

      const proto = onnx.ModelProto.decode(readFileSync(model));
      const metadata = Object.fromEntries(proto.metadataProps.map((p) => [p.key, p.value]));
      expect(metadata.params_sha256).toBe(paramsSha256);
      expect(metadata.layers).toBe('784,128,64,10');
      expect(proto.graph!.node!.map((n) => n.opType)).toEqual([
        'Div',
        'Gemm',
        'Relu',
        'Gemm',
        'Relu',
        'Gemm',
        'Softmax',
      ]);
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'refuses --names with an ONNX file, and an existing file without --force, and leaves it as it was',
    () => {
      const model = join(dir, 'refused.onnx');
      const named = runCli(['export', checkpoint, '--to', model, '--names', 'sequential']);
      expect(named.code).toBe(2);
      expect(named.stderr).toBe(`lockstep: --names sequential: names safetensors tensors; --to ${model} is ONNX\n`);
      expect(runCli(['export', checkpoint, '--to', model]).code).toBe(0);
      const before = readFileSync(model);
      const again = runCli(['export', checkpoint, '--to', model]);
      expect(again.code).toBe(2);
      expect(again.stderr).toBe(`lockstep: --to ${model}: exists; pass --force to replace it\n`);
      expect(readFileSync(model).equals(before)).toBe(true);
      const itself = runCli(['export', checkpoint, '--to', checkpoint, '--force']);
      expect(itself.code).toBe(2);
      expect(itself.stderr).toMatch(/is the checkpoint being exported; name another file/);
    },
    SLOW_TEST_TIMEOUT,
  );

  it.skipIf(!onnxPython && !process.env.CI)(
    "passes the onnx package's full check in Python, which reads its metadata and computes the same probabilities",
    () => {
      expect(onnxPython, 'no Python with onnx: apt-get install python3-onnx (.ci/run does)').toBeDefined();
      const model = join(dir, 'python.onnx');
      expect(runCli(['export', checkpoint, '--to', model]).code).toBe(0);
      const test = loadDataset(undefined, { inputSize: 784, classes: 10, only: 'test' }).test;
      const images = [0, 1, 2].map((i) => Array.from(test.images.subarray(i * 784, (i + 1) * 784)));
      const r = spawnSync(onnxPython!, ['-c', PYTHON_ONNX, model, JSON.stringify(images)], {
        encoding: 'utf8',
        timeout: SLOW_TEST_TIMEOUT,
      });
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { metadata: Record<string, string>; probabilities: number[][] };
      const { layout, params } = loadModel(checkpoint);
      expect(out.metadata.params_sha256).toMatch(/^[0-9a-f]{64}$/);
      images.forEach((pixels, i) => {
        const expected = forwardOne(layout, params, Uint8Array.from(pixels));
        for (let c = 0; c < 10; c++) expect(Math.abs(out.probabilities[i][c] - expected[c])).toBeLessThanOrEqual(1e-5);
      });
    },
    SLOW_TEST_TIMEOUT,
  );
});

describe('lockstep export --to FILE.onnx of a model trained on a CSV table', () => {
  it(
    "carries the table's standard scaling as nodes and its class names, and predicts as predict --csv does",
    async () => {
      const dir = tempDir();
      const data = join(dir, 'train.csv');
      const rows = join(dir, 'rows.csv');
      writeFileSync(data, blobsCsv(200, 21));
      writeFileSync(rows, blobsCsv(40, 22));
      const trained = runCli(
        [
          'train',
          '--data',
          data,
          '--hidden',
          '8',
          '--epochs',
          '3',
          '--lr',
          '0.1',
          '--checkpoint',
          'run.ckpt',
          '--threads',
          '1',
        ],
        { cwd: dir },
      );
      expect(trained.code, trained.stderr).toBe(0);
      const exported = runCli(['export', 'run.ckpt', '--to', 'model.onnx'], { cwd: dir });
      expect(exported.code, exported.stderr).toBe(0);

      const proto = onnx.ModelProto.decode(readFileSync(join(dir, 'model.onnx')));
      expect(proto.graph!.node!.map((n) => n.opType)).toEqual(['Sub', 'Div', 'Gemm', 'Relu', 'Gemm', 'Softmax']);
      expect(proto.metadataProps.find((p) => p.key === 'class_names')?.value).toBe('["alpha","beta","gamma"]');

      const predicted = runCli(['predict', 'run.ckpt', '--csv', rows, '--json'], { cwd: dir });
      expect(predicted.code, predicted.stderr).toBe(0);
      const expected = predicted.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { probabilities: number[]; className: string });
      expect(expected).toHaveLength(40);
      const features = readFileSync(rows, 'utf8')
        .trim()
        .split('\n')
        .slice(1)
        .flatMap((line) => line.split(',').slice(0, 4).map(Number));
      const { probabilities } = runOnnx(join(dir, 'model.onnx'), Float32Array.from(features), 40);
      const names = ['alpha', 'beta', 'gamma'];
      for (let i = 0; i < 40; i++) {
        const row = Array.from(probabilities.subarray(i * 3, (i + 1) * 3));
        for (let c = 0; c < 3; c++) expect(Math.abs(row[c] - expected[i].probabilities[c])).toBeLessThanOrEqual(1e-5);
        expect(names[row.indexOf(Math.max(...row))]).toBe(expected[i].className);
      }
    },
    SLOW_TEST_TIMEOUT,
  );
});
