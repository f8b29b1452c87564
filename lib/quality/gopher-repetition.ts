// Gopher repetition rules (Rae et al. 2021, table A1): duplicated lines and paragraphs, the
// most frequent 2-4-grams, duplicated 5-10-grams. Same measures and order of checks as
// datatrove's GopherRepetitionFilter; n-grams are compared by 64-bit hashes of word ids
// instead of joined strings.
import { disableOption, Verdict, type RuleSet } from './rule-set.ts';
import { cpLength, pyStrip, splitWords } from './text.ts';

export interface GopherRepetitionOptions {
  dupLineFrac: number;
  dupParaFrac: number;
  dupLineCharFrac: number;
  dupParaCharFrac: number;
  /** [n, max share of characters in the most frequent n-gram] pairs. */
  topNGrams: [number, number][];
  /** [n, max share of characters in duplicated n-grams] pairs. */
  dupNGrams: [number, number][];
  disable?: string[];
}

const TOP_DEFAULT: [number, number][] = [[2, 0.2], [3, 0.18], [4, 0.16]];
const DUP_DEFAULT: [number, number][] = [[5, 0.15], [6, 0.14], [7, 0.13], [8, 0.12], [9, 0.11], [10, 0.1]];

export const GOPHER_REPETITION_REASONS: Record<string, string> = {
  dup_para_frac: 'share of paragraphs (split on blank lines) that repeat an earlier one above dupParaFrac',
  dup_para_char_frac: 'share of characters in repeated paragraphs above dupParaCharFrac',
  dup_line_frac: 'share of lines that repeat an earlier line above dupLineFrac',
  dup_line_char_frac: 'share of characters in repeated lines above dupLineCharFrac',
  ...Object.fromEntries(TOP_DEFAULT.map(([n]) => [`top_${n}_gram`, `characters covered by the most frequent word ${n}-gram above its topNGrams share`])),
  ...Object.fromEntries(DUP_DEFAULT.map(([n]) => [`duplicated_${n}_n_grams`, `characters in repeated (non-overlapping) word ${n}-grams above its dupNGrams share`])),
};

/** Duplicate elements and their characters (elements equal to an earlier one). */
export function findDuplicates(items: string[]): { elements: number; chars: number } {
  const seen = new Set<string>();
  let elements = 0;
  let chars = 0;
  for (const x of items) {
    if (seen.has(x)) {
      elements++;
      chars += cpLength(x);
    } else seen.add(x);
  }
  return { elements, chars };
}

/**
 * Incremental n-gram hashes over word ids: level n holds two 32-bit hashes per n-gram start
 * (64 bits: collisions are negligible at document sizes), compared in an open-addressing table.
 */
class NGrams {
  readonly ids: Int32Array;
  readonly lens: Float64Array;
  private h1: Int32Array;
  private h2: Int32Array;
  private glen: Float64Array;
  private level = 0;
  // Open-addressing table: slot -> (h1, h2, count, first index + 1); 0 in `first` marks empty.
  private t1 = new Int32Array(0);
  private t2 = new Int32Array(0);
  private tc = new Int32Array(0);
  private tf = new Int32Array(0);
  constructor(words: string[]) {
    const dict = new Map<string, number>();
    const n = words.length;
    this.ids = new Int32Array(n);
    this.lens = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const w = words[i];
      let id = dict.get(w);
      if (id === undefined) dict.set(w, (id = dict.size + 1));
      this.ids[i] = id;
      this.lens[i] = cpLength(w);
    }
    this.h1 = new Int32Array(n);
    this.h2 = new Int32Array(n);
    this.glen = new Float64Array(n);
  }
  /** Moves to level `n`; returns the number of n-grams. */
  to(n: number): number {
    const W = this.ids.length;
    if (n < this.level) this.level = 0;
    const { ids, lens, h1, h2, glen } = this;
    while (this.level < n) {
      const k = this.level; // extend k-grams to (k+1)-grams
      const count = W - k;
      for (let i = 0; i < count; i++) {
        const id = ids[i + k];
        let a = k === 0 ? 0x2545f491 : h1[i];
        let b = k === 0 ? 0x61c88647 : h2[i];
        a = Math.imul(a ^ id, 0x9e3779b1);
        a ^= a >>> 15;
        b = Math.imul(b + id, 0x85ebca77);
        b ^= b >>> 13;
        b = Math.imul(b, 0xc2b2ae3d);
        h1[i] = a;
        h2[i] = b;
        glen[i] = (k === 0 ? 0 : glen[i]) + lens[i + k];
      }
      this.level++;
    }
    return Math.max(0, W - n + 1);
  }
  /** Empties the table, sized for `count` keys. */
  private reset(count: number): number {
    let size = 16;
    while (size < count * 2) size <<= 1;
    if (this.tf.length < size) {
      this.t1 = new Int32Array(size);
      this.t2 = new Int32Array(size);
      this.tc = new Int32Array(size);
      this.tf = new Int32Array(size);
    } else {
      size = this.tf.length;
      this.tf.fill(0);
    }
    return size - 1;
  }
  /** The slot of the n-gram at i: an existing equal key's, or the empty slot where it goes. */
  private slot(i: number, mask: number): number {
    const a = this.h1[i];
    const b = this.h2[i];
    let s = (a ^ (b >>> 7)) & mask;
    while (this.tf[s] !== 0 && (this.t1[s] !== a || this.t2[s] !== b)) s = (s + 1) & mask;
    return s;
  }
  /** Characters covered by the most frequent n-gram (with the joining spaces), ties to the first seen; -1 when none. */
  topChars(n: number): number {
    const count = this.to(n);
    if (count === 0) return -1;
    const mask = this.reset(count);
    let best = 0;
    let bestFirst = 0;
    for (let i = 0; i < count; i++) {
      const s = this.slot(i, mask);
      if (this.tf[s] === 0) {
        this.t1[s] = this.h1[i];
        this.t2[s] = this.h2[i];
        this.tf[s] = i + 1;
        this.tc[s] = 0;
      }
      const c = ++this.tc[s];
      const first = this.tf[s] - 1;
      // Counter.most_common(1): the highest count, and among equals the first inserted.
      if (c > best || (c === best && first < bestFirst)) {
        best = c;
        bestFirst = first;
      }
    }
    return (this.glen[bestFirst] + n - 1) * best;
  }
  /** Characters in n-grams that repeat an earlier n-gram, skipping past each repeat. */
  dupChars(n: number): number {
    const count = this.to(n);
    if (count === 0) return 0;
    const mask = this.reset(count);
    let chars = 0;
    let i = 0;
    while (i < count) {
      const s = this.slot(i, mask);
      if (this.tf[s] !== 0) {
        chars += this.glen[i];
        i += n;
      } else {
        this.t1[s] = this.h1[i];
        this.t2[s] = this.h2[i];
        this.tf[s] = i + 1;
        i++;
      }
    }
    return chars;
  }
}

