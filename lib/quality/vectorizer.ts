// Hashed n-gram text features (fastText-style): word unigrams and bigrams over a normalized
// token stream, hashed into a fixed number of buckets. No stream code; the same config always
// gives the same vector on every machine (32-bit integer hashing only).
//
// Tokens: maximal runs of letters, digits and combining marks are words; every other
// non-space character (punctuation, symbols) is a token of its own; a line break is the token
// "\n" (a run of line breaks is one token). Punctuation and line structure are kept on purpose:
// they carry much of what separates prose from menus, symbol noise and repeated lines.
import { fmix32 } from '../text/shingle.ts';

export interface VectorizerConfig {
  type: 'hashed-ngrams';
  /** Number of hash buckets (the model's input width). A power of two is fastest. */
  dim: number;
  /** Longest n-gram: 1 = unigrams, 2 = unigrams + bigrams, 3 = up to trigrams. */
  ngrams: number;
  /** Hash seed: a different seed gives a different (equally good) feature space. */
  seed: number;
  lowercase: boolean;
  /** `l2`: counts scaled to unit length; `log-l2`: 1 + ln(count), then unit length; `tf`: counts / total. */
  weighting: 'l2' | 'log-l2' | 'tf';
  /** Only the first `maxChars` characters of a text are read (0 = all). */
  maxChars: number;
}

export const DEFAULT_VECTORIZER: VectorizerConfig = {
  type: 'hashed-ngrams',
  dim: 1 << 18,
  ngrams: 2,
  seed: 0x5eed,
  lowercase: true,
  weighting: 'l2',
  maxChars: 100_000,
};

/** Fills in defaults and checks a config (from a model's .json or from options); errors name the field. */
export function vectorizerConfig(given: Partial<VectorizerConfig> = {}, where = 'vectorizer'): VectorizerConfig {
  const c = { ...DEFAULT_VECTORIZER, ...given };
  if (c.type !== 'hashed-ngrams') throw new Error(`${where}.type: expected "hashed-ngrams", got ${JSON.stringify(c.type)}`);
  if (!Number.isInteger(c.dim) || c.dim < 2 || c.dim > 1 << 26) throw new Error(`${where}.dim: expected an integer in [2, 2^26], got ${c.dim}`);
  if (!Number.isInteger(c.ngrams) || c.ngrams < 1 || c.ngrams > 5) throw new Error(`${where}.ngrams: expected an integer in [1, 5], got ${c.ngrams}`);
  if (!Number.isInteger(c.seed)) throw new Error(`${where}.seed: expected an integer, got ${c.seed}`);
  if (!['l2', 'log-l2', 'tf'].includes(c.weighting)) throw new Error(`${where}.weighting: expected "l2", "log-l2" or "tf", got ${JSON.stringify(c.weighting)}`);
  if (!Number.isInteger(c.maxChars) || c.maxChars < 0) throw new Error(`${where}.maxChars: expected an integer >= 0, got ${c.maxChars}`);
  return c;
}

/** A document's features: bucket indices (each once) and their weights. */
export interface SparseVector {
  indices: Int32Array;
  values: Float32Array;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const NEWLINE_TOKEN = fmix32(Math.imul(FNV_OFFSET ^ 10, FNV_PRIME));

// Classification of UTF-16 code units: 0 = space, 1 = word, 2 = punctuation/symbol, 3 = line
// break; and their lowercase forms. Both tables fill lazily (255 / 0 = not computed yet), so
// non-ASCII text costs a table lookup per character after the first sight of each character.
const CLASS = new Uint8Array(65536).fill(255);
const LOWER = new Uint16Array(65536);
const WORD_CHAR = /[\p{L}\p{N}\p{M}]/u;
const SPACE_CHAR = /\s/u;
const LINE_BREAK_CHAR = /[\n\u0085\u2028\u2029]/u;

function computeClass(c: number): number {
  // Surrogates belong to supplementary-plane characters: treated as word characters (CJK
  // extensions, historic scripts) so a pair is never split.
  if (c >= 0xd800 && c <= 0xdfff) return 1;
  const ch = String.fromCharCode(c);
  if (LINE_BREAK_CHAR.test(ch)) return 3;
  if (c <= 32 || c === 127 || SPACE_CHAR.test(ch)) return 0;
  return WORD_CHAR.test(ch) ? 1 : 2;
}

function classify(c: number): number {
  const k = CLASS[c];
  return k !== 255 ? k : (CLASS[c] = computeClass(c));
}

function lowerCode(c: number): number {
  const l = LOWER[c];
  if (l !== 0) return l;
  const lo = String.fromCharCode(c).toLowerCase();
  return (LOWER[c] = lo.length === 1 ? lo.charCodeAt(0) : c);
}

/**
 * Calls `emit(tokenHash)` for each token of `text` in order. Token hashes are FNV-1a over the
 * (lowercased) UTF-16 code units, finalized with fmix32; no token strings are built.
 */
export function forEachTokenHash(text: string, lowercase: boolean, maxChars: number, emit: (h: number) => void): void {
  const n = maxChars > 0 ? Math.min(text.length, maxChars) : text.length;
  let h = FNV_OFFSET;
  let inWord = false;
  let lastBreak = false;
  for (let i = 0; i < n; i++) {
    let c = text.charCodeAt(i);
    const k = classify(c);
    if (k === 1) {
      if (lowercase) c = lowerCode(c);
      h = Math.imul(h ^ c, FNV_PRIME);
      inWord = true;
      continue;
    }
    if (inWord) {
      emit(fmix32(h));
      h = FNV_OFFSET;
      inWord = false;
      lastBreak = false;
    }
    if (k === 2) {
      emit(fmix32(Math.imul(Math.imul(FNV_OFFSET ^ 0x2f, FNV_PRIME) ^ c, FNV_PRIME)));
      lastBreak = false;
    } else if (k === 3) {
      if (!lastBreak) emit(NEWLINE_TOKEN);
      lastBreak = true;
    }
  }
  if (inWord) emit(fmix32(h));
}

/** Hashed n-gram vectorizer. Not thread-safe (one scratch buffer per instance). */
export class HashedNgramVectorizer {
  readonly config: VectorizerConfig;
  private readonly counts: Float32Array;
  private readonly touched: Int32Array;
  private nTouched = 0;
  private readonly mask: number;
  private readonly history: Uint32Array;

