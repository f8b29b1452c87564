// `tokens`: counts the tokens of each record's text with a real tokenizer (or a calibrated estimate).
import path from 'node:path';
import { defineOperator, stepOptionError, type Rec } from '../lib/operator.ts';
import { createWorkerPool, type WorkerPool, orderedTextStep } from '../lib/parallel.ts';
import { openCounter, type TokenizeTask, type TokenizerSpec } from '../lib/text/tokenize-task.ts';
import { ENCODINGS, estimateCounter, type EncodingName, type TokenCounter } from '../lib/text/tokenizer.ts';

export interface TokensOptions {
  encoding: EncodingName;
  tokenizer?: string;
  mode: 'exact' | 'estimate';
  field: string;
  workers?: number;
  parallelAfterChars: number;
}

function spec(o: { encoding: EncodingName; tokenizer?: string }, baseDir: string): TokenizerSpec {
  return o.tokenizer ? { tokenizerFile: path.resolve(baseDir, o.tokenizer) } : { encoding: o.encoding };
}

/** The tokenizer a `tokens` step (or a sampler estimating missing counts) uses. */
export async function tokenCounter(o: { encoding: EncodingName; tokenizer?: string; mode: 'exact' | 'estimate' }, baseDir: string): Promise<TokenCounter> {
  if (o.mode === 'estimate') return estimateCounter;
  return openCounter(spec(o, baseDir));
}

/** Texts per worker task at least: smaller chunks cost more in messages than they gain. */
const MIN_CHUNK = 16;


export default defineOperator<TokensOptions>({
  name: 'tokens',
  summary: 'Counts tokens with a tiktoken encoding, a byte-level BPE tokenizer.json, or a fast estimate',
  description:
    'Adds the token count of `text` (the field that token budgets, `mix` shares and the run summary use). ' +
    'Exact mode runs byte-level BPE with the rank tables shipped in js-tiktoken (offline) or a Hugging Face ' +
    'tokenizer.json, in worker threads (output order kept); estimate mode counts character classes in one pass ' +
    'with coefficients fitted against cl100k_base (see docs/sampling.md for its measured error).',
  options: {
    encoding: { type: 'string', enum: ENCODINGS, default: 'cl100k_base', description: 'tiktoken encoding whose ranks ship inside js-tiktoken' },
    tokenizer: { type: 'string', description: 'path to a Hugging Face tokenizer.json (byte-level BPE); overrides `encoding`; relative to the pipeline file' },
    mode: { type: 'string', enum: ['exact', 'estimate'], default: 'exact', description: '"exact" tokenizes; "estimate" counts character classes (several times faster)' },
    field: { type: 'string', default: 'token_count', description: 'output field; the run summary sums `token_count`' },
    workers: { type: 'integer', min: 0, description: 'worker threads for exact mode (default: the run\'s --workers, all cores); 0 counts in the main thread' },
    parallelAfterChars: {
      type: 'integer',
      min: 0,
      default: 8_000_000,
      description: 'characters counted in the main thread before the worker threads start (starting them costs seconds: each loads the TypeScript loader and the rank tables)',
    },
  },
  outputs: { token_count: 'number of tokens of `text` (renamed by `field`)' },
  check(o) {
    return o.mode === 'estimate' && o.tokenizer ? [{ path: 'tokenizer', message: 'a tokenizer file is only used in mode "exact"; remove it or set mode: "exact"' }] : [];
  },
  reads(o) {
    return o.tokenizer ? [{ option: 'tokenizer', path: o.tokenizer }] : [];
  },
  explain(o) {
    const what = o.mode === 'estimate' ? 'a character-class estimate' : o.tokenizer ? `the tokenizer ${o.tokenizer}` : `the ${o.encoding} encoding`;
    return `counts the tokens of text with ${what} into "${o.field}"`;
  },
  async create(o, ctx) {
    let counter: TokenCounter;
    try {
      // Loaded in the main thread too: a bad tokenizer file fails the run before any data is read.
      counter = await tokenCounter(o, ctx.baseDir);
    } catch (e) {
      throw stepOptionError(ctx, `option tokenizer: ${(e as Error).message}`);
    }
    const workers = o.mode === 'exact' ? (o.workers ?? ctx.workers) : 0;
    let pool: WorkerPool<TokenizeTask, Uint32Array> | undefined;
    const taskSpec = spec(o, ctx.baseDir);

    const annotate = (recs: Rec[], counts: ArrayLike<number>) => {
      let total = 0;
      for (let i = 0; i < recs.length; i++) {
        total += counts[i];
        ctx.annotate(recs[i], o.field, counts[i]);
      }
      ctx.stats.count('tokens', total);
      return recs;
    };

    let inlineChars = 0;
    async function run(recs: Rec[]): Promise<Rec[]> {
      if (workers === 0 || recs.length < MIN_CHUNK || (!pool && inlineChars < o.parallelAfterChars)) {
        for (const r of recs) inlineChars += r.text.length;
        return annotate(recs, recs.map((r) => counter.count(r.text)));
      }
      pool ??= createWorkerPool({ module: new URL('../lib/text/tokenize-task.ts', import.meta.url), size: workers, name: ctx.op });
      const chunks = Math.max(1, Math.min(pool.size, Math.floor(recs.length / MIN_CHUNK)));
      const per = Math.ceil(recs.length / chunks);
      const parts: Promise<unknown>[] = [];
      for (let start = 0; start < recs.length; start += per) {
        const slice = recs.slice(start, start + per);
        parts.push(pool.run({ spec: taskSpec, texts: slice.map((r) => r.text) }).then((counts) => annotate(slice, counts)));
      }
      await Promise.all(parts);
      return recs;
    }

    return orderedTextStep(ctx, { ahead: workers > 0 ? 2 : 0, run, pool: () => pool });
  },
});
