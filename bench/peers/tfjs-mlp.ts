/**
 * The textbook's MNIST MLP in TensorFlow.js with its WebAssembly backend (tfjs-node cannot be installed
 * here: it downloads a native binary), for bench/peers: 784-128-64-10, He-normal init (TF.js's, a
 * truncated normal), ReLU, softmax + cross-entropy, SGD lr 0.5, batch 64 reshuffled each epoch, pixels / 255,
 * train and test accuracy after every epoch.
 *
 * Usage: node dist/bench/peers/tfjs-mlp.js DATA_DIR EPOCHS  (one JSON line per epoch, then "done")
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { loadDataset } from '../../src/data/dataset.js';

async function main(): Promise<void> {
  const started = performance.now();
  const [dataDir, epochsText] = process.argv.slice(2);
  const epochs = Number(epochsText);
  const require = createRequire(import.meta.url);
  setWasmPaths(`${join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist')}/`);
  await tf.setBackend('wasm');
  const data = loadDataset(dataDir, { inputSize: 784, classes: 10 });
  const toTensors = (images: Uint8Array, labels: Uint8Array, n: number) => ({
    x: tf.tensor2d(
      Float32Array.from(images, (p) => p / 255),
      [n, 784],
    ),
    y: tf.oneHot(tf.tensor1d(Int32Array.from(labels), 'int32'), 10).toFloat(),
    labels: Array.from(labels),
  });
  const train = toTensors(data.train.images, data.train.labels, data.train.count);
  const test = toTensors(data.test.images, data.test.labels, data.test.count);

  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [784], units: 128, activation: 'relu', kernelInitializer: 'heNormal' }),
      tf.layers.dense({ units: 64, activation: 'relu', kernelInitializer: 'heNormal' }),
      tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: 'heNormal' }),
    ],
  });
  model.compile({ optimizer: tf.train.sgd(0.5), loss: 'categoricalCrossentropy' });
  const accuracy = (set: typeof train) =>
    tf.tidy(() => {
      const predicted = (model.predict(set.x, { batchSize: 1024 }) as tf.Tensor).argMax(1).dataSync();
      return (
        Array.from(predicted).reduce((ok: number, p, i) => ok + (p === set.labels[i] ? 1 : 0), 0) / set.labels.length
      );
    });
  let testAccuracy = NaN;
  for (let epoch = 1; epoch <= epochs; epoch++) {
    const t0 = performance.now();
    await model.fit(train.x, train.y, { batchSize: 64, epochs: 1, shuffle: true, verbose: 0 });
    const t1 = performance.now();
    const trainAccuracy = accuracy(train);
    testAccuracy = accuracy(test);
    console.log(
      JSON.stringify({
        event: 'epoch',
        epoch,
        trainAccuracy,
        testAccuracy,
        trainSeconds: (t1 - t0) / 1000,
        evalSeconds: (performance.now() - t1) / 1000,
      }),
    );
  }
  console.log(JSON.stringify({ event: 'done', epochs, testAccuracy, seconds: (performance.now() - started) / 1000 }));
}

main().catch((err) => {
  console.error(`tfjs-mlp: ${(err as Error).message}`);
  process.exitCode = 1;
});
