import { lstatSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive } from './run-lock.js';

/**
 * A new folder in the system's temp folder for one sweep's or queue worker's run configs, named
 * lockstep-KIND-PID-NS-XXXXXX. The same KIND's folders that this user made in this process namespace (NS:
 * containers sharing /tmp number their processes apart) and whose process has gone are removed first: a
 * SIGKILL skips the clean-up, and killed sweeps and workers would pile folders up there.
 */
export function makeScratchDir(kind: 'sweep' | 'worker'): string {
  const ns = pidNamespace();
  const ours = new RegExp(`^lockstep-${kind}-(\\d+)-${ns}-[A-Za-z0-9]{6}$`);
  for (const name of readdirSync(tmpdir())) {
    const pid = Number(ours.exec(name)?.[1]);
    if (!(pid > 0) || processAlive(pid)) continue;
    const path = join(tmpdir(), name);
    try {
      const stat = lstatSync(path);
      if (stat.isDirectory() && stat.uid === process.getuid?.()) rmSync(path, { recursive: true, force: true });
    } catch {
      // Gone meanwhile, or not ours to remove.
    }
  }
  return mkdtempSync(join(tmpdir(), `lockstep-${kind}-${process.pid}-${ns}-`));
}

/** This process's PID namespace as a number (Linux), or 0 where it cannot be read. */
function pidNamespace(): string {
  try {
    return /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? '0';
  } catch {
    return '0';
  }
}
