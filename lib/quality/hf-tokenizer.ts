// Model inputs from a Hugging Face tokenizer.json, for exported sequence classifiers (such as
// the FineWeb-Edu classifier, a BERT-style encoder): WordPiece with the BERT normalizer and
// pre-tokenizer, or byte-level BPE (through lib/text/tokenizer.ts); special tokens from the
// post-processor; truncation and padding into int64 batches. No stream code.
import { readFileSync } from 'node:fs';
import { HfByteLevelBpe } from '../text/tokenizer.ts';

type Json = Record<string, any>;

/** Token ids of ordinary text (no special tokens), stopping once `limit` ids are produced. */
interface CoreTokenizer {
  ids(text: string, limit: number): number[];
}

const CONTROL = /[\p{Cc}\p{Cf}]/u;
const WHITESPACE = /\s/u;
const PUNCT = /\p{P}/u;

function isBertPunct(ch: string): boolean {
  const c = ch.charCodeAt(0);
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126) || PUNCT.test(ch);
}

function isCjk(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

const stripAccents = (t: string) => t.normalize('NFD').replace(/\p{Mn}/gu, '');

/** A normalizer from tokenizer.json as a function; errors name the path of an unsupported step. */
function buildNormalizer(n: Json | null | undefined, where: string, path = 'normalizer'): (t: string) => string {
  if (!n) return (t) => t;
  switch (n.type) {
    case 'BertNormalizer': {
      const lower = n.lowercase !== false;
      const strip = n.strip_accents ?? lower;
      return (t) => {
        let out = '';
        for (const ch of t) {
          const cp = ch.codePointAt(0)!;
          if (n.clean_text !== false) {
            if (cp === 0 || cp === 0xfffd) continue;
            if (WHITESPACE.test(ch)) {
              out += ' ';
              continue;
            }
            if (CONTROL.test(ch)) continue;
          }
          out += n.handle_chinese_chars !== false && isCjk(cp) ? ` ${ch} ` : ch;
        }
        if (strip) out = stripAccents(out);
        return lower ? out.toLowerCase() : out;
      };
    }
    case 'Lowercase':
      return (t) => t.toLowerCase();
    case 'StripAccents':
      return stripAccents;
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD':
      return (t) => t.normalize(n.type);
    case 'Sequence': {
      const fs = (n.normalizers as Json[]).map((x, i) => buildNormalizer(x, where, `${path}.normalizers[${i}]`));
      return (t) => fs.reduce((acc, f) => f(acc), t);
    }
    default:
      throw new Error(`${where}: ${path}.type "${n.type}" is not supported (BertNormalizer, Lowercase, StripAccents, NFC, NFD, NFKC, NFKD, Sequence)`);
  }
}

/** BERT pre-tokenization: split on whitespace, every punctuation character a word of its own. */
function* bertWords(t: string): Generator<string> {
  let cur = '';
  for (const ch of t) {
    if (WHITESPACE.test(ch)) {
      if (cur) yield cur;
      cur = '';
    } else if (isBertPunct(ch)) {
      if (cur) yield cur;
      cur = '';
      yield ch;
    } else cur += ch;
  }
  if (cur) yield cur;
}

function* whitespaceWords(t: string): Generator<string> {
  // The `Whitespace` pre-tokenizer: \w+ or runs of other non-space characters.
  for (const m of t.matchAll(/\w+|[^\w\s]+/gu)) yield m[0];
}

function* whitespaceSplit(t: string): Generator<string> {
  for (const m of t.matchAll(/\S+/gu)) yield m[0];
}

function buildPreTokenizer(p: Json | null | undefined, where: string): (t: string) => Iterable<string> {
  if (!p) return whitespaceSplit;
  switch (p.type) {
    case 'BertPreTokenizer':
      return bertWords;
    case 'Whitespace':
      return whitespaceWords;
    case 'WhitespaceSplit':
      return whitespaceSplit;
    case 'Sequence': {
      const steps = (p.pretokenizers as Json[]).map((x) => buildPreTokenizer(x, where));
      return function* (t: string) {
        let pieces: string[] = [t];
        for (const s of steps) pieces = pieces.flatMap((x) => [...s(x)]);
        yield* pieces;
      };
    }
    default:
      throw new Error(`${where}: pre_tokenizer.type "${p.type}" is not supported for WordPiece (BertPreTokenizer, Whitespace, WhitespaceSplit, Sequence)`);
  }
}

/** Greedy longest-match-first WordPiece, as BERT. */
export class WordPiece implements CoreTokenizer {
  private readonly vocab: Map<string, number>;
  private readonly unk: number;
  private readonly prefix: string;
  private readonly maxChars: number;
  private readonly normalize: (t: string) => string;
  private readonly words: (t: string) => Iterable<string>;
  private readonly cache = new Map<string, number[]>();

  constructor(json: Json, where: string) {
    const m = json.model;
    this.vocab = new Map(Object.entries(m.vocab as Record<string, number>));
    const unkToken = m.unk_token ?? '[UNK]';
    const unk = this.vocab.get(unkToken);
    if (unk === undefined) throw new Error(`${where}: model.unk_token "${unkToken}" is not in model.vocab`);
    this.unk = unk;
    this.prefix = m.continuing_subword_prefix ?? '##';
    this.maxChars = m.max_input_chars_per_word ?? 100;
    this.normalize = buildNormalizer(json.normalizer, where);
    this.words = buildPreTokenizer(json.pre_tokenizer, where);
  }

  /** Sub-word ids of one word. */
  word(w: string): number[] {
    const hit = this.cache.get(w);
    if (hit) return hit;
    const chars = [...w];
    let out: number[] = [];
    if (chars.length > this.maxChars) out = [this.unk];
    else {
      for (let start = 0; start < chars.length; ) {
        let end = chars.length;
        let id: number | undefined;
        while (start < end) {
          const piece = (start > 0 ? this.prefix : '') + chars.slice(start, end).join('');
          id = this.vocab.get(piece);
          if (id !== undefined) break;
          end--;
        }
        if (id === undefined) {
          out = [this.unk];
          break;
        }
        out.push(id);
        start = end;
      }
    }
    if (this.cache.size > 100_000) this.cache.clear();
    this.cache.set(w, out);
    return out;
  }

  ids(text: string, limit: number): number[] {
    const out: number[] = [];
    for (const w of this.words(this.normalize(text))) {
      for (const id of this.word(w)) out.push(id);
      if (out.length >= limit) break;
    }
    return out.length > limit ? out.slice(0, limit) : out;
  }
}

class ByteLevel implements CoreTokenizer {
  constructor(private readonly bpe: HfByteLevelBpe) {}
  ids(text: string, limit: number): number[] {
    // BPE models see whole texts; a generous character prefix bounds the work on huge documents.
    const ids = this.bpe.encode(text.length > limit * 16 ? text.slice(0, limit * 16) : text).filter((i) => i >= 0);
    return ids.length > limit ? ids.slice(0, limit) : ids;
  }
}

export interface Batch {
  /** [rows, seq] int64, row-major, padded with the pad id. */
  inputIds: BigInt64Array;
  /** [rows, seq] int64: 1 for tokens, 0 for padding. */
  attentionMask: BigInt64Array;
  /** [rows, seq] int64 zeros (single-segment input), for models that take token_type_ids. */
  tokenTypeIds: BigInt64Array;
  rows: number;
  seq: number;
}

/** A tokenizer.json turned into batched model inputs: `[CLS] text [SEP]`, truncated, padded. */
export class SequenceTokenizer {
  readonly kind: 'WordPiece' | 'BPE';
  private readonly core: CoreTokenizer;
  private readonly before: number[];
  private readonly after: number[];
  readonly padId: number;

  constructor(json: Json, where: string) {
    const type = json.model?.type ?? (json.model?.merges ? 'BPE' : json.model?.vocab ? 'WordPiece' : undefined);
    if (type === 'WordPiece') {
      this.kind = 'WordPiece';
      this.core = new WordPiece(json, where);
    } else if (type === 'BPE') {
      this.kind = 'BPE';
      this.core = new ByteLevel(new HfByteLevelBpe(json, where));
    } else {
      throw new Error(`${where}: model.type ${JSON.stringify(type)} is not supported (WordPiece or byte-level BPE)`);
    }
    const vocab = json.model.vocab as Record<string, number>;
    [this.before, this.after] = specials(json, vocab, where);
    const padToken = json.padding?.pad_token ?? ['[PAD]', '<pad>'].find((t) => vocab[t] !== undefined);
    this.padId = json.padding?.pad_id ?? (padToken !== undefined ? vocab[padToken] : 0) ?? 0;
  }

  static fromFile(file: string): SequenceTokenizer {
    let json: Json;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new Error(`cannot read tokenizer ${file}: ${(e as Error).message}`);
    }
    return new SequenceTokenizer(json, file);
  }

  /** Ids with special tokens, at most `maxLength` in all. */
  encode(text: string, maxLength: number): number[] {
    const room = Math.max(0, maxLength - this.before.length - this.after.length);
    return [...this.before, ...this.core.ids(text, room), ...this.after];
  }

  /** A padded batch (to the longest row). */
  batch(texts: readonly string[], maxLength: number): Batch {
    const rows = texts.map((t) => this.encode(t, maxLength));
    const seq = Math.max(1, ...rows.map((r) => r.length));
    const n = texts.length * seq;
    const inputIds = new BigInt64Array(n).fill(BigInt(this.padId));
    const attentionMask = new BigInt64Array(n);
    rows.forEach((r, i) => {
      for (let j = 0; j < r.length; j++) {
        inputIds[i * seq + j] = BigInt(r[j]);
        attentionMask[i * seq + j] = 1n;
      }
    });
    return { inputIds, attentionMask, tokenTypeIds: new BigInt64Array(n), rows: texts.length, seq };
  }
}

