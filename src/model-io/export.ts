import { existsSync } from 'node:fs';
import { extname } from 'node:path';
import { UserError } from '../errors.js';
import { paramsSha256 } from '../model/hash.js';
import type { ModelLayout } from '../model/layout.js';
import { refuseDirectory, sameFile, writeFileAtomic } from '../fs/atomic-write.js';
import { packageVersion } from '../paths.js';
import { loadModel } from './model-file.js';
import { checkOptions, resolveModel, type TrainedModel } from './model-source.js';
import { describe } from '../words.js';
import { encodeOnnx, PIXEL_SCALING } from './onnx.js';
import { encodeSafetensors, TENSOR_NAMINGS, type TensorNaming } from './safetensors.js';
import { inputMetadata, type ModelInput, outputNames } from '../data/scaling.js';

/** The run behind a model, as a checkpoint and train()'s result both hold it. */
interface RunInfo {
  state?: { steps?: unknown; history?: unknown };
  config?: { seed?: unknown; lr?: unknown; batchSize?: unknown };
  input?: ModelInput;
}

/**
 * Writes a model's parameters as safetensors (F32, nn.Linear names and shapes), with the run in
 * __metadata__ where it is known. The model is a model file's path (checkpoint or safetensors), or a model
 * in memory (what train() returns, or {params, layers}). `names: 'sequential'` names the tensors as
 * nn.Sequential's state_dict does (0.weight, 2.weight, …).
 */
export function exportSafetensors(
  source: string | TrainedModel,
  toPath: string,
  options: { force?: boolean; names?: TensorNaming } = {},
): { paramsSha256: string } {
  const names = options.names ?? 'lockstep';
  if (!TENSOR_NAMINGS.includes(names))
    throw new UserError(`--names ${String(names)}: must be one of ${TENSOR_NAMINGS.join(', ')}`);
  const { layout, params, metadata } = exportSource(source, toPath, 'exportSafetensors', options.force);
  writeFileAtomic(toPath, encodeSafetensors(layout, params, { format: 'lockstep', ...metadata }, names));
  return { paramsSha256: metadata.params_sha256 };
}

/**
 * Writes a model as an ONNX graph (input scaling, Gemm and Relu per layer, Softmax), for onnxruntime in
 * Node, Python or the browser; the run and `params_sha256` are in its metadata properties.
 */
export function exportOnnx(
  source: string | TrainedModel,
  toPath: string,
  options: { force?: boolean } = {},
): { paramsSha256: string } {
  const { layout, params, metadata, input } = exportSource(source, toPath, 'exportOnnx', options.force);
  const onnxOptions = {
    scaling: input?.scaling ?? PIXEL_SCALING,
    classNames: outputNames(input, layout.layers[layout.layers.length - 1]),
    metadata,
    producerVersion: packageVersion(),
  };
  writeFileAtomic(toPath, encodeOnnx(layout, params, onnxOptions));
  return { paramsSha256: metadata.params_sha256 };
}

/** What exportModel writes, by the output file's extension (.st: the short name --save-best files go by in the docs). */
const EXPORT_FORMATS: Record<string, 'onnx' | 'safetensors'> = {
  '.onnx': 'onnx',
  '.safetensors': 'safetensors',
  '.st': 'safetensors',
};

/** The format a model file is written in, by its extension; undefined for one lockstep does not write. */
export function modelFormat(path: string): 'onnx' | 'safetensors' | undefined {
  return EXPORT_FORMATS[extname(path).toLowerCase()];
}

/** Writes a model as safetensors or ONNX, chosen by `toPath`'s extension; `names` is safetensors' only. */
export function exportModel(
  source: string | TrainedModel,
  toPath: string,
  options: { force?: boolean; names?: TensorNaming } = {},
): { format: 'onnx' | 'safetensors'; paramsSha256: string } {
  checkOptions(options, ['force', 'names'], 'exportModel');
  const format = modelFormat(String(toPath));
  if (format === undefined) {
    // Writing the checkpoint over itself is the worse mistake: say that one first.
    if (typeof source === 'string') refuseExportOverSource(source, toPath);
    throw new UserError(`--to ${toPath}: export writes .safetensors (or .st) or .onnx`);
  }
  if (format === 'onnx' && (options.names ?? 'lockstep') !== 'lockstep')
    throw new UserError(`--names ${options.names}: names safetensors tensors; --to ${toPath} is ONNX`);
  const written =
    format === 'onnx'
      ? exportOnnx(source, toPath, { force: options.force })
      : exportSafetensors(source, toPath, options);
  return { format, ...written };
}

/** The model to export and its metadata, after the checks every export makes on its source and output. */
function exportSource(source: string | TrainedModel, toPath: string, caller: string, force = false) {
  if (typeof toPath !== 'string' || toPath === '')
    throw new UserError(`${caller}: the output must be a file path; got ${describe(toPath)}`);
  let layout: ModelLayout;
  let params: Float32Array;
  let run: RunInfo;
  if (typeof source === 'string') {
    const model = loadModel(source);
    refuseExportOverSource(source, toPath);
    ({ layout, params } = model);
    run = { ...model.checkpoint, input: model.input };
  } else {
    ({ layout, params } = resolveModel(source, caller));
    run = source as RunInfo;
  }
  refuseDirectory(toPath, '--to'); // before --force is offered: it would not help
  if (existsSync(toPath) && !force) throw new UserError(`--to ${toPath}: exists; pass --force to replace it`);
  const metadata: Record<string, string> = {
    layers: layout.layers.join(','),
    activation: 'relu',
    output: 'softmax',
    input_scale: '1/255',
    params_sha256: paramsSha256(params),
    ...runMetadata(run),
    ...inputMetadata(run.input),
  };
  return { layout, params, metadata, input: run.input };
}

/** Refuses an output that is the model file being exported (a link or another spelling of its path counts). */
export function refuseExportOverSource(source: string, toPath: string): void {
  if (existsSync(toPath) && existsSync(source) && sameFile(toPath, source)) {
    throw new UserError(
      `--to ${toPath}: is the ${loadModel(source).kind === 'checkpoint' ? 'checkpoint' : 'model'} being exported; name another file`,
    );
  }
}

/** Epochs, steps, seed, lr, batch size and the last test accuracy, those that are there. */
function runMetadata({ state, config }: RunInfo): Record<string, string> {
  const out: Record<string, string> = {};
  const history = Array.isArray(state?.history) ? (state.history as { testAccuracy?: unknown }[]) : undefined;
  if (history) out.epochs = String(history.length);
  if (typeof state?.steps === 'number') out.steps = String(state.steps);
  if (typeof config?.seed === 'number') out.seed = String(config.seed);
  if (typeof config?.lr === 'number') out.lr = String(config.lr);
  if (typeof config?.batchSize === 'number') out.batch_size = String(config.batchSize);
  const last = history?.[history.length - 1]?.testAccuracy;
  if (typeof last === 'number') out.test_acc = String(last);
  return out;
}
