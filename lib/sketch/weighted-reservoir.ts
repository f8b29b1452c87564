// One-pass weighted sampling without replacement (Efraimidis & Spirakis 2006, algorithm A-Res):
// each item gets the key u^(1/w) for a uniform u in (0, 1), held as log(u)/w (same order, no
// underflow for small w); the sample is the items with the largest keys. Sorting all items by
// key is the same as drawing them one after another with probability proportional to weight,
// so a prefix of that order is a weighted sample without replacement.
//
// Two stopping rules:
//   count k        the k largest keys;
//   budget B       the longest prefix of the key order whose token total is <= B (draw until
//                  the next draw would not fit; items larger than B alone are never drawn).
// Both keep only sampled items. Item bodies beyond `memoryBytes` go to an append-only spill
// file; keys stay in memory (a few dozen bytes per sampled item).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fmix32 } from '../text/shingle.ts';
import { AppendFile, LineWriter, readRows } from './spill-file.ts';

function hashString(s: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    h = (h ^ (h >>> 15)) >>> 0;
  }
  return fmix32(h ^ s.length);
}

/**
 * A uniform number in (0, 1) from (seed, id): the same record gets the same u on any machine,
 * in any order, so shard samples merge (the top keys of the union). 52 random bits.
 */
export function uniformFor(seed: number, id: string): number {
  const a = hashString(id, fmix32(seed ^ 0x9e3779b9));
  const b = hashString(id, fmix32((seed + 0x7f4a7c15) ^ 0x85ebca6b));
  const hi = fmix32(a ^ Math.imul(b, 0x27d4eb2f)) >>> 12; // 20 bits
  const lo = fmix32(b ^ Math.imul(a, 0x165667b1)); // 32 bits
  return (hi * 4294967296 + lo + 0.5) / 4503599627370496; // (0, 1)
}

/** Efraimidis-Spirakis key log(u^(1/w)) = log(u)/w; -Infinity for weights <= 0 (never sampled). */
export function esKey(u: number, weight: number): number {
  return weight > 0 ? Math.log(u) / weight : -Infinity;
}

interface Entry<T> {
  key: number;
  tokens: number;
  /** Arrival order: output order and tie-break. */
  seq: number;
  item?: T;
  /**
   * Where the body is on disk: in the spill file when `item` is undefined; when it is held in
   * memory, in the checkpoints' copy of held bodies (`len` 0: not saved by a checkpoint yet).
   */
  off: number;
  len: number;
  bytes: number;
}

