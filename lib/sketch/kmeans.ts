// Spherical k-means over hashed word features, for SampleMix's diversity measure. No stream code.
//
// Features: the distinct words of a text (hashing form of lib/text/normalize.ts, via the
// shingle kernel) hashed into `dim` buckets, plus character bigrams for texts written without
// spaces (CJK); weighted by IDF learned on the fitting sample; unit length.
// Clustering: `fit` runs k-means++ seeding and Lloyd iterations on a sample of documents (the
// caller keeps a uniform reservoir sample of the stream, so sorted input does not bias it);
// `assign` then maps any document to its nearest centroid with the centroids frozen, so the
// same document always lands in the same cluster. Memory: k x dim centroids.
import { mulberry32 } from '../quality/train.ts';
import { shingleText } from '../text/shingle.ts';

export { mulberry32 };

/**
 * `mulberry32(seed)` after `draws` draws: its state only adds 0x6d2b79f5 per draw, so a
 * resumed run continues the same sequence from a count instead of a saved closure.
 */
export function mulberry32After(seed: number, draws: number): () => number {
  return mulberry32((seed + Math.imul(draws, 0x6d2b79f5)) >>> 0);
}

export interface SparseFeatures {
  indices: Uint32Array;
  values: Float64Array;
}

let stamps = new Uint32Array(0);
let scratch = new Uint32Array(1024);
let generation = 0;

/**
 * Distinct bucket indices of a text's words (and char bigrams when it has few spaces), value 1
 * each. Only the first `maxChars` characters are read: a topic shows in its first pages.
 */
export function wordFeatures(text: string, dim: number, maxChars = 8000): SparseFeatures {
  if (text.length > maxChars) text = text.slice(0, maxChars);
  const words = shingleText(text, { unit: 'word', n: 1 });
  let spaces = 0;
  for (let i = 0; i < text.length && i < 4096; i++) if (text.charCodeAt(i) === 32) spaces++;
  const noSpaces = spaces * 20 < Math.min(text.length, 4096);
  const bigrams = noSpaces ? shingleText(text, { unit: 'char', n: 2, seed: 0x5bd1e995 }) : new Uint32Array(0);
  // Distinct buckets via generation stamps (no Set): one pass, no allocation but the result.
  if (stamps.length < dim) stamps = new Uint32Array(dim);
  if (++generation === 0xffffffff) {
    stamps.fill(0);
    generation = 1;
  }
  if (scratch.length < words.length + bigrams.length) scratch = new Uint32Array(words.length + bigrams.length);
  let n = 0;
  for (const list of [words, bigrams]) {
    for (let i = 0; i < list.length; i++) {
      const b = list[i] % dim;
      if (stamps[b] !== generation) {
        stamps[b] = generation;
        scratch[n++] = b;
      }
    }
  }
  const indices = scratch.slice(0, n);
  return { indices, values: new Float64Array(indices.length).fill(1) };
}

export interface KMeansOptions {
  k: number;
  dim: number;
  /** Lloyd iterations on the fitting sample. */
  iterations: number;
  seed: number;
}

export interface Assignment {
  cluster: number;
  /** Cosine distance (1 - cosine similarity) to the centroid the document joined. */
  distance: number;
}

export class KMeans {
  readonly k: number;
  readonly dim: number;
  /** Centroids, row-major k x dim (not necessarily unit length). */
  readonly centroids: Float64Array;
  readonly norms: Float64Array;
  private idf: Float64Array | undefined;
  private readonly o: KMeansOptions;

  constructor(o: KMeansOptions) {
    this.o = o;
    this.k = o.k;
    this.dim = o.dim;
    this.centroids = new Float64Array(o.k * o.dim);
    this.norms = new Float64Array(o.k);
    this.dots = new Float64Array(o.k);
  }

  get fitted(): boolean {
    return this.idf !== undefined;
  }

  /** IDF-weighted, unit-length copy of raw features. */
  weigh(f: SparseFeatures): SparseFeatures {
    const idf = this.idf!;
    const values = new Float64Array(f.indices.length);
    let norm = 0;
    for (let i = 0; i < values.length; i++) {
      const v = f.values[i] * idf[f.indices[i]];
      values[i] = v;
      norm += v * v;
    }
    norm = Math.sqrt(norm) || 1;
    for (let i = 0; i < values.length; i++) values[i] /= norm;
    return { indices: f.indices, values };
  }

  private cos(c: number, x: SparseFeatures): number {
    const n = this.norms[c];
    if (n === 0) return 0;
    const base = c * this.dim;
    let dot = 0;
    for (let i = 0; i < x.indices.length; i++) dot += x.values[i] * this.centroids[base + x.indices[i]];
    return dot / n;
  }

  /** Centroids transposed (dim x k) for `nearest`: one feature's k weights sit together in memory. */
  private transposed = new Float64Array(0);
  private readonly dots: Float64Array;

