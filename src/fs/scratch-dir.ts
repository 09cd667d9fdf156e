import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive } from './run-lock.js';

/**
 * A new folder in the system's temp folder for one sweep's or queue worker's run configs, named
 * lockstep-KIND-PID-XXXXXX. The same KIND's folders whose process has gone (a SIGKILL skips the clean-up) are
 * removed first, so killed sweeps and workers do not pile folders up there.
 */
export function makeScratchDir(kind: 'sweep' | 'worker'): string {
  const prefix = `lockstep-${kind}-`;
  for (const name of readdirSync(tmpdir())) {
    const pid = Number(/^(\d+)-/.exec(name.slice(prefix.length))?.[1]);
    if (!name.startsWith(prefix) || !(pid > 0) || processAlive(pid)) continue;
    try {
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
    } catch {
      // Another user's folder (the temp folder is sticky): theirs to remove.
    }
  }
  return mkdtempSync(join(tmpdir(), `${prefix}${process.pid}-`));
}
