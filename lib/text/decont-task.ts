// Counting the contaminated n-grams of texts against a Bloom filter: the kernel the
// `decontaminate` operator runs inline or as a worker-thread task (lib/parallel.ts). The filter's
// bits live in a SharedArrayBuffer, so every thread reads the same memory (no copy per thread).
import { withTransfer } from '../parallel.ts';
import { BloomFilter } from '../sketch/bloom.ts';
import { ngramHashes, type WordFormOptions } from './ngrams.ts';

export interface DecontTask {
  /** The filter's bits (shared) and parameters. */
  words: Uint32Array;
  m: number;
  k: number;
  n: number;
  form: WordFormOptions;
  /** Stop counting a text at this many matches (drop mode); 0: count all. */
  stopAt: number;
  texts: string[];
}

/** Contaminated n-gram positions of `text`, counting up to `stopAt` (0: all). */
export function countMatches(filter: BloomFilter, text: string, n: number, form: WordFormOptions, stopAt: number): { matches: number; checked: number } {
  const { a, b, count } = ngramHashes(text, n, form);
  let matches = 0;
  for (let i = 0; i < count; i++) {
    if (filter.has(a[i], b[i])) {
      matches++;
      if (matches === stopAt) return { matches, checked: i + 1 };
    }
  }
  return { matches, checked: count };
}

/** Per text: matches, then n-grams checked (2 numbers per text). */
export default function decontTask(t: DecontTask): Uint32Array {
  const filter = new BloomFilter({ m: t.m, k: t.k }, {}, t.words);
  const out = new Uint32Array(t.texts.length * 2);
  for (let i = 0; i < t.texts.length; i++) {
    const r = countMatches(filter, t.texts[i], t.n, t.form, t.stopAt);
    out[2 * i] = r.matches;
    out[2 * i + 1] = r.checked;
  }
  return withTransfer(out, [out.buffer]);
}