  private transpose(): void {
    const { k, dim } = this;
    if (this.transposed.length !== k * dim) this.transposed = new Float64Array(k * dim);
    const t = this.transposed;
    for (let c = 0; c < k; c++) {
      const base = c * dim;
      for (let j = 0; j < dim; j++) t[j * k + c] = this.centroids[base + j];
    }
  }

  private nearest(x: SparseFeatures, active = this.k): { c: number; sim: number } {
    const { k } = this;
    const dots = this.dots;
    const t = this.transposed;
    dots.fill(0);
    for (let i = 0; i < x.indices.length; i++) {
      const row = x.indices[i] * k;
      const v = x.values[i];
      for (let c = 0; c < active; c++) dots[c] += v * t[row + c];
    }
    let best = 0;
    let bestSim = -Infinity;
    for (let c = 0; c < active; c++) {
      const s = this.norms[c] > 0 ? dots[c] / this.norms[c] : 0;
      if (s > bestSim) {
        bestSim = s;
        best = c;
      }
    }
    return { c: best, sim: bestSim };
  }

  private setCentroid(c: number, x: SparseFeatures): void {
    const base = c * this.dim;
    this.centroids.fill(0, base, base + this.dim);
    for (let i = 0; i < x.indices.length; i++) this.centroids[base + x.indices[i]] = x.values[i];
    this.updateNorm(c);
  }

  private updateNorm(c: number): void {
    const base = c * this.dim;
    let n = 0;
    for (let j = 0; j < this.dim; j++) n += this.centroids[base + j] ** 2;
    this.norms[c] = Math.sqrt(n);
  }

  /**
   * Learns IDF and the centroids from a sample of documents (raw features): k-means++ seeding,
   * then `iterations` Lloyd rounds. Fewer distinct documents than k leave clusters empty.
   */
  fit(raw: SparseFeatures[]): void {
    const { dim } = this;
    const df = new Float64Array(dim);
    for (const f of raw) for (const i of f.indices) df[i]++;
    this.idf = new Float64Array(dim);
    for (let j = 0; j < dim; j++) this.idf[j] = Math.log((raw.length + 1) / (df[j] + 1)) + 1;
    const xs = raw.map((f) => this.weigh(f));
    if (!xs.length) return;
    const rand = mulberry32(this.o.seed);
    // k-means++: each next seed with probability proportional to its squared distance to the nearest seed.
    const d2 = new Float64Array(xs.length).fill(Infinity);
    let seeds = 0;
    let next = Math.floor(rand() * xs.length);
    while (seeds < this.k) {
      this.setCentroid(seeds, xs[next]);
      seeds++;
      let total = 0;
      for (let i = 0; i < xs.length; i++) {
        const d = Math.max(0, 2 - 2 * this.cos(seeds - 1, xs[i]));
        if (d < d2[i]) d2[i] = d;
        total += d2[i];
      }
      if (total <= 1e-12) break; // every document equals a seed
      let r = rand() * total;
      next = xs.length - 1;
      for (let i = 0; i < xs.length; i++) {
        r -= d2[i];
        if (r <= 0) {
          next = i;
          break;
        }
      }
    }
    const active = seeds;
    this.transpose();
    for (let it = 0; it < this.o.iterations; it++) {
      const assign = xs.map((x) => this.nearest(x, active).c);
      this.centroids.fill(0);
      const counts = new Float64Array(this.k);
      xs.forEach((x, i) => {
        const base = assign[i] * dim;
        counts[assign[i]]++;
        for (let j = 0; j < x.indices.length; j++) this.centroids[base + x.indices[j]] += x.values[j];
      });
      for (let c = 0; c < active; c++) {
        const base = c * dim;
        if (counts[c] > 0) for (let j = 0; j < dim; j++) this.centroids[base + j] /= counts[c];
        this.updateNorm(c);
      }
      this.transpose();
    }
    this.active = active;
  }

  private active = 0;

  /** The nearest centroid of a document (raw features) and its cosine distance; centroids do not move. */
  assign(raw: SparseFeatures): Assignment {
    if (this.active === 0) return { cluster: 0, distance: 0 };
    const { c, sim } = this.nearest(this.weigh(raw), this.active);
    return { cluster: c, distance: Math.max(0, 1 - sim) };
  }

  /** Cosine distance between two centroids. */
  centroidDistance(a: number, b: number): number {
    const na = this.norms[a];
    const nb = this.norms[b];
    if (na === 0 || nb === 0) return 1;
    let dot = 0;
    const ba = a * this.dim;
    const bb = b * this.dim;
    for (let j = 0; j < this.dim; j++) dot += this.centroids[ba + j] * this.centroids[bb + j];
    return Math.max(0, 1 - dot / (na * nb));
  }
}
