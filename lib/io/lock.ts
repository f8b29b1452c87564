// Lock files holding the pid and host of the process that owns something on disk (a checkpoint
// directory, an index being written): another running process finds it taken; the lock of a
// process of this host that has ended (killed outright) is taken over. A process of another host
// (a shared file system) cannot be checked, so its lock stands until it is removed.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';

const HOST = os.hostname();
const OWN = `${process.pid} ${HOST}`;

/** Whether process `pid` exists on this machine and has not ended (a zombie, not yet reaped, has). */
export function processRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists but belongs to another user.
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // Linux: a process killed a moment ago stays a zombie until its parent reaps it.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch (e) {
    // Gone meanwhile; elsewhere there is no /proc to ask.
    return (e as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/**
 * Who holds lock file `file` when it is another process that may be running ("process 123", or
 * "process 123 on host-b"); undefined when there is no lock, it is this process's, or its process
 * has ended.
 */
export function lockHolder(file: string): string | undefined {
  const lock = readLock(file);
  if (!lock) return undefined;
  if (lock.host !== HOST) return `process ${lock.pid} on ${lock.host}`;
  return lock.pid !== process.pid && processRunning(lock.pid) ? `process ${lock.pid}` : undefined;
}

/** The pid and host a lock file names (a pid alone is of this host); undefined when there is none or it is unreadable. */
function readLock(file: string): { pid: number; host: string } | undefined {
  let content: string;
  try {
    content = readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
  const [pidText, host = HOST] = content.split(' ');
  const pid = Number(pidText);
  return Number.isInteger(pid) && pid > 0 ? { pid, host } : undefined;
}

/**
 * Takes lock file `file` for this process: created exclusively, so of two processes taking it at
 * once only one does. Returns who holds it when another process may (nothing is changed then,
 * see `lockHolder`); a lock of an ended process is replaced.
 */
export function claimLock(file: string): string | undefined {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, OWN, { flag: 'wx' });
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
  const lock = readLock(file);
  return lock?.pid === process.pid && lock.host === HOST;
}