const pairs = (description: string, def: [number, number][]) => ({
  type: 'array' as const,
  description,
  items: { type: 'array' as const, description: '[n, maximum share]', items: { type: 'number' as const, description: 'n or share', min: 0 }, minItems: 2 },
  default: def,
});

export const gopherRepetition: RuleSet<GopherRepetitionOptions> = {
  name: 'gopher-repetition',
  summary: 'Gopher repetition heuristics: duplicated lines and paragraphs, frequent and duplicated word n-grams',
  options: {
    dupLineFrac: { type: 'number', description: 'Highest share of lines repeating an earlier line.', default: 0.3, min: 0, max: 1 },
    dupParaFrac: { type: 'number', description: 'Highest share of paragraphs repeating an earlier paragraph.', default: 0.3, min: 0, max: 1 },
    dupLineCharFrac: { type: 'number', description: 'Highest share of the text\'s characters in repeated lines.', default: 0.2, min: 0, max: 1 },
    dupParaCharFrac: { type: 'number', description: 'Highest share of the text\'s characters in repeated paragraphs.', default: 0.2, min: 0, max: 1 },
    topNGrams: pairs('[n, share] pairs: highest share of characters covered by the most frequent word n-gram.', TOP_DEFAULT),
    dupNGrams: pairs('[n, share] pairs: highest share of characters in repeated word n-grams.', DUP_DEFAULT),
    disable: { ...disableOption(GOPHER_REPETITION_REASONS), items: { type: 'string', description: 'reason name' } },
  },
  reasons: GOPHER_REPETITION_REASONS,
  evaluate(text, o, how = {}) {
    const v = new Verdict(o.disable, !!how.firstFailure);
    const m = v.metrics;
    const total = cpLength(text);
    const frac = (x: number) => (total ? x / total : 0);

    const paras = pyStrip(text).split(/\n{2,}/);
    const pd = findDuplicates(paras);
    m.dup_para_frac = pd.elements / paras.length;
    m.dup_para_char_frac = frac(pd.chars);
    if (v.on('dup_para_frac') && m.dup_para_frac > o.dupParaFrac && v.fail('dup_para_frac')) return v.result();
    if (v.on('dup_para_char_frac') && m.dup_para_char_frac > o.dupParaCharFrac && v.fail('dup_para_char_frac')) return v.result();

    const lines = text.split(/\n+/);
    const ld = findDuplicates(lines);
    m.dup_line_frac = ld.elements / lines.length;
    m.dup_line_char_frac = frac(ld.chars);
    if (v.on('dup_line_frac') && m.dup_line_frac > o.dupLineFrac && v.fail('dup_line_frac')) return v.result();
    if (v.on('dup_line_char_frac') && m.dup_line_char_frac > o.dupLineCharFrac && v.fail('dup_line_char_frac')) return v.result();

    const g = new NGrams(splitWords(text));
    for (const [n, max] of o.topNGrams) {
      const reason = `top_${n}_gram`;
      if (!v.on(reason)) continue;
      const chars = g.topChars(n);
      if (chars < 0) continue;
      m[reason] = frac(chars);
      if (m[reason] > max && v.fail(reason)) return v.result();
    }
    for (const [n, max] of o.dupNGrams) {
      const reason = `duplicated_${n}_n_grams`;
      if (!v.on(reason)) continue;
      m[reason] = frac(g.dupChars(n));
      if (m[reason] > max && v.fail(reason)) return v.result();
    }
    return v.result();
  },
};
