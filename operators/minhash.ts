// `minhash`: a MinHash signature per record, from the shingles of an earlier `shingle` step (or its own).
import { defineOperator, lastStep } from '../lib/operator.ts';
import { createSignatureStage } from '../lib/signature-stage.ts';
import type { MinHashScheme } from '../lib/sketch/minhash.ts';
import type { ShingleUnit } from '../lib/text/shingle.ts';

export interface MinHashOperatorOptions {
  perms: number;
  seed: number;
  scheme: MinHashScheme;
  workers?: number;
  emitField?: string;
  unit: ShingleUnit;
  n: number;
  shingleSeed: number;
}

export default defineOperator<MinHashOperatorOptions>({
  name: 'minhash',
  summary: 'MinHash signatures (default 128 values, seeded, identical across runs and machines), classic or one-permutation hashing',
  description:
    'Computes a MinHash signature of each record\'s shingle set, kept internal for `lsh-band-join` unless emitField is set. ' +
    'Uses the shingles of an earlier `shingle` step; without one it shingles the hashing form itself with unit/n/shingleSeed. ' +
    'scheme "classic": perms hash functions (a*x+b mod 2^32, parameters from SplitMix32 of the seed), one minimum each; ' +
    'scheme "oph": one-permutation hashing with optimal densification, one hash per shingle, several times faster, ' +
    'same accuracy on documents of 30+ words (see docs/dedup-signatures.md). Runs in worker threads; output order is kept.',
  options: {
    perms: { type: 'integer', min: 1, max: 2048, default: 128, description: 'signature length (Zyda-2: 128)' },
    seed: { type: 'integer', min: 0, max: 4294967295, default: 1, description: 'seed of the hash functions: the same seed gives the same signatures on every machine' },
    scheme: { type: 'string', enum: ['classic', 'oph'], default: 'oph', description: '"classic": perms independent permutations; "oph": one-permutation hashing with densification (faster)' },
    workers: { type: 'integer', min: 0, description: 'worker threads (default: the run\'s --workers, all cores); 0 computes in the main thread' },
    emitField: { type: 'string', nonEmpty: true, description: 'also write the signature (array of perms unsigned 32-bit integers) to this output field' },
    unit: { type: 'string', enum: ['word', 'char'], default: 'word', description: 'shingle unit when no `shingle` step ran before' },
    n: { type: 'integer', min: 1, max: 64, default: 5, description: 'shingle size when no `shingle` step ran before' },
    shingleSeed: { type: 'integer', min: 0, max: 4294967295, default: 0, description: 'shingle hash seed when no `shingle` step ran before' },
  },
  outputs: { '<emitField>': 'the MinHash signature, only when emitField is set' },
  explain(o, upstream) {
    const how = o.scheme === 'oph' ? 'one-permutation hashing with densification' : `${o.perms} multiply-add permutations`;
    const shingleStep = lastStep(upstream ?? [], 'shingle');
    const over = shingleStep
      ? `over the shingles of the shingle step before it (${String(shingleStep.options.unit)} ${String(shingleStep.options.n)}-grams; unit, n and shingleSeed here are not used)`
      : `over the ${o.unit} ${o.n}-grams of the hashing form (shingleSeed ${o.shingleSeed}), as no shingle step runs before it`;
    return `MinHash signatures of ${o.perms} values by ${how} (seed ${o.seed}), ${over}`;
  },
  create(o, ctx) {
    return createSignatureStage(
      {
        shingle: { unit: o.unit, n: o.n, seed: o.shingleSeed },
        minhash: { perms: o.perms, seed: o.seed, scheme: o.scheme },
        reuseShingles: true,
        workers: o.workers ?? ctx.workers,
        emitField: o.emitField,
      },
      ctx,
    );
  },
});
