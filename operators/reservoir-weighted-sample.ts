// `reservoir-weighted-sample`: one pass, weighted sampling without replacement under a token
// budget or a count (Efraimidis-Spirakis keys), in bounded memory.
import { defineOperator, type Rec, type Step, type StepContext } from '../lib/operator.ts';
import { decodeRecord, encodeRecord } from '../lib/record-codec.ts';
import { compileExpression, ExpressionError, type Evaluator } from '../lib/sketch/expression.ts';
import { emptyDir } from '../lib/sketch/spill-file.ts';
import { esKey, uniformFor, WeightedReservoir } from '../lib/sketch/weighted-reservoir.ts';
import { estimateTokens } from '../lib/text/tokenizer.ts';

export interface ReservoirOptions {
  count?: number;
  budgetTokens?: number;
  weight: string;
  seed: number;
  memoryMB: number;
  tokensField: string;
}

/** Compiles a weight expression, naming the option in errors. */
export function weightExpression(src: string, option: string): Evaluator {
  try {
    return compileExpression(src).evaluate;
  } catch (e) {
    if (e instanceof ExpressionError) throw new Error(`${option}: ${e.message}`);
    throw e;
  }
}

export function checkWeight(src: string | undefined, option: string): { path: string; message: string }[] {
  if (src === undefined) return [];
  try {
    compileExpression(src);
    return [];
  } catch (e) {
    return [{ path: option, message: (e as Error).message }];
  }
}

/** The token count a budget uses: the `tokensField` field, else the calibrated estimate (counted as `tokens_estimated`). */
export function recordTokens(rec: Rec, field: string, ctx: StepContext): number {
  const v = rec[field];
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
  ctx.stats.count('tokens_estimated');
  return typeof rec.text === 'string' ? estimateTokens(rec.text) : 0;
}

/** Spill-file and checkpoint codec (keeps internals and step-written fields) and size measure for records. */
export const recordCodec = {
  serialize: encodeRecord,
  deserialize: decodeRecord,
  sizeOf: (r: Rec) => 256 + (typeof r.text === 'string' ? r.text.length * 2 : 0),
};

export default defineOperator<ReservoirOptions>({
  name: 'reservoir-weighted-sample',
  // Holds the sample until the end of input; with --checkpoint it is saved at each checkpoint.
  stateful: true,
  summary: 'Weighted sample without replacement in one pass, under a token budget or a count (Efraimidis-Spirakis keys)',
  description:
    'Each record gets the key u^(1/w) (computed as log(u)/w) with u uniform from (seed, id) and w the weight. ' +
    'With `count` the sample is the `count` largest keys; with `budgetTokens` it is the longest run of the ' +
    'largest keys whose tokens fit the budget: records are drawn one by one with probability proportional to ' +
    'weight, until the next draw would overflow the budget (records larger than the budget alone are skipped). ' +
    'Only sampled records are kept; beyond `memoryMB` their bodies go to a spill file. The sample is emitted ' +
    'in input order at the end of input; records left out are dropped as `not_sampled`. With --checkpoint the ' +
    'reservoir (keys, bodies, spill file by hard link) is saved at each checkpoint, and a resumed run samples exactly as an uninterrupted one.',
  options: {
    count: { type: 'integer', min: 1, description: 'sample size in records (or use budgetTokens)' },
    budgetTokens: { type: 'number', min: 0, exclusiveMin: true, description: 'sample size in tokens (or use count)' },
    weight: { type: 'string', default: '1', description: 'a field name or an expression of fields: numbers, + - * / ^, parentheses, min max log exp sqrt abs (e.g. "quality_score ^ 2")' },
    seed: { type: 'integer', default: 0, description: 'random seed; a record\'s draw depends only on (seed, id), so the sample does not depend on input order' },
    memoryMB: { type: 'number', min: 0, default: 256, description: 'memory for sampled records; bodies beyond it are spilled to disk' },
    tokensField: { type: 'string', nonEmpty: true, default: 'token_count', description: 'token count field (from `tokens`); records without it use the estimate' },
  },
  outputs: {},
  check(o) {
    const errs = checkWeight(o.weight, 'weight');
    if ((o.count === undefined) === (o.budgetTokens === undefined)) errs.push({ path: 'count', message: 'give exactly one of count and budgetTokens' });
    return errs;
  },
  explain(o) {
    const size = o.count !== undefined ? `${o.count} records` : `${o.budgetTokens} tokens`;
    return `keeps a weighted sample of ${size} (weight ${o.weight}, seed ${o.seed}), emitted at the end of input`;
  },
  create(o, ctx) {
    const weightOf = weightExpression(o.weight, 'weight');
    const reservoir = new WeightedReservoir<Rec>({
      count: o.count,
      budgetTokens: o.budgetTokens,
      memoryBytes: o.memoryMB * 1024 * 1024,
      spillDir: () => ctx.tmpDir,
      ...recordCodec,
      onEvict: (rec) => ctx.drop(rec, 'not_sampled'),
    });
    const step: Omit<Step, 'flushBatches'> & { flushBatches(): Generator<Rec[]> } = {
      process(batch) {
        for (const rec of batch) {
          const w = weightOf(rec);
          if (typeof w === 'string' || !(w >= 0)) {
            ctx.error(rec, 'bad_weight', `record ${rec.id}: weight ${JSON.stringify(o.weight)}: ${typeof w === 'string' ? w : `is ${w}, expected a number >= 0`}`);
            continue;
          }
          const tokens = recordTokens(rec, o.tokensField, ctx);
          if (!reservoir.offer(rec, esKey(uniformFor(o.seed, String(rec.id)), w), tokens)) ctx.drop(rec, 'not_sampled');
        }
        return [];
      },
      /**
       * The sample in batches, read back from the spill file as it goes (`flush` collects it;
       * a runner that iterates this keeps memory bounded at the end of input too).
       */
      *flushBatches(): Generator<Rec[]> {
        let n = 0;
        let tokens = 0;
        for (const batch of reservoir.drain()) {
          n += batch.length;
          for (const e of batch) tokens += e.tokens;
          yield batch.map((e) => e.item);
        }
        const s = reservoir.stats;
        ctx.stats.count('sampled', n);
        ctx.stats.count('sample_tokens', tokens);
        if (s.spilledItems) ctx.stats.count('spilled_records', s.spilledItems);
        if (s.tooLarge) ctx.stats.count('larger_than_budget', s.tooLarge);
      },
      flush() {
        return [...step.flushBatches()].flat();
      },
      checkpoint(dir) {
        reservoir.save(dir);
      },
      restore(dir) {
        emptyDir(ctx.tmpDir);
        reservoir.load(dir);
      },
      close() {
        reservoir.close();
      },
    };
    return step;
  },
});

