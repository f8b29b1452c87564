// `shingle`: the set of word or character n-gram hashes of each record, for minhash and exact verification.
import { defineOperator } from '../lib/operator.ts';
import { createSignatureStage } from '../lib/signature-stage.ts';
import type { ShingleUnit } from '../lib/text/shingle.ts';

export interface ShingleOperatorOptions {
  unit: ShingleUnit;
  n: number;
  seed: number;
  workers?: number;
  emitField?: string;
}

export default defineOperator<ShingleOperatorOptions>({
  name: 'shingle',
  summary: 'Hashes word or character n-grams (default word 5-grams) of the hashing form into a set of 32-bit shingles',
  description:
    'Computes the set of distinct 32-bit hashes of the n-grams of each record, over the hashing form written by `normalize` ' +
    '(split at its spaces, folded only as normalize folded it), or, without a normalize step, over the text folded the ' +
    'default way (lowercase, punctuation and digits folded, NFKC, invisible characters dropped). ' +
    'A document with fewer than n words (characters) gets one shingle: the hash of its whole hashing form. ' +
    'The set is kept internal for `minhash` and `lsh-band-join` (exact verification) unless emitField is set. ' +
    'Runs in worker threads; output order is kept.',
  options: {
    unit: { type: 'string', enum: ['word', 'char'], default: 'word', description: '"word": n-grams of words; "char": n-grams of characters (code points, single spaces included)' },
    n: { type: 'integer', min: 1, max: 64, default: 5, description: 'words or characters per shingle' },
    seed: { type: 'integer', min: 0, max: 4294967295, default: 0, description: 'seed of the shingle hash (MurmurHash3 over per-word FNV-1a hashes)' },
    workers: { type: 'integer', min: 0, description: 'worker threads (default: the run\'s --workers, all cores); 0 computes in the main thread' },
    emitField: { type: 'string', nonEmpty: true, description: 'also write the shingle hashes (sorted array of unsigned 32-bit integers) to this output field' },
  },
  outputs: { '<emitField>': 'the sorted shingle hashes, only when emitField is set' },
  explain(o) {
    return `hashes the ${o.unit} ${o.n}-grams of the hashing form into a set (seed ${o.seed}); documents shorter than ${o.n} ${o.unit}s get one shingle`;
  },
  create(o, ctx) {
    return createSignatureStage(
      { shingle: { unit: o.unit, n: o.n, seed: o.seed }, reuseShingles: false, workers: o.workers ?? ctx.workers, emitField: o.emitField },
      ctx,
    );
  },
});
