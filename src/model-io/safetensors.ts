import { readFileSync } from 'node:fs';
import { unreadableFile, UserError } from '../errors.js';
import { layerViews, modelLayout, type ModelLayout } from '../model/layout.js';

/**
 * safetensors, the format NumPy and PyTorch users load: an 8-byte little-endian header length N, N bytes
 * of JSON ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}), then the
 * tensor bytes, offsets relative to the end of the header.
 *
 * lockstep writes each layer as PyTorch's nn.Linear does: `layers.{i}.weight` with shape [out, in] (so it
 * is the transpose of lockstep's [in][out] layout) and `layers.{i}.bias` [out], F32, little-endian,
 * row-major. With the `sequential` naming it writes `{2i}.weight` and `{2i}.bias` instead, the names of
 * nn.Sequential(Linear, ReLU, Linear, …)'s state_dict.
 */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

interface TensorInfo {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** How the tensors are named: lockstep's own (`layers.{i}`), or nn.Sequential's (`{2i}`, a ReLU between Linears). */
export type TensorNaming = 'lockstep' | 'sequential';
export const TENSOR_NAMINGS: readonly TensorNaming[] = ['lockstep', 'sequential'];

function layerPrefix(naming: TensorNaming, i: number): string {
  return naming === 'sequential' ? `${2 * i}` : `layers.${i}`;
}

export function encodeSafetensors(
  layout: ModelLayout,
  params: Float32Array,
  metadata: Record<string, string>,
  naming: TensorNaming = 'lockstep',
): Uint8Array {
  const tensors: { name: string; shape: number[]; data: Float32Array }[] = [];
  layout.dense.forEach((layer, i) => {
    const { W, b } = layerViews(params, layer);
    const transposed = new Float32Array(layer.nIn * layer.nOut);
    for (let k = 0; k < layer.nIn; k++)
      for (let j = 0; j < layer.nOut; j++) transposed[j * layer.nIn + k] = W[k * layer.nOut + j];
    const prefix = layerPrefix(naming, i);
    tensors.push({ name: `${prefix}.weight`, shape: [layer.nOut, layer.nIn], data: transposed });
    tensors.push({ name: `${prefix}.bias`, shape: [layer.nOut], data: Float32Array.from(b) });
  });
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8); // the data then starts 8-byte aligned
  const headerBytes = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const t of tensors) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

/**
 * A safetensors file starts with its header length (little-endian u64; no real header needs the top two
 * bytes) and then the header's '{'. Enough to tell it from a msgpack checkpoint by its first 9 bytes.
 */
export function looksLikeSafetensors(head: Uint8Array): boolean {
  return head.length > 8 && head[6] === 0 && head[7] === 0 && head[8] === 0x7b;
}

export interface SafetensorsModel {
  layout: ModelLayout;
  params: Float32Array;
  metadata: Record<string, string>;
}

export function readSafetensors(path: string): SafetensorsModel {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw unreadableFile(path, err);
  }
  return decodeSafetensors(bytes, path);
}

