// `mixstream decont build`: a Bloom filter of the word n-grams of evaluation sets, for the
// `decontaminate` operator. Reads NDJSON (plain, gzip or zstd), Parquet or Arrow through the
// engine's decoder; bad lines are counted, never fatal.
//
// Two passes over the (small) evaluation sets: the first counts n-grams to size the filter from
// the false-positive rate (skipped when `expectedItems` is given), the second inserts them. The
// count is of n-gram occurrences, an upper bound of the distinct n-grams, so the filter is never
// smaller than the rate needs.
import { statSync } from 'node:fs';
import path from 'node:path';
import type { ErrorEntry } from '../context.ts';
import { decodeInput, DEFAULT_DECODE, fileInput, type InputProgress } from '../io/decode.ts';
import { expandGlob } from '../io/glob.ts';
import { BloomFilter } from '../sketch/bloom.ts';
import { DEFAULT_WORD_FORM, NGRAM_HASH_VERSION, ngramHashes, type WordFormOptions } from '../text/ngrams.ts';
import type { Rec } from '../operator.ts';

export interface DecontBuildOptions {
  /** Evaluation set files (globs allowed). */
  inputs: string[];
  /** Words per n-gram (default 13). */
  n?: number;
  /** False-positive rate the filter is sized for (default 1e-6). */
  fpRate?: number;
  /** Output file (`.bloom`). */
  out: string;
  /** Field holding the evaluation text (default `text`). */
  textField?: string;
  /** Items to size the filter for; skips the counting pass. */
  expectedItems?: number;
  /** Word form; defaults: lowercase, punctuation stripped, digits kept. */
  form?: Partial<WordFormOptions>;
  /** Progress and warnings (default: stderr). */
  log?: (message: string) => void;
}

export interface DecontBuildResult {
  out: string;
  files: string[];
  /** Evaluation records read. */
  records: number;
  /** Records shorter than n words: they have no n-gram and cannot be matched. */
  shortRecords: number;
  /** n-gram occurrences inserted. */
  ngrams: number;
  /** Distinct n-grams (keys that set a new bit). */
  distinct: number;
  m: number;
  k: number;
  bytes: number;
  /** False-positive rate expected at the final load. */
  expectedFpRate: number;
  /** Bad input lines by reason. */
  errors: Record<string, number>;
  seconds: number;
}

async function* evalRecords(files: string[], textField: string, onError: (e: ErrorEntry) => void): AsyncGenerator<Rec[]> {
  for (const file of files) {
    const progress: InputProgress = { bytes: 0, records: 0, complete: false };
    yield* decodeInput(fileInput(file), { ...DEFAULT_DECODE, textField }, { error: onError }, progress);
  }
}

export async function buildDecontFilter(o: DecontBuildOptions): Promise<DecontBuildResult> {
  const t0 = performance.now();
  const n = o.n ?? 13;
  const fpRate = o.fpRate ?? 1e-6;
  const textField = o.textField ?? 'text';
  const form: WordFormOptions = { ...DEFAULT_WORD_FORM, ...o.form };
  const log = o.log ?? ((m: string) => process.stderr.write(`decont build: ${m}\n`));
  if (!Number.isInteger(n) || n < 1) throw new Error(`--n: expected an integer >= 1, got ${n}`);
  if (!(fpRate > 0 && fpRate < 1)) throw new Error(`--fp-rate: expected a number in (0, 1), got ${fpRate}`);
  if (!o.out) throw new Error('-o/--out: an output file is required');
  const files = [...new Set(o.inputs.flatMap((p) => expandGlob(p)))];
  if (files.length === 0) throw new Error(`no evaluation set files match ${o.inputs.join(' ')}`);
  for (const f of files) {
    try {
      if (!statSync(f).isFile()) throw new Error('not a file');
    } catch (e) {
      throw new Error(`evaluation set ${f}: ${(e as Error).message}`);
    }
  }

  const errors: Record<string, number> = {};
  let reported = 0;
  const onError = (e: ErrorEntry) => {
    errors[e.reason] = (errors[e.reason] ?? 0) + 1;
    if (reported++ < 5) log(`${e.input}${e.line !== undefined ? `:${e.line}` : ''}: ${e.message}`);
  };

  let expected = o.expectedItems;
  if (expected === undefined) {
    expected = 0;
    for await (const batch of evalRecords(files, textField, () => {})) {
      for (const rec of batch) expected += ngramHashes(rec.text, n, form).count;
    }
  }
  const filter = BloomFilter.create(expected, fpRate, {
    kind: 'decontamination',
    ngram: n,
    form,
    ngramHash: NGRAM_HASH_VERSION,
    textField,
    sources: files.map((f) => path.relative(process.cwd(), f) || f),
    created: new Date().toISOString(),
  });
  log(`${files.length} file(s), sizing for ${expected.toLocaleString('en-US')} n-grams at rate ${fpRate}: ${(filter.m / 8 / 2 ** 20).toFixed(2)} MiB, k = ${filter.k}`);

  let records = 0;
  let shortRecords = 0;
  let ngrams = 0;
  for await (const batch of evalRecords(files, textField, onError)) {
    for (const rec of batch) {
      records++;
      const h = ngramHashes(rec.text, n, form);
      if (h.count === 0) shortRecords++;
      ngrams += h.count;
      for (let i = 0; i < h.count; i++) filter.add(h.a[i], h.b[i]);
    }
  }
  if (ngrams > expected) {
    log(`warning: inserted ${ngrams} n-grams, more than the ${expected} the filter was sized for; its false-positive rate is ${filter.estimatedFpRate().toExponential(2)}`);
  }
  if (shortRecords) log(`${shortRecords} record(s) shorter than ${n} words have no n-gram and cannot be matched`);
  filter.meta.records = records;
  filter.meta.shortRecords = shortRecords;
  filter.meta.ngrams = ngrams;
  filter.save(o.out);
  const result: DecontBuildResult = {
    out: o.out,
    files,
    records,
    shortRecords,
    ngrams,
    distinct: filter.n,
    m: filter.m,
    k: filter.k,
    bytes: statSync(o.out).size,
    expectedFpRate: filter.estimatedFpRate(),
    errors,
    seconds: (performance.now() - t0) / 1000,
  };
  log(`${records} records, ${ngrams} n-grams (${filter.n} distinct) -> ${o.out} (${(result.bytes / 2 ** 20).toFixed(2)} MiB, expected false-positive rate ${result.expectedFpRate.toExponential(2)})`);
  return result;
}
