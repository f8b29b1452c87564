// Files of the spilling kernels (spill logs, reservoir spill files, checkpoint states): buffered
// line writing, chunked line reading, and keeping an append-only file in a checkpoint without
// copying it. No stream code.
import { closeSync, copyFileSync, linkSync, openSync, readdirSync, readSync, rmSync, truncateSync, writeSync } from 'node:fs';
import path from 'node:path';

const CHUNK = 1 << 20;
let files = 0;

/**
 * An append-only spill file in a scratch directory, created on the first append and removed by
 * `close`. Checkpoints keep it by hard link with the length that counts (`save`); a restored
 * kernel continues it from there (`resume`).
 */
export class AppendFile {
  private fd: number | undefined;
  private file: string | undefined;
  /** Bytes appended (the file's length that counts). */
  length = 0;

  constructor(
    private readonly dir: () => string,
    private readonly prefix: string,
  ) {}

  get opened(): boolean {
    return this.fd !== undefined;
  }

  private newName(): string {
    return path.join(this.dir(), `${this.prefix}-${process.pid}-${++files}.jsonl`);
  }

  /** Appends `buf`; returns its offset. */
  append(buf: Uint8Array): number {
    if (this.fd === undefined) {
      this.file = this.newName();
      this.fd = openSync(this.file, 'w+');
    }
    const off = this.length;
    writeSync(this.fd, buf, 0, buf.length, off);
    this.length += buf.length;
    return off;
  }

  /**
   * Appends lines (each with a newline) through a 1 MiB buffer; `placed` learns where each one
   * went (offset and length with its newline).
   */
  appendLines(lines: Iterable<string>, placed?: (off: number, len: number) => void): void {
    let parts: string[] = [];
    let size = 0;
    for (const line of lines) {
      const len = Buffer.byteLength(line) + 1;
      placed?.(this.length + size, len);
      parts.push(line, '\n');
      size += len;
      if (size >= CHUNK) {
        this.append(Buffer.from(parts.join(''), 'utf8'));
        parts = [];
        size = 0;
      }
    }
    if (parts.length) this.append(Buffer.from(parts.join(''), 'utf8'));
  }

  read(off: number, len: number): Buffer {
    const buf = Buffer.allocUnsafe(len);
    readSync(this.fd!, buf, 0, len, off);
    return buf;
  }

  /** The file's lines (see `readLines`); none before the first append. */
  *lines(): Generator<string> {
    if (this.fd !== undefined) yield* readLines(this.fd, 0, this.length);
  }

  /** Keeps the file as `to` in a checkpoint directory; returns the length that counts, -1 when there is no file. */
  save(to: string): number {
    if (this.fd === undefined) return -1;
    keepInCheckpoint(this.file!, to);
    return this.length;
  }

  /** Continues the file `save` kept as `from` (nothing when `length` is -1). */
  resume(from: string, length: number): void {
    if (this.fd !== undefined || this.length) throw new Error('AppendFile.resume: the file is in use');
    if (length < 0) return;
    this.file = this.newName();
    this.fd = resumeFromCheckpoint(from, this.file, length);
    this.length = length;
  }

  /** Closes and removes the file (a checkpoint's link to it stays). */
  close(): void {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      rmSync(this.file!, { force: true });
    }
    this.fd = undefined;
  }
}

/** Writes lines (and binary sections) to a new file through a 1 MiB buffer: memory stays bounded whatever is written. */
export class LineWriter {
  private readonly fd: number;
  private readonly buf = Buffer.allocUnsafe(CHUNK);
  private used = 0;
  /** Bytes written to the file so far (after `close`, its size). */
  bytes = 0;

  constructor(readonly file: string) {
    this.fd = openSync(file, 'w');
  }

  /** Appends `line` and a newline (`line` must not contain one). */
  line(line: string): void {
    this.text(line);
    this.text('\n');
  }

  private text(s: string): void {
    // At most 3 UTF-8 bytes per UTF-16 unit.
    if (this.used + s.length * 3 > CHUNK) {
      this.flush();
      if (s.length * 3 > CHUNK) return this.direct(Buffer.from(s, 'utf8'));
    }
    this.used += this.buf.write(s, this.used, 'utf8');
  }

