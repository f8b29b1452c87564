// An ordered log of items that stays in memory up to a byte budget and continues in an
// append-only file beyond it; read back once, in order. No stream code.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AppendFile } from './spill-file.ts';

export interface SpillLogOptions<T> {
  memoryBytes: number;
  /** Directory for the spill file (created lazily, on the first spilled item). */
  dir: () => string;
  serialize(item: T): string;
  deserialize(line: string): T;
  sizeOf(item: T): number;
}

interface SpillLogState {
  version: 2;
  length: number;
  /** Items in memory.jsonl. */
  memory: number;
  memBytes: number;
  /** Length of memory.jsonl that counts; -1: no file (nothing held). */
  memoryFileBytes: number;
  spilledItems: number;
  /** Length of spill.jsonl that counts; -1: no spill file. */
  spilledBytes: number;
}

const CHUNK = 1 << 20;

export class SpillLog<T> {
  private readonly mem: T[] = [];
  private memBytes = 0;
  private readonly file: AppendFile;
  /** The items held in memory, as saved by checkpoints so far (they only grow until read). */
  private readonly memFile: AppendFile;
  private memSaved = 0;
  private pending: string[] = [];
  private pendingBytes = 0;
  /** Items written to disk. */
  spilledItems = 0;
  length = 0;

  constructor(private readonly o: SpillLogOptions<T>) {
    this.file = new AppendFile(o.dir, 'spill');
    this.memFile = new AppendFile(o.dir, 'memory');
  }

  /** The spill file's size (what has been written to it so far). */
  get spilledBytes(): number {
    return this.file.length;
  }

  append(item: T): void {
    this.length++;
    // Once anything is on disk every later item goes there too, so the order is memory, then file.
    if (this.spilledItems === 0) {
      const size = this.o.sizeOf(item);
      if (this.memBytes + size <= this.o.memoryBytes) {
        this.mem.push(item);
        this.memBytes += size;
        return;
      }
    }
    const line = this.o.serialize(item) + '\n';
    this.pending.push(line);
    this.pendingBytes += line.length;
    this.spilledItems++;
    if (this.pendingBytes >= CHUNK) this.writePending();
  }

  private writePending(): void {
    if (!this.pending.length) return;
    this.file.append(Buffer.from(this.pending.join(''), 'utf8'));
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
    this.writePending();
    let batch: T[] = [];
    for (const line of this.file.lines()) {
      batch.push(this.o.deserialize(line));
      if (batch.length >= batchSize) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length) yield batch;
    if (last) this.close();
  }

  /**
   * Writes the log's state into the empty directory `dir` (a checkpoint). Both parts only grow,
   * so both are files in the scratch directory that the checkpoint hard-links with their
   * lengths: the spill file, and a copy of the items held in memory to which each checkpoint
   * appends only the items that arrived since the previous one. Appending may go on
   * afterwards; `load` cuts the files back to these lengths.
   */
  save(dir: string): void {
    this.writePending();
    const { mem, o } = this;
    this.memFile.appendLines(
      (function* (from: number) {
        for (let i = from; i < mem.length; i++) yield o.serialize(mem[i]);
      })(this.memSaved),
    );
    this.memSaved = mem.length;
    const state: SpillLogState = {
      version: 2,
      length: this.length,
      memory: this.mem.length,
      memBytes: this.memBytes,
      memoryFileBytes: this.memFile.save(path.join(dir, 'memory.jsonl')),
      spilledItems: this.spilledItems,
      spilledBytes: this.file.save(path.join(dir, 'spill.jsonl')),
    };
    writeFileSync(path.join(dir, 'state.json'), JSON.stringify(state));
  }

  /** Replaces the contents of this (empty) log with what `save` wrote into `dir`. */
  load(dir: string): void {
    if (this.length) throw new Error('SpillLog.load: the log is not empty');
    const state = JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8')) as SpillLogState;
    if (state.version !== 2) throw new Error(`${dir}: spill log saved by an incompatible version (${state.version})`);
    this.memFile.resume(path.join(dir, 'memory.jsonl'), state.memoryFileBytes);
    for (const line of this.memFile.lines()) this.mem.push(this.o.deserialize(line));
    if (this.mem.length !== state.memory) throw new Error(`${dir}: memory.jsonl has ${this.mem.length} items, state.json says ${state.memory}`);
    this.memSaved = this.mem.length;
    this.memBytes = state.memBytes;
    this.length = state.length;
    this.spilledItems = state.spilledItems;
    this.file.resume(path.join(dir, 'spill.jsonl'), state.spilledBytes);
  }

  close(): void {
    this.file.close();
    this.memFile.close();
  }
}