/** Special token ids placed before and after a single sequence, from the post-processor. */
function specials(json: Json, vocab: Record<string, number>, where: string): [number[], number[]] {
  const pp = json.post_processor as Json | null | undefined;
  const idOf = (tok: string): number => {
    const id = pp?.special_tokens?.[tok]?.ids?.[0] ?? vocab[tok] ?? (json.added_tokens as Json[] | undefined)?.find((a) => a.content === tok)?.id;
    if (id === undefined) throw new Error(`${where}: post_processor special token "${tok}" has no id`);
    return id;
  };
  if (!pp) return [[], []];
  switch (pp.type) {
    case 'BertProcessing':
    case 'RobertaProcessing':
      return [[pp.cls[1]], [pp.sep[1]]];
    case 'TemplateProcessing': {
      const before: number[] = [];
      const after: number[] = [];
      let seen = false;
      for (const item of pp.single as Json[]) {
        if (item.Sequence) seen = true;
        else if (item.SpecialToken) (seen ? after : before).push(...(pp.special_tokens?.[item.SpecialToken.id]?.ids ?? [idOf(item.SpecialToken.id)]));
      }
      return [before, after];
    }
    case 'ByteLevel':
      return [[], []];
    case 'Sequence': {
      const parts = (pp.processors as Json[]).map((p) => specials({ ...json, post_processor: p }, vocab, where));
      return [parts.flatMap((p) => p[0]), parts.flatMap((p) => p[1])];
    }
    default:
      throw new Error(`${where}: post_processor.type "${pp.type}" is not supported (BertProcessing, RobertaProcessing, TemplateProcessing, ByteLevel, Sequence)`);
  }
}
