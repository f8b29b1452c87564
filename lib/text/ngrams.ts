// Word n-gram hashing for decontamination: 64-bit hashes (two independent 32-bit lanes) of every
// run of `n` consecutive words of a text's normalized word form. No stream code.
//
// Word form (GPT-3 / data-ablation decontamination): NFKC, lowercase, punctuation and symbols
// stripped (they separate words), whitespace-separated words. Digits are kept by default, so
// "add 3 and 4" and "add 5 and 6" stay different n-grams (an eval set of arithmetic problems
// must not knock out every arithmetic document). This is lib/text/normalize.ts `hashForm`
// with `foldDigits: false` unless asked; on ASCII text the scanner applies the same folding
// itself in one pass over the char codes.
//
// Hash family (stable across runs, processes and machines; a Bloom file records its version):
// - each word is hashed once into two 32-bit keys: lane A is FNV-1a over its UTF-16 code units,
//   lane B a multiply-xor hash with another prime and offset; both are finished with the
//   MurmurHash3 finalizer (fmix32);
// - an n-gram's lane hash is a polynomial rolling hash of its n word keys of that lane (modulo
//   2^32, a per-lane odd base, O(1) per position), xored with a per-lane seed and finished with
//   fmix32.
// Two lanes give 64 bits per n-gram: with a billion n-grams in a filter, the chance that a query
// collides with an inserted n-gram on all 64 bits is about 5e-11, far below any Bloom rate used.
import { fmix32 } from './shingle.ts';
import { hashForm } from './normalize.ts';

export const NGRAM_HASH_VERSION = 'mixstream-ngram64-v2';

export interface WordFormOptions {
  /** Lowercase (Unicode) before splitting (default true). */
  lowercase: boolean;
  /** Punctuation and symbols separate words and are dropped (default true). */
  stripPunctuation: boolean;
  /** Every decimal digit becomes 0 (default false). */
  foldDigits: boolean;
}

export const DEFAULT_WORD_FORM: WordFormOptions = { lowercase: true, stripPunctuation: true, foldDigits: false };

const SEED_A = 0x9747b28c;
const SEED_B = 0x2545f491;
const BASE_A = 0x9e3779b1 | 0;
const BASE_B = 0x85ebca77 | 0;

/** The normalized word form of a text: the words n-grams are made of, joined by single spaces. */
export function wordForm(text: string, form: WordFormOptions = DEFAULT_WORD_FORM): string {
  return hashForm(text, { lowercase: form.lowercase, foldPunctuation: form.stripPunctuation, foldDigits: form.foldDigits });
}

/** The words of a text's normalized form. */
export function words(text: string, form: WordFormOptions = DEFAULT_WORD_FORM): string[] {
  const w = wordForm(text, form);
  return w ? w.split(' ') : [];
}

// Scratch buffers reused across calls (kernels run one call at a time per thread).
let keysA = new Int32Array(4096);
let keysB = new Int32Array(4096);
let outA = new Uint32Array(4096);
let outB = new Uint32Array(4096);

function grow(min: number): void {
  const size = Math.max(min, keysA.length * 2);
  const a = new Int32Array(size);
  const b = new Int32Array(size);
  a.set(keysA);
  b.set(keysB);
  keysA = a;
  keysB = b;
}

// ASCII separators: controls, space, DEL, and (when stripping punctuation) ASCII punctuation/symbols.
const SEP_PUNCT = new Uint8Array(128);
const SEP_SPACE = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const space = c <= 32 || c === 127 ? 1 : 0;
  const punct = (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126) ? 1 : 0;
  SEP_SPACE[c] = space;
  SEP_PUNCT[c] = space | punct;
}

/**
 * Fills keysA/keysB with the two word keys of each word of `text`; returns the word count.
 * On ASCII input the folding of the word form is applied here; other input must already be in
 * word form (then only spaces separate words, and nothing is folded again).
 */
function wordKeys(text: string, ascii: boolean, form: WordFormOptions): number {
  const sep = ascii && form.stripPunctuation ? SEP_PUNCT : SEP_SPACE;
  const lower = ascii && form.lowercase;
  const digits = ascii && form.foldDigits;
  let count = 0;
  let a = 0x811c9dc5;
  let b = 0x3c6ef372;
  let inWord = false;
  const len = text.length;
  for (let i = 0; i < len; i++) {
    let c = text.charCodeAt(i);
    if (c < 128) {
      if (sep[c] === 1) {
        if (inWord) {
          if (count === keysA.length) grow(count + 1);
          keysA[count] = fmix32(a);
          keysB[count] = fmix32(b);
          count++;
          a = 0x811c9dc5;
          b = 0x3c6ef372;
          inWord = false;
        }
        continue;
      }
      if (lower && c >= 65 && c <= 90) c += 32;
      else if (digits && c >= 49 && c <= 57) c = 48;
    }
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
    inWord = true;
  }
  if (inWord) {
    if (count === keysA.length) grow(count + 1);
    keysA[count] = fmix32(a);
    keysB[count] = fmix32(b);
    count++;
  }
  return count;
}

/** base^e modulo 2^32. */
function powMod32(base: number, e: number): number {
  let r = 1;
  for (let i = 0; i < e; i++) r = Math.imul(r, base);
  return r;
}

/**
 * Fills `out` with the lane hash of every n-gram: a polynomial rolling hash over the word keys
 * (H = sum of key_j * base^(n-1-j) modulo 2^32, updated in O(1) per position), finished with
 * the seed and fmix32. The word keys are already full-avalanche hashes, so the linear combination
 * only has to tell orders apart; fmix32 spreads it over all bits.
 */
function rolling(keys: Int32Array, out: Uint32Array, count: number, n: number, base: number, seed: number): void {
  const top = powMod32(base, n - 1);
  let h = 0;
  for (let j = 0; j < n; j++) h = (Math.imul(h, base) + keys[j]) | 0;
  out[0] = fmix32(h ^ seed);
  for (let i = 1; i < count; i++) {
    h = (Math.imul((h - Math.imul(keys[i - 1], top)) | 0, base) + keys[i + n - 1]) | 0;
    out[i] = fmix32(h ^ seed);
  }
}

const ASCII_ONLY = /^[\x00-\x7f]*$/;

export interface NgramHashes {
  /** Lane A of each n-gram, in text order (a view over a scratch buffer: valid until the next call). */
  a: Uint32Array;
  /** Lane B of each n-gram. */
  b: Uint32Array;
  /** Number of n-grams: max(0, words - n + 1). */
  count: number;
  /** Number of words in the text's word form. */
  words: number;
}

/**
 * The 64-bit hashes (lanes a, b) of every word n-gram of `text`, in order, duplicates included.
 * A text with fewer than `n` words has no n-grams.
 */
export function ngramHashes(text: string, n: number, form: WordFormOptions = DEFAULT_WORD_FORM): NgramHashes {
  if (!Number.isInteger(n) || n < 1) throw new Error(`n-gram size must be an integer >= 1, got ${n}`);
  const ascii = ASCII_ONLY.test(text);
  const wordCount = wordKeys(ascii ? text : wordForm(text, form), ascii, form);
  const count = Math.max(0, wordCount - n + 1);
  if (outA.length < count) {
    outA = new Uint32Array(Math.max(count, outA.length * 2));
    outB = new Uint32Array(outA.length);
  }
  if (count > 0) {
    rolling(keysA, outA, count, n, BASE_A, SEED_A);
    rolling(keysB, outB, count, n, BASE_B, SEED_B);
  }
  return { a: outA.subarray(0, count), b: outB.subarray(0, count), count, words: wordCount };
}
