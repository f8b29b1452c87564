// SampleMix weights and sampling counts (Xi et al. 2025, arXiv 2503.01506), computed from
// aggregates so that records can stream past: no per-record state is needed to find the scale.
//
//   p(x)      = α · diversity(x) + (1 - α) · quality(x)      both normalized to [0, 1]
//   E[n(x)]   = s · p(x),   s = T_target / Σ_x p(x) · tokens(x)
//   n(x)      = floor(E[n(x)]) + [u(x) < frac(E[n(x)])]      randomized rounding
//
// so the expected token total of the output is T_target: small budgets drop low-weight
// documents (n = 0), large budgets repeat high-weight ones (n >= 2).
import type { KMeans } from './kmeans.ts';

export interface ClusterAggregates {
  /** Documents per cluster. */
  size: Float64Array;
  /** Sum of the cosine distances of the members to their centroid. */
  distance: Float64Array;
  /** Tokens per cluster. */
  tokens: Float64Array;
}

export function newClusterAggregates(k: number): ClusterAggregates {
  return { size: new Float64Array(k), distance: new Float64Array(k), tokens: new Float64Array(k) };
}

/**
 * Diversity of each cluster in [0, 1] (min-max over non-empty clusters):
 *   raw(c) = compactness(c) · separation(c) / sqrt(crowding(c))
 * compactness: mean distance of members to the centroid, shrunk towards the global mean with
 * `prior` pseudo-members (a singleton is not "perfectly compact"); separation: mean distance of
 * the centroid to the other non-empty centroids; crowding: size / mean size. Tight, crowded
 * clusters close to others (templated pages, one topic over and over) score low; loose,
 * rare, distinct clusters score high.
 */
export function clusterDiversity(km: Pick<KMeans, 'centroidDistance'>, agg: ClusterAggregates, prior = 2): { diversity: Float64Array; raw: Float64Array } {
  const k = agg.size.length;
  const live: number[] = [];
  let n = 0;
  let dist = 0;
  for (let c = 0; c < k; c++) {
    if (agg.size[c] > 0) live.push(c);
    n += agg.size[c];
    dist += agg.distance[c];
  }
  const raw = new Float64Array(k);
  const diversity = new Float64Array(k);
  if (!live.length) return { diversity, raw };
  const meanDist = dist / n;
  const meanSize = n / live.length;
  for (const c of live) {
    const compact = (agg.distance[c] + prior * meanDist) / (agg.size[c] + prior);
    let sep = 1;
    if (live.length > 1) {
      sep = 0;
      for (const j of live) if (j !== c) sep += km.centroidDistance(c, j);
      sep /= live.length - 1;
    }
    raw[c] = (compact * sep) / Math.sqrt(agg.size[c] / meanSize);
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const c of live) {
    lo = Math.min(lo, raw[c]);
    hi = Math.max(hi, raw[c]);
  }
  for (const c of live) diversity[c] = hi > lo ? (raw[c] - lo) / (hi - lo) : 1;
  return { diversity, raw };
}

/** Running min / max / token-weighted sums of the raw quality values. */
export class QualityAggregates {
  min = Infinity;
  max = -Infinity;
  /** Σ q·t and Σ t. */
  qTokens = 0;
  tokens = 0;
  add(q: number, t: number): void {
    if (q < this.min) this.min = q;
    if (q > this.max) this.max = q;
    this.qTokens += q * t;
    this.tokens += t;
  }
  normalize(q: number): number {
    return this.max > this.min ? (q - this.min) / (this.max - this.min) : 1;
  }
  /** Σ normalize(q)·t, from the aggregates. */
  normalizedTokenSum(): number {
    return this.max > this.min ? (this.qTokens - this.min * this.tokens) / (this.max - this.min) : this.tokens;
  }
}

/** The scale s with Σ s·p(x)·tokens(x) = target, from the aggregates. */
export function samplingScale(alpha: number, diversity: Float64Array, clusters: ClusterAggregates, quality: QualityAggregates, targetTokens: number): number {
  let divTokens = 0;
  for (let c = 0; c < diversity.length; c++) divTokens += diversity[c] * clusters.tokens[c];
  const weighted = alpha * divTokens + (1 - alpha) * quality.normalizedTokenSum();
  return weighted > 0 ? targetTokens / weighted : 0;
}

/** Randomized rounding of an expected count with a uniform u in [0, 1). */
export function roundCount(expected: number, u: number): number {
  const f = Math.floor(expected);
  return f + (u < expected - f ? 1 : 0);
}
