import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { IDX_FILES } from './dataset.js';

/**
 * eval, predict and a resumed train read the data directory saved in the checkpoint when --data is not
 * given. If it has gone, say so in the user's terms: the checkpoint, what is missing, and --data as the way
 * out (the data loader's own message would name a --data the user never typed). `files` are the IDX files
 * the command reads (each may be gzipped, as the loader accepts).
 */
export function checkSavedDataDir(checkpoint: string, dir: string | undefined, files: string[]): void {
  if (dir === undefined) return;
  // The data loader reads a path ending in .csv, .npz or .npy as a file, anything else as a directory of IDX files.
  const kind = /\.(csv|npz|npy)$/i.test(dir) ? 'FILE' : 'DIR';
  const refuse = (what: string) =>
    new UserError(
      `${checkpoint}: its data ${kind === 'FILE' ? 'file' : 'directory'} ${dir} ${what}; give --data ${kind}`,
    );
  if (!existsSync(dir)) throw refuse('no longer exists');
  // A .csv, .npz or .npy file: its loader names whatever is wrong with it.
  if (!statSync(dir).isDirectory()) return;
  const missing = files.filter((name) => !existsSync(join(dir, name)) && !existsSync(join(dir, `${name}.gz`)));
  if (missing.length > 0) throw refuse(`has no ${missing.join(', ')}`);
}

/** eval and predict on a model's own data (no --data given): the split's IDX files, checked as above. */
export function checkSavedSplit(
  model: string,
  dir: string | undefined,
  split: 'train' | 'test',
  labels?: string,
): void {
  const files =
    split === 'train' ? [IDX_FILES.trainImages, IDX_FILES.trainLabels] : [IDX_FILES.testImages, IDX_FILES.testLabels];
  checkSavedDataDir(model, dir, files);
  // An .npy run's --labels file, in the same words as its data file.
  if (labels !== undefined && !existsSync(labels))
    throw new UserError(
      `${model}: its labels file ${labels} no longer exists; give --data FILE (and eval's --labels FILE)`,
    );
}
