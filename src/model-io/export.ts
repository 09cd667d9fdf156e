import { existsSync } from 'node:fs';
import { UserError } from '../errors.js';
import { paramsSha256 } from '../model/hash.js';
import type { ModelLayout } from '../model/layout.js';
import { sameFile, writeFileAtomic } from './atomic-write.js';
import { readCheckpoint } from './checkpoint.js';
import { describe, resolveModel, type TrainedModel } from './model-source.js';
import { encodeSafetensors } from './safetensors.js';
import { inputMetadata, type ModelInput } from '../data/scaling.js';

/** The run behind a model, as a checkpoint and train()'s result both hold it. */
interface RunInfo {
  state?: { steps?: unknown; history?: unknown };
  config?: { seed?: unknown; lr?: unknown; batchSize?: unknown };
  input?: ModelInput;
}

/**
 * Writes a model's parameters as safetensors (F32, nn.Linear names and shapes), with the run in
 * __metadata__ where it is known. The model is a checkpoint file's path, or a model in memory (what
 * train() returns, or {params, layers}).
 */
export function exportSafetensors(source: string | TrainedModel, toPath: string, options: { force?: boolean } = {}): { paramsSha256: string } {
  if (typeof toPath !== 'string' || toPath === '') throw new UserError(`exportSafetensors: the output must be a file path; got ${describe(toPath)}`);
  let layout: ModelLayout;
  let params: Float32Array;
  let run: RunInfo;
  if (typeof source === 'string') {
    const checkpoint = readCheckpoint(source);
    if (existsSync(toPath) && sameFile(toPath, source)) {
      throw new UserError(`--to ${toPath}: is the checkpoint being exported; name another file`);
    }
    ({ layout, params } = resolveModel(checkpoint, source));
    run = checkpoint;
  } else {
    ({ layout, params } = resolveModel(source, 'exportSafetensors'));
    run = source as RunInfo;
  }
  if (existsSync(toPath) && !options.force) throw new UserError(`--to ${toPath}: exists; pass --force to replace it`);
  const hash = paramsSha256(params);
  const metadata: Record<string, string> = {
    format: 'lockstep',
    layers: layout.sizes.join(','),
    activation: 'relu',
    output: 'softmax',
    input_scale: '1/255',
    params_sha256: hash,
    ...runMetadata(run),
    ...inputMetadata(run.input),
  };
  writeFileAtomic(toPath, encodeSafetensors(layout, params, metadata));
  return { paramsSha256: hash };
}

/** Epochs, steps, seed, lr, batch size and the last test accuracy, those that are there. */
function runMetadata({ state, config }: RunInfo): Record<string, string> {
  const out: Record<string, string> = {};
  const history = Array.isArray(state?.history) ? (state.history as { testAcc?: unknown }[]) : undefined;
  if (history) out.epochs = String(history.length);
  if (typeof state?.steps === 'number') out.steps = String(state.steps);
  if (typeof config?.seed === 'number') out.seed = String(config.seed);
  if (typeof config?.lr === 'number') out.lr = String(config.lr);
  if (typeof config?.batchSize === 'number') out.batch_size = String(config.batchSize);
  const last = history?.[history.length - 1]?.testAcc;
  if (typeof last === 'number') out.test_acc = String(last);
  return out;
}
