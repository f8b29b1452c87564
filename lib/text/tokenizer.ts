// Token counting kernels: byte-level BPE (tiktoken encodings shipped in js-tiktoken, or a
// Hugging Face tokenizer.json), and a calibrated single-pass estimate. No stream code.
//
// The BPE merge loop here is our own: js-tiktoken only supplies the rank tables (the data
// inside its npm package, so everything works offline). Counting adds a bounded cache of
// pre-tokenized pieces -> token count, because words repeat: most pieces never reach BPE.
import { readFileSync } from 'node:fs';

export const ENCODINGS = ['cl100k_base', 'o200k_base', 'p50k_base', 'r50k_base', 'gpt2'] as const;
export type EncodingName = (typeof ENCODINGS)[number];

export interface TokenCounter {
  /** `cl100k_base`, `tokenizer.json:<path>`, `estimate`. */
  readonly name: string;
  /** Empties the piece cache (benchmarks: a cold start). */
  clearCache?(): void;
  /** Number of tokens of `text` (special tokens are not recognized: text is ordinary text). */
  count(text: string): number;
}

/**
 * One BPE merge run over `symbols` (in place): repeatedly joins the adjacent pair with the
 * lowest rank until no pair has a rank. `rank(a, b)` is undefined for pairs that never merge.
 * Returns the final symbols.
 */
export function bpeMerge(symbols: string[], rank: (a: string, b: string) => number | undefined): string[] {
  const n = symbols.length;
  if (n < 2) return symbols;
  // ranks[i] = rank of the pair (symbols[i], symbols[i+1]).
  const ranks: number[] = new Array(n - 1);
  for (let i = 0; i < n - 1; i++) ranks[i] = rank(symbols[i], symbols[i + 1]) ?? Infinity;
  while (symbols.length > 1) {
    let best = Infinity;
    let at = -1;
    for (let i = 0; i < ranks.length; i++) {
      if (ranks[i] < best) {
        best = ranks[i];
        at = i;
      }
    }
    if (at < 0) break;
    symbols[at] = symbols[at] + symbols[at + 1];
    symbols.splice(at + 1, 1);
    ranks.splice(at, 1);
    if (at > 0) ranks[at - 1] = rank(symbols[at - 1], symbols[at]) ?? Infinity;
    if (at < symbols.length - 1) ranks[at] = rank(symbols[at], symbols[at + 1]) ?? Infinity;
  }
  return symbols;
}

/** A bounded map: when full, it is cleared (cheap, and the hot pieces come back at once). */
class PieceCache {
  private map = new Map<string, number>();
  constructor(private readonly max: number) {}
  clear(): void {
    this.map.clear();
  }
  get(k: string): number | undefined {
    return this.map.get(k);
  }
  set(k: string, v: number): void {
    if (this.map.size >= this.max) this.map.clear();
    this.map.set(k, v);
  }
}

const CACHE_PIECES = 200_000;
// A piece longer than this (a run of 10k spaces, a base64 blob) is split into chunks before BPE
// so the quadratic merge loop stays bounded; counts on such pieces can differ by a token or so.
const MAX_PIECE_BYTES = 4096;

// ----------------------------------------------------------------------------------------------
// tiktoken encodings

interface TiktokenRanks {
  pat_str: string;
  special_tokens: Record<string, number>;
  bpe_ranks: string;
}

/** Byte strings are held as latin1 JS strings: one char per byte, so concatenation is a merge. */
function bytesToLatin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

export class TiktokenBpe implements TokenCounter {
  readonly name: string;
  private readonly ranks = new Map<string, number>();
  private readonly pattern: RegExp;
  private readonly cache = new PieceCache(CACHE_PIECES);
  private readonly rankOf = (a: string, b: string) => this.ranks.get(a + b);

  clearCache(): void {
    this.cache.clear();
  }

  constructor(name: string, data: TiktokenRanks) {
    this.name = name;
    this.pattern = new RegExp(data.pat_str, 'gu');
    // bpe_ranks lines: "<prefix> <offset> <b64 token> <b64 token> ...", ranks are consecutive from offset.
    for (const line of data.bpe_ranks.split('\n')) {
      if (!line) continue;
      const parts = line.split(' ');
      const offset = Number.parseInt(parts[1], 10);
      for (let i = 2; i < parts.length; i++) {
        this.ranks.set(Buffer.from(parts[i], 'base64').toString('latin1'), offset + i - 2);
      }
    }
  }

