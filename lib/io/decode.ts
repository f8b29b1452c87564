// Bytes to records. NDJSON (plain, gzip or zstd, detected by magic bytes), Parquet files and
// Arrow IPC streams/files. Bad input never throws: every problem becomes a counted, routed
// error entry, and the records read before a truncated stream's end are still emitted.
import { createReadStream, createWriteStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { decompress as zstdDecompress } from 'zstd-napi';
import type { ErrorEntry } from '../context.ts';
import type { Rec } from '../operator.ts';
import { decompressed, detectCompression, detectContainer, peek } from './compression.ts';

export interface DecodeOptions {
  /** `auto` detects Parquet and Arrow by magic bytes and reads everything else as NDJSON. */
  format: 'auto' | 'ndjson' | 'parquet' | 'arrow';
  /** Lines longer than this many bytes are errors (`record_too_large`), skipped without being buffered. */
  maxRecordBytes: number;
  /** The field holding the document text. */
  textField: string;
  /** The field holding the document id. */
  idField: string;
  /** What to do with records without an id: generate `<input>:<line>` or treat as an error. */
  missingId: 'generate' | 'error';
  /** Records per batch handed to the next step. */
  batchRecords: number;
  /**
   * A batch also ends once its lines reach about this many bytes (counted in characters): long
   * documents then travel in smaller batches, and the records in flight between steps stay
   * within a few MB whatever the document length.
   */
  batchBytes: number;
  /** Directory for spooling non-seekable Parquet input (stdin, HTTP). */
  tmpDir?: string;
  /** Resume: lines (rows) 1..skipLines were consumed by an earlier run; they are counted past unread. */
  skipLines?: number;
  /** The name generated ids start with (`<name>:<line>`); default the input's file name. */
  idName?: string;
  /** Uncompressed bytes of a Parquet row group decoded at once; larger groups are read in slices of rows (default 16 MiB). */
  parquetSliceBytes?: number;
}

/** Lines (or rows) of its input consumed up to and including a batch; set on the batch that completes a read. */
export const POSITION: unique symbol = Symbol.for('mixstream.position');
export type PositionedBatch = Rec[] & { [POSITION]?: number };

export const DEFAULT_DECODE: DecodeOptions = {
  format: 'auto',
  maxRecordBytes: 64 * 1024 * 1024,
  textField: 'text',
  idField: 'id',
  missingId: 'generate',
  batchRecords: 1024,
  batchBytes: 512 * 1024,
};

/** One input: a name for messages and a way to get its bytes. A `file` path allows random access (Parquet). */
export interface InputSource {
  name: string;
  file?: string;
  open(): Readable | Promise<Readable>;
}

export interface InputProgress {
  /** Compressed (on-the-wire) bytes read so far. */
  bytes: number;
  records: number;
  /** False until the input was read to its end without a stream error. */
  complete: boolean;
  error?: string;
}

export interface DecodeSink {
  error(entry: ErrorEntry): void;
  /** Set by the caller to stop reading early (signal, max errors); checked between batches. */
  shouldStop?(): boolean;
  /** Told of each opened input stream, so a stop can end a read that is waiting for data. */
  onOpen?(stream: Readable): void;
  /** Told when `textField`/`idField` replace a `text`/`id` field the record came with. */
  overwrote?(field: 'text' | 'id', from: string, input: string, line: number): void;
}

export function fileInput(file: string): InputSource {
  return { name: file, file, open: () => createReadStream(file, { highWaterMark: 1 << 20 }) };
}

export function stdinInput(): InputSource {
  return { name: '<stdin>', open: () => process.stdin };
}

/** Counts bytes as they pass, for progress and the report. */
async function* counting(source: AsyncIterable<Buffer>, progress: InputProgress): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    progress.bytes += chunk.length;
    yield chunk;
  }
}

const RAW_LIMIT = 4096;

/** The first `limit` bytes of `buf`, cut before a UTF-8 character that would not fit whole. */
function utf8Head(buf: Buffer, limit: number): Buffer {
  if (buf.length <= limit) return buf;
  let end = limit;
  while (end > limit - 4 && (buf[end] & 0xc0) === 0x80) end--;
  return buf.subarray(0, end);
}

