import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * lockstep's package root: the nearest directory above this module whose package.json is lockstep's.
 * Built artefacts (dist/kernels.wasm, dist/workers/*.js) are found from here, so the same code works when
 * run compiled from dist/ and as TypeScript source under vitest.
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'lockstep') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find lockstep's package.json above " + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

/** A file of the compiled build, e.g. distPath('workers', 'step-worker.js'). */
export function distPath(...parts: string[]): string {
  return join(packageRoot(), 'dist', ...parts);
}

/** lockstep's version, from its package.json. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
