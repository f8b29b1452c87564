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
// Tokens follow the hashing form of lib/text/normalize.ts `hashForm`. Over a hashing form
// (`shingleHashes`) words are split at spaces and nothing is folded again; over raw text
// (`shingleText`) the scanner applies hashForm's default folding (lowercase,
// punctuation/symbols/whitespace as word boundaries, invisible characters removed, digits to 0)
// from a per-code-unit class table, so `shingleText(raw)` equals `shingleHashes(hashForm(raw))`
// without building the hashing form string.
import { internals, type Rec } from '../operator.ts';
import { foldTurkicI } from './normalize.ts';

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

// Character classes of the hashing form, per UTF-16 code unit.
const WORD = 0;
const SEPARATOR = 1; // whitespace, punctuation, symbols: a word boundary
const REMOVED = 2; // invisible controls and format marks: dropped, words join across them
const DIGIT = 3; // folded to "0"
const UPPER = 4; // ASCII A-Z: folded to lowercase
const SURROGATE = 5; // high surrogate: the code point decides

// Raw ASCII text (hashForm's ASCII path with the default folding): controls other than
// whitespace are dropped, every other non-alphanumeric ASCII character separates words, A-Z
// fold to a-z, 1-9 to 0.
const ASCII_CLASS = new Uint8Array(65536);
for (let c = 0; c < 128; c++) {
  const alnum = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
  const control = c <= 0x08 || (c >= 0x0e && c <= 0x1f) || c === 0x7f;
  ASCII_CLASS[c] = control ? REMOVED : c >= 49 && c <= 57 ? DIGIT : c >= 65 && c <= 90 ? UPPER : alnum ? WORD : SEPARATOR;
}

// Text already in the hashing form (written by normalize, folded as its options said): only the
// space separates words and nothing is folded again, so a form that keeps case, punctuation or
// digits keeps them apart. Astral code points are single characters (for char shingles).
const HASH_FORM_CLASS = new Uint8Array(65536);
HASH_FORM_CLASS[32] = SEPARATOR;
HASH_FORM_CLASS.fill(SURROGATE, 0xd800, 0xdc00);

// Other text (hashForm's general path, applied after NFKC and toLowerCase): punctuation and
// symbols (\p{P}, \p{S}) and whitespace separate, the CONTROL set of normalize.ts is removed,
// decimal digits (\p{Nd}) fold to 0. Built on first use from the same Unicode properties.
// The characters hashForm drops (controls other than whitespace, format characters, variation
// selectors) and the
// ones it turns into word boundaries (whitespace, NEL included; punctuation and symbols).
const CONTROL_CHAR = /^[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\p{Cf}\p{Variation_Selector}]$/u;
const SEPARATOR_CHAR = /^[\s\u0085\p{P}\p{S}]$/u;
const DIGIT_CHAR = /^\p{Nd}$/u;
let unicodeClass: Uint8Array | undefined;

function classify(ch: string): number {
  if (CONTROL_CHAR.test(ch)) return REMOVED;
  if (SEPARATOR_CHAR.test(ch)) return SEPARATOR;
  if (DIGIT_CHAR.test(ch)) return ch === '0' ? WORD : DIGIT;
  return WORD;
}

function unicodeTable(): Uint8Array {
  if (unicodeClass) return unicodeClass;
  const t = new Uint8Array(65536);
  for (let c = 0; c < 65536; c++) t[c] = c >= 0xd800 && c <= 0xdbff ? SURROGATE : c >= 0xdc00 && c <= 0xdfff ? WORD : classify(String.fromCharCode(c));
  return (unicodeClass = t);
}

const astralClasses = new Map<number, number>();
function classOfCodePoint(cp: number): number {
  let k = astralClasses.get(cp);
  if (k === undefined) {
    k = classify(String.fromCodePoint(cp));
    astralClasses.set(cp, k);
  }
  return k;
}

