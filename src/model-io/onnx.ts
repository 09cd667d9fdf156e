import type onnxProto from 'onnx-proto';
import { BYTE_SCALING, type InputScaling } from '../data/scaling.js';
import { layerViews, type ModelLayout } from '../model/layout.js';
import { lazyPackage } from '../packages.js';

/** onnx-proto (~70 ms to load) only when a model is written or read as ONNX. */
const onnxProtoOf = lazyPackage<typeof onnxProto>('onnx-proto');
type Onnx = (typeof onnxProto)['onnx'];

/**
 * ONNX, the format onnxruntime (Node, Python, the browser) runs: the MLP as a graph, written with the ONNX
 * protobuf definitions of the onnx-proto package.
 *
 *   input [N, inputs] float32, raw values (pixels 0..255)
 *     → input scaling nodes (pixels: Div by 255, as lockstep's PIXEL_SCALE, so the same float32)
 *     → Gemm(x, layers.i.weight [in, out], layers.i.bias [out]) → Relu, for every layer but the last
 *     → Gemm of the last layer → Softmax(axis 1) → probabilities [N, classes]
 *
 * The weights keep lockstep's [in][out] orientation, so Gemm needs no transpose.
 */
export const ONNX_OPSET = 13;
export const ONNX_INPUT = 'input';
export const ONNX_OUTPUT = 'probabilities';

/**
 * Whether a file's first bytes are an ONNX ModelProto's: protobuf writers (onnx-proto's, PyTorch's, the onnx
 * package's) put ir_version (field 1, a small varint) first, then another ModelProto field: producer_name,
 * producer_version, domain, model_version, doc_string, graph, opset_import or metadata_props.
 */
export function looksLikeOnnx(head: Uint8Array): boolean {
  return (
    head.length >= 3 &&
    head[0] === 0x08 &&
    head[1] > 0 &&
    head[1] < 0x80 &&
    [0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42, 0x72].includes(head[2])
  );
}

/** What lockstep does to a pixel: p / 255 in float32 (PIXEL_SCALE). */
export const PIXEL_SCALING: InputScaling = BYTE_SCALING;

export interface OnnxOptions {
  scaling?: InputScaling;
  /** One name per output class, stored as JSON in the metadata property `class_names`. */
  classNames?: readonly string[];
  /** More metadata properties (params_sha256, the run's settings). */
  metadata?: Record<string, string>;
  producerVersion?: string;
}

type Node = InstanceType<Onnx['NodeProto']>;
type Tensor = InstanceType<Onnx['TensorProto']>;

function floatTensor(name: string, dims: number[], data: Float32Array): Tensor {
  const bytes = new Uint8Array(data.byteLength);
  // raw_data is little-endian; a Float32Array is in the machine's order, little-endian on every platform Node runs on.
  bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  const { onnx } = onnxProtoOf();
  return onnx.TensorProto.create({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: bytes });
}

function node(
  opType: string,
  inputs: string[],
  output: string,
  attributes: InstanceType<Onnx['AttributeProto']>[] = [],
): Node {
  const { onnx } = onnxProtoOf();
  return onnx.NodeProto.create({ opType, input: inputs, output: [output], name: output, attribute: attributes });
}

/**
 * The nodes and constants that turn `input` into `output` by the model's input scaling (src/data/scaling.ts):
 * 255 is a Div by 255 (the same float32 as lockstep's pixels); standard and minmax a Sub of the per-feature
 * offsets and a Div by the divisors, in float32 (lockstep subtracts and divides in float64 and rounds once,
 * so a feature may differ in its last bit); none passes the input through.
 */
function scalingNodes(scaling: InputScaling, input: string, output: string): { nodes: Node[]; initializers: Tensor[] } {
  switch (scaling.kind) {
    case '255':
      return {
        nodes: [node('Div', [input, 'input_divisor'], output)],
        initializers: [floatTensor('input_divisor', [], Float32Array.of(255))],
      };
    case 'none':
      return { nodes: [node('Identity', [input], output)], initializers: [] };
    case 'standard':
    case 'minmax':
      return {
        nodes: [
          node('Sub', [input, 'input_offset'], 'centered_input'),
          node('Div', ['centered_input', 'input_divisor'], output),
        ],
        initializers: [
          floatTensor('input_offset', [scaling.offset.length], Float32Array.from(scaling.offset)),
          floatTensor('input_divisor', [scaling.divisor.length], Float32Array.from(scaling.divisor)),
        ],
      };
  }
}

function valueInfo(name: string, dims: (number | string)[]): InstanceType<Onnx['ValueInfoProto']> {
  const { onnx } = onnxProtoOf();
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  });
}

/** The model as ONNX bytes (a serialized ModelProto). */
export function encodeOnnx(layout: ModelLayout, params: Float32Array, options: OnnxOptions = {}): Uint8Array {
  const { onnx } = onnxProtoOf();
  const sizes = layout.layers;
  const classes = sizes[sizes.length - 1];
  if (options.classNames && options.classNames.length !== classes) {
    throw new RangeError(`${options.classNames.length} class names for ${classes} output classes`);
  }
  const scaled = scalingNodes(options.scaling ?? PIXEL_SCALING, ONNX_INPUT, 'scaled_input');
  const nodes = [...scaled.nodes];
  const initializers = [...scaled.initializers];
  let x = 'scaled_input';
  layout.dense.forEach((layer, i) => {
    const { W, b } = layerViews(params, layer);
    initializers.push(floatTensor(`layers.${i}.weight`, [layer.nIn, layer.nOut], W));
    initializers.push(floatTensor(`layers.${i}.bias`, [layer.nOut], b));
    const last = i === layout.dense.length - 1;
    nodes.push(node('Gemm', [x, `layers.${i}.weight`, `layers.${i}.bias`], last ? 'logits' : `layers.${i}.linear`));
    if (!last) nodes.push(node('Relu', [`layers.${i}.linear`], (x = `layers.${i}.relu`)));
  });
  nodes.push(
    node('Softmax', ['logits'], ONNX_OUTPUT, [
      onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 }),
    ]),
  );

  const metadata = { ...options.metadata };
  if (options.classNames) metadata.class_names = JSON.stringify(options.classNames);
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'lockstep',
    producerVersion: options.producerVersion ?? '',
    docString: `MLP ${sizes.join('-')}: ReLU between layers, softmax at the end`,
    graph: {
      name: 'lockstep_mlp',
      node: nodes,
      initializer: initializers,
      input: [valueInfo(ONNX_INPUT, ['N', sizes[0]])],
      output: [valueInfo(ONNX_OUTPUT, ['N', classes])],
    },
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
  });
  return onnx.ModelProto.encode(model).finish();
}
