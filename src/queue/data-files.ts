import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { findFile, IDX_FILES } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { resolveConfig, type TrainOptions } from '../train/config.js';

/** Absolute path → sha256 of each data file a run reads; empty for the default MNIST (shipped in the package). */
export type DataFileHashes = Record<string, string>;

/** The files a run's settings name: the four IDX files of a --data directory, else --data, --labels, --test-data. */
export function dataFiles(options: TrainOptions): string[] {
  const config = resolveConfig(options);
  if (config.data === undefined) return [];
  if (existsSync(config.data) && statSync(config.data).isDirectory())
    return Object.values(IDX_FILES).map((name) => findFile(config.data!, name));
  return [config.data, config.labels, config.testData].filter((p): p is string => p !== undefined);
}

// A worker checks every job's files: the same file is hashed again only when its size or time changed.
const cache = new Map<string, { size: number; mtimeMs: number; sha256: string }>();

function fileSha256(path: string): string | null {
  if (!existsSync(path)) return null;
  const { size, mtimeMs } = statSync(path);
  const hit = cache.get(path);
  if (hit && hit.size === size && hit.mtimeMs === mtimeMs) return hit.sha256;
  const sha256 = createHash('sha256').update(readFileSync(path)).digest('hex');
  cache.set(path, { size, mtimeMs, sha256 });
  return sha256;
}

/** What the sweep plans with: each data file's sha256 (a missing file is the usual UserError of its flag, from resolveConfig or findFile). */
export function hashDataFiles(options: TrainOptions): DataFileHashes {
  return Object.fromEntries(
    dataFiles(options).map((path) => {
      const sha256 = fileSha256(path);
      if (sha256 === null) throw new UserError(`${path}: no such file or directory`);
      return [path, sha256];
    }),
  );
}

/** A worker's check before a run: each planned file is here with the same bytes, else a UserError naming the first that is not. */
export function checkDataFiles(planned: DataFileHashes): void {
  for (const [path, sha256] of Object.entries(planned)) {
    const here = fileSha256(path);
    if (here === null)
      throw new UserError(
        `${path}: no such file on this worker (the run was planned with sha256 ${sha256.slice(0, 16)}…); copy the data here`,
      );
    if (here !== sha256) {
      throw new UserError(
        `${path}: not the file the run was planned with (sha256 ${here.slice(0, 16)}… here, ${sha256.slice(0, 16)}… planned); refused`,
      );
    }
  }
}