/** A bad line's bytes for the errors output, whole (a line is at most maxRecordBytes): text, or base64 when they are not UTF-8. */
function rawOf(buf: Buffer): { raw: string; rawEncoding?: 'base64' } {
  return isUtf8(buf) ? { raw: buf.toString('utf8') } : { raw: buf.toString('base64'), rawEncoding: 'base64' };
}

/**
 * Turns one parsed JSON value into a record, or reports why it cannot be one.
 * Shared by every container format so the rules are the same everywhere.
 */
export class RecordChecker {
  constructor(
    private readonly opts: DecodeOptions,
    private readonly sink: DecodeSink,
  ) {}

  check(value: unknown, input: string, line: number, raw: () => unknown): Rec | undefined {
    const o = this.opts;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      this.fail(input, line, 'not_an_object', `expected a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`, raw());
      return undefined;
    }
    const rec = value as Record<string, unknown>;
    const text = rec[o.textField];
    if (typeof text !== 'string') {
      this.fail(input, line, 'missing_text', text === undefined ? `no "${o.textField}" field` : `"${o.textField}" is ${text === null ? 'null' : typeof text}, expected a string`, raw());
      return undefined;
    }
    if (text.trim() === '') {
      this.fail(input, line, 'empty_text', `"${o.textField}" is ${text === '' ? 'empty' : 'only whitespace'}`, raw());
      return undefined;
    }
    if (o.textField !== 'text') {
      if (Object.prototype.hasOwnProperty.call(rec, 'text')) this.sink.overwrote?.('text', o.textField, input, line);
      rec.text = text;
    }
    const id = rec[o.idField];
    if (id === undefined || id === null || id === '') {
      if (o.missingId === 'error') {
        this.fail(input, line, 'missing_id', id === undefined ? `no "${o.idField}" field` : `"${o.idField}" is ${id === null ? 'null' : 'empty'}`, raw());
        return undefined;
      }
      rec[o.idField] = `${o.idName ?? path.basename(input)}:${line}`;
    } else if (typeof id !== 'string') {
      if (typeof id !== 'number' && typeof id !== 'bigint') {
        this.fail(input, line, 'invalid_id', `"${o.idField}" is ${typeof id}, expected a string or number`, raw());
        return undefined;
      }
      if (typeof id === 'number' && !Number.isFinite(id)) {
        this.fail(input, line, 'invalid_id', `"${o.idField}" is a number beyond what a double holds (it parses as ${id}); write it as a string`, raw());
        return undefined;
      }
    }
    if (o.idField !== 'id') {
      if (Object.prototype.hasOwnProperty.call(rec, 'id')) this.sink.overwrote?.('id', o.idField, input, line);
      rec.id = String(rec[o.idField]);
    }
    return rec as Rec;
  }

  fail(input: string, line: number | undefined, reason: string, message: string, raw: unknown, extra: Record<string, unknown> = {}): void {
    const entry: ErrorEntry = { input, reason, message, ...extra };
    if (line !== undefined) entry.line = line;
    if (raw !== undefined) {
      if (Buffer.isBuffer(raw)) Object.assign(entry, rawOf(raw));
      else entry.raw = raw;
    }
    this.sink.error(entry);
  }
}

/**
 * Splits an NDJSON byte stream into records, line by line. Validates UTF-8 per chunk (and per
 * line only when a chunk fails), strips a leading BOM and CR line ends, skips blank lines, and
 * never buffers more than `maxRecordBytes` of one line.
 */
