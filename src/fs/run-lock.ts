import { closeSync, openSync, readFileSync, realpathSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UserError } from '../errors.js';

/**
 * A run's hold on its checkpoint file: FILE.lock beside it, made exclusively and holding the run's process
 * id. Why: two runs started on one --checkpoint both pass the check that it is not another run's (neither
 * has written it yet), then replace each other's file every epoch and one run is lost without a word.
 * A lock whose process has gone (killed) is stale and taken over, with what that process left half written.
 */
export interface RunLock {
  release(): void;
}

/** The lock files this process's runs hold: the process id alone does not tell two library runs in one process apart. */
const heldHere = new Set<string>();

export function lockCheckpoint(path: string, flag: string): RunLock {
  const lockPath = `${path}.lock`;
  refuseIfHeldHere(path, flag);
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST')
        throw new UserError(`${flag} ${path}: cannot make its lock file ${lockPath} (${code ?? String(err)})`);
      const holder = lockHolder(lockPath);
      // A second EEXIST: another run took the stale lock first.
      if (attempt > 0 || (holder !== null && holder !== process.pid && processAlive(holder)))
        throw writing(path, flag, holder);
      unlinkSync(lockPath);
      // A run killed while writing its checkpoint leaves its temporary file (writeFileAtomic's name) too.
      if (holder !== null) rmSync(join(dirname(path), `.${basename(path)}.${holder}.tmp`), { force: true });
    }
  }
  let held = true;
  // One key for the run's whole life: a chdir meanwhile, or the same file by another path, finds it.
  const key = lockKey(lockPath);
  heldHere.add(key);
  const release = () => {
    if (!held) return;
    held = false;
    heldHere.delete(key);
    process.off('exit', release);
    try {
      if (lockHolder(key) === process.pid) unlinkSync(key);
    } catch {
      // Already gone: nothing to release.
    }
  };
  // A run that ends through process.exit (a signal's second press, a fatal error) still lets go.
  process.on('exit', release);
  return { release };
}

/** Throws when a live run other than this one holds `path`'s lock. */
export function refuseIfLocked(path: string, flag: string): void {
  refuseIfHeldHere(path, flag);
  const holder = lockHolder(`${path}.lock`);
  if (holder !== null && holder !== process.pid && processAlive(holder)) throw writing(path, flag, holder);
}

function refuseIfHeldHere(path: string, flag: string): void {
  if (heldHere.has(lockKey(`${path}.lock`)))
    throw new UserError(
      `${flag} ${path}: another run in this process is writing it; wait for that run to end, or name another file`,
    );
}

/** A lock file's path with its folder's links resolved (the folder exists once a run holds the lock). */
function lockKey(lockPath: string): string {
  try {
    return join(realpathSync(dirname(resolve(lockPath))), basename(lockPath));
  } catch {
    return resolve(lockPath);
  }
}

function writing(path: string, flag: string, holder: number | null): UserError {
  const who = holder === null ? 'another lockstep run' : `another lockstep run (process ${holder})`;
  return new UserError(`${flag} ${path}: ${who} is writing it; wait for that run to end, or name another file`);
}

function lockHolder(lockPath: string): number | null {
  try {
    const pid = Number(readFileSync(lockPath, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Whether process `pid` still runs (on this machine, as any user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
