import { readFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { loadDataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { denseForward, PIXEL_SCALE } from '../kernels/reference.js';
import { argmaxRow, softmaxRow } from '../kernels/softmax.js';
import { layerViews, type ModelLayout } from '../model/layout.js';
import { loadModel } from '../model-io/model-file.js';

export interface PredictOptions {
  /** An example of a dataset split... */
  index?: number;
  split?: 'train' | 'test';
  data?: string;
  /** ...or an image file: PGM (P2/P5) or PNG, grayscale or RGB, white digit on black like MNIST. */
  image?: string;
}

export interface Prediction {
  predicted: number;
  probabilities: number[];
  /** The true label, when the example comes from a dataset. */
  label?: number;
  pixels: Uint8Array;
  width: number;
  height: number;
}

/** Classifies one example with the reference arithmetic (one row: speed is irrelevant, clarity is not). */
export function predict(modelPath: string, options: PredictOptions): Prediction {
  const model = loadModel(modelPath);
  const { sizes } = model.layout;
  let pixels: Uint8Array;
  let label: number | undefined;
  let width: number;
  let height: number;
  if (options.image !== undefined) {
    if (options.index !== undefined) throw new UserError('--image and --index: give one or the other');
    ({ pixels, width, height } = readImage(options.image));
    if (pixels.length !== sizes[0]) {
      throw new UserError(`${options.image}: ${width}×${height} = ${pixels.length} pixels, but the model's first layer has ${sizes[0]} inputs`);
    }
  } else {
    const split = options.split ?? 'test';
    const dataset = loadDataset(options.data ?? model.checkpoint?.config.data, { inputSize: sizes[0], classes: sizes[sizes.length - 1], only: split });
    const data = split === 'train' ? dataset.train : dataset.test;
    const index = options.index ?? 0;
    if (!Number.isSafeInteger(index) || index < 0 || index >= data.count) {
      throw new UserError(`--index ${index}: must be from 0 to ${data.count - 1} (${split} split)`);
    }
    pixels = data.images.slice(index * sizes[0], (index + 1) * sizes[0]);
    label = data.labels[index];
    width = height = Math.round(Math.sqrt(sizes[0]));
    if (width * height !== sizes[0]) [width, height] = [sizes[0], 1];
  }
  const probabilities = forwardOne(model.layout, model.params, pixels);
  return { predicted: argmaxRow(probabilities, 0, probabilities.length), probabilities: Array.from(probabilities), label, pixels, width, height };
}

export function forwardOne(layout: ModelLayout, params: Float32Array, pixels: Uint8Array): Float32Array {
  let a = Float32Array.from(pixels, (p) => PIXEL_SCALE[p]);
  layout.layers.forEach((layer, l) => {
    const { W, b } = layerViews(params, layer);
    const out = new Float32Array(layer.nOut);
    denseForward(a, W, b, out, 1, layer.nIn, layer.nOut, l < layout.layers.length - 1);
    a = out;
  });
  softmaxRow(a, a, 0, a.length);
  return a;
}

/** Reads a grayscale image (RGB is averaged); PGM P2/P5 with maxval 255, or PNG. */
export function readImage(path: string): { pixels: Uint8Array; width: number; height: number } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new UserError(`${path}: cannot read image (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  if (bytes.length >= 8 && bytes.readUInt32BE(0) === 0x89504e47) {
    let png: PNG;
    try {
      png = PNG.sync.read(bytes);
    } catch (err) {
      throw new UserError(`${path}: corrupt PNG (${(err as Error).message})`);
    }
    const pixels = new Uint8Array(png.width * png.height);
    for (let i = 0; i < pixels.length; i++) {
      const o = i * 4;
      const alpha = png.data[o + 3] / 255;
      pixels[i] = Math.round(((png.data[o] + png.data[o + 1] + png.data[o + 2]) / 3) * alpha);
    }
    return { pixels, width: png.width, height: png.height };
  }
  const text = bytes.subarray(0, 64).toString('latin1');
  const header = /^(P[25])\s+(?:#[^\n]*\n\s*)*(\d+)\s+(\d+)\s+(\d+)\s/.exec(text);
  if (!header) throw new UserError(`${path}: not a PNG or PGM (P2/P5) image`);
  const [whole, magic, w, h, max] = header;
  const width = Number(w);
  const height = Number(h);
  if (Number(max) !== 255) throw new UserError(`${path}: PGM maxval ${max}; lockstep reads 8-bit images (maxval 255)`);
  const count = width * height;
  let pixels: Uint8Array;
  if (magic === 'P5') {
    pixels = bytes.subarray(whole.length, whole.length + count);
  } else {
    pixels = Uint8Array.from(bytes.subarray(whole.length).toString('latin1').trim().split(/\s+/).map(Number));
  }
  if (pixels.length !== count) throw new UserError(`${path}: truncated PGM: ${pixels.length} of ${count} pixels`);
  return { pixels: Uint8Array.from(pixels), width, height };
}
