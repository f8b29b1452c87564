// A Bloom filter over 64-bit keys given as two 32-bit halves (see lib/text/ngrams.ts), with its
// size chosen from the expected number of items and the false-positive rate, and a file format
// that carries the parameters needed to query it correctly. No stream code.
//
// Sizing (Bloom 1970; the standard optimum): m = ceil(-n ln p / (ln 2)^2) bits, rounded up to a
// multiple of 64, and k = round((m / n) ln 2) probes (at least 1). For p = 1e-6: 28.8 bits and
// 20 probes per item. Double hashing derives all k probes from a pair (x_0, y_0) in [0, m)^2, so a
// key whose pair equals an added key's passes whatever k is: a floor of n / m^2 on the rate. At
// the optimum that floor is negligible for large n but not for small ones (143 n-grams at 1e-6:
// m = 4,160 bits, floor 8e-6, and 7e-6 measured): m is at least sqrt(10 n / p), which keeps the
// floor within a tenth of p, the rest is sized for 0.9 p, and k stays at most ceil(log2(1 / p)).
//
// Probes: enhanced double hashing (Dillinger & Manolios 2004): probe i sets bit x_i where
// x_{i+1} = (x_i + y_i) mod m, y_{i+1} = (y_i + i) mod m. Up to 2^32 bits, x_0 and y_0 are the
// key's two 32-bit halves scaled to [0, m) by a multiply (floor(h * m / 2^32)); above, two 53-bit
// values mixed from both halves, reduced modulo m. All arithmetic stays below 2^53, so filters
// larger than 2^32 bits work with plain numbers. A query stops at the first unset bit:
// on a filter at its design load half the bits are set, so a clean key costs about 2 probes.
//
// File format (little-endian):
//   bytes 0-7   magic "MXBLOOM\0"
//   bytes 8-11  format version (uint32, 1)
//   bytes 12-15 header length H (uint32)
//   bytes 16..  H bytes of UTF-8 JSON: { m, k, n, expectedItems, fpRate, hash, ...meta }
//               (meta: n-gram size and word-form options for decontamination filters)
//   then zero padding to a multiple of 8, then m/8 bytes of bits (bit j of the filter is bit
//   j % 32 of the uint32 word j >> 5).
import { closeSync, openSync, readSync, renameSync, rmSync, writeSync, fstatSync } from 'node:fs';
import { fmix32 } from '../text/shingle.ts';

export const BLOOM_MAGIC = 'MXBLOOM\0';
export const BLOOM_VERSION = 1;
/** Largest filter this implementation allocates: 2^35 bits (4 GiB). */
export const MAX_BLOOM_BITS = 2 ** 35;

export interface BloomParams {
  /** Number of bits (a multiple of 64). */
  m: number;
  /** Number of probes per key. */
  k: number;
}

/** The optimal m (bits) and k for `expectedItems` at false-positive rate `fpRate`. */
export function bloomParams(expectedItems: number, fpRate: number): BloomParams {
  if (!(expectedItems >= 0) || !Number.isFinite(expectedItems)) throw new Error(`bloom: expected items must be a number >= 0, got ${expectedItems}`);
  if (!(fpRate > 0 && fpRate < 1)) throw new Error(`bloom: false-positive rate must be in (0, 1), got ${fpRate}`);
  const n = Math.max(1, expectedItems);
  // The optimum for 0.9 p, so that with the floor (at most p / 10) the rate stays within p.
  const optimal = Math.ceil((-n * Math.log(0.9 * fpRate)) / (Math.LN2 * Math.LN2));
  const bits = Math.max(optimal, Math.ceil(Math.sqrt((10 * n) / fpRate)));
  const m = Math.max(64, Math.ceil(bits / 64) * 64);
  if (m > MAX_BLOOM_BITS) {
    throw new Error(`bloom: ${expectedItems} items at rate ${fpRate} need ${(m / 8 / 2 ** 30).toFixed(1)} GiB, above the 4 GiB limit; raise the rate or split the evaluation sets`);
  }
  const k = Math.max(1, Math.min(Math.round((m / n) * Math.LN2), Math.ceil(-Math.log2(fpRate)), 64));
  return { m, k };
}

/**
 * The false-positive rate of a filter with m bits and k probes holding n distinct items, with
 * the floor of double hashing (a key with an added key's probe pair: n / m^2).
 */
export function expectedFpRate(m: number, k: number, n: number): number {
  return Math.pow(1 - Math.exp((-k * n) / m), k) + n / (m * m);
}

