// Compression by magic bytes (inputs) and by file extension (outputs).
import { Readable, type Duplex, type Writable } from 'node:stream';
import zlib from 'node:zlib';
import { CompressStream } from 'zstd-napi';
import zstdBinding from 'zstd-napi/binding.js';

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

/** The decompressed bytes of `source`, made as they are read (a read of compressed input yields at most one output buffer at a time). */
export function decompressed(kind: Compression, source: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
  if (kind === 'zstd') return zstdDecompressed(source);
  if (kind === 'none') return source;
  const gunzip = zlib.createGunzip({ chunkSize: 256 * 1024 });
  Readable.from(source).on('error', (e) => gunzip.destroy(e)).pipe(gunzip);
  return gunzip;
}

// zstd-napi's DecompressStream pushes all the output of an input chunk at once, whatever the
// reader wants: a 1 MB read of text compressed 470:1 became 470 MB in memory. Here each
// output buffer waits for the reader.
async function* zstdDecompressed(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const dctx = new zstdBinding.DCtx();
  const size = zstdBinding.dStreamOutSize();
  let inFrame = false;
  for await (const chunk of source) {
    let input = chunk;
    for (;;) {
      const out = Buffer.allocUnsafe(size);
      const [left, produced, consumed] = dctx.decompressStream(out, input);
      input = input.subarray(consumed);
      if (produced > 0) yield out.subarray(0, produced);
      // Done with this chunk once it is all read and the output buffer was not filled (or a frame ended).
      if (input.length === 0 && (produced < size || left === 0)) {
        inFrame = left !== 0;
        break;
      }
    }
  }
  if (inFrame) throw new Error('Stream ended in middle of compressed data frame');
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

export type { Writable };
