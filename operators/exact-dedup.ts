import path from 'node:path';
import { defineOperator, peekInternals, type Rec } from '../lib/operator.ts';
import { HashSet128, hash128 } from '../lib/sketch/hash-set.ts';
import { hashForm } from '../lib/text/normalize.ts';

export interface ExactDedupOptions {
  on?: 'hash-form' | 'text';
  field?: string;
  emit: 'kept' | 'removed' | 'all';
  memoryMB: number;
}

export default defineOperator<ExactDedupOptions>({
  name: 'exact-dedup',
  summary: 'drops documents whose text (or hashing form, or a field) exactly repeats an earlier one; first seen is kept',
  description:
    'Hashes what is compared with a 128-bit MurmurHash3 and keeps the set of hashes seen: in RAM (an open-addressing table, ' +
    '16 bytes per document, plus the first copy\'s id when emit is "removed" or "all") up to memoryMB, in an LMDB file ' +
    'in the step\'s scratch directory beyond it. Decisions do not depend on memoryMB. Chance that any two of n distinct ' +
    'documents collide (one wrongly dropped): about n^2 / 2^129 (1.5e-21 for a billion documents). Checkpoints with --checkpoint.',
  stateful: true,
  options: {
    on: {
      type: 'string',
      enum: ['hash-form', 'text'],
      description:
        '"hash-form": the hashing form (lowercase, punctuation and digits folded, whitespace collapsed; from a preceding normalize step, computed when absent); ' +
        '"text": the exact string. Default "hash-form" on the text, "text" when `field` is set',
    },
    field: { type: 'string', description: 'compare this string field instead of the text (a record without it is an error: missing_field)' },
    emit: {
      type: 'string',
      enum: ['kept', 'removed', 'all'],
      default: 'kept',
      description: '"kept": duplicates are dropped (reason exact_duplicate); "removed": only the duplicates, with dup_of (first copies are dropped with reason not_duplicate); "all": every record, with dup_of (null on first copies)',
    },
    memoryMB: { type: 'number', min: 0, exclusiveMin: true, default: 512, description: 'RAM for the set of seen hashes (and first-copy ids); beyond it the set continues in LMDB on disk' },
  },
  outputs: { dup_of: 'emit "removed"/"all": id of the first record with the same content (null on first copies)' },
  explain(o) {
    const on = o.on ?? (o.field ? 'text' : 'hash-form');
    return `exact-dedup on ${on === 'hash-form' ? 'the hashing form of' : 'the exact'} ${o.field ? `field "${o.field}"` : 'text'}; keep first seen; emit ${o.emit}; ${o.memoryMB} MB of RAM, then LMDB`;
  },
  create(o, ctx) {
    const on = o.on ?? (o.field ? 'text' : 'hash-form');
    const field = o.field ?? 'text';
    const withIds = o.emit !== 'kept';
    const set = new HashSet128({ memoryBytes: o.memoryMB * 2 ** 20, values: withIds, dir: () => path.join(ctx.tmpDir, 'exact-dedup') });
    const h = new Uint32Array(4);
    let spills = 0;
    let remaps = 0;

    /** What is compared, or undefined (after reporting) when the record has no such string. */
    function content(rec: Rec): string | undefined {
      const v = rec[field];
      if (typeof v !== 'string') {
        const what = v === undefined ? 'has no field' : `has a ${v === null ? 'null' : typeof v} in field`;
        ctx.error(rec, 'missing_field', `record ${rec.id} ${what} "${field}", which exact-dedup compares (expected a string)`);
        return undefined;
      }
      if (on === 'text') return v;
      if (field === 'text') return peekInternals(rec)?.hashText ?? hashForm(v);
      return hashForm(v);
    }

    return {
      process(batch) {
        const out: Rec[] = [];
        for (const rec of batch) {
          const c = content(rec);
          if (c === undefined) continue;
          const first = set.addIfAbsent(hash128(c, h), withIds ? String(rec.id) : '');
          if (first === undefined) {
            ctx.stats.count('unique');
            if (o.emit === 'kept') out.push(rec);
            else if (o.emit === 'all') {
              ctx.annotate(rec, 'dup_of', null);
              out.push(rec);
            } else ctx.drop(rec, 'not_duplicate'); // accounted for (and in the rejects output) like any record taken out
            continue;
          }
          ctx.stats.count('duplicates');
          if (o.emit === 'kept') ctx.drop(rec, 'exact_duplicate');
          else {
            ctx.annotate(rec, 'dup_of', first);
            out.push(rec);
          }
        }
        if (set.spills > spills) {
          ctx.stats.count('spills', set.spills - spills);
          spills = set.spills;
        }
        if (set.remaps > remaps) {
          ctx.stats.count('spill_file_remaps', set.remaps - remaps);
          remaps = set.remaps;
        }
        return out;
      },
      async checkpoint(dir) {
        await set.save(dir);
      },
      restore(dir) {
        set.load(dir);
        spills = set.spills;
      },
      close() {
        set.close();
      },
    };
  },
});
