import type { Rng } from '../random/rng.js';

/**
 * Where each layer's parameters sit in the one flat float32 parameter vector.
 * Layer l maps layers[l] inputs to layers[l+1] outputs: its weight W is [nIn][nOut] row-major (the
 * textbook's orientation, so a batch computes X·W), followed by its bias b[nOut]. Hashes, checkpoints
 * and the shared-memory engine all use this order: layer by layer, weight then bias.
 */
export interface LayerLayout {
  nIn: number;
  nOut: number;
  weightOffset: number; // in floats
  biasOffset: number; // in floats
}

export interface ModelLayout {
  /** The layer sizes, input to output (784, 128, 64, 10), as --layers names them. */
  layers: number[];
  /** Each dense layer's shape and where its parameters sit. */
  dense: LayerLayout[];
  paramCount: number;
}

export const TEXTBOOK_LAYERS = [784, 128, 64, 10];

export function modelLayout(layers: readonly number[]): ModelLayout {
  if (layers.length < 2) throw new RangeError('a network needs at least an input and an output layer');
  for (const n of layers) {
    if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`layer sizes must be positive integers, got ${n}`);
  }
  const dense: LayerLayout[] = [];
  let offset = 0;
  for (let l = 0; l + 1 < layers.length; l++) {
    const nIn = layers[l];
    const nOut = layers[l + 1];
    dense.push({ nIn, nOut, weightOffset: offset, biasOffset: offset + nIn * nOut });
    offset += nIn * nOut + nOut;
  }
  return { layers: [...layers], dense, paramCount: offset };
}

/** Views of one layer's weight and bias inside the flat parameter vector. */
export function layerViews(params: Float32Array, layer: LayerLayout): { W: Float32Array; b: Float32Array } {
  return {
    W: params.subarray(layer.weightOffset, layer.weightOffset + layer.nIn * layer.nOut),
    b: params.subarray(layer.biasOffset, layer.biasOffset + layer.nOut),
  };
}

/**
 * He-normal init: each weight ~ N(0, 2/nIn), drawn in parameter order (layer by layer, row-major),
 * rounded once to float32; biases zero.
 */
export function initHeNormal(layout: ModelLayout, params: Float32Array, rng: Rng): void {
  for (const layer of layout.dense) {
    const std = Math.sqrt(2 / layer.nIn);
    const { W, b } = layerViews(params, layer);
    for (let i = 0; i < W.length; i++) W[i] = rng.nextNormal() * std;
    b.fill(0);
  }
}
