// An ordered log of items that stays in memory up to a byte budget and continues in an
// append-only file beyond it; read back once, in order. No stream code.
import { closeSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

export interface SpillLogOptions<T> {
  memoryBytes: number;
  /** Directory for the spill file (created lazily, on the first spilled item). */
  dir: () => string;
  serialize(item: T): string;
  deserialize(line: string): T;
  sizeOf(item: T): number;
}

let files = 0;
const CHUNK = 1 << 20;

export class SpillLog<T> {
  private readonly mem: T[] = [];
  private memBytes = 0;
  private fd: number | undefined;
  private file: string | undefined;
  private pending: string[] = [];
  private pendingBytes = 0;
  /** Items written to disk, and the spill file's size. */
  spilledItems = 0;
  spilledBytes = 0;
  length = 0;

  constructor(private readonly o: SpillLogOptions<T>) {}

  append(item: T): void {
    this.length++;
    // Once anything is on disk every later item goes there too, so the order is memory, then file.
    if (this.fd === undefined) {
      const size = this.o.sizeOf(item);
      if (this.memBytes + size <= this.o.memoryBytes) {
        this.mem.push(item);
        this.memBytes += size;
        return;
      }
      this.file = path.join(this.o.dir(), `spill-${process.pid}-${++files}.jsonl`);
      this.fd = openSync(this.file, 'w+');
    }
    const line = this.o.serialize(item) + '\n';
    this.pending.push(line);
    this.pendingBytes += line.length;
    this.spilledItems++;
    if (this.pendingBytes >= CHUNK) this.writePending();
  }

  private writePending(): void {
    if (!this.pending.length) return;
    const buf = Buffer.from(this.pending.join(''), 'utf8');
    writeSync(this.fd!, buf, 0, buf.length, this.spilledBytes);
    this.spilledBytes += buf.length;
    this.pending = [];
    this.pendingBytes = 0;
  }

  /**
   * Every item in append order, in batches. With `last` (the default) the log is consumed:
   * memory items are released as they are handed out and the file is removed at the end;
   * otherwise it can be read again.
   */
  *read(batchSize = 1024, last = true): Generator<T[]> {
    if (last) {
      while (this.mem.length) yield this.mem.splice(0, batchSize);
      this.memBytes = 0;
    } else {
      for (let k = 0; k < this.mem.length; k += batchSize) yield this.mem.slice(k, k + batchSize);
    }
    if (this.fd === undefined) return;
    this.writePending();
    const buf = Buffer.allocUnsafe(CHUNK);
    let pos = 0;
    let rest = '';
    let batch: T[] = [];
    for (;;) {
      const n = readSync(this.fd, buf, 0, CHUNK, pos);
      if (n === 0) break;
      pos += n;
      // Cut at the last newline so a multi-byte character never straddles two reads.
      const cut = buf.lastIndexOf(10, n - 1);
      const end = cut >= 0 ? cut + 1 : n;
      const text = rest + buf.toString('utf8', 0, end);
      pos -= n - end;
      rest = '';
      if (cut < 0) {
        rest = text;
        continue;
      }
      let start = 0;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
        batch.push(this.o.deserialize(text.slice(start, nl)));
        start = nl + 1;
        if (batch.length >= batchSize) {
          yield batch;
          batch = [];
        }
      }
    }
    if (batch.length) yield batch;
    if (last) this.close();
  }

  close(): void {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      rmSync(this.file!, { force: true });
    }
    this.fd = undefined;
  }
}
