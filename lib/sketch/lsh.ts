// MinHash LSH: band choice, candidate probability, band keys, and an index of band keys ->
// document slots with a memory budget that spills to an SQLite database beyond it. No stream code.
//
// Layout of the index (the same for a spill directory and for a persisted `writeIndex` path):
// - RAM tier: an open-addressing multimap (band key -> slot) over typed arrays, plus the
//   documents (id, signature, optional shingle set) of the slots added since the last spill,
//   packed into large word chunks (no per-document allocations: a spill frees whole chunks).
// - Spilled segments: when the RAM tier outgrows its budget, its band entries are sorted and
//   written to the database as blocks of BLOCK_ENTRIES sorted entries; the segment keeps in RAM a
//   blocked Bloom filter of its keys and the first key of every block (fences). A lookup checks
//   the Bloom filter (no false negatives), then reads the one block the fences point to.
//   Documents go to the database one row per slot.
// Lookups, candidate sets and therefore every dedup decision are identical whether or not the
// index spilled: spilling only moves entries.
// Checkpoints (`save`/`restore`): spilled segments are never rewritten, so a checkpoint records
// how many of them (and of the documents) exist, and dumps the RAM tier; whatever a crashed run
// wrote to the database after its last checkpoint is overwritten by the resumed run.
//
// Binary values are little-endian 32-bit words (the byte order of every platform Node runs on
// in practice; opening an index on a big-endian machine is refused).
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import Database from 'better-sqlite3';
import { fmix32 as mix32 } from '../text/shingle.ts';
import { wtf8Bytes, wtf8String } from '../text/wtf8.ts';
import { syncPath, writeAll } from '../io/durable.ts';
import { claimLock, lockHolder, releaseLock } from '../io/lock.ts';
import { BlockedBloom, keyPlace, type ProbeTask } from './blocked-bloom.ts';

export { BlockedBloom };
export type { ProbeTask };

// ---------------------------------------------------------------------------------------------
// Band choice and candidate probability

/** Probability that a pair with Jaccard similarity `s` shares at least one band: 1 - (1 - s^r)^b. */
export function candidateProbability(s: number, bands: number, rows: number): number {
  return 1 - Math.pow(1 - Math.pow(s, rows), bands);
}

export interface BandChoice {
  bands: number;
  rows: number;
  /** Candidate probability of a pair exactly at the threshold. */
  atThreshold: number;
}

/**
 * Bands x rows for a threshold: the most rows (fewest spurious candidates) such that a pair
 * exactly at the threshold becomes a candidate with probability >= `target` (default 0.99),
 * with bands = floor(perms / rows). This is deliberately not the choice that balances false
 * positives against false negatives (8 x 16 for 128 perms at 0.85, which catches only ~46% of
 * the pairs at the threshold): candidates are verified afterwards, so extra candidates cost a
 * comparison, while a missed candidate is a missed duplicate.
 */
export function chooseBands(threshold: number, perms: number, target = 0.99): BandChoice {
  if (!(threshold > 0 && threshold <= 1)) throw new Error(`threshold must be in (0, 1], got ${threshold}`);
  if (!Number.isInteger(perms) || perms < 1) throw new Error(`perms must be a positive integer, got ${perms}`);
  for (let rows = perms; rows >= 1; rows--) {
    const bands = Math.floor(perms / rows);
    const p = candidateProbability(threshold, bands, rows);
    if (p >= target) return { bands, rows, atThreshold: p };
  }
  return { bands: perms, rows: 1, atThreshold: candidateProbability(threshold, perms, 1) };
}

/**
 * The "balanced" bands x rows for a threshold, as MinHash LSH libraries (datasketch) pick by
 * default: the split that minimizes the area under the candidate curve below the threshold
 * (false positives) plus the area above it left uncaught (false negatives), weighted equally.
 * It leaves many pairs near the threshold uncaught; shown by `explain` for comparison.
 */
export function balancedBands(threshold: number, perms: number): { bands: number; rows: number } {
  // Midpoint rule over 400 steps: the areas are smooth, this is far below the differences between splits.
  const area = (from: number, to: number, f: (s: number) => number) => {
    const steps = 400;
    const h = (to - from) / steps;
    let sum = 0;
    for (let i = 0; i < steps; i++) sum += f(from + (i + 0.5) * h);
    return sum * h;
  };
  let best = { bands: 1, rows: perms, cost: Infinity };
  for (let bands = 1; bands <= perms; bands++) {
    for (let rows = 1; rows * bands <= perms; rows++) {
      const falsePositive = area(0, threshold, (s) => candidateProbability(s, bands, rows));
      const falseNegative = area(threshold, 1, (s) => 1 - candidateProbability(s, bands, rows));
      const cost = 0.5 * falsePositive + 0.5 * falseNegative;
      if (cost < best.cost) best = { bands, rows, cost };
    }
  }
  return { bands: best.bands, rows: best.rows };
}

