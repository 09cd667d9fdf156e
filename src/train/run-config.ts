import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { invalidJson, unreadableFile, UserError } from '../errors.js';
import { checkKnown } from '../options/check.js';
import { DATA_FILE_OPTIONS, resolveConfig, type TrainOptions } from './config.js';

/**
 * `lockstep train --config FILE`: a run's settings as one JSON object of training options (TrainOptions'
 * names: {"seed": 3, "lr": 0.1, "batchSize": 64, "epochs": 1}). It is how sweep starts each run, so that any
 * job queue can start the same runs. Every value is checked here, and errors name the file. Relative data paths
 * are from the file's folder.
 */
export function readRunConfig(path: string): TrainOptions {
  const what = `--config ${path}`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw unreadableFile(what, err);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw invalidJson(what, err);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UserError(`${what}: must be one JSON object of training options, e.g. {"seed": 3, "lr": 0.1}`);
  }
  // Its data files are named from the file's folder, as a tsconfig's are: the config means the same from any directory.
  const options = value as Record<string, unknown>;
  for (const key of DATA_FILE_OPTIONS)
    if (typeof options[key] === 'string') options[key] = resolve(dirname(path), options[key] as string);
  try {
    // Settings only: the files a run writes are the invocation's, not the run's.
    checkKnown(value, ['config']);
    resolveConfig(value as TrainOptions);
  } catch (err) {
    if (err instanceof UserError) throw new UserError(`${what}: ${err.message}`);
    throw err;
  }
  return value as TrainOptions;
}

/** The flags given on the command line win over the file's values (--reference only when given: its default is false). */
export function withRunConfig(fromFile: TrainOptions, fromFlags: TrainOptions): TrainOptions {
  const given = Object.entries(fromFlags).filter(([k, v]) => v !== undefined && !(k === 'reference' && v === false));
  return { ...fromFile, ...Object.fromEntries(given) };
}