  /** Token ids of a piece's bytes (latin1 string). */
  private encodeBytes(bytes: string, out: number[]): void {
    const whole = this.ranks.get(bytes);
    if (whole !== undefined) {
      out.push(whole);
      return;
    }
    for (let start = 0; start < bytes.length; start += MAX_PIECE_BYTES) {
      const chunk = bytes.slice(start, start + MAX_PIECE_BYTES);
      for (const part of bpeMerge(Array.from(chunk), this.rankOf)) {
        const id = this.ranks.get(part);
        if (id !== undefined) out.push(id);
      }
    }
  }

  /** Token ids (ordinary text: special-token strings are encoded as text). */
  encode(text: string): number[] {
    const out: number[] = [];
    this.pattern.lastIndex = 0;
    for (let m = this.pattern.exec(text); m; m = this.pattern.exec(text)) {
      this.encodeBytes(Buffer.from(m[0], 'utf8').toString('latin1'), out);
    }
    return out;
  }

  count(text: string): number {
    let n = 0;
    const re = this.pattern;
    re.lastIndex = 0;
    const scratch: number[] = [];
    for (let m = re.exec(text); m; m = re.exec(text)) {
      const piece = m[0];
      let c = this.cache.get(piece);
      if (c === undefined) {
        scratch.length = 0;
        this.encodeBytes(Buffer.from(piece, 'utf8').toString('latin1'), scratch);
        c = scratch.length;
        this.cache.set(piece, c);
      }
      n += c;
    }
    return n;
  }
}

const loadedEncodings = new Map<string, Promise<TiktokenBpe>>();

/** Loads a tiktoken encoding from the rank tables inside the js-tiktoken package (offline). */
export function loadEncoding(name: EncodingName): Promise<TiktokenBpe> {
  if (!(ENCODINGS as readonly string[]).includes(name)) {
    return Promise.reject(new Error(`unknown encoding "${name}"; one of ${ENCODINGS.join(', ')}`));
  }
  let p = loadedEncodings.get(name);
  if (!p) {
    p = import(`js-tiktoken/ranks/${name}`).then((m: { default: TiktokenRanks }) => new TiktokenBpe(name, m.default));
    loadedEncodings.set(name, p);
  }
  return p;
}

// ----------------------------------------------------------------------------------------------
// Hugging Face tokenizer.json (byte-level BPE)

/** GPT-2's reversible byte -> printable unicode char table used by byte-level BPE vocabularies. */
export function byteLevelAlphabet(): string[] {
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    table[b] = String.fromCharCode(printable ? b : 256 + extra++);
  }
  return table;
}

const GPT2_PATTERN = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;

/**
 * Rewrites the regex dialect of tokenizer.json files (Rust fancy-regex / Oniguruma) into a JS
 * regex source: inline case-insensitive groups `(?i:...)` become explicit `[aA]` classes.
 */
export function toJsRegexSource(src: string): string {
  let out = '';
  let i = 0;
  while (i < src.length) {
    if (src.startsWith('(?i:', i)) {
      out += '(?:';
      i += 4;
      let depth = 1;
      let inClass = false;
      while (i < src.length && depth > 0) {
        const c = src[i];
        if (c === '\\') {
          out += src.slice(i, i + 2);
          i += 2;
          continue;
        }
        if (inClass) {
          if (c === ']') inClass = false;
          out += /[a-zA-Z]/.test(c) ? c.toLowerCase() + c.toUpperCase() : c;
        } else if (c === '[') {
          inClass = true;
          out += c;
        } else {
          if (c === '(') depth++;
          if (c === ')') depth--;
          out += /[a-zA-Z]/.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c;
        }
        i++;
      }
      continue;
    }
    if (src[i] === '\\') {
      out += src.slice(i, i + 2);
      i += 2;
      continue;
    }
    out += src[i++];
  }
  return out;
}

type PreStep = (pieces: string[]) => string[];

function splitIsolated(re: RegExp, invert: boolean, behavior: string): PreStep {
  return (pieces) => {
    const out: string[] = [];
    for (const p of pieces) {
      re.lastIndex = 0;
      let last = 0;
      const seq: { s: string; match: boolean }[] = [];
      for (let m = re.exec(p); m; m = re.exec(p)) {
        if (m[0] === '') {
          re.lastIndex++;
          continue;
        }
        if (m.index > last) seq.push({ s: p.slice(last, m.index), match: false });
        seq.push({ s: m[0], match: true });
        last = m.index + m[0].length;
      }
      if (last < p.length) seq.push({ s: p.slice(last), match: false });
      for (const { s, match } of seq) {
        const isDelim = invert ? !match : match;
        if (behavior === 'Removed' && isDelim) continue;
        out.push(s);
      }
    }
    return out;
  };
}

