import { availableParallelism } from 'node:os';
import { checkThreads, Engine } from '../coordinator/engine.js';
import { loadDataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { defaultKernels, type KernelName } from '../kernels/select.js';
import { loadModel } from '../model-io/model-file.js';

export interface EvaluateOptions {
  data?: string;
  split?: 'train' | 'test';
  threads?: number;
  kernels?: KernelName;
  testLimit?: number;
  trainLimit?: number;
}

export interface Evaluation {
  model: string;
  split: 'train' | 'test';
  count: number;
  accuracy: number;
  loss: number;
  /** confusion[trueClass][predictedClass] = count. */
  confusion: number[][];
}

/** Accuracy, mean cross-entropy and confusion matrix of a saved model (checkpoint or safetensors) on a split. */
export async function evaluate(modelPath: string, options: EvaluateOptions = {}): Promise<Evaluation> {
  const model = loadModel(modelPath);
  const { sizes } = model.layout;
  const classes = sizes[sizes.length - 1];
  const split = options.split ?? 'test';
  if (split !== 'train' && split !== 'test') throw new UserError(`--split ${String(split)}: must be train or test`);
  const threads = options.threads ?? availableParallelism();
  checkThreads(threads); // before the data is read; Engine.create checks again
  const dataset = loadDataset(options.data ?? model.checkpoint?.config.data, {
    inputSize: sizes[0], classes, trainLimit: options.trainLimit, testLimit: options.testLimit, only: split,
  });
  const engine = await Engine.create(sizes, model.params, dataset, {
    threads,
    kernels: options.kernels ?? defaultKernels(),
    batchSize: 1,
    lr: 0,
  });
  try {
    const result = await engine.evaluate(split);
    const labels = split === 'train' ? dataset.train.labels : dataset.test.labels;
    const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
    for (let i = 0; i < result.count; i++) confusion[labels[i]][result.predictions[i]]++;
    return {
      model: modelPath,
      split,
      count: result.count,
      accuracy: result.correct / result.count,
      loss: result.lossSum / result.count,
      confusion,
    };
  } finally {
    await engine.close();
  }
}
