// `decontaminate`: drops (or annotates) documents that share word n-grams with evaluation sets,
// looked up in a Bloom filter built by `mixstream decont build`.
import { statSync } from 'node:fs';
import path from 'node:path';
import { defineOperator } from '../lib/operator.ts';
import { BloomFilter } from '../lib/sketch/bloom.ts';
import { DEFAULT_WORD_FORM, NGRAM_HASH_VERSION, ngramHashes, type WordFormOptions } from '../lib/text/ngrams.ts';

export interface DecontaminateOptions {
  filter: string;
  mode: 'drop' | 'annotate';
  minMatches: number;
  field: string;
}

// Filters are loaded once per process and file version, so several steps (and tests) share one copy.
const loaded = new Map<string, { key: string; filter: BloomFilter }>();

export function loadDecontFilter(file: string): BloomFilter {
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    throw new Error(`option filter: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (build it with "mixstream decont build evalsets/*.jsonl -o ${path.basename(file)}")`);
  }
  const key = `${st.size}:${st.mtimeMs}`;
  const hit = loaded.get(file);
  if (hit?.key === key) return hit.filter;
  let filter: BloomFilter;
  try {
    filter = BloomFilter.load(file);
  } catch (e) {
    throw new Error(`option filter: ${(e as Error).message}`);
  }
  const meta = filter.meta;
  if (meta.kind !== 'decontamination' || typeof meta.ngram !== 'number') {
    throw new Error(`option filter: ${file} is a Bloom filter but not a decontamination filter (no n-gram size in its header)`);
  }
  if (meta.ngramHash !== NGRAM_HASH_VERSION) {
    throw new Error(`option filter: ${file} was built with n-gram hash ${String(meta.ngramHash)}, this mixstream uses ${NGRAM_HASH_VERSION}; rebuild it`);
  }
  loaded.set(file, { key, filter });
  return filter;
}

export default defineOperator<DecontaminateOptions>({
  name: 'decontaminate',
  summary: 'Drops or annotates documents containing word n-grams of evaluation sets (Bloom filter from `mixstream decont build`)',
  description:
    'Each document is cut into word n-grams (n from the filter, 13 by default) over the same normalized word form the ' +
    'filter was built with (lowercase, punctuation stripped, NFKC); every n-gram is looked up in the Bloom filter. ' +
    'A document with at least `minMatches` contaminated n-grams is dropped (reason `contaminated`) or, in annotate ' +
    'mode, kept with the count. The data-ablation paper (after Dolma) excludes a document as soon as any n-gram of ' +
    'it is found: minMatches 1. A clean document is dropped by mistake with probability about (n-grams in it) x (the ' +
    'filter false-positive rate): 1e-3 for a 1,000-word document at 1e-6.',
  options: {
    filter: { type: 'string', required: true, description: 'path to the .bloom file built by `mixstream decont build` (relative to the pipeline file)' },
    mode: { type: 'string', enum: ['drop', 'annotate'], default: 'drop', description: '"drop" removes contaminated documents; "annotate" keeps every document and writes the match count' },
    minMatches: { type: 'integer', min: 1, default: 1, description: 'contaminated n-gram occurrences that make a document contaminated' },
    field: { type: 'string', default: 'contaminated_ngrams', description: 'output field of annotate mode' },
  },
  outputs: { contaminated_ngrams: 'annotate mode: number of n-gram positions of the text found in the filter (0 for clean documents)' },
  explain(o) {
    return o.mode === 'drop'
      ? `drops documents with >= ${o.minMatches} word n-gram(s) found in ${o.filter}`
      : `writes the number of word n-grams found in ${o.filter} into "${o.field}" (>= ${o.minMatches} counts as contaminated)`;
  },
  create(o, ctx) {
    const filter = loadDecontFilter(path.resolve(ctx.baseDir, o.filter));
    const n = filter.meta.ngram as number;
    const form: WordFormOptions = { ...DEFAULT_WORD_FORM, ...(filter.meta.form as Partial<WordFormOptions> | undefined) };
    const drop = o.mode === 'drop';
    const min = o.minMatches;
    return {
      process(batch) {
        const out = [];
        let checked = 0;
        for (const rec of batch) {
          if (typeof rec.text !== 'string') {
            ctx.error(rec, 'no_text', `record ${rec.id}: "text" is ${rec.text === undefined ? 'missing' : typeof rec.text}, not a string`);
            continue;
          }
          const h = ngramHashes(rec.text, n, form);
          let matches = 0;
          const { a, b, count } = h;
          for (let i = 0; i < count; i++) {
            if (filter.has(a[i], b[i])) {
              matches++;
              if (drop && matches >= min) break;
            }
          }
          checked += count;
          if (matches >= min) {
            ctx.stats.count('contaminated');
            ctx.stats.observe('contaminated_ngrams', matches);
          }
          if (drop) {
            if (matches >= min) ctx.drop(rec, 'contaminated');
            else out.push(rec);
          } else {
            ctx.annotate(rec, o.field, matches);
            out.push(rec);
          }
        }
        ctx.stats.count('ngrams_checked', checked);
        return out;
      },
    };
  },
});
