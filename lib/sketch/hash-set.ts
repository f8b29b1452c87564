// A set of 128-bit content hashes for exact deduplication, with a memory budget that spills
// to LMDB beyond it, and save/load for checkpoints. No stream code.
//
// - `hash128` is MurmurHash3_x86_128 (seed 0) over the UTF-16LE code units of a string: two
//   code units per 32-bit word, so no UTF-8 encoding pass. Equal strings hash equal; distinct
//   strings collide with probability ~2^-128 per pair (non-cryptographic: collisions can be
//   crafted on purpose, but do not occur by chance). For n distinct documents the chance that
//   any two collide (and one is wrongly dropped) is about n^2 / 2^129: 1.5e-21 for 10^9
//   documents, 1.5e-15 for 10^12.
// - `HashSet128` keeps keys in an open-addressing table (linear probing, load <= 0.7) over a
//   Uint32Array, 4 words per slot (16 bytes), all-zero meaning empty. Optionally each key has a
//   string value (the id of the first copy), kept as WTF-8 (UTF-8 that keeps lone surrogates,
//   lib/text/wtf8.ts) in one byte arena with an offsets array. The table grows by doubling
//   while the peak during a resize (old + new arrays) and the arena fit the budget; when it
//   cannot grow, every entry is written to LMDB (sorted by key, in transactions of 32,768
//   keys) and the table is cleared in place. A key lives in exactly one tier, so membership answers, and therefore
//   dedup decisions, are the same whether or not the set spilled.
// - LMDB reads through a memory map, and the pages it maps count in the process's RSS (the
//   kernel maps up to 16 neighbours of each page read): 5M documents at 16 MB took 871 MB of
//   them. The file is reopened, which unmaps it, once they pass a quarter of the budget (at
//   least 32 MB); on Linux, where /proc says how many there are.
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { wtf8Bytes, wtf8String } from '../text/wtf8.ts';
import { fmix32 } from '../text/shingle.ts';

const C1 = 0x239b961b;
const C2 = 0xab0e9789;
const C3 = 0x38b34ae5;
const C4 = 0xa1e38b93;

const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));

/** MurmurHash3_x86_128 (seed 0) of the string's UTF-16LE code units, into `out` (4 words). */
export function hash128(s: string, out: Uint32Array = new Uint32Array(4)): Uint32Array {
  let h1 = 0, h2 = 0, h3 = 0, h4 = 0;
  const n = s.length;
  const blocks = n - (n & 7);
  let k1: number, k2: number, k3: number, k4: number;
  for (let i = 0; i < blocks; i += 8) {
    k1 = s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16);
    k2 = s.charCodeAt(i + 2) | (s.charCodeAt(i + 3) << 16);
    k3 = s.charCodeAt(i + 4) | (s.charCodeAt(i + 5) << 16);
    k4 = s.charCodeAt(i + 6) | (s.charCodeAt(i + 7) << 16);
    k1 = Math.imul(k1, C1); k1 = rotl(k1, 15); k1 = Math.imul(k1, C2); h1 ^= k1;
    h1 = rotl(h1, 19); h1 = (h1 + h2) | 0; h1 = (Math.imul(h1, 5) + 0x561ccd1b) | 0;
    k2 = Math.imul(k2, C2); k2 = rotl(k2, 16); k2 = Math.imul(k2, C3); h2 ^= k2;
    h2 = rotl(h2, 17); h2 = (h2 + h3) | 0; h2 = (Math.imul(h2, 5) + 0x0bcaa747) | 0;
    k3 = Math.imul(k3, C3); k3 = rotl(k3, 17); k3 = Math.imul(k3, C4); h3 ^= k3;
    h3 = rotl(h3, 15); h3 = (h3 + h4) | 0; h3 = (Math.imul(h3, 5) + 0x96cd1c35) | 0;
    k4 = Math.imul(k4, C4); k4 = rotl(k4, 18); k4 = Math.imul(k4, C1); h4 ^= k4;
    h4 = rotl(h4, 13); h4 = (h4 + h1) | 0; h4 = (Math.imul(h4, 5) + 0x32ac3b17) | 0;
  }
  // Tail: 0..7 code units, zero-padded words, mixed without the rotate-add step.
  const r = n - blocks;
  if (r > 0) {
    const u = (j: number) => (blocks + j < n ? s.charCodeAt(blocks + j) : 0);
    if (r > 6) { k4 = u(6) | (u(7) << 16); k4 = Math.imul(k4, C4); k4 = rotl(k4, 18); k4 = Math.imul(k4, C1); h4 ^= k4; }
    if (r > 4) { k3 = u(4) | (u(5) << 16); k3 = Math.imul(k3, C3); k3 = rotl(k3, 17); k3 = Math.imul(k3, C4); h3 ^= k3; }
    if (r > 2) { k2 = u(2) | (u(3) << 16); k2 = Math.imul(k2, C2); k2 = rotl(k2, 16); k2 = Math.imul(k2, C3); h2 ^= k2; }
    k1 = u(0) | (u(1) << 16); k1 = Math.imul(k1, C1); k1 = rotl(k1, 15); k1 = Math.imul(k1, C2); h1 ^= k1;
  }
  const len = 2 * n;
  h1 ^= len; h2 ^= len; h3 ^= len; h4 ^= len;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0; h3 = (h3 + h1) | 0; h4 = (h4 + h1) | 0;
  h1 = fmix32(h1); h2 = fmix32(h2); h3 = fmix32(h3); h4 = fmix32(h4);
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0; h3 = (h3 + h1) | 0; h4 = (h4 + h1) | 0;
  out[0] = h1; out[1] = h2; out[2] = h3; out[3] = h4;
  // All-zero marks an empty slot; the one key that hashes to it is moved next to it.
  if ((out[0] | out[1] | out[2] | out[3]) === 0) out[3] = 1;
  return out;
}

