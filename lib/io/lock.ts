// Lock files holding the pid of the process that owns something on disk (a checkpoint
// directory, an index being written): another running process finds it taken; the lock of a
// process that has ended (killed outright) is taken over.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';

/** Whether process `pid` exists (on this machine). */
export function processRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid of another running process that holds lock file `file`, or undefined (no lock, this process's, or one whose process has ended). */
export function lockHolder(file: string): number | undefined {
  let pid = NaN;
  try {
    pid = Number(readFileSync(file, 'utf8').trim());
  } catch {
    return undefined;
  }
  return Number.isInteger(pid) && pid > 0 && pid !== process.pid && processRunning(pid) ? pid : undefined;
}

/**
 * Takes lock file `file` for this process: created exclusively, so of two processes taking it at
 * once only one does. Returns the pid of another running process that holds it (nothing is
 * changed then); a lock of an ended process is replaced.
 */
export function claimLock(file: string): number | undefined {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = lockHolder(file);
    if (holder !== undefined) return holder;
    if (heldHere(file)) return undefined;
    rmSync(file, { force: true });
  }
  throw new Error(`cannot take ${file}: it keeps changing (other processes are taking it)`);
}

/** Removes lock file `file` when this process holds it. */
export function releaseLock(file: string): void {
  if (heldHere(file)) rmSync(file, { force: true });
}

function heldHere(file: string): boolean {
  try {
    return readFileSync(file, 'utf8').trim() === String(process.pid);
  } catch {
    return false;
  }
}