interface HfJson {
  normalizer?: { type: string; normalizers?: unknown[] } | null;
  pre_tokenizer?: Record<string, unknown> | null;
  model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[]; ignore_merges?: boolean; byte_fallback?: boolean };
}

export class HfByteLevelBpe implements TokenCounter {
  readonly name: string;
  private readonly vocab: Map<string, number>;
  private readonly merges = new Map<string, number>();
  private readonly ignoreMerges: boolean;
  private readonly normalize: (t: string) => string;
  private readonly preSteps: PreStep[] = [];
  private addPrefixSpace = false;
  private readonly alphabet = byteLevelAlphabet();
  private readonly cache = new PieceCache(CACHE_PIECES);
  private readonly rankOf = (a: string, b: string) => this.merges.get(a + ' ' + b);

  clearCache(): void {
    this.cache.clear();
  }

  /** `json` is the parsed tokenizer.json; `where` names it in errors. */
  constructor(json: HfJson, where: string) {
    this.name = `tokenizer.json:${where}`;
    const model = json.model;
    if (!model || model.type !== 'BPE' || !model.vocab || !model.merges) {
      throw new Error(`${where}: model.type must be "BPE" with model.vocab and model.merges (got ${JSON.stringify(model?.type)})`);
    }
    this.vocab = new Map(Object.entries(model.vocab));
    model.merges.forEach((m, i) => {
      const key = Array.isArray(m) ? `${m[0]} ${m[1]}` : m;
      if (!this.merges.has(key)) this.merges.set(key, i);
    });
    this.ignoreMerges = model.ignore_merges === true;
    this.normalize = this.buildNormalizer(json.normalizer ?? null, where);
    let byteLevel = false;
    const addPre = (pre: Record<string, unknown>, path: string): void => {
      switch (pre.type) {
        case 'Sequence':
          (pre.pretokenizers as Record<string, unknown>[]).forEach((p, i) => addPre(p, `${path}.pretokenizers[${i}]`));
          return;
        case 'ByteLevel':
          byteLevel = true;
          if (pre.add_prefix_space === true) this.addPrefixSpace = true;
          if (pre.use_regex !== false) this.preSteps.push(splitIsolated(new RegExp(GPT2_PATTERN, 'gu'), false, 'Isolated'));
          return;
        case 'Split': {
          const pat = pre.pattern as { Regex?: string; String?: string };
          const src = pat.Regex !== undefined ? toJsRegexSource(pat.Regex) : pat.String!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
          const behavior = String(pre.behavior ?? 'Isolated');
          if (behavior !== 'Isolated' && behavior !== 'Removed') {
            throw new Error(`${where}: ${path}.behavior "${behavior}" is not supported (Isolated or Removed)`);
          }
          this.preSteps.push(splitIsolated(new RegExp(src, 'gu'), pre.invert === true, behavior));
          return;
        }
        case 'Digits':
          this.preSteps.push(splitIsolated(pre.individual_digits ? /\p{N}/gu : /\p{N}+/gu, false, 'Isolated'));
          return;
        default:
          throw new Error(`${where}: ${path}.type "${String(pre.type)}" is not supported; only byte-level BPE tokenizers (ByteLevel, Split, Digits, Sequence) can be loaded`);
      }
    };
    if (json.pre_tokenizer) addPre(json.pre_tokenizer, 'pre_tokenizer');
    if (!byteLevel) throw new Error(`${where}: pre_tokenizer has no ByteLevel step; only byte-level BPE tokenizers are supported`);
  }

  private buildNormalizer(n: HfJson['normalizer'], where: string): (t: string) => string {
    if (!n) return (t) => t;
    const one = (x: { type: string; normalizers?: unknown[] }, path: string): ((t: string) => string) => {
      switch (x.type) {
        case 'NFC':
        case 'NFD':
        case 'NFKC':
        case 'NFKD':
          return (t) => t.normalize(x.type as 'NFC');
        case 'Lowercase':
          return (t) => t.toLowerCase();
        case 'Sequence': {
          const fs = (x.normalizers as { type: string }[]).map((y, i) => one(y, `${path}.normalizers[${i}]`));
          return (t) => fs.reduce((acc, f) => f(acc), t);
        }
        default:
          throw new Error(`${where}: ${path}.type "${x.type}" is not supported (NFC, NFD, NFKC, NFKD, Lowercase, Sequence)`);
      }
    };
    return one(n, 'normalizer');
  }

  /** Pre-tokenized pieces of `text` (before byte-level mapping). */
  pieces(text: string): string[] {
    let t = this.normalize(text);
    if (this.addPrefixSpace && t.length && t[0] !== ' ') t = ' ' + t;
    let pieces = [t];
    for (const step of this.preSteps) pieces = step(pieces);
    return pieces;
  }