  constructor(config: Partial<VectorizerConfig> = {}) {
    this.config = vectorizerConfig(config);
    this.counts = new Float32Array(this.config.dim);
    this.touched = new Int32Array(this.config.dim);
    this.mask = (this.config.dim & (this.config.dim - 1)) === 0 ? this.config.dim - 1 : -1;
    this.history = new Uint32Array(Math.max(1, this.config.ngrams - 1));
  }

  private bucket(h: number): number {
    return this.mask >= 0 ? h & this.mask : h % this.config.dim;
  }

  private add(h: number): void {
    const b = this.bucket(h);
    if (this.counts[b] === 0) this.touched[this.nTouched++] = b;
    this.counts[b] += 1;
  }

  /** Accumulates the n-gram bucket counts of `text` into the scratch buffer. */
  private countText(text: string): void {
    const { ngrams, seed, lowercase, maxChars } = this.config;
    const hist = this.history;
    let seen = 0;
    const seeded = fmix32(seed >>> 0);
    forEachTokenHash(text, lowercase, maxChars, (t) => {
      // Unigram, then each longer n-gram ending here: h_n = fmix(h_{n-1} * K + token_{i-n+1}).
      let g = fmix32(t ^ seeded);
      this.add(g);
      const have = Math.min(seen, ngrams - 1);
      for (let j = 0; j < have; j++) {
        g = fmix32((Math.imul(g, 0x9e3779b1) + hist[j] + j + 1) >>> 0);
        this.add(g);
      }
      for (let j = hist.length - 1; j > 0; j--) hist[j] = hist[j - 1];
      hist[0] = t;
      seen++;
    });
  }

  /** The weighted sparse vector of `text` (indices in first-seen order). */
  transform(text: string): SparseVector {
    this.countText(text);
    const n = this.nTouched;
    const indices = this.touched.slice(0, n);
    const values = new Float32Array(n);
    const w = this.config.weighting;
    let norm = 0;
    for (let i = 0; i < n; i++) {
      const c = this.counts[indices[i]];
      const v = w === 'log-l2' ? 1 + Math.log(c) : c;
      values[i] = v;
      norm += w === 'tf' ? v : v * v;
      this.counts[indices[i]] = 0;
    }
    this.nTouched = 0;
    if (norm > 0) {
      const s = w === 'tf' ? 1 / norm : 1 / Math.sqrt(norm);
      for (let i = 0; i < n; i++) values[i] *= s;
    }
    return { indices, values };
  }

  /** Dense rows [texts.length, dim] (row-major), ready for an ONNX input tensor. */
  transformDense(texts: readonly string[], out?: Float32Array<ArrayBuffer>): Float32Array<ArrayBuffer> {
    return densify(texts.map((t) => this.transform(t)), this.config.dim, out);
  }
}

/** Writes sparse rows into a dense row-major buffer (zeroed first). */
export function densify(rows: readonly SparseVector[], dim: number, out: Float32Array<ArrayBuffer> = new Float32Array(rows.length * dim)): Float32Array<ArrayBuffer> {
  out.fill(0, 0, rows.length * dim);
  for (let r = 0; r < rows.length; r++) {
    const { indices, values } = rows[r];
    const base = r * dim;
    for (let i = 0; i < indices.length; i++) out[base + indices[i]] = values[i];
  }
  return out;
}

/** Sparse rows as two padded [rows, k] matrices (k = the longest row; padding is index 0, value 0). */
export function padSparse(rows: readonly SparseVector[]): { indices: Int32Array; values: Float32Array; k: number } {
  let k = 1;
  for (const r of rows) if (r.indices.length > k) k = r.indices.length;
  const indices = new Int32Array(rows.length * k);
  const values = new Float32Array(rows.length * k);
  for (let r = 0; r < rows.length; r++) {
    indices.set(rows[r].indices, r * k);
    values.set(rows[r].values, r * k);
  }
  return { indices, values, k };
}