export async function* decodeNdjson(
  bytes: AsyncIterable<Buffer>,
  input: string,
  opts: DecodeOptions,
  sink: DecodeSink,
  progress: InputProgress,
): AsyncGenerator<Rec[]> {
  const checker = new RecordChecker(opts, sink);
  // The open line's bytes so far, as copies of the chunks it spans: joined once, when its end
  // arrives (joining at each chunk copied a line of n MiB n times over, and the garbage of a
  // long line reached ten times its size before the collector ran).
  let carry: Buffer[] = [];
  let carryBytes = 0;
  let lineNo = 0;
  let offset = 0; // byte offset of the start of `carry` / next line
  let skipping: { line: number; offset: number; bytes: number; head: Buffer } | undefined;
  let batch: Rec[] = [];
  // Where the next batches start in `batch` (cut by record count or by bytes), and the size of the open one.
  let cuts: number[] = [];
  let openBytes = 0;
  let first = true;
  const stopRequested = () => sink.shouldStop?.() === true;
  // The first bytes of the carried line and then of `next`, for the errors output of a line too long to keep.
  const carriedHead = (next: Buffer): Buffer => {
    const parts: Buffer[] = [];
    let n = 0;
    for (const part of [...carry, next]) {
      if (n > RAW_LIMIT) break;
      parts.push(part.subarray(0, RAW_LIMIT + 4));
      n += parts[parts.length - 1].length;
    }
    return Buffer.from(utf8Head(Buffer.concat(parts), RAW_LIMIT));
  };
  const skipLines = opts.skipLines ?? 0;

  const parseLine = (str: string, line: number) => {
    if (first) {
      first = false;
      if (str.charCodeAt(0) === 0xfeff) str = str.slice(1);
    }
    if (str.charCodeAt(str.length - 1) === 13) str = str.slice(0, -1);
    if (str.length === 0 || (str.charCodeAt(0) <= 32 && str.trim() === '')) return;
    let value: unknown;
    try {
      value = JSON.parse(str);
    } catch (e) {
      // The line as the parser saw it (without a BOM or a CR line end), as for the other errors.
      checker.fail(input, line, 'invalid_json', (e as Error).message, str);
      return;
    }
    const rec = checker.check(value, input, line, () => str);
    if (rec) {
      batch.push(rec);
      progress.records++;
      openBytes += str.length;
      if (batch.length - (cuts[cuts.length - 1] ?? 0) >= opts.batchRecords || openBytes >= opts.batchBytes) {
        cuts.push(batch.length);
        openBytes = 0;
      }
    }
  };

  // Handles a run of complete lines [start, end) of `buf`, each terminated by \n.
  const handleLines = (buf: Buffer) => {
    if (lineNo < skipLines) {
      // Resuming: count past consumed lines without decoding them.
      let pos = 0;
      while (lineNo < skipLines) {
        const nl = buf.indexOf(10, pos);
        if (nl < 0) return;
        lineNo++;
        pos = nl + 1;
      }
      buf = buf.subarray(pos);
    }
    // Each line is decoded on its own: a string of a whole chunk (up to a MiB) lands in V8's
    // large-object space, whose fresh pages cost several times the decoding itself.
    const valid = isUtf8(buf);
    let pos = 0;
    for (;;) {
      const nl = buf.indexOf(10, pos);
      if (nl < 0) break;
      lineNo++;
      const start = pos;
      pos = nl + 1;
      if (nl - start > opts.maxRecordBytes) {
        // `offset` is where `buf` starts in the input while its lines are handled.
        checker.fail(input, lineNo, 'record_too_large', `line of ${nl - start} bytes exceeds maxRecordBytes ${opts.maxRecordBytes}`, utf8Head(buf.subarray(start, nl), RAW_LIMIT), { rawTruncated: true, offset: offset + start, bytes: nl - start });
      } else if (valid || isUtf8(buf.subarray(start, nl))) {
        parseLine(buf.toString('utf8', start, nl), lineNo);
      } else {
        checker.fail(input, lineNo, 'invalid_utf8', 'line is not valid UTF-8 (raw bytes in base64)', buf.subarray(start, nl));
      }
      if (stopRequested()) return;
    }
  };

  // Every line up to `lineNo` is consumed once these records are handed on: the last batch carries that position.
  const flushBatch = function* (): Generator<PositionedBatch> {
    const b = batch;
    const ends = cuts[cuts.length - 1] === b.length ? cuts : [...cuts, b.length];
    batch = [];
    cuts = [];
    openBytes = 0;
    // While still counting past lines an earlier run consumed, there is no new position to report.
    const at = lineNo >= skipLines ? lineNo : undefined;
    let start = 0;
    for (const end of ends) {
      const part: PositionedBatch = ends.length === 1 ? b : b.slice(start, end);
      if (end === b.length) part[POSITION] = at;
      yield part;
      start = end;
    }
  };

  try {
    for await (const chunk of bytes) {
      let buf: Buffer = chunk;
      if (skipping) {
        const nl = buf.indexOf(10);
        if (nl < 0) {
          skipping.bytes += buf.length;
          offset += buf.length;
          continue;
        }
        skipping.bytes += nl;
        // A resumed run counts past the lines an earlier one consumed, reported then.
        if (skipping.line > skipLines) checker.fail(input, skipping.line, 'record_too_large', `line of ${skipping.bytes} bytes exceeds maxRecordBytes ${opts.maxRecordBytes}; skipped (its bytes start at offset ${skipping.offset})`, skipping.head, {
          rawTruncated: true,
          offset: skipping.offset,
          bytes: skipping.bytes,
        });
        skipping = undefined;
        offset += nl + 1;
        buf = buf.subarray(nl + 1);
      } else if (carryBytes > 0) {
        // Complete the carried partial line with this chunk's first line, without copying the whole chunk.
        const nl = buf.indexOf(10);
        const open = carryBytes + (nl < 0 ? buf.length : nl);
        if (open > opts.maxRecordBytes) {
          const head = carriedHead(nl < 0 ? buf : buf.subarray(0, nl));
          lineNo++;
          if (nl < 0) {
            skipping = { line: lineNo, offset, bytes: open, head };
          } else if (lineNo > skipLines) {
            checker.fail(input, lineNo, 'record_too_large', `line of ${open} bytes exceeds maxRecordBytes ${opts.maxRecordBytes}`, head, { rawTruncated: true, offset, bytes: open });
          }
          offset += nl < 0 ? open : open + 1;
          buf = nl < 0 ? buf.subarray(buf.length) : buf.subarray(nl + 1);
        } else if (nl < 0) {
          carry.push(Buffer.from(buf));
          carryBytes += buf.length;
          buf = buf.subarray(buf.length);
        } else {
          handleLines(Buffer.concat([...carry, buf.subarray(0, nl + 1)]));
          offset += open + 1;
          buf = buf.subarray(nl + 1);
        }
        if (nl >= 0 || skipping) {
          carry = [];
          carryBytes = 0;
        }
      }
      const last = buf.lastIndexOf(10);
      if (last >= 0) {
        handleLines(buf.subarray(0, last + 1));
        offset += last + 1;
        buf = buf.subarray(last + 1);
      }
      if (buf.length > opts.maxRecordBytes) {
        lineNo++;
        skipping = { line: lineNo, offset, bytes: buf.length, head: Buffer.from(utf8Head(buf, RAW_LIMIT)) };
        offset += buf.length;
      } else if (buf.length) {
        carry = [Buffer.from(buf)]; // copy: the chunk it points into can be reused
        carryBytes = buf.length;
      }
      // Hand on what each chunk completed: a trickling source (a slow pipe) is not held back waiting for a full batch.
      yield* flushBatch();
      if (sink.shouldStop?.()) {
        yield* flushBatch();
        return;
      }
    }
  } catch (e) {
    yield* flushBatch();
    // Stopped on purpose (signal, max errors): the input is left incomplete, which is not a data error.
    if (sink.shouldStop?.()) return;
    // A stream error (truncated gzip/zstd, read failure): keep what was read, report the rest.
    progress.error = (e as Error).message;
    const partial = carryBytes > 0 ? Buffer.concat(carry) : undefined;
    checker.fail(input, partial ? lineNo + 1 : undefined, 'truncated_input', `input ended early: ${(e as Error).message}${partial ? '; the last, incomplete line is attached' : ''}`, partial, { offset });
    return;
  }
  if (skipping) {
    if (skipping.line > skipLines) checker.fail(input, skipping.line, 'record_too_large', `line of ${skipping.bytes} bytes exceeds maxRecordBytes ${opts.maxRecordBytes}; skipped`, skipping.head, { rawTruncated: true, offset: skipping.offset, bytes: skipping.bytes });
  } else if (carryBytes > 0) {
    // The last line has no newline: still a record.
    lineNo++;
    const lineBuf = Buffer.concat(carry);
    if (lineNo <= skipLines) {
      // consumed by an earlier run
    } else if (isUtf8(lineBuf)) parseLine(lineBuf.toString('utf8'), lineNo);
    else checker.fail(input, lineNo, 'invalid_utf8', 'line is not valid UTF-8 (raw bytes in base64)', lineBuf);
  }
  yield* flushBatch();
  progress.complete = true;
}

