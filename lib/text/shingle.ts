// Shingle hashing kernels: the set of 32-bit hashes of word or character n-grams of a text.
// No stream code; usable as a library.
//
// Hash family (stable across runs, processes and machines; changing it changes every signature):
// - a word is hashed once, as FNV-1a 32 over its UTF-16 code units, then pre-mixed as a
//   MurmurHash3 block (k = rotl(k * 0xcc9e2d51, 15) * 0x1b873593);
// - a character token is its Unicode code point, pre-mixed the same way;
// - a shingle of n tokens is MurmurHash3_x86_32 over the n pre-mixed token keys, seeded with
//   `seed`, with the token count as the length and the murmur3 finalizer (fmix32).
// No shingle strings are built: one pass over the char codes produces the token keys and each
// shingle combines n of them.
//
// Tokens follow the hashing form of lib/text/normalize.ts `hashForm`: on ASCII the scanner itself
// applies hashForm's folding (lowercase, punctuation and control characters as separators, digits
// to 0), so the shingles of an ASCII text equal the shingles of its hashing form. Non-ASCII text
// needs `hashForm` first (NFKC, Unicode case and punctuation folding): `shingleText` does that.
import { internals, type Rec } from '../operator.ts';
import { hashForm } from './normalize.ts';

export type ShingleUnit = 'word' | 'char';

export interface ShingleOptions {
  /** `word`: n-grams of words (split on spaces); `char`: n-grams of code points, spaces included. */
  unit: ShingleUnit;
  /** Tokens per shingle (>= 1). */
  n: number;
  /** Seed of the shingle hash (unsigned 32-bit integer; default 0). */
  seed?: number;
}

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** The MurmurHash3 32-bit finalizer: a bijection on 32-bit values with full avalanche. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function premix(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

// Scratch buffers reused across calls (kernels run one call at a time per thread).
let keys = new Int32Array(4096);
let hashes = new Uint32Array(4096);

function growKeys(min: number): void {
  const next = new Int32Array(Math.max(min, keys.length * 2));
  next.set(keys);
  keys = next;
}

// ASCII separators of the hashing form: controls, space, DEL and ASCII punctuation/symbols.
const SEPARATOR = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  SEPARATOR[c] = c <= 32 || c === 127 || (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126) ? 1 : 0;
}

/** Fills `keys` with the pre-mixed FNV-1a hash of each word; returns the word count. */
function wordKeys(text: string): number {
  let count = 0;
  let h = 0x811c9dc5;
  let inWord = false;
  const len = text.length;
  for (let i = 0; i < len; i++) {
    let c = text.charCodeAt(i);
    if (c < 128) {
      if (SEPARATOR[c] === 1) {
        if (inWord) {
          if (count === keys.length) growKeys(count + 1);
          keys[count++] = premix(h);
          h = 0x811c9dc5;
          inWord = false;
        }
        continue;
      }
      if (c >= 65 && c <= 90) c += 32;
      else if (c >= 49 && c <= 57) c = 48;
    }
    h = Math.imul(h ^ c, 0x01000193);
    inWord = true;
  }
  if (inWord) {
    if (count === keys.length) growKeys(count + 1);
    keys[count++] = premix(h);
  }
  return count;
}

/** Fills `keys` with the pre-mixed code points of the hashing form (separator runs become one space, trimmed). */
function charKeys(text: string): number {
  let count = 0;
  let pendingSpace = false;
  const len = text.length;
  if (keys.length < len + 1) growKeys(len + 1);
  const space = premix(32);
  for (let i = 0; i < len; i++) {
    let c = text.charCodeAt(i);
    if (c < 128) {
      if (SEPARATOR[c] === 1) {
        pendingSpace = count > 0;
        continue;
      }
      if (c >= 65 && c <= 90) c += 32;
      else if (c >= 49 && c <= 57) c = 48;
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < len) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (pendingSpace) {
      keys[count++] = space;
      pendingSpace = false;
    }
    keys[count++] = premix(c);
  }
  return count;
}

function combine(seed: number, start: number, n: number): number {
  let h = seed | 0;
  for (let k = start, end = start + n; k < end; k++) {
    h ^= keys[k];
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  return fmix32(h ^ (n << 2));
}

function checkOptions(opts: ShingleOptions): number {
  if (opts.unit !== 'word' && opts.unit !== 'char') throw new Error(`shingle unit must be "word" or "char", got ${JSON.stringify(opts.unit)}`);
  if (!Number.isInteger(opts.n) || opts.n < 1) throw new Error(`shingle n must be an integer >= 1, got ${opts.n}`);
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`shingle seed must be an integer in [0, 2^32), got ${seed}`);
  return seed;
}

/**
 * The set of shingle hashes of `hashText` (the hashing form; see `hashForm`): unique values,
 * sorted ascending. A text with fewer than `n` tokens gets exactly one shingle, the hash of all
 * its tokens (an empty text: the hash of zero tokens), so every document has at least one
 * shingle and texts that are equal in hashing form always share their shingle set.
 */
export function shingleHashes(hashText: string, opts: ShingleOptions): Uint32Array {
  const seed = checkOptions(opts);
  const n = opts.n;
  const count = opts.unit === 'word' ? wordKeys(hashText) : charKeys(hashText);
  if (count < n) return Uint32Array.of(combine(seed, 0, count));
  const total = count - n + 1;
  if (hashes.length < total) hashes = new Uint32Array(Math.max(total, hashes.length * 2));
  for (let i = 0; i < total; i++) hashes[i] = combine(seed, i, n);
  const view = hashes.subarray(0, total);
  view.sort();
  let u = 1;
  for (let i = 1; i < total; i++) {
    const v = view[i];
    if (v !== view[u - 1]) view[u++] = v;
  }
  return view.slice(0, u);
}

const ASCII_ONLY = /^[\x00-\x7f]*$/;

/**
 * Shingles of raw text: ASCII text is shingled directly (the scanner applies the hashing form's
 * folding, with the same result as `shingleHashes(hashForm(text))`); other text goes through
 * `hashForm` first.
 */
export function shingleText(text: string, opts: ShingleOptions): Uint32Array {
  return shingleHashes(ASCII_ONLY.test(text) ? text : hashForm(text), opts);
}

/** Shingles of a record: over `internals(rec).hashText` when `normalize` wrote it, else over `rec.text`. */
export function recordShingles(rec: Rec, opts: ShingleOptions): Uint32Array {
  const hashText = internals(rec).hashText;
  return typeof hashText === 'string' ? shingleHashes(hashText, opts) : shingleText(rec.text, opts);
}

/** Exact Jaccard similarity of two sorted unique hash sets (as returned by `shingleHashes`). */
export function exactJaccard(a: Uint32Array, b: Uint32Array): number {
  if (a.length === 0 && b.length === 0) return 1;
  let i = 0;
  let j = 0;
  let inter = 0;
  while (i < a.length && j < b.length) {
    const x = a[i];
    const y = b[j];
    if (x === y) {
      inter++;
      i++;
      j++;
    } else if (x < y) i++;
    else j++;
  }
  return inter / (a.length + b.length - inter);
}