const TWO32 = 2 ** 32;
const TWO21 = 2 ** 21;
/** Probe start of the last key (module scratch: avoids an allocation per lookup). */
let px = 0;
let py = 0;
export const BLOOM_PROBES = 'enhanced-double-hashing/v2';

export class BloomFilter {
  readonly m: number;
  readonly k: number;
  /** Keys added that were not already (apparently) present: the distinct-item count, up to false positives. */
  n = 0;
  readonly words: Uint32Array;
  /** Free-form parameters stored in the file header. */
  meta: Record<string, unknown>;
  private readonly small: boolean;

  constructor(params: BloomParams, meta: Record<string, unknown> = {}, words?: Uint32Array) {
    const { m, k } = params;
    if (!Number.isInteger(m) || m < 64 || m % 64 !== 0 || m > MAX_BLOOM_BITS) throw new Error(`bloom: m must be a multiple of 64 in [64, 2^35], got ${m}`);
    if (!Number.isInteger(k) || k < 1 || k > 64) throw new Error(`bloom: k must be an integer in [1, 64], got ${k}`);
    this.m = m;
    this.k = k;
    this.meta = meta;
    this.small = m <= TWO32;
    if (words && words.length !== m / 32) throw new Error(`bloom: bit array has ${words.length} words, expected ${m / 32}`);
    this.words = words ?? new Uint32Array(m / 32);
  }

  static create(expectedItems: number, fpRate: number, meta: Record<string, unknown> = {}): BloomFilter {
    return new BloomFilter(bloomParams(expectedItems, fpRate), { expectedItems, fpRate, ...meta });
  }

  /** The first probe position and step of a key (see the file comment). */
  private start(a: number, b: number): void {
    const m = this.m;
    if (this.small) {
      // Filters up to 2^32 bits: the two 32-bit halves, scaled to [0, m) by a multiply (no division).
      px = Math.floor(((a >>> 0) * m) / TWO32);
      py = Math.floor(((b >>> 0) * m) / TWO32);
    } else {
      // Larger filters: 53-bit values mixed from both halves, reduced modulo m.
      px = ((a >>> 0) * TWO21 + (fmix32(b ^ 0x68e31da4) >>> 11)) % m;
      py = ((b >>> 0) * TWO21 + (fmix32(a ^ 0x1b56c4e9) >>> 11)) % m;
    }
  }

  /** Adds the key (a, b); returns true when at least one bit was newly set (the key was new). */
  add(a: number, b: number): boolean {
    const m = this.m;
    const words = this.words;
    this.start(a, b);
    let x = px;
    let y = py;
    let added = false;
    for (let i = 0; i < this.k; i++) {
      const w = this.small ? x >>> 5 : Math.floor(x / 32);
      const bit = 1 << (this.small ? x & 31 : x % 32);
      if ((words[w] & bit) === 0) {
        words[w] |= bit;
        added = true;
      }
      x += y;
      if (x >= m) x -= m;
      y += i;
      if (y >= m) y -= m;
    }
    if (added) this.n++;
    return added;
  }

  /** True when the key (a, b) may have been added; false when it certainly was not. */
  has(a: number, b: number): boolean {
    const m = this.m;
    const words = this.words;
    const k = this.k;
    this.start(a, b);
    let x = px;
    let y = py;
    if (this.small) {
      for (let i = 0; i < k; i++) {
        if ((words[x >>> 5] & (1 << (x & 31))) === 0) return false;
        x += y;
        if (x >= m) x -= m;
        y += i;
        if (y >= m) y -= m;
      }
      return true;
    }
    for (let i = 0; i < k; i++) {
      if ((words[Math.floor(x / 32)] & (1 << x % 32)) === 0) return false;
      x += y;
      if (x >= m) x -= m;
      y += i;
      if (y >= m) y -= m;
    }
    return true;
  }

