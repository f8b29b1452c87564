// `samplemix`: SampleMix sample-wise mixing. Weighs every record by quality and diversity and
// turns a token budget into a sampling count per record (0, 1, 2, ...).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { defineOperator, type Rec, type Step } from '../lib/operator.ts';
import { decodeRecord, encodeRecord } from '../lib/record-codec.ts';
import { FitSample } from '../lib/sketch/fit-sample.ts';
import { KMeans, wordFeatures } from '../lib/sketch/kmeans.ts';
import { clusterDiversity, newClusterAggregates, QualityAggregates, roundCount, samplingScale } from '../lib/sketch/samplemix.ts';
import { emptyDir } from '../lib/sketch/spill-file.ts';
import { SpillLog } from '../lib/sketch/spill-log.ts';
import { uniformFor } from '../lib/sketch/weighted-reservoir.ts';
import { checkWeight, recordTokens, weightExpression } from './reservoir-weighted-sample.ts';

export interface SampleMixOptions {
  alpha: number;
  quality: string;
  budgetTokens?: number;
  budgetRatio?: number;
  clusters: number;
  features: number;
  fitDocs: number;
  iterations: number;
  seed: number;
  memoryMB: number;
  tokensField: string;
}

/** What the operator keeps per record until the end of input. */
interface Held {
  rec: Rec;
  quality: number;
  tokens: number;
}