/** JSON-safe plain values from Arrow/Parquet cells (BigInt, typed arrays, dates, nested rows). */
export function plainValue(v: unknown): unknown {
  if (v === null || v === undefined) return v ?? null;
  switch (typeof v) {
    case 'bigint':
      return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
    case 'object': {
      if (v instanceof Date) return v.toISOString();
      if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
      if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number | bigint>, plainValue);
      if (Array.isArray(v)) return v.map(plainValue);
      // Arrow rows of a struct or map column give their fields by name through toJSON (their
      // toArray has the values alone); list vectors give an array either way.
      const maybe = v as { toJSON?: () => unknown; toArray?: () => unknown[] };
      const json = typeof maybe.toJSON === 'function' ? maybe.toJSON() : undefined;
      const named = json !== null && typeof json === 'object' && !Array.isArray(json);
      if (!named && typeof maybe.toArray === 'function') return maybe.toArray().map(plainValue);
      if (Array.isArray(json)) return json.map(plainValue);
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(named ? (json as Record<string, unknown>) : (v as Record<string, unknown>))) out[k] = plainValue(x);
      return out;
    }
    default:
      return v;
  }
}

const parquetCompressors = {
  ZSTD: (input: Uint8Array) => new Uint8Array(zstdDecompress(input)),
  GZIP: (input: Uint8Array) => new Uint8Array(zlib.gunzipSync(input)),
  BROTLI: (input: Uint8Array) => new Uint8Array(zlib.brotliDecompressSync(input)),
};