  private mapBytes(piece: string): string[] {
    const bytes = Buffer.from(piece, 'utf8');
    const syms: string[] = new Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) syms[i] = this.alphabet[bytes[i]];
    return syms;
  }

  /** Token strings (byte-level alphabet) of `text`. */
  tokenize(text: string): string[] {
    const out: string[] = [];
    for (const piece of this.pieces(text)) out.push(...this.tokenizePiece(piece));
    return out;
  }

  private tokenizePiece(piece: string): string[] {
    const syms = this.mapBytes(piece);
    if (this.ignoreMerges) {
      const whole = syms.join('');
      if (this.vocab.has(whole)) return [whole];
    }
    const out: string[] = [];
    for (let s = 0; s < syms.length; s += MAX_PIECE_BYTES) out.push(...bpeMerge(syms.slice(s, s + MAX_PIECE_BYTES), this.rankOf));
    return out;
  }

  /** Token ids (a symbol missing from the vocabulary is -1). */
  encode(text: string): number[] {
    return this.tokenize(text).map((s) => this.vocab.get(s) ?? -1);
  }

  count(text: string): number {
    let n = 0;
    for (const piece of this.pieces(text)) {
      let c = this.cache.get(piece);
      if (c === undefined) {
        c = this.tokenizePiece(piece).length;
        this.cache.set(piece, c);
      }
      n += c;
    }
    return n;
  }
}

export function loadTokenizerJson(file: string): HfByteLevelBpe {
  let json: HfJson;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: cannot read tokenizer.json: ${(e as Error).message}`);
  }
  return new HfByteLevelBpe(json, file);
}

// ----------------------------------------------------------------------------------------------
// Estimate

/**
 * Coefficients of the estimate, fitted by least squares (weighted by 1/tokens, no intercept)
 * against cl100k_base on samples/*.jsonl (handbook de/en/fr/ja/pt/ru, KJV, GCIDE, fortunes
 * en/de/ru). Its error against the exact count on the larger bench corpus is measured by
 * `npx tsx bench/sampling.ts` (section "estimate error"); docs/sampling.md quotes it.
 *   tokens ≈ W·(ASCII letter runs) + L·(ASCII letters) + D·(digits) + P·(ASCII punctuation)
 *          + N·(non-ASCII letters) + C·(CJK/kana/hangul chars) + S·(line breaks)
 */
export const ESTIMATE_COEFFICIENTS = {
  word: 0.417,
  letter: 0.159,
  digit: 0.263,
  punct: 0.933,
  nonAscii: 0.538,
  cjk: 0.994,
  newline: 1.113,
};

export type EstimateCoefficients = typeof ESTIMATE_COEFFICIENTS;

/** Features counted by the estimate in one pass over char codes. */
export function estimateFeatures(text: string): EstimateCoefficients {
  let word = 0;
  let letter = 0;
  let digit = 0;
  let punct = 0;
  let nonAscii = 0;
  let cjk = 0;
  let newline = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 128) {
      const isLetter = (c >= 97 && c <= 122) || (c >= 65 && c <= 90);
      if (isLetter) {
        letter++;
        if (!inWord) word++;
        inWord = true;
        continue;
      }
      inWord = false;
      if (c >= 48 && c <= 57) digit++;
      else if (c === 10) newline++;
      else if (c > 32 && c !== 127) punct++;
    } else {
      inWord = false;
      if (c >= 0xdc00 && c <= 0xdfff) continue; // low surrogate: counted with its high half
      if ((c >= 0x3040 && c <= 0x30ff) || (c >= 0x3400 && c <= 0x9fff) || (c >= 0xac00 && c <= 0xd7af) || (c >= 0xf900 && c <= 0xfaff) || (c >= 0xd800 && c <= 0xdbff)) cjk++;
      else if (c !== 0xa0) nonAscii++;
    }
  }
  return { word, letter, digit, punct, nonAscii, cjk, newline };
}

export function estimateTokens(text: string, k: EstimateCoefficients = ESTIMATE_COEFFICIENTS): number {
  const f = estimateFeatures(text);
  const v = k.word * f.word + k.letter * f.letter + k.digit * f.digit + k.punct * f.punct + k.nonAscii * f.nonAscii + k.cjk * f.cjk + k.newline * f.newline;
  return text.length === 0 ? 0 : Math.max(1, Math.round(v));
}

export const estimateCounter: TokenCounter = { name: 'estimate', count: (t) => estimateTokens(t) };