/** Min-heap on (key, then later seq first), so the root is the entry to evict. */
class MinHeap<T> {
  readonly a: Entry<T>[] = [];
  private less(x: Entry<T>, y: Entry<T>): boolean {
    return x.key < y.key || (x.key === y.key && x.seq > y.seq);
  }
  get size(): number {
    return this.a.length;
  }
  peek(): Entry<T> | undefined {
    return this.a[0];
  }
  push(e: Entry<T>): void {
    const a = this.a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }
  pop(): Entry<T> | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length && last) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l], a[m])) m = l;
        if (r < a.length && this.less(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

export interface WeightedReservoirOptions<T> {
  /** Sample size (count rule). */
  count?: number;
  /** Token budget (budget rule). Exactly one of count / budgetTokens. */
  budgetTokens?: number;
  /** Item bodies kept in memory up to this many bytes (as measured by `sizeOf`); the rest spill. */
  memoryBytes: number;
  /** Directory for the spill file (created lazily). */
  spillDir: () => string;
  serialize(item: T): string;
  deserialize(s: string): T;
  /** Approximate in-memory size of an item, in bytes. */
  sizeOf(item: T): number;
  /** Called with each item that leaves the sample (read back from the spill file if needed). */
  onEvict?(item: T): void;
}

export interface ReservoirStats {
  offered: number;
  admitted: number;
  evicted: number;
  /** Items that alone exceed the token budget. */
  tooLarge: number;
  spilledItems: number;
  spillFileBytes: number;
  memoryBytes: number;
  peakMemoryBytes: number;
}

/** Numbers per entry in a checkpoint's entries.f64: key, tokens, seq, off, len, bytes, held. */
const ROW = 7;

interface ReservoirState {
  version: 2;
  count: number | null;
  budgetTokens: number | null;
  entries: number;
  tokens: number;
  seq: number;
  /** null for -Infinity (JSON has no infinities). */
  cutKey: number | null;
  /** Lengths of spill.jsonl and held.jsonl that count; -1: no such file. */
  spillBytes: number;
  heldBytes: number;
  stats: ReservoirStats;
}

export class WeightedReservoir<T> {
  private readonly heap = new MinHeap<T>();
  private tokens = 0;
  private seq = 0;
  private readonly file: AppendFile;
  /** Bodies held in memory, as checkpoints saved them. */
  private bodies: AppendFile;
  readonly stats: ReservoirStats = { offered: 0, admitted: 0, evicted: 0, tooLarge: 0, spilledItems: 0, spillFileBytes: 0, memoryBytes: 0, peakMemoryBytes: 0 };

  constructor(private readonly o: WeightedReservoirOptions<T>) {
    if ((o.count === undefined) === (o.budgetTokens === undefined)) throw new Error('exactly one of count and budgetTokens is required');
    this.file = new AppendFile(o.spillDir, 'reservoir');
    this.bodies = new AppendFile(o.spillDir, 'reservoir-held');
  }

  /** Current sample size and token total. */
  get size(): number {
    return this.heap.size;
  }
  get sampleTokens(): number {
    return this.tokens;
  }

  /**
   * Offers an item with its key (see `esKey`) and token count. Returns whether it entered the
   * reservoir; from then on `onEvict` reports it if it leaves (possibly at once, when a budget
   * sample overflows).
   */
  offer(item: T, key: number, tokens: number): boolean {
    this.stats.offered++;
    const seq = this.seq++;
    if (key === -Infinity || Number.isNaN(key)) return false;
    const { count, budgetTokens } = this.o;
    if (count !== undefined) {
      if (count <= 0) return false;
      if (this.heap.size >= count) {
        const min = this.heap.peek()!;
        if (key <= min.key) return false;
        this.evict();
      }
      this.admit(item, key, tokens, seq);
      return true;
    }
    if (tokens > budgetTokens!) {
      this.stats.tooLarge++;
      return false;
    }
    // Budget rule: the sample is a prefix of the key order. `cutKey` is the largest key that
    // fell out of the prefix (evicted, or did not fit after it): nothing below it can enter.
    if (key <= this.cutKey) return false;
    const min = this.heap.peek();
    if (min && key < min.key && this.tokens + tokens > budgetTokens!) {
      this.cutKey = key;
      return false;
    }
    this.admit(item, key, tokens, seq);
    while (this.tokens > budgetTokens!) {
      const e = this.evict();
      if (e.key > this.cutKey) this.cutKey = e.key;
    }
    return true;
  }

  private cutKey = -Infinity;

  private admit(item: T, key: number, tokens: number, seq: number): void {
    const bytes = this.o.sizeOf(item);
    const e: Entry<T> = { key, tokens, seq, off: 0, len: 0, bytes: 0 };
    if (this.stats.memoryBytes + bytes <= this.o.memoryBytes) {
      e.item = item;
      e.bytes = bytes;
      this.stats.memoryBytes += bytes;
      if (this.stats.memoryBytes > this.stats.peakMemoryBytes) this.stats.peakMemoryBytes = this.stats.memoryBytes;
    } else {
      const buf = Buffer.from(this.o.serialize(item) + '\n', 'utf8');
      e.off = this.file.append(buf);
      e.len = buf.length;
      this.stats.spilledItems++;
      this.stats.spillFileBytes = this.file.length;
    }
    this.heap.push(e);
    this.tokens += tokens;
    this.stats.admitted++;
  }

  private evict(): Entry<T> {
    const e = this.heap.pop()!;
    this.tokens -= e.tokens;
    this.stats.memoryBytes -= e.bytes;
    this.stats.evicted++;
    if (this.o.onEvict) this.o.onEvict(this.body(e));
    e.item = undefined;
    return e;
  }

  /**
   * The sample in arrival order, in batches of `batchSize`, read back from the spill file as
   * needed. Ends the reservoir.
   */
  *drain(batchSize = 1024): Generator<{ item: T; key: number; tokens: number }[]> {
    const entries = this.heap.a.slice().sort((x, y) => x.seq - y.seq);
    this.heap.a.length = 0;
    try {
      for (let k = 0; k < entries.length; k += batchSize) {
        yield entries.slice(k, k + batchSize).map((e) => {
          const item = this.body(e);
          e.item = undefined;
          return { item, key: e.key, tokens: e.tokens };
        });
      }
    } finally {
      this.close();
    }
  }

  private body(e: Entry<T>): T {
    if (e.item !== undefined) return e.item;
    return this.o.deserialize(this.file.read(e.off, e.len).toString('utf8', 0, e.len - 1));
  }

  /**
   * Writes the reservoir into the empty directory `dir` (a checkpoint): the kept entries in heap
   * order with their keys and where their bodies are (`entries.f64`, streamed), the counters,
   * and two append-only files hard-linked with the lengths that count: the spill file, and a
   * copy of the bodies held in memory to which each checkpoint appends only the bodies that
   * entered since the previous one (rewritten without the evicted ones when they are most of
   * it). Offering may go on afterwards; `load` cuts both files back to these lengths.
   */
  save(dir: string): void {
    const held = this.heap.a.filter((e) => e.item !== undefined);
    let live = 0;
    for (const e of held) live += e.len;
    if (this.bodies.length > 2 * live + (1 << 20)) {
      this.bodies.close();
      this.bodies = new AppendFile(this.o.spillDir, 'reservoir-held');
      for (const e of held) e.len = 0;
    }
    const fresh = held.filter((e) => e.len === 0);
    const serialize = this.o.serialize;
    let k = 0;
    this.bodies.appendLines(
      (function* () {
        for (const e of fresh) yield serialize(e.item!);
      })(),
      (off, len) => {
        fresh[k].off = off;
        fresh[k++].len = len;
      },
    );
    // Entries as float64 rows (exact for keys and for integers up to 2^53), 4096 rows per write.
    const out = new LineWriter(path.join(dir, 'entries.f64'));
    const rows = new Float64Array(ROW * 4096);
    let n = 0;
    for (const e of this.heap.a) {
      rows.set([e.key, e.tokens, e.seq, e.off, e.len, e.bytes, e.item !== undefined ? 1 : 0], n * ROW);
      if (++n === 4096) {
        out.bytesOut(new Uint8Array(rows.buffer));
        n = 0;
      }
    }
    out.bytesOut(new Uint8Array(rows.buffer, 0, n * ROW * 8));
    out.close();
    const state: ReservoirState = {
      version: 2,
      count: this.o.count ?? null,
      budgetTokens: this.o.budgetTokens ?? null,
      entries: this.heap.size,
      tokens: this.tokens,
      seq: this.seq,
      cutKey: this.cutKey === -Infinity ? null : this.cutKey,
      spillBytes: this.file.save(path.join(dir, 'spill.jsonl')),
      heldBytes: this.bodies.save(path.join(dir, 'held.jsonl')),
      stats: this.stats,
    };
    writeFileSync(path.join(dir, 'state.json'), JSON.stringify(state));
  }

  /** Replaces the contents of this (empty) reservoir with what `save` wrote into `dir`. */
  load(dir: string): void {
    if (this.stats.offered) throw new Error('WeightedReservoir.load: the reservoir is not empty');
    const state = JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8')) as ReservoirState;
    if (state.version !== 2) throw new Error(`${dir}: reservoir saved by an incompatible version (${state.version})`);
    if (state.count !== (this.o.count ?? null) || state.budgetTokens !== (this.o.budgetTokens ?? null)) {
      const rule = (count: number | null | undefined, budget: number | null | undefined) => (count != null ? `a count of ${count}` : `a budget of ${budget} tokens`);
      throw new Error(`${dir}: saved by a reservoir for ${rule(state.count, state.budgetTokens)}, this one is for ${rule(this.o.count, this.o.budgetTokens)}`);
    }
    this.file.resume(path.join(dir, 'spill.jsonl'), state.spillBytes);
    this.bodies.resume(path.join(dir, 'held.jsonl'), state.heldBytes);
    // The heap array is restored as it was, so later evictions happen in the same order.
    for (const rows of readRows(path.join(dir, 'entries.f64'), ROW)) {
      for (let r = 0; r < rows.length; r += ROW) {
        const [key, tokens, seq, off, len, bytes, held] = rows.subarray(r, r + ROW);
        const e: Entry<T> = { key, tokens, seq, off, len, bytes };
        if (held) e.item = this.o.deserialize(this.bodies.read(off, len).toString('utf8', 0, len - 1));
        this.heap.a.push(e);
      }
    }
    if (this.heap.size !== state.entries) throw new Error(`${dir}: entries.f64 is incomplete (${this.heap.size} of ${state.entries} entries)`);
    this.tokens = state.tokens;
    this.seq = state.seq;
    this.cutKey = state.cutKey ?? -Infinity;
    Object.assign(this.stats, state.stats);
  }

  close(): void {
    this.file.close();
    this.bodies.close();
  }
}