  /** Fraction of bits set (about 0.5 at the design load). */
  fillRatio(): number {
    let set = 0;
    const w = this.words;
    for (let i = 0; i < w.length; i++) {
      let v = w[i];
      v = v - ((v >>> 1) & 0x55555555);
      v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
      set += (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
    }
    return set / this.m;
  }

  /** The false-positive rate expected for the items added so far. */
  estimatedFpRate(): number {
    return expectedFpRate(this.m, this.k, this.n);
  }

  header(): Record<string, unknown> {
    return { ...this.meta, m: this.m, k: this.k, n: this.n, hash: BLOOM_PROBES };
  }

  /** Writes the filter to `file` (through a temporary name, renamed when complete). */
  save(file: string): void {
    const json = Buffer.from(JSON.stringify(this.header()), 'utf8');
    const pre = Buffer.alloc(16);
    pre.write(BLOOM_MAGIC, 0, 'latin1');
    pre.writeUInt32LE(BLOOM_VERSION, 8);
    pre.writeUInt32LE(json.length, 12);
    const pad = Buffer.alloc((8 - ((16 + json.length) % 8)) % 8);
    const tmp = `${file}.tmp-${process.pid}`;
    try {
      const fd = openSync(tmp, 'w');
      try {
        writeSync(fd, pre);
        writeSync(fd, json);
        writeSync(fd, pad);
        const bytes = Buffer.from(this.words.buffer, this.words.byteOffset, this.words.byteLength);
        const CHUNK = 1 << 26;
        for (let off = 0; off < bytes.length; off += CHUNK) {
          const part = bytes.subarray(off, Math.min(bytes.length, off + CHUNK));
          let done = 0;
          while (done < part.length) done += writeSync(fd, part, done);
        }
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, file);
    } catch (e) {
      // A failed write or rename leaves no temporary file behind.
      rmSync(tmp, { force: true });
      throw e;
    }
  }

  /** Reads only the header of a filter file (cheap: no bits are loaded). */
  static readHeader(file: string): Record<string, unknown> & BloomParams & { n: number } {
    const fd = openSync(file, 'r');
    try {
      return readHeaderFd(fd, file).header;
    } finally {
      closeSync(fd);
    }
  }

  /** Loads a filter file written by `save`, into a SharedArrayBuffer. */
  static load(file: string): BloomFilter {
    const fd = openSync(file, 'r');
    try {
      const { header, dataOffset } = readHeaderFd(fd, file);
      const size = fstatSync(fd).size;
      const bytes = header.m / 8;
      if (size !== dataOffset + bytes) throw new Error(`${file}: truncated or corrupt Bloom filter: ${size} bytes, expected ${dataOffset + bytes}`);
      // Shared memory: worker threads read the same bits (lib/text/decont-task.ts).
      const words = new Uint32Array(new SharedArrayBuffer(bytes));
      const view = Buffer.from(words.buffer);
      let done = 0;
      while (done < bytes) {
        const r = readSync(fd, view, done, Math.min(1 << 26, bytes - done), dataOffset + done);
        if (r === 0) throw new Error(`${file}: unexpected end of file`);
        done += r;
      }
      if (header.hash !== BLOOM_PROBES) throw new Error(`${file}: Bloom filter probes "${String(header.hash)}", this mixstream uses "${BLOOM_PROBES}"; rebuild the filter`);
      const { m, k, n, hash: _hash, ...meta } = header;
      const f = new BloomFilter({ m, k }, meta, words);
      f.n = n;
      return f;
    } finally {
      closeSync(fd);
    }
  }
}

function readHeaderFd(fd: number, file: string): { header: Record<string, unknown> & BloomParams & { n: number }; dataOffset: number } {
  const pre = Buffer.alloc(16);
  if (readSync(fd, pre, 0, 16, 0) < 16 || pre.toString('latin1', 0, 8) !== BLOOM_MAGIC) {
    throw new Error(`${file}: not a mixstream Bloom filter (bad magic; build one with "mixstream decont build")`);
  }
  const version = pre.readUInt32LE(8);
  if (version !== BLOOM_VERSION) throw new Error(`${file}: Bloom filter format version ${version}, this mixstream reads version ${BLOOM_VERSION}`);
  const len = pre.readUInt32LE(12);
  const json = Buffer.alloc(len);
  if (readSync(fd, json, 0, len, 16) < len) throw new Error(`${file}: truncated Bloom filter header`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(json.toString('utf8'));
  } catch (e) {
    throw new Error(`${file}: corrupt Bloom filter header: ${(e as Error).message}`);
  }
  const { m, k, n } = header as { m: unknown; k: unknown; n: unknown };
  if (typeof m !== 'number' || typeof k !== 'number' || typeof n !== 'number') throw new Error(`${file}: Bloom filter header lacks m, k or n`);
  const dataOffset = 16 + len + ((8 - ((16 + len) % 8)) % 8);
  return { header: header as Record<string, unknown> & BloomParams & { n: number }, dataOffset };
}