export interface HashSetOptions {
  /** Budget for the RAM tier (table, and ids when `values`), in bytes. */
  memoryBytes: number;
  /** Keep a string value per key (the id of the first copy). */
  values: boolean;
  /** Directory for the LMDB spill file, created on the first spill. */
  dir: () => string;
  /** File-backed bytes the LMDB file may keep mapped before it is reopened; default a quarter of memoryBytes, at least 32 MiB. */
  mappedBytes?: number;
}

/** Resident file-backed bytes of this process (mapped files, the program's own code among them); undefined where /proc does not say. */
export function fileBackedResidentBytes(): number | undefined {
  try {
    const m = /^RssFile:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'latin1'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** LMDB lookups between two looks at the mapped pages (a look costs ~7 us, a lookup ~1-2 us). */
const MAP_CHECK_EVERY = 256;
/** Keys written to LMDB per transaction when the RAM tier spills. */
const SPILL_TRANSACTION_KEYS = 1 << 15;

const SLOT_WORDS = 4;
const SLOT_BYTES = SLOT_WORDS * 4;
const MAX_LOAD = 0.7;
const MIN_CAPACITY = 16;
const FIRST_CAPACITY = 1 << 16;
const STATE_VERSION = 1;


export class HashSet128 {
  private keys: Uint32Array;
  /** Per slot: entry number of its value (values only). */
  private refs: Uint32Array | undefined;
  private arena: Buffer;
  private offsets: Uint32Array;
  private capacity: number;
  private mask: number;
  /** Keys in the RAM tier. */
  ramSize = 0;
  /** Keys in LMDB. */
  spilledSize = 0;
  /** Times the RAM tier was written out. */
  spills = 0;
  private arenaUsed = 0;
  private env: RootDatabase | undefined;
  private db: Database<Buffer, Buffer> | undefined;
  private dbFile: string | undefined;
  private readonly keyBuf = Buffer.alloc(16);
  /** LMDB lookups since the last look at the mapped pages; file-backed resident bytes when the file was last opened. */
  private lookups = 0;
  private residentAtOpen: number | undefined;
  /** Times the LMDB file was reopened to unmap its pages. */
  remaps = 0;

  constructor(private readonly o: HashSetOptions) {
    let cap = FIRST_CAPACITY;
    while (cap > MIN_CAPACITY && this.slotBytes() * cap * 2 > o.memoryBytes) cap >>>= 1;
    this.capacity = cap;
    this.mask = cap - 1;
    this.keys = new Uint32Array(cap * SLOT_WORDS);
    this.refs = o.values ? new Uint32Array(cap) : undefined;
    this.arena = Buffer.alloc(o.values ? Math.max(256, Math.min(1 << 16, o.memoryBytes >>> 3)) : 0);
    this.offsets = new Uint32Array(o.values ? Math.ceil(cap * MAX_LOAD) + 1 : 0);
  }

  get size(): number {
    return this.ramSize + this.spilledSize;
  }

  /** Bytes held by the RAM tier's arrays. */
  bytes(): number {
    return this.keys.byteLength + (this.refs?.byteLength ?? 0) + this.arena.byteLength + this.offsets.byteLength;
  }

  private slotBytes(): number {
    return SLOT_BYTES + (this.o.values ? 4 + 4 / MAX_LOAD : 0);
  }

  /** Slot holding `h`, or the empty slot where it would go (as -slot - 1). */
  private find(h: Uint32Array): number {
    const keys = this.keys;
    const h0 = h[0], h1 = h[1], h2 = h[2], h3 = h[3];
    let i = h0 & this.mask;
    for (;;) {
      const b = i * SLOT_WORDS;
      const k0 = keys[b];
      if (k0 === h0 && keys[b + 1] === h1 && keys[b + 2] === h2 && keys[b + 3] === h3) return i;
      if ((k0 | keys[b + 1] | keys[b + 2] | keys[b + 3]) === 0) return -i - 1;
      i = (i + 1) & this.mask;
    }
  }

  /**
   * Adds `h` unless present. Returns undefined when it was added, otherwise the stored value
   * ('' when the set keeps no values).
   */
  addIfAbsent(h: Uint32Array, value = ''): string | undefined {
    let at = this.find(h);
    if (at >= 0) return this.valueAt(at);
    if (this.spilledSize > 0) {
      if (++this.lookups === MAP_CHECK_EVERY) this.boundMappedPages();
      const v = this.db!.getBinaryFast(this.lmdbKey(h));
      // A fast read's buffer is a view of a larger one whose `length` alone is the value's.
      if (v !== undefined) return this.o.values ? wtf8String(v.subarray(0, v.length)) : '';
    }
    const bytes = this.o.values ? wtf8Bytes(value) : undefined;
    const valueBytes = bytes ? bytes.length : 0;
    if (!this.makeRoom(valueBytes)) at = this.find(h); // the table changed: probe again
    const slot = -at - 1;
    const b = slot * SLOT_WORDS;
    this.keys[b] = h[0];
    this.keys[b + 1] = h[1];
    this.keys[b + 2] = h[2];
    this.keys[b + 3] = h[3];
    if (this.refs) {
      const e = this.ramSize;
      this.arena.set(bytes!, this.arenaUsed);
      this.arenaUsed += valueBytes;
      this.offsets[e + 1] = this.arenaUsed;
      this.refs![slot] = e;
    }
    this.ramSize++;
    return undefined;
  }

  private valueAt(slot: number): string {
    if (!this.refs) return '';
    const e = this.refs[slot];
    return wtf8String(this.arena.subarray(this.offsets[e], this.offsets[e + 1]));
  }

  /** Ensures one more entry with `valueBytes` fits; returns false when the table was rebuilt or cleared. */
  private makeRoom(valueBytes: number): boolean {
    let unchanged = true;
    if (this.ramSize + 1 > this.capacity * MAX_LOAD) {
      const grown = this.capacity * 2;
      const peak = this.bytes() + grown * (SLOT_BYTES + (this.refs ? 4 : 0)) + (this.refs ? Math.ceil(grown * MAX_LOAD) * 4 : 0);
      if (peak <= this.o.memoryBytes) this.grow(grown);
      else this.spill();
      unchanged = false;
    }
    if (this.refs && this.arenaUsed + valueBytes > this.arena.length) {
      let size = this.arena.length * 2;
      while (size < this.arenaUsed + valueBytes) size *= 2;
      if (size < 2 ** 32 && this.bytes() + size <= this.o.memoryBytes) {
        const a = Buffer.alloc(size);
        this.arena.copy(a, 0, 0, this.arenaUsed);
        this.arena = a;
      } else {
        this.spill();
        unchanged = false;
        if (valueBytes > this.arena.length) this.arena = Buffer.alloc(valueBytes); // one id larger than the arena
      }
    }
    return unchanged;
  }

  private grow(capacity: number): void {
    const oldKeys = this.keys;
    const oldRefs = this.refs;
    this.capacity = capacity;
    this.mask = capacity - 1;
    this.keys = new Uint32Array(capacity * SLOT_WORDS);
    this.refs = oldRefs ? new Uint32Array(capacity) : undefined;
    if (oldRefs) {
      const offsets = new Uint32Array(Math.ceil(capacity * MAX_LOAD) + 1);
      offsets.set(this.offsets);
      this.offsets = offsets;
    }
    const h = new Uint32Array(4);
    for (let s = 0; s < oldKeys.length / SLOT_WORDS; s++) {
      const b = s * SLOT_WORDS;
      if ((oldKeys[b] | oldKeys[b + 1] | oldKeys[b + 2] | oldKeys[b + 3]) === 0) continue;
      h.set(oldKeys.subarray(b, b + SLOT_WORDS));
      const slot = -this.find(h) - 1;
      this.keys.set(h, slot * SLOT_WORDS);
      if (oldRefs) this.refs![slot] = oldRefs[s];
    }
  }

  private lmdbKey(h: Uint32Array): Buffer {
    // Big-endian words: LMDB's byte order of keys equals the word order the spill sorts by.
    const k = this.keyBuf;
    k.writeUInt32BE(h[0], 0);
    k.writeUInt32BE(h[1], 4);
    k.writeUInt32BE(h[2], 8);
    k.writeUInt32BE(h[3], 12);
    return k;
  }

  private openDb(file: string): void {
    this.dbFile = file;
    this.env = open({ path: file, noSubdir: true, noSync: true, keyEncoding: 'binary', encoding: 'binary' } as any);
    this.db = this.env as unknown as Database<Buffer, Buffer>;
    this.residentAtOpen = fileBackedResidentBytes();
  }

  /** Reopens the LMDB file (unmapping the pages read through it) once they pass their share of the budget. */
  private boundMappedPages(): void {
    this.lookups = 0;
    if (!this.env || this.residentAtOpen === undefined) return;
    const now = fileBackedResidentBytes();
    if (now === undefined || now - this.residentAtOpen <= (this.o.mappedBytes ?? Math.max(32 * 2 ** 20, this.o.memoryBytes / 4))) return;
    // Writes are synchronous (transactionSync): nothing is pending, so the file closes at once.
    this.env.close();
    this.openDb(this.dbFile!);
    this.remaps++;
  }

  private spillFile(): string {
    const dir = this.o.dir();
    mkdirSync(dir, { recursive: true });
    return path.join(dir, 'exact-dedup.mdb');
  }

  /** Writes every RAM entry to LMDB (sorted by key) and clears the table in place. */
  spill(): void {
    if (this.ramSize === 0) return;
    if (!this.db) this.openDb(this.spillFile());
    const keys = this.keys;
    const slots: number[] = [];
    for (let s = 0; s < this.capacity; s++) {
      const b = s * SLOT_WORDS;
      if ((keys[b] | keys[b + 1] | keys[b + 2] | keys[b + 3]) !== 0) slots.push(s);
    }
    slots.sort((x, y) => {
      const a = x * SLOT_WORDS, b = y * SLOT_WORDS;
      for (let w = 0; w < SLOT_WORDS; w++) if (keys[a + w] !== keys[b + w]) return keys[a + w] - keys[b + w];
      return 0;
    });
    const empty = Buffer.alloc(0);
    // In transactions of a run of keys each: a transaction holds a copy of every page it changes
    // until it commits, and keys spread over the whole file change most of its pages (one
    // transaction per spill took ~300 MB of RSS at 4M keys).
    for (let from = 0; from < slots.length; from += SPILL_TRANSACTION_KEYS) {
      this.env!.transactionSync(() => {
        for (const s of slots.slice(from, from + SPILL_TRANSACTION_KEYS)) {
          const key = this.lmdbKey(keys.subarray(s * SLOT_WORDS, s * SLOT_WORDS + SLOT_WORDS));
          const e = this.refs?.[s] ?? 0;
          const value = this.refs ? Buffer.from(this.arena.buffer, this.arena.byteOffset + this.offsets[e], this.offsets[e + 1] - this.offsets[e]) : empty;
          this.db!.putSync(key, value);
        }
      });
      this.boundMappedPages();
    }
    this.spilledSize += this.ramSize;
    this.spills++;
    this.keys.fill(0);
    this.ramSize = 0;
    this.arenaUsed = 0;
  }

  /** Writes the whole set into the directory `dir` (RAM entries compactly, plus a copy of the LMDB file). */
  async save(dir: string): Promise<void> {
    mkdirSync(dir, { recursive: true });
    const n = this.ramSize;
    const keys = new Uint32Array(n * SLOT_WORDS);
    const lengths = new Uint32Array(this.refs ? n : 0);
    const ids: Uint8Array[] = [];
    let e = 0;
    for (let s = 0; s < this.capacity; s++) {
      const b = s * SLOT_WORDS;
      if ((this.keys[b] | this.keys[b + 1] | this.keys[b + 2] | this.keys[b + 3]) === 0) continue;
      keys.set(this.keys.subarray(b, b + SLOT_WORDS), e * SLOT_WORDS);
      if (this.refs) {
        const r = this.refs[s];
        const v = this.arena.subarray(this.offsets[r], this.offsets[r + 1]);
        lengths[e] = v.length;
        ids.push(v);
      }
      e++;
    }
    writeFileSync(path.join(dir, 'keys.u32'), keys);
    if (this.refs) {
      writeFileSync(path.join(dir, 'id-lengths.u32'), lengths);
      writeFileSync(path.join(dir, 'ids.bin'), Buffer.concat(ids));
    }
    if (this.env) await this.env.backup(path.join(dir, 'spill.mdb'), false);
    const state = { version: STATE_VERSION, hash: 'murmur3-x86-128-utf16le', values: this.o.values, ramSize: n, spilledSize: this.spilledSize, spills: this.spills, capacity: this.capacity };
    writeFileSync(path.join(dir, 'state.json'), JSON.stringify(state));
  }

  /** Replaces the contents of this (empty) set with what `save` wrote into `dir`. */
  load(dir: string): void {
    if (this.size > 0) throw new Error('HashSet128.load: the set is not empty');
    const state = JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8'));
    if (state.version !== STATE_VERSION || state.hash !== 'murmur3-x86-128-utf16le') throw new Error(`${dir}: saved by an incompatible version (${state.hash} v${state.version})`);
    if (state.values !== this.o.values) throw new Error(`${dir}: saved ${state.values ? 'with' : 'without'} ids of first copies, but this step ${this.o.values ? 'needs' : 'does not keep'} them (was "emit" changed?)`);
    if (state.spilledSize > 0) {
      const file = this.spillFile();
      copyFileSync(path.join(dir, 'spill.mdb'), file);
      this.openDb(file);
      this.spilledSize = state.spilledSize;
    }
    this.spills = state.spills;
    const keys = u32(readFileSync(path.join(dir, 'keys.u32')));
    const lengths = this.o.values ? u32(readFileSync(path.join(dir, 'id-lengths.u32'))) : undefined;
    const ids = this.o.values ? readFileSync(path.join(dir, 'ids.bin')) : undefined;
    const h = new Uint32Array(4);
    let pos = 0;
    for (let e = 0; e < state.ramSize; e++) {
      h.set(keys.subarray(e * SLOT_WORDS, e * SLOT_WORDS + SLOT_WORDS));
      const id = lengths ? wtf8String(ids!.subarray(pos, (pos += lengths[e]))) : '';
      this.addIfAbsent(h, id);
    }
  }

  /** Closes LMDB and removes the spill file. */
  close(): void {
    if (this.env) {
      this.env.close();
      this.env = undefined;
      this.db = undefined;
      const file = path.join(this.o.dir(), 'exact-dedup.mdb');
      rmSync(file, { force: true });
      rmSync(file + '-lock', { force: true });
    }
  }
}

function u32(buf: Buffer): Uint32Array {
  return new Uint32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}
