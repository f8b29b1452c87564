// Sinks: NDJSON to stdout or a file, compressed by the file extension (.gz, .zst).
import { createWriteStream, renameSync, mkdirSync } from 'node:fs';
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
}

/**
 * Opens an output. Files are written under a temporary name beside the target and renamed
 * when complete, so a target path never holds a partial file.
 */
export function openOutput(file: string | undefined): Output {
  if (!file || file === '-') {
    return { stream: process.stdout, done: Promise.resolve(), name: '<stdout>' };
  }
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.partial-${process.pid}`;
  const fileStream = createWriteStream(tmp);
  const c = compressor(compressionForPath(file));
  if (!c) {
    const done = new Promise<void>((resolve, reject) => {
      fileStream.on('finish', resolve);
      fileStream.on('error', reject);
    }).then(() => renameSync(tmp, file));
    return { stream: fileStream, done, name: file };
  }
  const done = pipeline(c, fileStream).then(() => renameSync(tmp, file));
  return { stream: c, done, name: file };
}

/** NDJSON text for a batch: one JSON object per line. */
export function encodeBatch(batch: Rec[]): string {
  let s = '';
  for (let i = 0; i < batch.length; i++) s += JSON.stringify(batch[i]) + '\n';
  return s;
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

/** A small NDJSON side output (errors, rejects): opened lazily on first write. */
export class SideOutput {
  private out?: Output;
  count = 0;
  constructor(private readonly file: string) {}

  push(value: unknown): void {
    this.out ??= openOutput(this.file);
    this.count++;
    this.out.stream.write(JSON.stringify(value) + '\n');
  }

  /** Resolves once the side output has room again (call between batches). */
  drained(): Promise<void> | undefined {
    const s = this.out?.stream;
    if (!s || !s.writableNeedDrain) return undefined;
    return new Promise((resolve) => s.once('drain', resolve));
  }

  async close(): Promise<void> {
    if (!this.out) this.out = openOutput(this.file); // an empty file says "nothing went wrong"
    this.out.stream.end();
    await this.out.done;
  }
}
