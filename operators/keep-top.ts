// `keep-top`: keeps the highest-scoring fraction of a stream by any numeric field, in one pass
// (streaming quantile estimate) or exactly (two passes over a spill file).
import { defineOperator, type Rec } from '../lib/operator.ts';
import { TopFractionSelector } from '../lib/quality/keep-top.ts';

export interface KeepTopOptions {
  field: string;
  fraction: number;
  mode: 'stream' | 'exact';
  warmup: number;
  memoryBytes: number;
  missing: 'error' | 'drop';
}

export default defineOperator<KeepTopOptions>({
  name: 'keep-top',
  summary: 'Keeps the top fraction of records by a numeric field (one-pass streaming quantile, or exact two-pass)',
  description:
    'Stream mode decides each record as it arrives: after a warm-up buffer (exact within it), a record is kept when ' +
    'its score is above the running t-digest estimate of the (1 - fraction) quantile; the quantile aimed at is ' +
    'steered by the running error of the kept share, so the kept share stays within about half a point of the target ' +
    'on shuffled input (see docs/quality-rules.md). Exact mode holds records (spilling to disk beyond `memoryBytes`) ' +
    'and keeps exactly round(fraction x n) at the end. Dropped records get the reason `below_top_fraction`. ' +
    'With --checkpoint it resumes exactly (the checkpoint holds the digest and warm-up buffer, or links the spill files).',
  options: {
    field: { type: 'string', default: 'quality_score', description: 'numeric field to rank by (higher is better)' },
    fraction: { type: 'number', required: true, min: 0, exclusiveMin: true, max: 1, description: 'share of records to keep, e.g. 0.15' },
    mode: { type: 'string', enum: ['stream', 'exact'], default: 'stream', description: '"stream": one pass, bounded memory; "exact": holds/spills every record, exact cut' },
    warmup: { type: 'integer', default: 2000, min: 1, description: 'records buffered before the first decision in stream mode' },
    memoryBytes: { type: 'integer', default: 256 * 2 ** 20, min: 0, description: 'exact mode: bytes of records held in memory before spilling to the step\'s tmp dir' },
    missing: { type: 'string', enum: ['error', 'drop'], default: 'error', description: 'a record whose field is missing or not a number: an error, or a drop with reason `missing_<field>`' },
  },
  // Holds the warm-up buffer and the digest (stream) or every record (exact); checkpointed by the selector.
  stateful: true,
  explain(o) {
    return `keeps the top ${(o.fraction * 100).toFixed(1)}% of records by "${o.field}" (${o.mode === 'stream' ? 'one pass, estimated threshold' : 'exact, two passes'})`;
  },
  create(o, ctx) {
    const selector = new TopFractionSelector({
      fraction: o.fraction,
      mode: o.mode,
      warmup: o.warmup,
      memoryBytes: o.memoryBytes,
      tmpDir: o.mode === 'exact' ? ctx.tmpDir : undefined,
      onReject: (rec) => ctx.drop(rec, 'below_top_fraction'),
    });
    return {
      process(batch) {
        const out: Rec[] = [];
        for (const rec of batch) {
          const v = rec[o.field];
          if (typeof v !== 'number' || Number.isNaN(v)) {
            if (o.missing === 'drop') ctx.drop(rec, `missing_${o.field}`);
            else ctx.error(rec, 'missing_field', `record ${rec.id}: field "${o.field}" is ${v === undefined ? 'missing' : JSON.stringify(v)}, not a number`);
            continue;
          }
          ctx.stats.observe(o.field, v);
          for (const r of selector.push(rec, v)) out.push(r);
        }
        return out;
      },
      *flushBatches() {
        // Exact mode reads its spill file back batch by batch.
        yield* selector.finishBatches();
        if (selector.spilledRecords) ctx.stats.count('spilled_records', selector.spilledRecords);
        const { seen, kept, threshold } = selector.stats;
        ctx.log(`kept ${kept} of ${seen} records (${seen ? ((kept / seen) * 100).toFixed(2) : '0'}%, target ${(o.fraction * 100).toFixed(2)}%), last threshold ${threshold}`);
      },
      checkpoint(dir) {
        selector.save(dir);
      },
      restore(dir) {
        selector.load(dir);
      },
      close() {
        selector.close();
      },
    };
  },
});