/** Reads a model written by lockstep, NumPy or PyTorch; checks header length, offsets, dtypes, names and shapes. */
export function decodeSafetensors(bytes: Uint8Array, path: string): SafetensorsModel {
  const bad = (what: string) => new UserError(`${path}: invalid safetensors: ${what}`);
  if (bytes.length < 8) throw bad(`${bytes.length} bytes, shorter than the 8-byte header length`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  if (n > BigInt(Math.min(MAX_HEADER_BYTES, bytes.length - 8)))
    throw bad(`header length ${n} exceeds the file (${bytes.length} bytes)`);
  const headerEnd = 8 + Number(n);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(8, headerEnd)).toString('utf8'));
  } catch {
    throw bad('header is not JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw bad('header is not a JSON object');
  const data = bytes.subarray(headerEnd);
  const { __metadata__: rawMetadata, ...entries } = header;
  const metadata: Record<string, string> = {};
  if (rawMetadata !== undefined) {
    if (typeof rawMetadata !== 'object' || rawMetadata === null) throw bad('__metadata__ is not an object');
    for (const [k, v] of Object.entries(rawMetadata)) if (typeof v === 'string') metadata[k] = v;
  }

  const tensors = new Map<string, Float32Array>();
  const spans: [number, number, string][] = [];
  const shapes = new Map<string, number[]>();
  for (const [name, value] of Object.entries(entries)) {
    const info = value as Partial<TensorInfo>;
    if (info?.dtype !== 'F32') throw bad(`${name} has dtype ${String(info?.dtype)}; lockstep reads F32`);
    if (!Array.isArray(info.shape) || !info.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw bad(`${name} has no valid shape`);
    const offsets = info.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw bad(`${name} has no valid data_offsets`);
    }
    const [begin, end] = offsets;
    const count = info.shape.reduce((a, d) => a * d, 1);
    if (end < begin || end > data.length)
      throw bad(`${name} data_offsets [${begin}, ${end}] fall outside the ${data.length} data bytes`);
    if (end - begin !== count * 4)
      throw bad(`${name} has ${end - begin} bytes for shape [${info.shape.join(', ')}] (${count * 4} expected)`);
    spans.push([begin, end, name]);
    shapes.set(name, info.shape);
    tensors.set(name, new Float32Array(Uint8Array.from(data.subarray(begin, end)).buffer));
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i][0] < spans[i - 1][1]) throw bad(`${spans[i - 1][2]} and ${spans[i][2]} overlap`);
  }

  // Layer sizes follow from the weights' shapes: layer i's weight is [size_{i+1}, size_i].
  const prefixes = layerPrefixes([...tensors.keys()], path);
  const sizes: number[] = [];
  prefixes.forEach((prefix, i) => {
    const w = shapes.get(`${prefix}.weight`)!;
    if (w.length !== 2 || w[0] < 1 || w[1] < 1)
      throw bad(`${prefix}.weight has shape [${w.join(', ')}]; expected [out, in]`);
    if (i === 0) sizes.push(w[1]);
    else if (w[1] !== sizes[i])
      throw bad(`${prefix}.weight has ${w[1]} inputs but ${prefixes[i - 1]}.weight has ${sizes[i]} outputs`);
    sizes.push(w[0]);
    const b = shapes.get(`${prefix}.bias`);
    if (b?.length !== 1 || b[0] !== w[0]) throw bad(`${prefix}.bias is missing or not of shape [${w[0]}]`);
  });

  const layout = modelLayout(sizes);
  const params = new Float32Array(layout.paramCount);
  layout.dense.forEach((layer, i) => {
    const { W, b } = layerViews(params, layer);
    const wt = tensors.get(`${prefixes[i]}.weight`)!;
    for (let j = 0; j < layer.nOut; j++)
      for (let k = 0; k < layer.nIn; k++) W[k * layer.nOut + j] = wt[j * layer.nIn + k];
    b.set(tensors.get(`${prefixes[i]}.bias`)!);
  });
  return { layout, params, metadata };
}

const NAMINGS_WANTED =
  'layers.0.weight, layers.0.bias, layers.1.weight, … (lockstep export) or 0.weight, 0.bias, 2.weight, … ' +
  '(the state_dict of nn.Sequential(Linear, ReLU, Linear, …); any numbers, in order)';

/**
 * The layers' name prefixes, input to output: `layers.0`, `layers.1`, … (lockstep's naming), or the
 * numbered modules of an nn.Sequential in numeric order (`0`, `2`, `4`; a Flatten or Dropout shifts them).
 * Any other tensor, or neither naming, is refused with the names found and the names wanted.
 */
function layerPrefixes(names: string[], path: string): string[] {
  const refuse = (why: string) => {
    const found =
      names.length === 0
        ? 'none'
        : names.slice(0, 8).join(', ') + (names.length > 8 ? `, … (${names.length} in all)` : '');
    return new UserError(
      `${path}: invalid safetensors: ${why}; tensors found: ${found}; lockstep reads ${NAMINGS_WANTED}`,
    );
  };
  let prefixes: string[];
  if (names.includes('layers.0.weight')) {
    prefixes = [];
    for (let i = 0; names.includes(`layers.${i}.weight`); i++) prefixes.push(`layers.${i}`);
  } else {
    const indices = [...new Set(names.map((n) => /^(\d+)\.weight$/.exec(n)?.[1]).filter((i) => i !== undefined))];
    prefixes = indices
      .map(Number)
      .sort((a, b) => a - b)
      .map(String);
    if (prefixes.length === 0) throw refuse('no tensor named layers.0.weight or 0.weight');
  }
  const expected = new Set(prefixes.flatMap((p) => [`${p}.weight`, `${p}.bias`]));
  const unexpected = names.find((n) => !expected.has(n));
  if (unexpected !== undefined) throw refuse(`unexpected tensor ${unexpected}`);
  return prefixes;
}
