// Compression by magic bytes (inputs) and by file extension (outputs).
import { PassThrough, type Duplex, type Readable, type Writable } from 'node:stream';
import zlib from 'node:zlib';
import { CompressStream, DecompressStream } from 'zstd-napi';

export type Compression = 'gzip' | 'zstd' | 'none';
export type Container = 'parquet' | 'arrow-stream' | 'arrow-file' | 'ndjson';

/** Identifies a compressed stream from its first bytes. */
export function detectCompression(head: Buffer): Compression | { unsupported: string } {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.length >= 3 && head.toString('latin1', 0, 3) === 'BZh') return { unsupported: 'bzip2' };
  if (head.length >= 6 && head[0] === 0xfd && head.toString('latin1', 1, 5) === '7zXZ') return { unsupported: 'xz' };
  return 'none';
}

/** Identifies the container format of (decompressed) bytes. */
export function detectContainer(head: Buffer): Container {
  if (head.length >= 4 && head.toString('latin1', 0, 4) === 'PAR1') return 'parquet';
  if (head.length >= 6 && head.toString('latin1', 0, 6) === 'ARROW1') return 'arrow-file';
  // Arrow IPC stream: a message starts with the 0xFFFFFFFF continuation marker (or, in the legacy form, a metadata length).
  if (head.length >= 8 && head.readUInt32LE(0) === 0xffffffff) return 'arrow-stream';
  return 'ndjson';
}

export function decompressor(kind: Compression): Duplex {
  if (kind === 'gzip') return zlib.createGunzip({ chunkSize: 256 * 1024 });
  if (kind === 'zstd') return new DecompressStream() as unknown as Duplex;
  return new PassThrough();
}

export function compressionForPath(file: string): Compression {
  if (/\.(gz|gzip)$/i.test(file)) return 'gzip';
  if (/\.(zst|zstd)$/i.test(file)) return 'zstd';
  return 'none';
}

export function compressor(kind: Compression): Duplex | undefined {
  if (kind === 'gzip') return zlib.createGzip({ level: 6 });
  if (kind === 'zstd') return new CompressStream() as unknown as Duplex;
  return undefined;
}

/**
 * Reads the first `n` bytes of a stream without losing them: returns the head and an async
 * iterable that yields the head followed by the rest of the stream.
 */
export async function peek(source: AsyncIterable<Buffer>, n: number): Promise<{ head: Buffer; stream: AsyncIterable<Buffer> }> {
  const it = source[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  while (size < n) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    chunks.push(b);
    size += b.length;
  }
  const head = Buffer.concat(chunks);
  async function* rest(): AsyncGenerator<Buffer> {
    if (head.length) yield head;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    }
  }
  return { head, stream: rest() };
}

export type { Readable, Writable };
