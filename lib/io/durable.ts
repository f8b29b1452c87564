// Small file-system helpers for state that must survive a crash. No stream code.
import { closeSync, existsSync, fsyncSync, openSync, writeSync } from 'node:fs';

/** Writes all of `bytes` at the file position (writeSync may write less than asked). */
export function writeAll(fd: number, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
}

/** Flushes a file or a directory (its entries) to stable storage; a missing path is skipped. */
export function syncPath(p: string): void {
  if (!existsSync(p)) return;
  const fd = openSync(p, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
