import { existsSync } from 'node:fs';
import { sameFile } from './atomic-write.js';
import { UserError } from '../errors.js';
import { paramsSha256 } from '../model/hash.js';
import { modelLayout } from '../model/layout.js';
import { writeFileAtomic } from './atomic-write.js';
import { readCheckpoint } from './checkpoint.js';
import { encodeSafetensors } from './safetensors.js';

/** Writes a checkpoint's parameters as safetensors (F32, nn.Linear names and shapes) with the run in __metadata__. */
export function exportSafetensors(checkpointPath: string, toPath: string, options: { force?: boolean } = {}): { paramsSha256: string } {
  const checkpoint = readCheckpoint(checkpointPath);
  if (existsSync(toPath) && sameFile(toPath, checkpointPath)) {
    throw new UserError(`--to ${toPath}: is the checkpoint being exported; name another file`);
  }
  if (existsSync(toPath) && !options.force) throw new UserError(`--to ${toPath}: exists; pass --force to replace it`);
  const layout = modelLayout(checkpoint.layers);
  const hash = paramsSha256(checkpoint.params);
  const { state, config } = checkpoint;
  const last = state.history[state.history.length - 1];
  const metadata: Record<string, string> = {
    format: 'lockstep',
    layers: checkpoint.layers.join(','),
    activation: 'relu',
    output: 'softmax',
    input_scale: '1/255',
    epochs: String(state.history.length),
    steps: String(state.steps),
    seed: String(config.seed),
    lr: String(config.lr),
    batch_size: String(config.batchSize),
    params_sha256: hash,
    ...(last ? { test_acc: String(last.testAcc) } : {}),
  };
  writeFileAtomic(toPath, encodeSafetensors(layout, checkpoint.params, metadata));
  return { paramsSha256: hash };
}
