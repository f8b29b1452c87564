// `decontaminate`: drops (or annotates) documents that share word n-grams with evaluation sets,
// looked up in a Bloom filter built by `mixstream decont build`.
import { statSync } from 'node:fs';
import path from 'node:path';
import { defineOperator, stepOptionError } from '../lib/operator.ts';
import { BloomFilter } from '../lib/sketch/bloom.ts';
import { createWorkerPool, inCallOrder, type WorkerPool, orderedTextStep } from '../lib/parallel.ts';
import { countMatches, type DecontTask } from '../lib/text/decont-task.ts';
import { DEFAULT_WORD_FORM, NGRAM_HASH_VERSION, type WordFormOptions } from '../lib/text/ngrams.ts';
import type { Rec } from '../lib/operator.ts';

export interface DecontaminateOptions {
  filter: string;
  mode: 'drop' | 'annotate';
  minMatches: number;
  field: string;
  workers?: number;
  parallelAfterChars: number;
}

/** Documents per worker task at least (smaller batches run inline). */
const MIN_CHUNK = 32;

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
    workers: { type: 'integer', min: 0, description: "worker threads (default: the run's --workers, all cores); 0 checks in the main thread. The filter is shared between threads, not copied" },
    parallelAfterChars: {
      type: 'integer',
      min: 0,
      default: 4_000_000,
      description: 'characters checked in the main thread before the worker threads start (starting them costs about a second each)',
    },
  },
  outputs: { contaminated_ngrams: 'annotate mode: number of n-gram positions of the text found in the filter (0 for clean documents)' },
  reads(o) {
    return [{ option: 'filter', path: o.filter, hint: `build it with "mixstream decont build evalsets/*.jsonl -o ${o.filter}"` }];
  },
  explain(o) {
    return o.mode === 'drop'
      ? `drops documents with >= ${o.minMatches} word n-gram(s) found in ${o.filter}`
      : `writes the number of word n-grams found in ${o.filter} into "${o.field}" (>= ${o.minMatches} counts as contaminated)`;
  },
  create(o, ctx) {
    let filter: BloomFilter;
    try {
      filter = loadDecontFilter(path.resolve(ctx.baseDir, o.filter));
    } catch (e) {
      throw stepOptionError(ctx, (e as Error).message);
    }
    const n = filter.meta.ngram as number;
    const form: WordFormOptions = { ...DEFAULT_WORD_FORM, ...(filter.meta.form as Partial<WordFormOptions> | undefined) };
    const drop = o.mode === 'drop';
    const stopAt = drop ? o.minMatches : 0;
    const workers = o.workers ?? ctx.workers;
    let pool: WorkerPool<DecontTask, Uint32Array> | undefined;

    /** Applies the per-document results (matches, n-grams checked) in order. */
    const decide = (recs: Rec[], results: ArrayLike<number>): Rec[] => {
      const out: Rec[] = [];
      let checked = 0;
      for (let i = 0; i < recs.length; i++) {
        const rec = recs[i];
        const matches = results[2 * i];
        checked += results[2 * i + 1];
        if (matches >= o.minMatches) {
          ctx.stats.count('contaminated');
          ctx.stats.observe('contaminated_ngrams', matches);
        }
        if (drop) {
          if (matches >= o.minMatches) ctx.drop(rec, 'contaminated');
          else out.push(rec);
        } else {
          ctx.annotate(rec, o.field, matches);
          out.push(rec);
        }
      }
      ctx.stats.count('ngrams_checked', checked);
      return out;
    };

    let inlineChars = 0;
    const inOrder = inCallOrder();
    async function run(recs: Rec[]): Promise<Rec[]> {
      return inOrder(count(recs), (results) => decide(recs, results));
    }
    /** Matches and n-grams checked per record, [matches, checked] pairs. */
    async function count(recs: Rec[]): Promise<Uint32Array> {
      if (workers === 0 || recs.length < 2 * MIN_CHUNK || (!pool && inlineChars < o.parallelAfterChars)) {
        const results = new Uint32Array(recs.length * 2);
        for (let i = 0; i < recs.length; i++) {
          inlineChars += recs[i].text.length;
          const r = countMatches(filter, recs[i].text, n, form, stopAt);
          results[2 * i] = r.matches;
          results[2 * i + 1] = r.checked;
        }
        return results;
      }
      pool ??= createWorkerPool({ module: new URL('../lib/text/decont-task.ts', import.meta.url), size: workers, name: ctx.op });
      const chunks = Math.max(1, Math.min(pool.size, Math.floor(recs.length / MIN_CHUNK)));
      const per = Math.ceil(recs.length / chunks);
      const parts: Promise<Uint32Array>[] = [];
      for (let start = 0; start < recs.length; start += per) {
        const texts = recs.slice(start, start + per).map((r) => r.text);
        parts.push(pool.run({ words: filter.words, m: filter.m, k: filter.k, n, form, stopAt, texts }));
      }
      const results = await Promise.all(parts);
      const all = new Uint32Array(recs.length * 2);
      let at = 0;
      for (const r of results) {
        all.set(r, at);
        at += r.length;
      }
      return all;
    }

    return orderedTextStep(ctx, { ahead: workers > 0 ? 2 : 0, run, pool: () => pool });
  },
});
