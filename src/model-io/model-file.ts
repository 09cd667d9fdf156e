import { closeSync, openSync, readSync } from 'node:fs';
import { unreadableFile, UserError } from '../errors.js';
import { readCheckpoint, type Checkpoint } from './checkpoint.js';
import { paramsSha256 } from '../model/hash.js';
import { checkFiniteParams, type Model } from './model.js';
import { looksLikeOnnx } from './onnx.js';
import { looksLikeSafetensors, readSafetensors } from './safetensors.js';
import { inputFromMetadata } from '../data/scaling.js';

/** A model read from a file: a checkpoint (and its run) or a safetensors model. */
export interface ModelFile extends Model {
  path: string;
  kind: 'checkpoint' | 'safetensors';
  checkpoint?: Checkpoint;
}

/** Tells the formats apart by content: safetensors starts with a header length, then '{'; ONNX (looksLikeOnnx) is refused. */
export function loadModel(path: string): ModelFile {
  const head = new Uint8Array(9);
  try {
    const fd = openSync(path, 'r');
    readSync(fd, head, 0, 9, 0);
    closeSync(fd);
  } catch (err) {
    throw unreadableFile(path, err, 'model');
  }
  if (looksLikeOnnx(head)) {
    throw new UserError(
      `${path}: an ONNX model, which lockstep writes but does not read back; give a checkpoint or a .safetensors model`,
    );
  }
  if (looksLikeSafetensors(head)) {
    const { layout, params, metadata } = readSafetensors(path);
    checkFiniteParams(layout, params, path);
    // lockstep export records the hash: a file damaged since, or edited without updating it, is caught here.
    const recorded = metadata.params_sha256;
    if (recorded !== undefined && recorded !== paramsSha256(params))
      throw new UserError(
        `${path}: its weights' sha256 is not the params_sha256 its metadata records (${recorded.slice(0, 16)}…): damaged, or changed since it was written; remove params_sha256 from __metadata__ to use it anyway`,
      );
    return { path, kind: 'safetensors', layout, params, input: inputFromMetadata(metadata, layout.layers, path) };
  }
  let checkpoint: Checkpoint;
  try {
    checkpoint = readCheckpoint(path);
  } catch (err) {
    // Say why it is not a checkpoint either ("not msgpack, or truncated"); a checkpoint cut short says so itself.
    const why = err instanceof UserError ? /not a lockstep checkpoint( \(.*\))?$/.exec(err.message) : null;
    if (why) throw new UserError(`${path}: neither a safetensors model nor a lockstep checkpoint${why[1] ?? ''}`);
    throw err;
  }
  checkFiniteParams(checkpoint.layout, checkpoint.params, path);
  return {
    path,
    kind: 'checkpoint',
    layout: checkpoint.layout,
    params: checkpoint.params,
    checkpoint,
    input: checkpoint.input,
  };
}