/** Reads a Parquet file row group by row group, so memory holds one row group at a time. */
export async function* decodeParquet(file: string, input: string, opts: DecodeOptions, sink: DecodeSink, progress: InputProgress): AsyncGenerator<Rec[]> {
  const { parquetMetadataAsync, parquetReadObjects } = await import('hyparquet');
  const checker = new RecordChecker(opts, sink);
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    // A large row group is read in slices of rows, each of which asks for the group's column
    // chunks again: the ranges read are kept until the next group.
    let kept: { start: number; bytes: ArrayBuffer }[] = [];
    const asyncBuffer = {
      byteLength: size,
      async slice(start: number, end?: number): Promise<ArrayBuffer> {
        const stop = end ?? size;
        const hit = kept.find((k) => start >= k.start && stop <= k.start + k.bytes.byteLength);
        if (hit) return start === hit.start && stop === hit.start + hit.bytes.byteLength ? hit.bytes : hit.bytes.slice(start - hit.start, stop - hit.start);
        const buf = Buffer.allocUnsafe(stop - start);
        await handle.read(buf, 0, buf.length, start);
        const bytes = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) as ArrayBuffer;
        kept.push({ start, bytes });
        return bytes;
      },
    };
    let metadata;
    try {
      metadata = await parquetMetadataAsync(asyncBuffer);
    } catch (e) {
      checker.fail(input, undefined, 'invalid_parquet', `cannot read Parquet metadata: ${(e as Error).message}`, undefined);
      progress.error = (e as Error).message;
      return;
    }
    kept = []; // the footer's bytes
    let row = 0;
    for (const group of metadata.row_groups) {
      const groupEnd = row + Number(group.num_rows);
      // Rows as objects take a few times their bytes: a row group far larger than that budget
      // (pyarrow writes up to 1Mi rows in one) is decoded a slice of rows at a time.
      const rowBytes = Number(group.total_byte_size) / Math.max(1, Number(group.num_rows));
      const sliceRows = Math.max(1, Math.floor((opts.parquetSliceBytes ?? 16 * 1024 * 1024) / Math.max(1, rowBytes)));
      while (row < groupEnd) {
        const sliceEnd = Math.min(groupEnd, row + sliceRows);
        // Resuming: rows an earlier run consumed are not decoded again.
        if (sliceEnd <= (opts.skipLines ?? 0)) {
          row = sliceEnd;
          continue;
        }
        let rows: Record<string, unknown>[];
        try {
          rows = (await parquetReadObjects({ file: asyncBuffer, metadata, rowStart: row, rowEnd: sliceEnd, compressors: parquetCompressors })) as Record<string, unknown>[];
        } catch (e) {
          checker.fail(input, row + 1, 'invalid_parquet', `cannot read the row group with row ${row + 1}: ${(e as Error).message}`, undefined);
          progress.error = (e as Error).message;
          return;
        }
        let batch: PositionedBatch = [];
        for (let i = 0; i < rows.length; i++) {
          if (row + i + 1 <= (opts.skipLines ?? 0)) continue;
          const value = plainValue(rows[i]);
          const rec = checker.check(value, input, row + i + 1, () => value);
          if (rec) {
            batch.push(rec);
            progress.records++;
          }
          if (batch.length >= opts.batchRecords) {
            batch[POSITION] = row + i + 1;
            yield batch;
            batch = [];
          }
        }
        batch[POSITION] = row + rows.length;
        yield batch;
        row = sliceEnd;
        if (sink.shouldStop?.()) return;
      }
      kept = [];
    }
    progress.complete = true;
  } finally {
    await handle.close();
  }
}

