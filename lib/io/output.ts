// Sinks: NDJSON to stdout or a file, compressed by the file extension (.gz, .zst).
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compressionForPath, compressor } from './compression.ts';
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

  async close(): Promise<void> {
    if (!this.out) this.out = this.open(); // an empty file says "nothing went wrong"
    this.out.stream.end();
    await this.out.done;
  }
}
