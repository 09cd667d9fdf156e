import { closeSync, existsSync, fsyncSync, openSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../errors.js';

/**
 * Writes a file so that readers only ever see the old content or the new, complete one: a temp file in
 * the same directory, fsync, rename over the target, fsync the directory. If anything fails, the temp file
 * is removed and the previous file is untouched.
 */
export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  const dir = checkDirectory(path, path);
  if (existsSync(path) && statSync(path).isDirectory()) throw new UserError(`${path}: is a directory`);
  const temp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  let fd: number | null = null;
  try {
    fd = openSync(temp, 'w', 0o644);
    let written = 0;
    while (written < bytes.length) {
      written += writeSync(fd, bytes, written, Math.min(bytes.length - written, 1 << 20));
      simulateDiskFull(written, bytes.length);
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(temp, path);
  } catch (err) {
    if (fd !== null) closeSync(fd);
    if (existsSync(temp)) unlinkSync(temp);
    if (err instanceof UserError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`${path}: cannot write (${code ?? (err as Error).message}); any previous file is unchanged`);
  }
  try {
    const dfd = openSync(dir, 'r');
    fsyncSync(dfd);
    closeSync(dfd);
  } catch {
    // Some filesystems refuse to fsync a directory; the rename itself has happened.
  }
}

/** The directory `path` would be written in, which must exist; errors start with `label`. */
function checkDirectory(path: string, label: string): string {
  const dir = dirname(path);
  if (!existsSync(dir)) throw new UserError(`${label}: the directory ${dir} does not exist`);
  if (!statSync(dir).isDirectory()) throw new UserError(`${label}: ${dir} is not a directory`);
  return dir;
}

/** Test-only: LOCKSTEP_TEST_DISK_FULL=1 fails every atomic write half-way, as a full disk would. */
function simulateDiskFull(written: number, total: number): void {
  if (process.env.LOCKSTEP_TEST_DISK_FULL && written >= total / 2) {
    throw Object.assign(new Error('no space left on device (simulated)'), { code: 'ENOSPC' });
  }
}

/** Fails now, with the path named, if a file could not be written there later (checked before training starts). */
export function checkWritable(path: string, flag: string): void {
  refuseDirectory(path, flag);
  const dir = checkDirectory(path, `${flag} ${path}`);
  const probe = join(dir, `.${basename(path)}.${process.pid}.probe`);
  try {
    closeSync(openSync(probe, 'w'));
    unlinkSync(probe);
  } catch (err) {
    throw new UserError(
      `${flag} ${path}: cannot write in ${dir} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    );
  }
}

/** An output path that names a directory is a typo that no --force can mend: refused first, in the flag's words. */
export function refuseDirectory(path: string, flag: string): void {
  if (existsSync(path) && statSync(path).isDirectory())
    throw new UserError(`${flag} ${path}: is a directory; name a file`);
}

/** Whether two existing paths are one file (the same inode: a link or another spelling of the path counts). */
export function sameFile(a: string, b: string): boolean {
  const [sa, sb] = [statSync(a), statSync(b)];
  return sa.dev === sb.dev && sa.ino === sb.ino;
}
