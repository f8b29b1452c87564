// An Arrow IPC file read as the stream it holds. arrow-js reads a file through its footer and
// keeps all of it (a 441 MB file took 1 GB of RSS), while its stream reader holds one record
// batch at a time. A file is the stream format between its magic bytes and its footer, except
// that arrow-js writes the schema into the footer only: it is put back in front from there.
import { open } from 'node:fs/promises';
import { Message, MessageHeader, type Schema } from 'apache-arrow';
import { Footer } from 'apache-arrow/ipc/metadata/file';

const CONTINUATION = 0xffffffff;
const MAGIC = 'ARROW1';

/** Exact-size reads from a byte stream, then the rest of it as it comes. */
class ByteReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private done = false;

  constructor(private readonly source: AsyncIterator<Buffer>) {}

  /** The next `n` bytes, or fewer at the end of the input. */
  async read(n: number): Promise<Buffer> {
    while (this.buffered < n && !this.done) {
      const next = await this.source.next();
      if (next.done) this.done = true;
      else {
        this.chunks.push(next.value);
        this.buffered += next.value.length;
      }
    }
    const all = Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    this.chunks = all.length > n ? [all.subarray(n)] : [];
    this.buffered = all.length - out.length;
    return out;
  }

  async *rest(): AsyncGenerator<Buffer> {
    yield* this.chunks;
    this.chunks = [];
    for (;;) {
      const next = await this.source.next();
      if (next.done) return;
      yield next.value;
    }
  }
}

/** A schema as a framed stream message. */
function schemaMessage(schema: Schema): Buffer {
  const metadata = Message.encode(Message.from(schema));
  const padded = Math.ceil(metadata.length / 8) * 8;
  const out = Buffer.alloc(8 + padded);
  out.writeUInt32LE(CONTINUATION, 0);
  out.writeUInt32LE(padded, 4);
  out.set(metadata, 8);
  return out;
}

/** An Arrow IPC file's footer (its last bytes: the footer, its length, ARROW1); undefined when the file was cut short. */
export async function readFooter(file: string): Promise<Footer | undefined> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    if (size < 8 + 10) return undefined;
    const tail = Buffer.alloc(10);
    await handle.read(tail, 0, 10, size - 10);
    if (tail.toString('latin1', 4) !== MAGIC) return undefined;
    const length = tail.readInt32LE(0);
    if (length <= 0 || length > size - 18) return undefined;
    const footer = Buffer.alloc(length);
    await handle.read(footer, 0, length, size - 10 - length);
    return Footer.decode(footer);
  } catch {
    return undefined;
  } finally {
    await handle.close();
  }
}

/**
 * The stream format inside an Arrow IPC file's bytes: without the leading magic, with the schema
 * message in front when the file keeps it in its footer only. The stream's end-of-stream marker
 * comes before the footer, so a stream reader stops there.
 */
export async function* fileAsStream(bytes: AsyncIterable<Buffer>, footer: Footer | undefined): AsyncGenerator<Buffer> {
  const reader = new ByteReader(bytes[Symbol.asyncIterator]());
  const magic = await reader.read(8);
  if (magic.toString('latin1', 0, 6) !== MAGIC) throw new Error('not an Arrow IPC file (no ARROW1 magic)');
  // The first message: a schema, or (arrow-js) a batch.
  const head = await reader.read(8);
  let first = head;
  let schemaFirst = false;
  if (head.length >= 4) {
    const marker = head.readUInt32LE(0);
    // Streams before Arrow 0.15 have no continuation marker: the length comes first.
    const metadataStart = marker === CONTINUATION ? 8 : 4;
    const length = marker === CONTINUATION ? (head.length === 8 ? head.readUInt32LE(4) : 0) : marker;
    if (length > 0) {
      first = Buffer.concat([head, await reader.read(metadataStart + length - head.length)]);
      const metadata = first.subarray(metadataStart, metadataStart + length);
      schemaFirst = metadata.length === length && Message.decode(metadata).headerType === MessageHeader.Schema;
    }
  }
  if (!schemaFirst) {
    if (!footer) throw new Error('its schema is only in its footer, which is missing');
    yield schemaMessage(footer.schema);
  }
  yield first;
  yield* reader.rest();
}
