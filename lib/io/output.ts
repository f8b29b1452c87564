// Sinks: NDJSON to stdout or a file, compressed by the file extension (.gz, .zst).
import { accessSync, constants as fsConstants, createWriteStream, existsSync, lstatSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compressionForPath, compressor } from './compression.ts';
import { processRunning } from './lock.ts';
import type { Rec } from '../operator.ts';

export interface Output {
  /** Where bytes go (the compressor when there is one). */
  stream: Writable;
  /** Resolves when everything is flushed to its destination (and renamed into place). */
  done: Promise<void>;
  name: string;
  /** After a failed run: stops writing and removes the unfinished file (the target path is left as it was). */
  discard(): void;
}

/**
 * Opens an output. Files are written under a temporary name beside the target and renamed
 * when complete, so a target path never holds a partial file.
 */
export function openOutput(file: string | undefined): Output {
  if (!file || file === '-') {
    return { stream: process.stdout, done: Promise.resolve(), name: '<stdout>', discard: () => {} };
  }
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  removeStalePartials(file);
  const tmp = `${file}.partial-${process.pid}`;
  // Flushed to disk before the rename: a complete name never points at data a power loss can take.
  const fileStream = createWriteStream(tmp, { flush: true } as Parameters<typeof createWriteStream>[1]);
  const c = compressor(compressionForPath(file));
  const discard = (): void => {
    c?.destroy();
    fileStream.destroy();
    rmSync(tmp, { force: true });
  };
  if (!c) {
    const done = new Promise<void>((resolve, reject) => {
      fileStream.on('finish', resolve);
      fileStream.on('error', reject);
    }).then(() => renameSync(tmp, file));
    return { stream: fileStream, done, name: file, discard };
  }
  const done = pipeline(c, fileStream).then(() => renameSync(tmp, file));
  return { stream: c, done, name: file, discard };
}

/**
 * Removes the unfinished files (`<file>.partial-<pid>`) that runs killed outright (SIGKILL, power
 * loss) left beside `file`; those of processes still running are left alone.
 */
export function removeStalePartials(file: string): void {
  const dir = path.dirname(path.resolve(file));
  const prefix = `${path.basename(file)}.partial-`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = name.slice(prefix.length);
    if (!/^[1-9][0-9]*$/.test(pid) || Number(pid) === process.pid || processRunning(Number(pid))) continue;
    rmSync(path.join(dir, name), { force: true });
  }
}

function isSymlink(file: string): boolean {
  try {
    return lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * Why `file` cannot be written, or undefined. `as` says what is made there: a file or a directory.
 * Missing directories are made by the run; an ancestor that is a file, or a directory without
 * write permission (or on a read-only file system), cannot be written.
 */
export function cannotWrite(file: string, as: 'file' | 'dir'): string | undefined {
  const target = path.resolve(file);
  let at = target;
  let st: Stats;
  for (;;) {
    try {
      st = statSync(at);
      break;
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ENOENT' && isSymlink(at)) return `ENOENT: ${at} is a symbolic link to a missing target`;
      // ENOENT: not there yet; ENOTDIR: an ancestor is a file (found going up).
      if ((err.code === 'ENOENT' || err.code === 'ENOTDIR') && path.dirname(at) !== at) at = path.dirname(at);
      else return err.message;
    }
  }
  if (as !== 'dir' && /[\\/]$/.test(file)) return `EISDIR: ${file} names a directory (it ends in a slash); give a file`;
  if (at === target) {
    if (as === 'dir' && !st.isDirectory()) return `ENOTDIR: ${target} is not a directory`;
    if (as !== 'dir' && st.isDirectory()) return `EISDIR: ${target} is a directory`;
    // A file is written beside its target and renamed into place: its directory must be writable.
    if (as !== 'dir') at = path.dirname(target);
  } else {
    if (!st.isDirectory()) return `ENOTDIR: ${at} is not a directory`;
  }
  try {
    accessSync(at, fsConstants.W_OK | fsConstants.X_OK);
  } catch (e) {
    return (e as Error).message;
  }
  // A directory to be made: tried once, without `recursive` (in a file system that refuses new
  // entries, such as /proc, Node's recursive mkdir retries forever).
  const firstMissing = at === target ? undefined : path.join(at, path.relative(at, target).split(path.sep)[0]);
  if (firstMissing && (as === 'dir' || firstMissing !== target)) {
    try {
      mkdirSync(firstMissing);
      rmdirSync(firstMissing);
    } catch (e) {
      return (e as Error).message;
    }
  }
  return undefined;
}

/** Characters per piece of encoded output. */
const PIECE_CHARS = 32 * 1024;

/**
 * NDJSON text for a batch, one JSON object per line, in pieces of whole lines that end once they
 * reach PIECE_CHARS: a string (and the Buffer a stream makes of it) of a whole batch would land
 * in V8's large-object space, whose fresh pages cost more than the encoding itself.
 */
export function encodeBatch(batch: Rec[]): string[] {
  const pieces: string[] = [];
  let s = '';
  for (let i = 0; i < batch.length; i++) {
    s += JSON.stringify(batch[i]) + '\n';
    if (s.length >= PIECE_CHARS) {
      pieces.push(s);
      s = '';
    }
  }
  if (s) pieces.push(s);
  return pieces;
}

/** Writes a chunk, resolving when the stream accepts more (backpressure). */
export function write(stream: Writable, chunk: string): Promise<void> | undefined {
  if (stream.write(chunk)) return undefined;
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      stream.off('error', onError);
      resolve();
    };
    const onError = (e: Error) => {
      stream.off('drain', onDrain);
      reject(e);
    };
    stream.once('drain', onDrain);
    stream.once('error', onError);
  });
}

/**
 * An NDJSON side output (errors, rejects), opened on first write. In append mode (checkpointed
 * runs) it writes straight into the file, so it can be cut back to a checkpoint's size.
 */
export class SideOutput {
  private out?: Output;
  count = 0;
  /** Bytes in the file (append mode: including what an earlier run wrote). */
  bytes = 0;

  constructor(
    readonly file: string,
    private readonly append = false,
  ) {
    if (append && existsSync(file)) this.bytes = statSync(file).size;
  }

  private open(): Output {
    if (!this.append) return openOutput(this.file);
    mkdirSync(path.dirname(path.resolve(this.file)), { recursive: true });
    const stream = createWriteStream(this.file, { flags: 'a' });
    const done = new Promise<void>((resolve, reject) => {
      stream.on('finish', resolve);
      stream.on('error', reject);
    });
    return { stream, done, name: this.file, discard: () => stream.destroy() };
  }

  push(value: unknown): void {
    this.out ??= this.open();
    this.count++;
    const line = JSON.stringify(value) + '\n';
    this.bytes += Buffer.byteLength(line);
    this.out.stream.write(line);
  }

  /** Resolves once the side output has room again (call between batches). */
  drained(): Promise<void> | undefined {
    const s = this.out?.stream;
    if (!s || !s.writableNeedDrain) return undefined;
    return new Promise((resolve) => s.once('drain', resolve));
  }

  /** Resolves when everything pushed so far has reached the file. */
  flushed(): Promise<void> {
    const s = this.out?.stream;
    if (!s) return Promise.resolve();
    return new Promise((resolve, reject) => s.write('', (e) => (e ? reject(e) : resolve())));
  }

  /** `empty`: whether to leave an empty file when nothing was pushed (it says "nothing went wrong"). */
  async close(empty = true): Promise<void> {
    if (!this.out && !empty) return;
    if (!this.out) this.out = this.open();
    this.out.stream.end();
    await this.out.done;
  }
}