/** Fills `out` (length 2 * bands) with the band keys of a signature: per band, [hi, lo]. */
export function bandKeys(signature: Uint32Array, bands: number, rows: number, out = new Uint32Array(2 * bands)): Uint32Array {
  if (bands * rows > signature.length) throw new Error(`bands x rows (${bands} x ${rows}) exceeds the signature length ${signature.length}`);
  for (let b = 0; b < bands; b++) {
    // Two independent MurmurHash3-style accumulations over the band's rows: 32 + 16 bits of key,
    // the band number in the top 16 bits of hi so bands never collide with each other.
    let h1 = 0x9747b28c ^ b;
    let h2 = 0x85ebca6b ^ Math.imul(b + 1, 0x27d4eb2f);
    for (let i = b * rows, end = i + rows; i < end; i++) {
      let k = Math.imul(signature[i], 0xcc9e2d51);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, 0x1b873593);
      h1 ^= k;
      h1 = (h1 << 13) | (h1 >>> 19);
      h1 = (Math.imul(h1, 5) + 0xe6546b64) | 0;
      h2 ^= Math.imul(signature[i] ^ (signature[i] >>> 16), 0x7feb352d);
      h2 = Math.imul((h2 << 11) | (h2 >>> 21), 0x846ca68b);
    }
    out[2 * b] = ((b & 0xffff) << 16) | (mix32(h2 ^ rows) >>> 16);
    out[2 * b + 1] = mix32(h1 ^ (rows << 2));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Documents

export interface IndexedDoc {
  id: string;
  signature: Uint32Array;
  /** Sorted unique shingle hashes, when the index keeps them (exact verification). */
  shingles?: Uint32Array;
}

function docWords(d: IndexedDoc, idBytes: Uint8Array): number {
  return 3 + ((idBytes.length + 3) >>> 2) + d.signature.length + (d.shingles?.length ?? 0);
}

function writeDoc(words: Uint32Array, at: number, d: IndexedDoc, idBytes: Uint8Array): number {
  words[at] = idBytes.length;
  words[at + 1] = d.signature.length;
  words[at + 2] = d.shingles ? d.shingles.length : 0xffffffff;
  at += 3;
  new Uint8Array(words.buffer, words.byteOffset + at * 4, idBytes.length).set(idBytes);
  at += (idBytes.length + 3) >>> 2;
  words.set(d.signature, at);
  at += d.signature.length;
  if (d.shingles) {
    words.set(d.shingles, at);
    at += d.shingles.length;
  }
  return at;
}

/** Reads a document; `view` returns arrays that share `words` instead of copies. */
function readDoc(words: Uint32Array, at: number, view = false): IndexedDoc {
  const idLen = words[at];
  const sigLen = words[at + 1];
  const shLen = words[at + 2];
  at += 3;
  const id = wtf8String(new Uint8Array(words.buffer, words.byteOffset + at * 4, idLen));
  at += (idLen + 3) >>> 2;
  const signature = view ? words.subarray(at, at + sigLen) : words.slice(at, at + sigLen);
  at += sigLen;
  const shingles = shLen === 0xffffffff ? undefined : view ? words.subarray(at, at + shLen) : words.slice(at, at + shLen);
  return { id, signature, shingles };
}

/** Words a stored document takes, from its header. */
function storedDocWords(words: Uint32Array, at: number): number {
  return 3 + ((words[at] + 3) >>> 2) + words[at + 1] + (words[at + 2] === 0xffffffff ? 0 : words[at + 2]);
}

/** Where the `k`-th document of a row of stored documents starts, or -1 when the row is shorter. */
function docOffset(words: Uint32Array, k: number): number {
  let at = 0;
  for (; k > 0 && at < words.length; k--) at += storedDocWords(words, at);
  return at < words.length ? at : -1;
}

/** Copies bytes into an aligned word array. */
function toWords(buf: Uint8Array): Uint32Array {
  const w = new Uint32Array(buf.length >>> 2);
  new Uint8Array(w.buffer).set(buf.subarray(0, w.length * 4));
  return w;
}

function wordsToBuffer(w: Uint32Array): Buffer {
  return Buffer.from(w.buffer, w.byteOffset, w.length * 4);
}

/**
 * A segment's filter then fences, cut into parts of at most AUX_PART_WORDS: each part is written
 * straight from the arrays (no copy of a filter that may take a good share of the budget).
 */
function auxParts(bloom: BlockedBloom, fences: Uint32Array): Uint32Array[] {
  const parts: Uint32Array[] = [];
  for (const w of [bloom.words, fences]) for (let at = 0; at < w.length; at += AUX_PART_WORDS) parts.push(w.subarray(at, at + AUX_PART_WORDS));
  return parts;
}

// ---------------------------------------------------------------------------------------------
// The on-disk store shared by spill directories and persisted indexes: one SQLite database.
// SQLite reads with pread into a page cache of fixed size, so random lookups over an index of any
// size keep the process's resident memory bounded (a memory-mapped store such as LMDB keeps every
// page a lookup touched mapped, and counted in the RSS, until it is unmapped).

/** Bytes of a band entry, in a block as in a RAM-tier cell: hi, lo, slot. */
const ENTRY_BYTES = 12;
/** Band entries per block: 256 x 12 bytes fit one 4 KB database page. */
const BLOCK_ENTRIES = 256;
/** Bytes written per transaction when spilling. */
const TXN_BYTES = 4 * 1024 * 1024;
const TXN_BLOCKS = Math.ceil(TXN_BYTES / (BLOCK_ENTRIES * ENTRY_BYTES));
const FORMAT = 'mixstream-lsh-index/5';
/**
 * Bytes of stored documents packed into one database row (a larger document gets a row of its
 * own). A row per document cost ~8 us per document spilled, ~2 us of it the row's own overhead;
 * rows of 1 KB keep that saving, while 3 KB rows made each verification read ~2 us slower (a
 * larger value copied out, more documents walked to the one wanted).
 */
const DOC_ROW_BYTES = 1024;
/** Words per row of a segment's filter and fences. */
const AUX_PART_WORDS = 1 << 18;
/** Blocks a merge reads at a time from each segment it merges (64 x 3 KB). */
const MERGE_READ_BLOCKS = 64;
/** Spilled segments of about the same size merged into one. */
const MERGE_FAN_IN = 4;
/** The database file inside an index directory. */
export const INDEX_FILE = 'index.sqlite';
/** The pid and host of the run writing the index, from its start until the index is finished (see `claimIndexDir`). */
const INDEX_LOCK = 'writer.lock';
/** The scratch directory (inside its checkpoint) of a `--checkpoint` run writing the index, once it has checkpointed: that run resumes the index. */
const INDEX_CHECKPOINT = 'checkpoint.ref';
/** Every file of an index directory: the database, the rollback journal a killed writer leaves, the lock and the checkpoint reference. */
const INDEX_FILES = [INDEX_FILE, `${INDEX_FILE}-journal`, INDEX_LOCK, INDEX_CHECKPOINT];

export interface IndexParams {
  bands: number;
  rows: number;
  perms: number;
  threshold: number;
  /** Whether the documents carry their shingle sets (needed by exact verification). */
  shingles: boolean;
  /**
   * The normalize, shingle and minhash options the signatures were made with (see
   * `signatureFamily` in operators/lsh-band-join.ts); absent when unknown.
   */
  family?: string;
}

interface SegmentMeta {
  entries: number;
  firstBlock: number;
  blocks: number;
  bloomWords: number;
}

interface StoreMeta {
  format: string;
  params: IndexParams;
  docs: number;
  segments: SegmentMeta[];
  /** Documents in the store: slots 0 .. spilledDocs - 1. */
  spilledDocs: number;
  /** Next free block number (blocks of merged-away segments are never reused). */
  nextBlock: number;
}

interface Segment {
  meta: SegmentMeta;
  bloom: BlockedBloom;
  /** Where the filter starts in the store's filter stack, or -1 when it is an array of its own. */
  stackAt: number;
  /** First (hi, lo) of each block, interleaved. */
  fences: Uint32Array;
}

/** A merge's place in one of the segments it merges: block `blk` as words `w`, entry `i`; the blocks read after it, last first. */
interface MergeCursor {
  seg: Segment;
  blk: number;
  ahead: Buffer[];
  w: Uint32Array;
  i: number;
}

/**
 * Zeroed words in shared memory: the Bloom filters, so a worker thread can probe them (see
 * `LshIndex.probeTask`). Pages become resident only as they are written.
 */
function sharedWords(n: number): Uint32Array {
  return new Uint32Array(new SharedArrayBuffer(4 * n));
}

/** An aligned word view of a value read from the database (copied only when unaligned). */
function asWords(buf: Buffer): Uint32Array {
  if ((buf.byteOffset & 3) === 0) return new Uint32Array(buf.buffer, buf.byteOffset, buf.length >>> 2);
  return toWords(buf);
}

/**
 * How the project's SQLite files are opened (the index store, the record spool of keep
 * "priority"): no memory map, so pages are read into a page cache of `cacheBytes`; one lock for
 * the connection's life instead of a lock, a change check and an unlock around every read (the
 * file belongs to this process while it is open); when `writable`, a rollback journal, so a
 * transaction is atomic even if the process is killed in the middle of it and a checkpointed run
 * always reopens a consistent file, synced to disk only when `durable`.
 */
export function configureConnection(db: Database.Database, cacheBytes: number, writable: boolean, durable: boolean): void {
  db.pragma('mmap_size = 0');
  db.pragma('locking_mode = EXCLUSIVE');
  db.pragma(`cache_size = -${Math.floor(cacheBytes / 1024)}`);
  if (!writable) return;
  db.pragma('journal_mode = DELETE');
  db.pragma(`synchronous = ${durable ? 'FULL' : 'OFF'}`);
}

/** Why `dir` cannot be opened as a finished index, when that shows from its files; else undefined. */
function notAnIndex(dir: string): string | undefined {
  let st;
  try {
    st = statSync(dir);
  } catch {
    return `LSH index ${dir} does not exist`;
  }
  if (!st.isDirectory()) {
    if (path.basename(dir) === INDEX_FILE) return `${dir} is the database file of an LSH index: give its directory, ${path.dirname(dir)}`;
    return `${dir} is a file, not an LSH index (writeIndex writes a directory)`;
  }
  // The lock of the run writing it, there until the index is finished.
  const writer = indexWriter(dir);
  if (writer !== undefined) return `${dir} is an LSH index that ${writer} is still writing: use it once that run has finished`;
  if (existsSync(path.join(dir, INDEX_LOCK))) {
    return `${dir} is an unfinished LSH index: its writer was stopped before it finished; run the writeIndex run again to finish it`;
  }
  if (!existsSync(path.join(dir, INDEX_FILE))) return `${dir} holds no LSH index (no ${INDEX_FILE} in it; was it written with writeIndex?)`;
  // A rollback journal beside the database: its writer was stopped in the middle of a write (or is still writing).
  if (existsSync(path.join(dir, `${INDEX_FILE}-journal`))) {
    return `${dir} is an unfinished LSH index: its writer was stopped (or is still running) in the middle of a write; run the writeIndex run again to finish it`;
  }
  return undefined;
}

class Store {
  private readonly db: Database.Database;
  private readonly file: string;
  private readonly putBlock: Database.Statement;
  private readonly getBlock: Database.Statement;
  private readonly getBlockRange: Database.Statement;
  private readonly putDoc: Database.Statement;
  private readonly getDocStmt: Database.Statement;
  private readonly allDocsStmt: Database.Statement;
  private readonly deleteDocsFrom: Database.Statement;
  private readonly putAux: Database.Statement;
  private readonly getAux: Database.Statement;
  private readonly putMeta: Database.Statement;
  private readonly getMeta: Database.Statement;
  private readonly deleteBlocks: Database.Statement;
  private readonly deleteAux: Database.Statement;
  /** Set once a checkpoint refers to the stored segments: merged-away blocks are then kept (a resume may need them). */
  keepRetired = false;
  /** Reads of band-entry blocks, and how many of them held the key looked up (the rest were Bloom false positives). */
  blockReads = 0;
  blockHits = 0;
  /** Documents read for verification. */
  docReads = 0;
  segments: Segment[] = [];
  /** Documents stored: slots 0 .. spilledDocs - 1. */
  spilledDocs = 0;
  nextBlock = 0;
  private cacheBlock = -1;
  private cacheWords: Uint32Array | undefined;
  // The segments' Bloom filters, stacked in one buffer in segment order (as far as they fit). A
  // merge always replaces the newest segments, so the merged filter is built over theirs: merging
  // never holds two filter sets at once. The buffer's pages are touched only as filters fill them.
  private filterStack: Uint32Array | undefined;
  private filterStackRefused = false;

  /**
   * `cacheBytes`: the database's page cache (part of the index budget); `filterStackBytes`: room
   * for the segments' filters (0: each filter its own array, for indexes that are only read).
   */
  constructor(
    private readonly dir: string,
    readonly readOnly: boolean,
    durable: boolean,
    readonly cacheBytes: number,
    private readonly filterStackBytes = 0,
    /** Bands of the index (its filters place keys by band); an opened index's metadata sets it. */
    private keyGroups = 65536,
  ) {
    if (os.endianness() !== 'LE') throw new Error('LSH index files are little-endian; this machine is big-endian');
    this.file = path.join(dir, INDEX_FILE);
    if (!readOnly) mkdirSync(dir, { recursive: true });
    else {
      const problem = notAnIndex(dir);
      if (problem) throw new Error(problem);
    }
    this.db = new Database(this.file, { readonly: readOnly, fileMustExist: readOnly });
    try {
      configureConnection(this.db, Math.max(256 * 1024, cacheBytes), !readOnly, durable);
      if (!readOnly) {
        this.db.exec(
          'CREATE TABLE IF NOT EXISTS blocks (id INTEGER PRIMARY KEY, data BLOB NOT NULL);' +
            'CREATE TABLE IF NOT EXISTS docs (slot INTEGER PRIMARY KEY, data BLOB NOT NULL);' +
            'CREATE TABLE IF NOT EXISTS segment_aux (first_block INTEGER NOT NULL, part INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (first_block, part)) WITHOUT ROWID;' +
            'CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);',
        );
      }
      this.putBlock = this.db.prepare('INSERT OR REPLACE INTO blocks (id, data) VALUES (?, ?)');
      this.getBlock = this.db.prepare('SELECT data FROM blocks WHERE id = ?').pluck();
      this.getBlockRange = this.db.prepare('SELECT data FROM blocks WHERE id >= ? AND id < ? ORDER BY id').pluck();
      this.putDoc = this.db.prepare('INSERT OR REPLACE INTO docs (slot, data) VALUES (?, ?)');
      // A row of documents is keyed by the slot of its first one.
      this.getDocStmt = this.db.prepare('SELECT slot, data FROM docs WHERE slot <= ? ORDER BY slot DESC LIMIT 1').raw();
      this.allDocsStmt = this.db.prepare('SELECT slot, data FROM docs WHERE slot < ? ORDER BY slot').raw();
      this.deleteDocsFrom = this.db.prepare('DELETE FROM docs WHERE slot >= ?');
      this.putAux = this.db.prepare('INSERT OR REPLACE INTO segment_aux (first_block, part, data) VALUES (?, ?, ?)');
      this.getAux = this.db.prepare('SELECT data FROM segment_aux WHERE first_block = ? ORDER BY part').pluck();
      this.deleteBlocks = this.db.prepare('DELETE FROM blocks WHERE id >= ? AND id < ?');
      this.deleteAux = this.db.prepare('DELETE FROM segment_aux WHERE first_block = ?');
      this.putMeta = this.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
      this.getMeta = this.db.prepare('SELECT value FROM meta WHERE key = ?').pluck();
    } catch (e) {
      this.db.close();
      if (readOnly) throw new Error(`${dir} is not a mixstream LSH index (${(e as Error).message})`);
      throw e;
    }
  }

  /**
   * Candidate slots of one band key in the spilled segments. `maybe`: the segments whose Bloom
   * filters pass the key, as bits (from `probeSegments`), or -1 to probe the filters here.
   */
  lookup(hi: number, lo: number, out: number[], maybe = -1): void {
    for (let s = 0; s < this.segments.length; s++) {
      const seg = this.segments[s];
      if (maybe === -1 ? !seg.bloom.has(hi, lo) : (maybe & (1 << s)) === 0) continue;
      // Last block whose first key is <= (hi, lo); entries equal to the key may continue into the next blocks.
      const f = seg.fences;
      let a = 0;
      let b = seg.meta.blocks - 1;
      while (a < b) {
        const m = (a + b + 1) >>> 1;
        const fh = f[2 * m], fl = f[2 * m + 1];
        if (fh < hi || (fh === hi && fl < lo)) a = m;
        else b = m - 1;
      }
      for (let blk = a; blk < seg.meta.blocks; blk++) {
        const reads = this.blockReads;
        const w = this.block(seg.meta.firstBlock + blk);
        const n = w.length / 3;
        // Binary search the first entry >= key.
        let x = 0, y = n;
        while (x < y) {
          const m = (x + y) >>> 1;
          const eh = w[3 * m], el = w[3 * m + 1];
          if (eh < hi || (eh === hi && el < lo)) x = m + 1;
          else y = m;
        }
        let i = x;
        for (; i < n && w[3 * i] === hi && w[3 * i + 1] === lo; i++) out.push(w[3 * i + 2]);
        // Counted per block read from disk (a block served again from the one kept is not a read).
        if (i > x && this.blockReads > reads) this.blockHits++;
        if (i < n) break;
      }
    }
  }

  private block(no: number): Uint32Array {
    if (no === this.cacheBlock) return this.cacheWords!;
    this.blockReads++;
    const w = this.readBlock(no);
    this.cacheBlock = no;
    this.cacheWords = w;
    return w;
  }

  /** Writes `n` entries, handed to `put` in key order by `entries`, as a new segment. */
  writeSegment(n: number, bitsPerKey: number, entries: (put: (hi: number, lo: number, slot: number) => void) => void): void {
    this.segments.push(this.buildSegment(n, bitsPerKey, this.segments.length, [], entries));
  }

  /**
   * Words for the filter of a segment that will be segment number `position`: on the filter
   * stack after the segments before it when they are all on it and there is room, else an array
   * of its own. Zeroed.
   */
  private filterWords(words: number, position: number): { words: Uint32Array; stackAt: number } {
    const capacity = Math.floor(this.filterStackBytes / 4);
    const below = this.segments.slice(0, position);
    if (below.every((s) => s.stackAt >= 0)) {
      const last = below[below.length - 1];
      const at = last ? last.stackAt + last.bloom.words.length : 0;
      if (at + words <= capacity && this.allocateFilterStack(capacity)) {
        const view = this.filterStack!.subarray(at, at + words);
        view.fill(0);
        return { words: view, stackAt: at };
      }
    }
    return { words: sharedWords(words), stackAt: -1 };
  }

  /**
   * The stack is reserved whole at its first use; only the pages filters fill become resident.
   * Where the system refuses a reservation that large (a huge budget under strict overcommit),
   * filters get arrays of their own instead.
   */
  private allocateFilterStack(capacity: number): boolean {
    if (this.filterStack || this.filterStackRefused) return !!this.filterStack;
    try {
      this.filterStack = sharedWords(capacity);
    } catch {
      this.filterStackRefused = true;
    }
    return !!this.filterStack;
  }

  /**
   * Replaces segments from .. to - 1 by one segment holding all their entries, written after
   * every existing block (a k-way merge that reads MERGE_READ_BLOCKS blocks at a time per
   * segment: one range query costs far less than a lookup per block).
   */
  mergeSegments(from: number, to: number, bitsPerKey: number): void {
    const parts = this.segments.slice(from, to);
    const n = parts.reduce((sum, seg) => sum + seg.meta.entries, 0);
    const cursors = parts.map((seg) => {
      const cursor: MergeCursor = { seg, blk: 0, ahead: [], w: new Uint32Array(0), i: 0 };
      this.nextMergeBlock(cursor);
      return cursor;
    });
    // The merged filter may be built over the filters of `parts`: only their blocks are read
    // here. (A merge that fails leaves the index unusable, as a failed spill does: the run stops,
    // and a resume starts from the last checkpoint, which reloads the filters from the database.)
    const merged = this.buildSegment(n, bitsPerKey, from, this.keepRetired ? [] : parts, (put) => {
      for (let written = 0; written < n; written++) {
        // The cursor with the smallest (hi, lo); there are few, a scan beats a heap.
        let best = -1;
        let bh = 0, bl = 0;
        for (let c = 0; c < cursors.length; c++) {
          const cur = cursors[c];
          if (cur.i * 3 >= cur.w.length) continue;
          const h = cur.w[3 * cur.i], l = cur.w[3 * cur.i + 1];
          if (best < 0 || h < bh || (h === bh && l < bl)) {
            best = c;
            bh = h;
            bl = l;
          }
        }
        const cur = cursors[best];
        put(bh, bl, cur.w[3 * cur.i + 2]);
        if (++cur.i * 3 >= cur.w.length && ++cur.blk < cur.seg.meta.blocks) this.nextMergeBlock(cur);
      }
    });
    this.segments.splice(from, to - from, merged);
    this.cacheBlock = -1;
    this.cacheWords = undefined;
  }

  /**
   * Writes `n` entries, handed to `put` in sorted order by `entries`, as the blocks of a new
   * segment after every existing block, with its Bloom filter and fences, and deletes the blocks
   * of the segments in `retire`. Committed in slices of TXN_BYTES, so a transaction's pages never
   * pile up in memory; one block buffer serves every block (SQLite copies a value when it is bound).
   */
  private buildSegment(n: number, bitsPerKey: number, position: number, retire: Segment[], entries: (put: (hi: number, lo: number, slot: number) => void) => void): Segment {
    const blocks = Math.ceil(n / BLOCK_ENTRIES);
    const filter = this.filterWords(BlockedBloom.wordsFor(n, bitsPerKey), position);
    const bloom = new BlockedBloom(filter.words, this.keyGroups);
    const fences = new Uint32Array(2 * blocks);
    const firstBlock = this.nextBlock;
    const out = new Uint32Array(3 * BLOCK_ENTRIES);
    let filled = 0;
    let k = 0;
    const flush = (): void => {
      this.putBlock.run(firstBlock + k, wordsToBuffer(out.subarray(0, 3 * filled)));
      k++;
      filled = 0;
      if (k % TXN_BLOCKS === 0) {
        this.db.exec('COMMIT');
        this.db.exec('BEGIN');
      }
    };
    this.db.exec('BEGIN');
    try {
      entries((hi, lo, slot) => {
        out[3 * filled] = hi;
        out[3 * filled + 1] = lo;
        out[3 * filled + 2] = slot;
        bloom.add(hi, lo);
        if (filled === 0) {
          fences[2 * k] = hi;
          fences[2 * k + 1] = lo;
        }
        if (++filled === BLOCK_ENTRIES) flush();
      });
      if (filled > 0) flush();
      auxParts(bloom, fences).forEach((w, part) => this.putAux.run(firstBlock, part, wordsToBuffer(w)));
      for (const seg of retire) {
        this.deleteBlocks.run(seg.meta.firstBlock, seg.meta.firstBlock + seg.meta.blocks);
        this.deleteAux.run(seg.meta.firstBlock);
      }
      this.db.exec('COMMIT');
    } catch (e) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw e;
    }
    this.nextBlock += blocks;
    return { meta: { entries: n, firstBlock, blocks, bloomWords: bloom.words.length }, bloom, fences, stackAt: filter.stackAt };
  }

  /** Moves a merge cursor to its block `blk`, reading it with the next ones unless they are read already. */
  private nextMergeBlock(c: MergeCursor): void {
    if (c.ahead.length === 0) {
      const first = c.seg.meta.firstBlock + c.blk;
      const end = c.seg.meta.firstBlock + Math.min(c.seg.meta.blocks, c.blk + MERGE_READ_BLOCKS);
      c.ahead = (this.getBlockRange.all(first, end) as Buffer[]).reverse();
      if (c.ahead.length !== end - first) throw new Error(`LSH index blocks ${first}..${end - 1} are missing (corrupt index?)`);
    }
    c.w = asWords(c.ahead.pop()!);
    c.i = 0;
  }

  private readBlock(no: number): Uint32Array {
    const buf = this.getBlock.get(no) as Buffer | undefined;
    if (!buf) throw new Error(`LSH index block ${no} is missing (corrupt index?)`);
    return asWords(buf);
  }

  /**
   * Writes the documents of slots firstSlot .. firstSlot + count - 1, given as their stored words
   * (as `writeDoc` lays them out), packed into rows of about DOC_ROW_BYTES.
   */
  writeDocs(firstSlot: number, count: number, stored: (i: number) => Uint32Array): void {
    if (firstSlot !== this.spilledDocs) throw new Error(`LSH index: documents spilled out of order (slot ${firstSlot}, expected ${this.spilledDocs})`);
    let i = 0;
    // One growing row buffer (SQLite copies a value when it is bound): a spill of the whole RAM
    // tier then allocates nothing per row.
    let row: Uint32Array = new Uint32Array(DOC_ROW_BYTES / 4);
    const slice = this.db.transaction(() => {
      // Rows a run killed after its last checkpoint wrote from here on are not this run's.
      if (i === 0) this.deleteDocsFrom.run(firstSlot);
      let bytes = 0;
      while (i < count && bytes < TXN_BYTES) {
        const first = i;
        let w = stored(i);
        // Only a row's first document can be larger than the buffer: it then has the row alone.
        if (w.length > row.length) row = new Uint32Array(w.length);
        let fill = 0;
        for (;;) {
          row.set(w, fill);
          fill += w.length;
          if (++i === count) break;
          w = stored(i);
          if ((fill + w.length) * 4 > DOC_ROW_BYTES) break;
        }
        this.putDoc.run(firstSlot + first, wordsToBuffer(row.subarray(0, fill)));
        bytes += fill * 4;
      }
    });
    while (i < count) slice();
    this.spilledDocs += count;
  }

  getDoc(slot: number): IndexedDoc {
    this.docReads++;
    const found = slot < this.spilledDocs ? (this.getDocStmt.get(slot) as [number, Buffer] | undefined) : undefined;
    if (found) {
      const words = asWords(found[1]);
      const at = docOffset(words, slot - found[0]);
      if (at >= 0) return readDoc(words, at);
    }
    throw new Error(`LSH index document ${slot} is missing (corrupt index?)`);
  }

  /** Iterates the stored documents in slot order. */
  *allDocs(): Generator<IndexedDoc> {
    let next = 0;
    for (const [first, buf] of this.allDocsStmt.iterate(this.spilledDocs) as IterableIterator<[number, Buffer]>) {
      if (first !== next) throw new Error(`LSH index document ${next} is missing (corrupt index?)`);
      const words = asWords(buf);
      for (let at = 0; at < words.length && next < this.spilledDocs; at += storedDocWords(words, at), next++) yield readDoc(words, at);
    }
    if (next !== this.spilledDocs) throw new Error(`LSH index document ${next} is missing (corrupt index?)`);
  }

  /** Metadata of what is stored now (the segments' filters and fences are already in the database). */
  describe(params: IndexParams, docs: number): StoreMeta {
    return { format: FORMAT, params, docs, segments: this.segments.map((s) => s.meta), spilledDocs: this.spilledDocs, nextBlock: this.nextBlock };
  }

  saveMeta(params: IndexParams, docs: number): void {
    this.putMeta.run('index', JSON.stringify(this.describe(params, docs)));
  }

  loadMeta(dir: string): StoreMeta {
    const meta = this.readMeta(dir);
    this.adopt(meta);
    return meta;
  }

  /** The index's metadata record, checked to be of this format. */
  readMeta(dir: string): StoreMeta {
    const text = this.getMeta.get('index') as string | undefined;
    const meta = text === undefined ? undefined : (JSON.parse(text) as StoreMeta);
    if (!meta) throw new Error(`${dir} is not a mixstream LSH index (no "${FORMAT}" metadata; was it written with writeIndex and finished?)`);
    if (meta.format !== FORMAT) throw new Error(`${dir} is an LSH index of format "${meta.format}"; this version reads "${FORMAT}": rebuild it with writeIndex`);
    return meta;
  }

  /** Takes the segments and documents a metadata record describes (rows beyond it are ignored and later overwritten). */
  adopt(meta: StoreMeta): void {
    this.keyGroups = meta.params.bands;
    this.segments = [];
    meta.segments.forEach((m, i) => {
      const filter = this.filterWords(m.bloomWords, i);
      const fences = new Uint32Array(2 * m.blocks);
      // The parts hold the filter's words, then the fences'.
      let at = 0;
      for (const part of this.getAux.iterate(m.firstBlock) as IterableIterator<Buffer>) {
        const w = asWords(part);
        for (let k = 0; k < w.length; ) {
          const into = at < m.bloomWords ? filter.words.subarray(at) : fences.subarray(at - m.bloomWords);
          const n = Math.min(into.length, w.length - k);
          into.set(w.subarray(k, k + n));
          k += n;
          at += n;
        }
      }
      if (at !== m.bloomWords + fences.length) throw new Error(`LSH index ${this.dir}: segment ${i} is missing or incomplete (corrupt index?)`);
      this.segments.push({ meta: m, bloom: new BlockedBloom(filter.words, this.keyGroups), fences, stackAt: filter.stackAt });
    });
    this.spilledDocs = meta.spilledDocs;
    this.nextBlock = meta.nextBlock;
    this.cacheBlock = -1;
    this.cacheWords = undefined;
  }

  /** Forces what was written to stable storage (a checkpoint then never points at lost pages). */
  sync(): void {
    syncPath(this.file);
  }

  /** Bytes of the segments' Bloom filters and fences (kept in RAM), of all or of `segments`. */
  filterBytes(segments = this.segments): number {
    let b = 0;
    for (const s of segments) b += s.bloom.words.byteLength + s.fences.byteLength;
    return b;
  }

  /** Bytes the store keeps in RAM: filters, fences and the page cache. */
  ramBytes(): number {
    return this.filterBytes() + this.cacheBytes;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The index

export interface LshIndexOptions extends IndexParams {
  /** RAM budget of the index in bytes; beyond it entries and documents spill to the database. */
  memoryBytes: number;
  /** Directory of the database: the persisted index path, or a scratch directory for spills. */
  dir: () => string;
  /** True when `dir` is a persisted index (synced, metadata written at `finish`). */
  persist?: boolean;
  /** Called once when the Bloom filters alone outgrow their share of the budget. */
  warn?: (message: string) => void;
  /** Keep the documents' signatures (default true); exact verification of a scratch index does not need them. */
  signatures?: boolean;
}

export interface Candidate {
  slot: number;
}

/** The `hi` of a free cell of the RAM tier's table: above every band key (bands < 65536). */
const EMPTY = 0xffffffff;
/**
 * Highest load of the RAM tier's table before it doubles or spills. Its clusters are kept in key
 * order, so a lookup stops at the first larger key: at 3/4 load a key that is not there costs
 * about as many probes as one that is, where an unordered table would walk to the cluster's end.
 */
const MAX_LOAD = 0.75;
/** Cells past the table's home range, where its last cluster may run on (widened when it does). */
const TABLE_TAIL = 1024;
/**
 * Share of the index budget the spilled segments' Bloom filters may take at full bits per key;
 * beyond it later segments get fewer bits. While the filters fit it costs nothing (the RAM tier
 * takes whatever they leave); with a budget too small for the index, a smaller RAM tier (more
 * spills) costs far less than the false-positive reads of thinner filters: 1.25M documents at
 * `memoryMB: 32` took 48.4 s with 3/4 (0.70M block reads) against 61.2 s with half (3.49M).
 */
const FILTER_SHARE = 0.75;
/**
 * Bloom bits per key while the filters fit in their share: 12 (0.45% false positives with 6
 * probes in a 512-bit block, against 0.96% at 10). Each false positive is a block read from disk
 * (~10 us); the two bits cost a smaller RAM tier, so a few more spills.
 */
const BLOOM_BITS = 12;
const NO_SIGNATURE = new Uint32Array(0);
/** Bytes counted per document of the RAM tier for its place in `docChunk` and `docAt`. */
const SLOT_BYTES = 16;

/**
 * Words whose memory `release` gives back to the system at once: the collector frees a dropped
 * array only at its next full collection, which a small heap makes rare, so memory a spill gives
 * up would stay resident beside what the budget lets the next RAM tier take.
 */
function releasableWords(n: number): Uint32Array {
  return new Uint32Array(new (ArrayBuffer as ResizableArrayBufferConstructor)(4 * n, { maxByteLength: 4 * n }));
}

/** Frees the memory of an array from `releasableWords` (it reads as empty afterwards); other arrays are left to the collector. */
function release(words: Uint32Array): void {
  const buffer = words.buffer as ArrayBuffer & { resizable?: boolean; resize?: (n: number) => void };
  if (buffer.resizable && words.byteLength === buffer.byteLength) buffer.resize!(0);
}

type ResizableArrayBufferConstructor = new (bytes: number, options: { maxByteLength: number }) => ArrayBuffer;

/**
 * Band keys -> document slots, for the kept documents of a dedup run. Slots are assigned in
 * insertion order from 0. `candidates` returns the distinct slots sharing at least one band
 * key with the query, ascending, whatever part of the index lives on disk.
 */
export class LshIndex {
  readonly params: IndexParams;
  private readonly budget: number;
  private readonly cacheBytes: number;
  private store: Store | undefined;
  private readonly dirFn: () => string;
  private readonly persist: boolean;
  private readonly warn?: (m: string) => void;
  private warned = false;
  // RAM tier multimap: linear probing, duplicate keys allowed, `hi` EMPTY marks a free cell. A
  // key's home cell is its place in key order (band, then hash: keys are uniform within a band)
  // and every cluster is kept sorted, so the whole table is in key order: a spill writes it as it
  // is, with no sort, and a lookup stops at the first larger key.
  private cap = 0;
  /** Cells after `cap` (the arrays are cap + tail long; the last cell is always free). */
  private tail = TABLE_TAIL;
  private homeScale = 0;
  /** Cells of three words: hi, lo, slot (one cache line holds a cell and its neighbours). */
  private cells: Uint32Array = new Uint32Array(0);
  private used = 0;
  // RAM tier documents, stored as in document blocks, packed into chunks of words.
  private readonly chunkWords: number;
  private chunks: Uint32Array[] = [];
  private chunkFill: number[] = [];
  private arenaWords = 0;
  private docChunk: number[] = [];
  private docAt: number[] = [];
  /** The chunk new documents go to (earlier ones are full). */
  private activeChunk = 0;
  /** First slot of the RAM tier. */
  private ramStart = 0;
  private nextSlot = 0;
  private readonly signatures: boolean;
  spills = 0;
  /** Merges of spilled segments. */
  merges = 0;
  /** Changes with every spill (and merge): Bloom answers computed before a change no longer apply. */
  generation = 0;

  constructor(o: LshIndexOptions) {
    this.params = { bands: o.bands, rows: o.rows, perms: o.perms, threshold: o.threshold, shingles: o.shingles, ...(o.family !== undefined && { family: o.family }) };
    // Band keys carry the band in the top 16 bits of `hi`.
    if (!(o.bands >= 1 && o.bands < 65536)) throw new Error(`LSH index: bands must be 1 .. 65535, got ${o.bands}`);
    // The on-disk store's page cache is part of the budget.
    this.cacheBytes = storeCacheBytes(o.memoryBytes);
    this.budget = Math.max(o.memoryBytes / 2, o.memoryBytes - this.cacheBytes);
    this.dirFn = o.dir;
    this.persist = !!o.persist;
    this.warn = o.warn;
    this.signatures = o.signatures ?? true;
    this.chunkWords = Math.min(1 << 20, Math.max(4096, Math.floor(this.budget / 256)));
    this.resize(1024);
  }

  /** Disk-tier work so far: segments, band-entry block reads (and how many held the key), documents read. */
  get diskStats(): { segments: number; blockReads: number; blockHits: number; docReads: number } {
    const s = this.store;
    return { segments: s?.segments.length ?? 0, blockReads: s?.blockReads ?? 0, blockHits: s?.blockHits ?? 0, docReads: s?.docReads ?? 0 };
  }

  get size(): number {
    return this.nextSlot;
  }

  /**
   * Empties the table (`keep` false) or moves its entries into one of `cap` home cells. Entries
   * leave the old table in key order, so each goes to the first free cell from its home on.
   */
  private resize(cap: number, keep = true): void {
    if (!keep && cap <= this.cap) {
      // Emptied in place, shrunk within its own array: no new array, and the part it leaves
      // becomes document chunks.
      const need = 3 * (cap + this.tail);
      const old = this.cells;
      this.useTable(old.subarray(0, need), cap, this.tail);
      this.donate(old.subarray(need));
      return;
    }
    const old = this.cells, oLen = keep ? old.length : 0;
    for (;;) {
      this.allocateTable(cap, this.tail);
      const cells = this.cells, last = cells.length - 3;
      let next = 0;
      for (let c = 0; c < oLen && next < last; c += 3) {
        if (old[c] === EMPTY) continue;
        const at = Math.max(3 * this.home(old[c], old[c + 1]), next);
        cells[at] = old[c];
        cells[at + 1] = old[c + 1];
        cells[at + 2] = old[c + 2];
        next = at + 3;
        this.used++;
      }
      if (next < last) return;
      this.tail *= 2;
    }
  }

  /**
   * The part of its array a shrunk table leaves becomes document chunks (as many whole ones as
   * it holds): a smaller new array would leave the old one (100 MB at a 256 MB budget) as garbage
   * the collector finds late, on top of the budget. (A table replaced by a larger one is left to
   * the collector: its array, cut into chunks, would stay resident until every chunk is dropped.)
   */
  private donate(words: Uint32Array): void {
    for (let at = 0; at + this.chunkWords <= words.length; at += this.chunkWords) {
      this.chunks.push(words.subarray(at, at + this.chunkWords));
      this.chunkFill.push(0);
      this.arenaWords += this.chunkWords;
    }
  }

  private allocateTable(cap: number, tail: number): void {
    this.useTable(new Uint32Array(3 * (cap + tail)), cap, tail);
  }

  /** Takes `cells` (cap + tail cells of three words) as the table, emptied. */
  private useTable(cells: Uint32Array, cap: number, tail: number): void {
    this.cap = cap;
    this.tail = tail;
    this.homeScale = cap / this.params.bands;
    this.cells = cells;
    for (let c = 0; c < cells.length; c += 3) cells[c] = EMPTY;
    this.used = 0;
  }

  /** The key's home cell: its place in key order, as the Bloom filters place keys. */
  private home(hi: number, lo: number): number {
    const at = Math.floor(keyPlace(hi, lo) * this.homeScale);
    return at < this.cap ? at : this.cap - 1;
  }

  /** Inserts after the entries of smaller or equal keys (equal keys stay in slot order), moving the rest of the cluster on by one cell. */
  private insert(hi: number, lo: number, slot: number): void {
    const cells = this.cells;
    let c = 3 * this.home(hi, lo);
    let h = cells[c];
    while (h < hi || (h === hi && cells[c + 1] <= lo)) h = cells[(c += 3)];
    let end = c;
    while (cells[end] !== EMPTY) end += 3;
    if (end === cells.length - 3) {
      this.widenTail();
      this.insert(hi, lo, slot);
      return;
    }
    if (end > c) cells.copyWithin(c + 3, c, end);
    cells[c] = hi;
    cells[c + 1] = lo;
    cells[c + 2] = slot;
    this.used++;
  }

  /** The table's entries, in key order. */
  private forEachEntry(put: (hi: number, lo: number, slot: number) => void): void {
    const cells = this.cells;
    for (let c = 0; c < cells.length; c += 3) if (cells[c] !== EMPTY) put(cells[c], cells[c + 1], cells[c + 2]);
  }

  /** Doubles the cells after the home range (many equal keys at the end of key order ran into them). */
  private widenTail(): void {
    const old = this.cells, used = this.used;
    this.allocateTable(this.cap, this.tail * 2);
    this.cells.set(old);
    this.used = used;
  }

  /**
   * Bytes held in RAM: the RAM tier (table and document chunks; a spill writes the table as it
   * lies, so it needs no scratch) plus the spilled segments' filters and fences.
   */
  ramBytes(cap = this.cap): number {
    return (cap + this.tail) * ENTRY_BYTES + this.arenaWords * 4 + this.docAt.length * SLOT_BYTES + (this.store?.filterBytes() ?? 0);
  }

  /**
   * The size the table grows to when it is full: up to twice its cells, as many as fit the budget
   * beside the table it replaces (both exist while entries move over); 0 when that is under 5/4
   * of it, and the tier spills instead.
   */
  private grownCap(): number {
    const cap = Math.min(2 * this.cap, Math.floor((this.budget - this.ramBytes()) / ENTRY_BYTES) - this.tail);
    return cap >= 1.25 * this.cap ? cap : 0;
  }

  /** Adds a kept document with its band keys (from `bandKeys`); returns its slot. */
  add(doc: IndexedDoc, keys: Uint32Array): number {
    const bands = this.params.bands;
    if (this.used + bands > MAX_LOAD * this.cap) {
      const grown = this.grownCap();
      if (grown === 0 && this.nextSlot > this.ramStart) this.spill();
      if (this.used + bands > MAX_LOAD * this.cap) this.resize(grown || this.cap * 2);
    }
    const slot = this.nextSlot++;
    for (let b = 0; b < bands; b++) this.insert(keys[2 * b], keys[2 * b + 1], slot);
    if (!this.signatures) doc = { id: doc.id, signature: NO_SIGNATURE, shingles: doc.shingles };
    this.storeRamDoc(doc);
    // A tier holding little is not spilled even over the budget (when the filters alone take
    // nearly all of it): that would write a segment per document.
    if (this.ramBytes() > this.budget && this.filledBytes() >= this.budget / 16) this.spill();
    return slot;
  }

  private storeRamDoc(doc: IndexedDoc): void {
    const idb = wtf8Bytes(doc.id);
    const need = docWords(doc, idb);
    let c = this.activeChunk;
    while (c < this.chunks.length && this.chunkFill[c] + need > this.chunks[c].length) c++;
    if (c === this.chunks.length) {
      const size = Math.max(this.chunkWords, need);
      this.chunks.push(releasableWords(size));
      this.chunkFill.push(0);
      this.arenaWords += size;
    }
    // An oversized document gets a chunk of its own; the others fill the chunks in turn.
    if (need <= this.chunkWords) this.activeChunk = c;
    this.docChunk.push(c);
    this.docAt.push(this.chunkFill[c]);
    this.chunkFill[c] = writeDoc(this.chunks[c], this.chunkFill[c], doc, idb);
  }

  /** A document of the RAM tier (its arrays are views into the tier's chunks). */
  private ramDoc(k: number): IndexedDoc {
    return readDoc(this.chunks[this.docChunk[k]], this.docAt[k], true);
  }

  /** The stored words of a document of the RAM tier (a view into its chunk). */
  private ramDocWords(k: number): Uint32Array {
    const words = this.chunks[this.docChunk[k]], at = this.docAt[k];
    return words.subarray(at, at + storedDocWords(words, at));
  }

  /** Bytes of entries and documents in the RAM tier (what a spill would write). */
  private filledBytes(): number {
    return this.used * ENTRY_BYTES + this.ramDocBytes();
  }

  /** Bytes of the RAM tier's stored documents (the filled part of its chunks). */
  private ramDocBytes(): number {
    let words = 0;
    for (const f of this.chunkFill) words += f;
    return words * 4;
  }

  /** Empties the RAM tier's documents; chunks of the standard size are kept for the next tier, up to `keepBytes`. */
  private clearRamDocs(keepBytes = 0): void {
    // Chunks cut from a table's array are kept first: dropping one frees nothing while the rest
    // of its array is in use.
    const standard = this.chunks.filter((c) => c.length === this.chunkWords);
    const ordered = [...standard.filter((c) => c.byteLength < c.buffer.byteLength), ...standard.filter((c) => c.byteLength === c.buffer.byteLength)];
    const kept = ordered.slice(0, Math.floor(keepBytes / (this.chunkWords * 4)));
    for (const c of this.chunks) if (!kept.includes(c)) release(c);
    this.chunks = kept;
    this.chunkFill = this.chunks.map(() => 0);
    this.arenaWords = this.chunks.length * this.chunkWords;
    this.activeChunk = 0;
    this.docChunk = [];
    this.docAt = [];
  }

  /** Distinct slots sharing a band key with `keys`, ascending. */
  candidates(keys: Uint32Array): number[] {
    const out: number[] = [];
    for (let b = 0; b < this.params.bands; b++) this.addBandCandidates(keys, b, out);
    return sortUnique(out);
  }

  /**
   * Distinct slots sharing band `band`'s key of `keys`, ascending. `maybe`: the spilled segments
   * whose Bloom filters pass the key, from `probeSegments` over this index's `probeTask` in the
   * current generation (-1: probe them here).
   */
  bandCandidates(keys: Uint32Array, band: number, maybe = -1): number[] {
    const out: number[] = [];
    this.addBandCandidates(keys, band, out, maybe);
    return sortUnique(out);
  }

  /**
   * The Bloom probes of `keys` (band keys of documents, as `bandKeys` makes them) against the
   * spilled segments, as a task for `probeSegments`; undefined when there is nothing to probe
   * (no segments, or more than a bit mask holds).
   */
  probeTask(keys: Uint32Array): ProbeTask | undefined {
    const segments = this.store?.segments ?? [];
    if (segments.length === 0 || segments.length > 32) return undefined;
    return { filters: segments.map((s) => s.bloom.words), groups: this.params.bands, keys };
  }

  private addBandCandidates(keys: Uint32Array, band: number, out: number[], maybe = -1): void {
    const hi = keys[2 * band], lo = keys[2 * band + 1];
    const cells = this.cells;
    let c = 3 * this.home(hi, lo);
    let h = cells[c];
    while (h < hi || (h === hi && cells[c + 1] < lo)) h = cells[(c += 3)];
    while (h === hi && cells[c + 1] === lo) {
      out.push(cells[c + 2]);
      h = cells[(c += 3)];
    }
    this.store?.lookup(hi, lo, out, maybe);
  }

  getDoc(slot: number): IndexedDoc {
    if (slot >= this.ramStart) return this.ramDoc(slot - this.ramStart);
    return this.store!.getDoc(slot);
  }

  private openStore(): Store {
    return (this.store ??= new Store(this.dirFn(), false, this.persist, this.cacheBytes, this.budget * FILTER_SHARE, this.params.bands));
  }

  /** Moves the RAM tier to the database as a new segment. */
  spill(): void {
    if (this.nextSlot === this.ramStart) return;
    const store = this.openStore();
    // What the tier's documents took per band entry, slot bookkeeping included: the next tier's
    // table is sized by it.
    const docBytesPerEntry = (this.ramDocBytes() + this.docAt.length * SLOT_BYTES) / Math.max(1, this.used);
    // The table is in key order: its entries are written as they lie.
    store.writeSegment(this.used, this.bloomBits(this.used), (put) => this.forEachEntry(put));
    store.writeDocs(this.ramStart, this.docAt.length, (k) => this.ramDocWords(k));
    this.ramStart = this.nextSlot;
    this.mergeSegments();
    // The next RAM tier reuses the table (emptied in place) and the document chunks, as far as
    // they fit beside the segments' filters, which grow with every spill.
    const room = this.budget - store.filterBytes();
    const cap = Math.min(this.cap, this.tierCap(room, docBytesPerEntry));
    this.resize(cap, false);
    // The documents' slot bookkeeping comes on top of their chunks.
    const bookkeeping = ((MAX_LOAD * cap) / this.params.bands) * SLOT_BYTES;
    this.clearRamDocs(Math.max(0, room - (cap + this.tail) * ENTRY_BYTES - bookkeeping));
    this.spills++;
    this.generation++;
  }

  /**
   * Cells of a RAM tier's table that, filled to MAX_LOAD, leave just the room its documents need
   * (at `docBytesPerEntry`) within `room`: table and documents reach the budget together, so the
   * tier spills full. (Halving the table until it fit half the room left tiers anywhere between a
   * half and all of it, and many more spills.)
   */
  private tierCap(room: number, docBytesPerEntry: number): number {
    const entries = room / (ENTRY_BYTES / MAX_LOAD + docBytesPerEntry);
    return Math.max(1024, Math.floor(entries / MAX_LOAD) - this.tail);
  }

  /**
   * Keeps the number of spilled segments logarithmic in the index size (every lookup probes each
   * segment's Bloom filter, and each false positive costs a read): whenever the last MERGE_FAN_IN
   * segments are of about the same size they become one.
   */
  private mergeSegments(): void {
    const store = this.store!;
    for (;;) {
      const segs = store.segments;
      if (segs.length < MERGE_FAN_IN) return;
      const tail = segs.slice(-MERGE_FAN_IN).map((s) => s.meta.entries);
      if (Math.max(...tail) > 3 * Math.min(...tail)) return;
      const from = segs.length - MERGE_FAN_IN;
      const n = tail.reduce((a, b) => a + b, 0);
      store.mergeSegments(from, segs.length, this.bloomBits(n, store.filterBytes(segs.slice(from))));
      this.merges++;
    }
  }

  // BLOOM_BITS per key while the filters fit in their share of the budget, fewer beyond that: a
  // full filter set costs extra disk reads, never results.
  private bloomBits(n: number, replaced = 0): number {
    const have = (this.store?.filterBytes() ?? 0) - replaced;
    const room = this.budget * FILTER_SHARE - have;
    const bits = Math.floor((room * 8) / n);
    if (bits >= BLOOM_BITS) return BLOOM_BITS;
    if (!this.warned) {
      this.warned = true;
      this.warn?.(`the index's Bloom filters outgrow ${FILTER_SHARE * 100}% of the memory budget; lookups of spilled keys read the disk more often (raise memoryMB to keep them fast)`);
    }
    return Math.max(4, bits);
  }

  /** Persists the index (when it was created with `persist`): spills what is in RAM and writes the metadata. */
  finish(): void {
    if (!this.persist) return;
    this.openStore();
    this.spill();
    this.store!.saveMeta(this.params, this.nextSlot);
    // Finished: no longer being written (see `claimIndexDir`), nor waiting for a resume.
    rmSync(path.join(this.dirFn(), INDEX_CHECKPOINT), { force: true });
    releaseLock(path.join(this.dirFn(), INDEX_LOCK));
  }

  /**
   * Writes the index's state into `dir` (a checkpoint): the RAM tier as two files, and what the
   * database holds so far (synced first). `LshIndex.restore` continues from it.
   */
  save(dir: string): void {
    if (this.store) {
      this.store.sync();
      // The checkpoint refers to the segments stored now: merging must no longer delete them.
      this.store.keepRetired = true;
    }
    const entries = new Uint32Array(3 * this.used);
    let k = 0;
    this.forEachEntry((hi, lo, slot) => {
      entries[k++] = hi;
      entries[k++] = lo;
      entries[k++] = slot;
    });
    writeFileSync(path.join(dir, 'ram-entries.bin'), wordsToBuffer(entries));
    // The checkpoint syncs the files of `dir` before it commits.
    // Documents in slot order (chunks are reused, so chunk order need not be slot order).
    const fd = openSync(path.join(dir, 'ram-docs.bin'), 'w');
    try {
      const buf = new Uint32Array(1 << 18);
      let fill = 0;
      for (let k = 0; k < this.docAt.length; k++) {
        const words = this.chunks[this.docChunk[k]];
        const at = this.docAt[k];
        const len = storedDocWords(words, at);
        if (fill + len > buf.length) {
          writeAll(fd, wordsToBuffer(buf.subarray(0, fill)));
          fill = 0;
        }
        if (len > buf.length) writeAll(fd, wordsToBuffer(words.subarray(at, at + len)));
        else {
          buf.set(words.subarray(at, at + len), fill);
          fill += len;
        }
      }
      writeAll(fd, wordsToBuffer(buf.subarray(0, fill)));
    } finally {
      closeSync(fd);
    }
    const state: SavedIndex = {
      format: FORMAT,
      params: this.params,
      cap: this.cap,
      ramStart: this.ramStart,
      nextSlot: this.nextSlot,
      spills: this.spills,
      merges: this.merges,
      signatures: this.signatures,
      store: this.store?.describe(this.params, this.nextSlot),
    };
    writeFileSync(path.join(dir, 'lsh-index.json'), JSON.stringify(state));
  }

  /** An index continuing from a checkpoint written by `save`, over the same database directory. */
  static restore(o: LshIndexOptions, dir: string): LshIndex {
    const state = JSON.parse(readFileSync(path.join(dir, 'lsh-index.json'), 'utf8')) as SavedIndex;
    if (state.format !== FORMAT) throw new Error(`${dir}: not a checkpoint of a mixstream LSH index`);
    const index = new LshIndex({ ...o, ...state.params, signatures: state.signatures });
    index.resize(state.cap, false);
    const entries = toWords(readFileSync(path.join(dir, 'ram-entries.bin')));
    for (let k = 0; k < entries.length; k += 3) index.insert(entries[k], entries[k + 1], entries[k + 2]);
    const docs = toWords(readFileSync(path.join(dir, 'ram-docs.bin')));
    if (docs.length) {
      index.chunks.push(docs);
      index.chunkFill.push(docs.length);
      index.arenaWords = docs.length;
      for (let at = 0; at < docs.length; at += storedDocWords(docs, at)) {
        index.docChunk.push(0);
        index.docAt.push(at);
      }
    }
    index.ramStart = state.ramStart;
    index.nextSlot = state.nextSlot;
    index.spills = state.spills;
    index.merges = state.merges;
    if (index.docAt.length !== state.nextSlot - state.ramStart) throw new Error(`${dir}: the checkpointed LSH index is incomplete`);
    if (state.store) {
      const store = index.openStore();
      store.adopt(state.store);
      store.keepRetired = true;
    }
    return index;
  }

  close(): void {
    this.store?.close();
    this.store = undefined;
  }
}

interface SavedIndex {
  format: string;
  params: IndexParams;
  cap: number;
  ramStart: number;
  nextSlot: number;
  spills: number;
  merges: number;
  signatures: boolean;
  store?: StoreMeta;
}

/**
 * Page cache of the on-disk store: a 32nd of the index budget, within 2 to 64 MB. Lookups read
 * blocks at random from a file far larger than any cache, so a larger cache hardly ever hits; it
 * holds the B-trees' inner pages and a spill's transaction, and the rest of the budget is better
 * spent on the RAM tier (5M documents at memoryMB 256: 8 MB against 32 MB, 15 spills against 21,
 * 165.8 s against 171.2 s, same output).
 */
export function storeCacheBytes(budget: number): number {
  return Math.min(64 * 1024 * 1024, Math.max(2 * 1024 * 1024, budget / 32));
}

function sortUnique(out: number[]): number[] {
  if (out.length > 1) {
    out.sort((x, y) => x - y);
    let u = 1;
    for (let k = 1; k < out.length; k++) if (out[k] !== out[u - 1]) out[u++] = out[k];
    out.length = u;
  }
  return out;
}

/**
 * What an existing `writeIndex` directory holds: "finished" (an index a run completed),
 * "unfinished" (only the database a stopped run was writing, without the metadata a finished
 * index gets last: it cannot be used and may be replaced), "in-use" (a running process holds its
 * database) or "other" (anything else).
 */
export function existingIndexState(dir: string): 'finished' | 'unfinished' | 'in-use' | 'other' {
  const files = readdirSync(dir);
  if (files.some((f) => !INDEX_FILES.includes(f))) return 'other';
  if (files.includes(INDEX_LOCK) && indexWriter(dir) !== undefined) return 'in-use';
  // Only the lock of a run that has ended: it stopped before writing anything.
  if (!files.includes(INDEX_FILE)) return files.length ? 'unfinished' : 'other';
  let db: Database.Database | undefined;
  try {
    // Read-write, so that a journal left by a killed writer is rolled back rather than refused.
    db = new Database(path.join(dir, INDEX_FILE), { fileMustExist: true, timeout: 0 });
    const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get();
    const meta = hasMeta ? db.prepare("SELECT value FROM meta WHERE key = 'index'").get() : undefined;
    return meta ? 'finished' : 'unfinished';
  } catch (e) {
    const code = (e as { code?: string }).code ?? '';
    return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED') ? 'in-use' : 'other';
  } finally {
    db?.close();
  }
}

/** Who is writing the index in `dir` when it is another process that may be running (see lib/io/lock.ts), or undefined. */
function indexWriter(dir: string): string | undefined {
  return lockHolder(path.join(dir, INDEX_LOCK));
}

/**
 * Claims `dir` for writing an index from the start of a run (the database itself appears only
 * when the index first spills, or at the end): a lock file holding this process's pid and host,
 * so of two runs starting on one path only one writes it. Returns who holds it when another
 * running process may (see lib/io/lock.ts); the lock of a run killed outright is taken over.
 * `finish` of a persisted index removes it.
 */
export function claimIndexDir(dir: string): string | undefined {
  mkdirSync(dir, { recursive: true });
  return claimLock(path.join(dir, INDEX_LOCK));
}

/** Gives up the claim of `claimIndexDir` when no index was written (a run without records): nothing is left. */
export function releaseIndexDir(dir: string): void {
  releaseLock(path.join(dir, INDEX_LOCK));
  try {
    rmdirSync(dir);
  } catch {
    // Not empty (an index is there) or already gone.
  }
}

/**
 * Records that a `--checkpoint` run writing the index in `dir` has a checkpoint (in
 * `checkpointPath`) it will resume from: another run must not start the index over.
 */
export function markIndexCheckpointed(dir: string, checkpointPath: string): void {
  const file = path.join(dir, INDEX_CHECKPOINT);
  if (!existsSync(file)) writeFileSync(file, checkpointPath);
}

/** The checkpoint an unfinished index in `dir` waits to be resumed from, while it is still there; else undefined. */
export function indexCheckpoint(dir: string): string | undefined {
  let ref: string;
  try {
    ref = readFileSync(path.join(dir, INDEX_CHECKPOINT), 'utf8');
  } catch {
    return undefined;
  }
  return ref && existsSync(ref) ? ref : undefined;
}

/** Removes the database files of an index directory (see `existingIndexState`). */
export function removeIndexFiles(dir: string): void {
  for (const f of INDEX_FILES) rmSync(path.join(dir, f), { force: true });
}

/** The settings of the index persisted in `dir`, from its metadata alone (its filters are not loaded). */
export function readIndexParams(dir: string): IndexParams {
  const store = new Store(dir, true, false, 256 * 1024);
  try {
    return store.readMeta(dir).params;
  } finally {
    store.close();
  }
}

/** A persisted index opened read-only (`against`). */
export class LshIndexReader {
  readonly params: IndexParams;
  readonly docs: number;
  private readonly store: Store;


  /** `cacheBytes`: the page cache of the index file. */
  constructor(readonly path: string, cacheBytes = 16 * 1024 * 1024) {
    this.store = new Store(path, true, false, cacheBytes);
    try {
      const meta = this.store.loadMeta(path);
      this.params = meta.params;
      this.docs = meta.docs;
    } catch (e) {
      this.store.close();
      throw e;
    }
  }

  /** Distinct slots sharing a band key with `keys`, ascending. */
  candidates(keys: Uint32Array): number[] {
    const out: number[] = [];
    for (let b = 0; b < this.params.bands; b++) this.store.lookup(keys[2 * b], keys[2 * b + 1], out);
    return sortUnique(out);
  }

  /** Distinct slots sharing band `band`'s key of `keys`, ascending. */
  bandCandidates(keys: Uint32Array, band: number): number[] {
    const out: number[] = [];
    this.store.lookup(keys[2 * band], keys[2 * band + 1], out);
    return sortUnique(out);
  }

  getDoc(slot: number): IndexedDoc {
    return this.store.getDoc(slot);
  }

  /** Band-entry blocks read so far (and how many of them held the key looked up). */
  get diskStats(): { blockReads: number; blockHits: number } {
    return { blockReads: this.store.blockReads, blockHits: this.store.blockHits };
  }

  allDocs(): Iterable<IndexedDoc> {
    return this.store.allDocs();
  }

  ramBytes(): number {
    return this.store.ramBytes();
  }

  close(): void {
    this.store.close();
  }
}