export default defineOperator<SampleMixOptions>({
  name: 'samplemix',
  // Holds every record until the end of input; with --checkpoint its state is saved at each checkpoint.
  stateful: true,
  summary: 'SampleMix: weight = α·diversity + (1-α)·quality, a token budget turns weights into sampling counts 0, 1, 2, ...',
  description:
    'Quality is any numeric field or expression (min-max normalized over the input). Diversity comes from ' +
    'spherical k-means over hashed word features, fitted on a uniform sample of the input: a record in a tight, crowded cluster close to ' +
    'other clusters scores low, one in a loose, small, distinct cluster scores high (min-max normalized). ' +
    'Each record is drawn s·p(x) times in expectation (randomized rounding), s chosen so the expected output ' +
    'is the token budget. Records are held until the end of input (spilled to disk beyond memoryMB), then ' +
    'emitted in input order, each one `sampling_count` times in a row; records drawn 0 times are dropped as `not_sampled`. ' +
    'With --checkpoint the held records, quality aggregates and fitting sample are saved at each checkpoint, and a resumed run ' +
    'gives exactly the output of an uninterrupted one.',
  options: {
    alpha: { type: 'number', min: 0, max: 1, default: 0.8, description: 'weight of diversity against quality (the paper sweeps it in its Figure 5; tune it for your data)' },
    quality: { type: 'string', default: 'quality_score', description: 'quality: a numeric field or an expression of fields (see reservoir-weighted-sample `weight`)' },
    budgetTokens: { type: 'number', min: 0, exclusiveMin: true, description: 'target tokens T_tgt of the output (or budgetRatio)' },
    budgetRatio: { type: 'number', min: 0, exclusiveMin: true, description: 'target tokens as a multiple of the input tokens T_src (1 = same size, 0.25 = a quarter)' },
    clusters: { type: 'integer', min: 1, max: 65535, default: 64, description: 'k of the k-means clustering used for diversity' },
    features: { type: 'integer', min: 16, default: 4096, description: 'hashed feature dimension of the clustering' },
    fitDocs: { type: 'integer', min: 1, default: 4000, description: 'size of the uniform sample of the input the clustering (IDF, k-means++ seeds, Lloyd iterations) is fitted on' },
    iterations: { type: 'integer', min: 0, default: 5, description: 'Lloyd iterations on the fitting sample' },
    seed: { type: 'integer', default: 0, description: 'seed of the clustering and of the randomized rounding' },
    memoryMB: { type: 'number', min: 0, default: 256, description: 'memory for held records; the rest is spilled to disk until the end of input' },
    tokensField: { type: 'string', nonEmpty: true, default: 'token_count', description: 'token count field (from `tokens`); records without it use the estimate' },
  },
  outputs: {
    sampling_count: 'times the record is emitted (its copies all carry the same count)',
    samplemix_weight: 'p(x) = α·diversity + (1-α)·normalized quality, in [0, 1]',
    diversity: 'diversity of the record\'s cluster, in [0, 1]',
    samplemix_cluster: 'cluster id of the record',
  },
  check(o) {
    const errs = checkWeight(o.quality, 'quality');
    if ((o.budgetTokens === undefined) === (o.budgetRatio === undefined)) errs.push({ path: 'budgetTokens', message: 'give exactly one of budgetTokens and budgetRatio' });
    return errs;
  },
  explain(o) {
    const budget = o.budgetTokens !== undefined ? `${o.budgetTokens} tokens` : `${o.budgetRatio} x the input tokens`;
    return `weights records by ${o.alpha}·diversity (k-means, k=${o.clusters}) + ${1 - o.alpha}·quality (${o.quality}), samples ${budget} with repeats, emitted at the end of input`;
  },
  create(o, ctx) {
    const qualityOf = weightExpression(o.quality, 'quality');
    const km = new KMeans({ k: o.clusters, dim: o.features, iterations: o.iterations, seed: o.seed });
    const quality = new QualityAggregates();
    const log = new SpillLog<Held>({
      memoryBytes: o.memoryMB * 1024 * 1024,
      dir: () => ctx.tmpDir,
      // `[quality,tokens]`, a tab (JSON never holds a raw one), the record.
      serialize: (h) => `[${h.quality},${h.tokens}]\t${encodeRecord(h.rec)}`,
      deserialize: (s) => {
        const tab = s.indexOf('\t');
        const [quality, tokens] = JSON.parse(s.slice(0, tab)) as [number, number];
        return { rec: decodeRecord(s.slice(tab + 1)), quality, tokens };
      },
      sizeOf: (h) => 320 + (typeof h.rec.text === 'string' ? h.rec.text.length * 2 : 0),
    });
    // A uniform sample of the stream (Algorithm R) to fit the clustering on.
    const fitSample = new FitSample(o.fitDocs, o.seed ^ 0x6b43a9b5, () => ctx.tmpDir);
    const features = (rec: Rec) => wordFeatures(typeof rec.text === 'string' ? rec.text : '', o.features);

    const step: Omit<Step, 'flushBatches'> & { flushBatches(): Generator<Rec[]> } = {
      process(batch) {
        for (const rec of batch) {
          const q = qualityOf(rec);
          if (typeof q === 'string' || !Number.isFinite(q)) {
            ctx.error(rec, 'bad_quality', `record ${rec.id}: quality ${JSON.stringify(o.quality)}: ${typeof q === 'string' ? q : `is ${q}`}`);
            continue;
          }
          const t = recordTokens(rec, o.tokensField, ctx);
          quality.add(q, t);
          log.append({ rec, quality: q, tokens: t });
          fitSample.offer(() => features(rec));
        }
        return [];
      },
      /**
       * The output in batches, read back from the spill file as it goes (`flush` collects it;
       * a runner that iterates this keeps memory bounded at the end of input too).
       */
      *flushBatches(): Generator<Rec[]> {
        km.fit(fitSample.items);
        fitSample.close();
        // Second pass over the held records: cluster sizes, spreads and tokens. The cluster of
        // each record is kept (2 bytes per record) for the third pass.
        const clusters = newClusterAggregates(o.clusters);
        const clusterOf = new Uint16Array(log.length);
        let i = 0;
        for (const batch of log.read(1024, false)) {
          for (const h of batch) {
            const a = km.assign(features(h.rec));
            clusterOf[i++] = a.cluster;
            clusters.size[a.cluster]++;
            clusters.distance[a.cluster] += a.distance;
            clusters.tokens[a.cluster] += h.tokens;
          }
        }
        const { diversity } = clusterDiversity(km, clusters, 2);
        const target = o.budgetTokens ?? o.budgetRatio! * quality.tokens;
        const s = samplingScale(o.alpha, diversity, clusters, quality, target);
        ctx.stats.count('source_tokens', quality.tokens);
        ctx.stats.count('target_tokens', Math.round(target));
        ctx.stats.count('clusters', clusters.size.filter((n) => n > 0).length);
        if (log.spilledItems) ctx.stats.count('spilled_records', log.spilledItems);
        // Third pass: weights, counts, emission.
        i = 0;
        let outTokens = 0;
        let variance = 0;
        for (const batch of log.read()) {
          const out: Rec[] = [];
          for (const h of batch) {
            const c = clusterOf[i++];
            const d = diversity[c];
            const p = o.alpha * d + (1 - o.alpha) * quality.normalize(h.quality);
            const expected = s * p;
            const n = roundCount(expected, uniformFor(o.seed ^ 0x53a3f1, String(h.rec.id)));
            const frac = expected - Math.floor(expected);
            variance += frac * (1 - frac) * h.tokens * h.tokens;
            ctx.stats.observe('sampling_count', n);
            ctx.stats.observe('samplemix_weight', p);
            ctx.stats.count(`sampling_count_${n > 5 ? '6+' : n}`);
            ctx.annotate(h.rec, 'sampling_count', n);
            ctx.annotate(h.rec, 'samplemix_weight', round6(p));
            ctx.annotate(h.rec, 'diversity', round6(d));
            ctx.annotate(h.rec, 'samplemix_cluster', c);
            if (n === 0) {
              ctx.drop(h.rec, 'not_sampled');
              continue;
            }
            outTokens += n * h.tokens;
            out.push(h.rec);
            for (let r = 1; r < n; r++) out.push({ ...h.rec });
          }
          if (out.length) yield out;
        }
        ctx.stats.count('output_tokens', outTokens);
        // Randomized rounding makes the output total a random variable around the target; its SD:
        ctx.stats.count('output_tokens_sd', Math.round(Math.sqrt(variance)));
      },
      flush() {
        return [...step.flushBatches()].flat();
      },
      // The clustering is fitted at the end of input, after the last checkpoint: until then its
      // state is the fitting sample and the position of the generator that keeps it uniform.
      checkpoint(dir) {
        mkdirSync(path.join(dir, 'log'));
        log.save(path.join(dir, 'log'));
        mkdirSync(path.join(dir, 'fit-sample'));
        fitSample.save(path.join(dir, 'fit-sample'));
        const state: SampleMixState = { version: 2, quality: [nullIfInfinite(quality.min), nullIfInfinite(quality.max), quality.qTokens, quality.tokens] };
        writeFileSync(path.join(dir, 'state.json'), JSON.stringify(state));
      },
      restore(dir) {
        const state = JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8')) as SampleMixState;
        if (state.version !== 2) throw new Error(`${dir}: samplemix state saved by an incompatible version (${state.version})`);
        emptyDir(ctx.tmpDir);
        log.load(path.join(dir, 'log'));
        fitSample.load(path.join(dir, 'fit-sample'));
        const [min, max, qTokens, tokens] = state.quality;
        Object.assign(quality, { min: min ?? Infinity, max: max ?? -Infinity, qTokens, tokens });
      },
      close() {
        log.close();
        fitSample.close();
      },
    };
    return step;
  },
});

interface SampleMixState {
  version: 2;
  /** QualityAggregates min, max (null: none yet), qTokens, tokens. */
  quality: [number | null, number | null, number, number];
}

function nullIfInfinite(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