/**
 * Reads Arrow IPC (stream or file format), one record batch at a time. A file is read as the
 * stream it holds (lib/io/arrow-ipc.ts), from `seekableFile` for its footer: cut short, every
 * row before the cut is still read.
 */
export async function* decodeArrow(bytes: AsyncIterable<Buffer>, input: string, opts: DecodeOptions, sink: DecodeSink, progress: InputProgress, seekableFile?: string): AsyncGenerator<Rec[]> {
  const { RecordBatchReader } = await import('apache-arrow');
  const { fileAsStream, readFooter } = await import('./arrow-ipc.ts');
  const checker = new RecordChecker(opts, sink);
  const footer = seekableFile ? await readFooter(seekableFile) : undefined;
  let row = 0;
  try {
    const batches = await RecordBatchReader.from((seekableFile ? fileAsStream(bytes, footer) : bytes) as AsyncIterable<Uint8Array>);
    for await (const rb of batches) {
      const fields = rb.schema.fields.map((f) => f.name);
      const columns = fields.map((_, i) => rb.getChildAt(i));
      let batch: PositionedBatch = [];
      for (let r = 0; r < rb.numRows; r++) {
        row++;
        if (row <= (opts.skipLines ?? 0)) continue;
        const obj: Record<string, unknown> = {};
        for (let c = 0; c < fields.length; c++) obj[fields[c]] = plainValue(columns[c]?.get(r));
        const rec = checker.check(obj, input, row, () => obj);
        if (rec) {
          batch.push(rec);
          progress.records++;
        }
        if (batch.length >= opts.batchRecords) {
          batch[POSITION] = row;
          yield batch;
          batch = [];
        }
      }
      batch[POSITION] = row;
      yield batch;
      if (sink.shouldStop?.()) return;
    }
    // A file ends with its footer after the stream part: without one, it was cut (at a message's end).
    if (seekableFile && !footer) throw new Error('no footer at its end');
    progress.complete = true;
  } catch (e) {
    progress.error = (e as Error).message;
    // Every row before the break was emitted; the error names where the input stopped making sense.
    const what = seekableFile ? 'Arrow IPC file is cut short or invalid' : 'Arrow stream ended early or is invalid';
    checker.fail(input, row + 1, 'truncated_input', `${what} after ${row} rows: ${(e as Error).message}`, undefined);
  }
}