  /** Appends raw bytes (binary sections). */
  bytesOut(b: Uint8Array): void {
    if (this.used + b.length > CHUNK) {
      this.flush();
      if (b.length > CHUNK) return this.direct(b);
    }
    this.buf.set(b, this.used);
    this.used += b.length;
  }

  private direct(b: Uint8Array): void {
    writeSync(this.fd, b, 0, b.length, this.bytes);
    this.bytes += b.length;
  }

  private flush(): void {
    if (!this.used) return;
    this.direct(this.buf.subarray(0, this.used));
    this.used = 0;
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

/**
 * The newline-terminated lines of an open file between byte offsets `start` and `end`, without
 * their newlines, read in 1 MiB chunks (a line longer than a chunk is put together from
 * several; a character is never cut between two reads).
 */
export function* readLines(fd: number, start = 0, end = Infinity): Generator<string> {
  const buf = Buffer.allocUnsafe(CHUNK);
  let pos = start;
  let carry: Buffer[] = [];
  while (pos < end) {
    const n = readSync(fd, buf, 0, Math.min(CHUNK, end - pos), pos);
    if (n === 0) break;
    pos += n;
    let from = 0;
    for (let nl = buf.indexOf(10, 0); nl >= 0 && nl < n; nl = buf.indexOf(10, from)) {
      if (carry.length) {
        carry.push(buf.subarray(from, nl));
        yield Buffer.concat(carry).toString('utf8');
        carry = [];
      } else yield buf.toString('utf8', from, nl);
      from = nl + 1;
    }
    if (from < n) carry.push(Buffer.from(buf.subarray(from, n)));
  }
}

/** A file of float64 rows of `width` numbers, read in chunks of whole rows. */
export function* readRows(file: string, width: number): Generator<Float64Array> {
  const fd = openSync(file, 'r');
  try {
    const rows = new Float64Array(width * 4096);
    const bytes = new Uint8Array(rows.buffer);
    for (let pos = 0; ; ) {
      let n = 0;
      while (n < bytes.length) {
        const got = readSync(fd, bytes, n, bytes.length - n, pos + n);
        if (got === 0) break;
        n += got;
      }
      if (n % (width * 8)) throw new Error(`${file}: ends within a row`);
      if (n === 0) return;
      yield rows.subarray(0, n / 8);
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
}

/** Reads every line of a file (see `readLines`). */
export function* readFileLines(file: string): Generator<string> {
  const fd = openSync(file, 'r');
  try {
    yield* readLines(fd);
  } finally {
    closeSync(fd);
  }
}

/** A hard link, or a copy when the two paths are on different file systems; replaces `to`. */
function linkOrCopy(from: string, to: string): void {
  rmSync(to, { force: true });
  try {
    linkSync(from, to);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EPERM') throw e;
    copyFileSync(from, to);
  }
}

/**
 * Puts an append-only file into a checkpoint directory: a hard link (no copy; later appends
 * reach the linked file too, which is why the checkpoint also records the length that counts),
 * or a copy when the two directories are on different file systems. Removing the working file
 * later (at the end of input) leaves the checkpoint's link intact.
 */
export function keepInCheckpoint(file: string, to: string): void {
  linkOrCopy(file, to);
}

/**
 * The other way: makes `from` (a file kept by `keepInCheckpoint`) the working file `to`, cut
 * back to `length` bytes (what an interrupted run appended after the checkpoint is discarded),
 * and opens it for reading and appending. Hard-linked when possible; bytes before `length` are
 * never rewritten, so the checkpoint's copy stays valid (later checkpoints that linked the same
 * file do not: the runner only resumes from its latest committed checkpoint).
 */
export function resumeFromCheckpoint(from: string, to: string, length: number): number {
  linkOrCopy(from, to);
  truncateSync(to, length);
  return openSync(to, 'r+');
}

/**
 * Empties a step's scratch directory before a restore: what an interrupted run left there is
 * either kept by the checkpoint (hard links) or written after it, and must not be trusted.
 */
export function emptyDir(dir: string): void {
  for (const entry of readdirSync(dir)) rmSync(path.join(dir, entry), { recursive: true, force: true });
}