/** Fills `keys` with the pre-mixed FNV-1a hash of each word; returns the word count. */
function wordKeys(text: string, table: Uint8Array): number {
  let count = 0;
  let h = 0x811c9dc5;
  let inWord = false;
  const len = text.length;
  for (let i = 0; i < len; i++) {
    let c = text.charCodeAt(i);
    let k = table[c];
    if (k === SURROGATE) {
      k = table === HASH_FORM_CLASS ? WORD : astralClass(text, i);
      if (k !== WORD) i++; // the class covers both code units
    }
    if (k !== WORD) {
      if (k === SEPARATOR) {
        if (inWord) {
          if (count === keys.length) growKeys(count + 1);
          keys[count++] = premix(h);
          h = 0x811c9dc5;
          inWord = false;
        }
        continue;
      }
      if (k === REMOVED) continue;
      if (k === DIGIT) c = 48;
      else if (k === UPPER) c += 32;
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

/** Class of the code point starting with the high surrogate at `i` (WORD for a lone surrogate). */
function astralClass(text: string, i: number): number {
  const d = text.charCodeAt(i + 1);
  if (!(d >= 0xdc00 && d <= 0xdfff)) return WORD;
  return classOfCodePoint(0x10000 + ((text.charCodeAt(i) - 0xd800) << 10) + (d - 0xdc00));
}

/** Fills `keys` with the pre-mixed code points of the hashing form (separator runs become one space, trimmed). */
function charKeys(text: string, table: Uint8Array): number {
  let count = 0;
  let pendingSpace = false;
  const len = text.length;
  if (keys.length < len + 1) growKeys(len + 1);
  const space = premix(32);
  for (let i = 0; i < len; i++) {
    let c = text.charCodeAt(i);
    let k = table[c];
    if (k === SURROGATE) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        k = table === HASH_FORM_CLASS ? WORD : classOfCodePoint(c);
      } else k = WORD;
    }
    if (k !== WORD) {
      if (k === SEPARATOR) {
        pendingSpace = count > 0;
        continue;
      }
      if (k === REMOVED) continue;
      if (k === DIGIT) c = 48;
      else if (k === UPPER) c += 32;
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
  return shingleWith(hashText, opts, HASH_FORM_CLASS).slice();
}

/**
 * Like `shingleHashes` (or `shingleText` when `raw`), without allocating: the set is a view of
 * a scratch buffer of this thread, valid until the next call of a shingle function. For loops
 * that copy each set elsewhere at once (lib/sketch/signature-task.ts).
 */
export function shingleScratch(text: string, opts: ShingleOptions, raw: boolean): Uint32Array {
  if (!raw) return shingleWith(text, opts, HASH_FORM_CLASS);
  if (ASCII_ONLY.test(text)) return shingleWith(text, opts, ASCII_CLASS);
  return shingleWith(foldTurkicI(text.normalize('NFKC').toLowerCase()), opts, unicodeTable());
}

/** The sorted unique shingle hashes of `text`, in the scratch buffer (a view valid until the next call). */
function shingleWith(text: string, opts: ShingleOptions, table: Uint8Array): Uint32Array {
  const seed = checkOptions(opts);
  const n = opts.n;
  const count = opts.unit === 'word' ? wordKeys(text, table) : charKeys(text, table);
  if (count < n) {
    hashes[0] = combine(seed, 0, count);
    return hashes.subarray(0, 1);
  }
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
  return view.subarray(0, u);
}

const ASCII_ONLY = /^[\x00-\x7f]*$/;

/**
 * Shingles of raw text, equal to `shingleHashes(hashForm(text), opts)` without building the
 * hashing form: ASCII text is folded by the scanner itself; other text gets NFKC and
 * toLowerCase (native, whole string) and then the scanner folds punctuation, symbols, digits
 * and controls by a table of the same Unicode properties `hashForm` uses.
 */
export function shingleText(text: string, opts: ShingleOptions): Uint32Array {
  return shingleScratch(text, opts, true).slice();
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