/** Copies a non-seekable stream to a temporary file (Parquet needs random access). */
async function spool(bytes: AsyncIterable<Buffer>, tmpDir: string, name: string): Promise<string> {
  const file = path.join(tmpDir, `spool-${Date.now()}-${Math.random().toString(36).slice(2)}-${path.basename(name).replace(/[^\w.-]/g, '_')}`);
  await pipeline(Readable.from(bytes), createWriteStream(file));
  return file;
}

/**
 * Decodes one input of any supported kind into batches of records. Never throws for bad
 * data: stream errors, bad lines and unreadable containers are reported to `sink.error` and
 * reflected in `progress.complete`.
 */
export async function* decodeInput(source: InputSource, opts: DecodeOptions, sink: DecodeSink, progress: InputProgress): AsyncGenerator<Rec[]> {
  const checker = new RecordChecker(opts, sink);
  let raw: Readable;
  try {
    raw = await source.open();
  } catch (e) {
    progress.error = (e as Error).message;
    checker.fail(source.name, undefined, 'unreadable_input', `cannot open input: ${(e as Error).message}`, undefined);
    return;
  }
  sink.onOpen?.(raw);
  let wire: AsyncIterable<Buffer> = counting(raw, progress);
  let head: Buffer;
  try {
    ({ head, stream: wire } = await peek(wire, 8));
  } catch (e) {
    // A stop (signal) destroys the input being read: not an input error; the input stays incomplete.
    if (sink.shouldStop?.()) return;
    progress.error = (e as Error).message;
    checker.fail(source.name, undefined, 'unreadable_input', `cannot read input: ${(e as Error).message}`, undefined);
    return;
  }
  const compression = detectCompression(head);
  if (typeof compression === 'object') {
    progress.error = `${compression.unsupported} compression is not supported`;
    checker.fail(source.name, undefined, 'unsupported_compression', `${compression.unsupported}-compressed input is not supported (use gzip or zstd, or decompress it first)`, undefined);
    raw.destroy();
    return;
  }
  let bytes = decompressed(compression, wire);
  let container: ReturnType<typeof detectContainer> = 'ndjson';
  let inner: Buffer;
  try {
    ({ head: inner, stream: bytes } = await peek(bytes, 8));
  } catch (e) {
    progress.error = (e as Error).message;
    checker.fail(source.name, undefined, 'truncated_input', `input ended early: ${(e as Error).message}`, undefined);
    return;
  }
  if (opts.format === 'auto') container = detectContainer(inner);
  else container = opts.format === 'arrow' ? 'arrow-stream' : opts.format;

  if (container === 'parquet') {
    let file = source.file;
    if (file && compression === 'none') {
      raw.destroy();
      progress.bytes = (await fileSize(file)) ?? 0;
    } else {
      // Not seekable (stdin, HTTP, compressed): copy to a temporary file first.
      if (!opts.tmpDir) throw new Error('decodeInput: tmpDir is required to read Parquet from a stream');
      file = await spool(bytes, opts.tmpDir, source.name);
    }
    yield* decodeParquet(file, source.name, opts, sink, progress);
    return;
  }
  if (container === 'arrow-stream' || container === 'arrow-file') {
    const isFile = detectContainer(inner) === 'arrow-file';
    let seekable = compression === 'none' ? source.file : undefined;
    if (isFile && !seekable) {
      // Its footer is at the end: read from a copy.
      if (!opts.tmpDir) throw new Error('decodeInput: tmpDir is required to read an Arrow file from a stream');
      seekable = await spool(bytes, opts.tmpDir, source.name);
      bytes = createReadStream(seekable, { highWaterMark: 1 << 20 });
    }
    yield* decodeArrow(bytes, source.name, opts, sink, progress, isFile ? seekable : undefined);
    return;
  }
  yield* decodeNdjson(bytes, source.name, opts, sink, progress);
}

export async function fileSize(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).size;
  } catch {
    return undefined;
  }
}
