// A merging t-digest (Dunning & Ertl, "Computing extremely accurate quantiles using
// t-digests"): streaming quantile estimates in O(compression) memory, most accurate near the
// tails. Values are buffered, then sorted and merged into centroids whose size is bounded by
// the k1 scale function k(q) = δ/(2π)·asin(2q-1).

const STATE_VERSION = 1;
const STATE_HEADER = 8;

export class TDigest {
  readonly compression: number;
  private means: Float64Array;
  private weights: Float64Array;
  private n = 0; // centroids in use
  private buf: Float64Array;
  private bufLen = 0;
  private total = 0; // weight in centroids
  private _min = Infinity;
  private _max = -Infinity;

  constructor(compression = 200, bufferSize = Math.ceil(compression * 5)) {
    if (!(compression >= 10)) throw new Error(`t-digest compression must be >= 10, got ${compression}`);
    this.compression = compression;
    const cap = Math.ceil(compression * 2) + 10;
    this.means = new Float64Array(cap);
    this.weights = new Float64Array(cap);
    this.buf = new Float64Array(bufferSize);
  }

  /** Values added so far. */
  get count(): number {
    return this.total + this.bufLen;
  }
  get min(): number {
    return this._min;
  }
  get max(): number {
    return this._max;
  }
  /** Centroids after compression (memory in use). */
  get centroids(): number {
    this.flush();
    return this.n;
  }

  add(x: number): void {
    if (Number.isNaN(x)) throw new Error('t-digest: cannot add NaN');
    if (x < this._min) this._min = x;
    if (x > this._max) this._max = x;
    this.buf[this.bufLen++] = x;
    if (this.bufLen === this.buf.length) this.flush();
  }

  /** Merges buffered values into the centroids. */
  flush(): void {
    if (this.bufLen === 0) return;
    const incoming = this.buf.subarray(0, this.bufLen).sort();
    const total = this.total + this.bufLen;
    const outM = new Float64Array(this.means.length);
    const outW = new Float64Array(this.weights.length);
    let out = 0;
    let curM = 0;
    let curW = 0;
    let before = 0; // weight emitted before the current centroid
    let limit = this.qLimit(0) * total;
    let i = 0;
    let j = 0;
    const next = (m: number, w: number) => {
      if (curW === 0) {
        curM = m;
        curW = w;
        return;
      }
      if (before + curW + w <= limit) {
        curW += w;
        curM += ((m - curM) * w) / curW;
        return;
      }
      outM[out] = curM;
      outW[out++] = curW;
      before += curW;
      limit = this.qLimit(before / total) * total;
      curM = m;
      curW = w;
    };
    while (i < this.n || j < this.bufLen) {
      if (j >= this.bufLen || (i < this.n && this.means[i] <= incoming[j])) {
        next(this.means[i], this.weights[i]);
        i++;
      } else next(incoming[j++], 1);
    }
    if (curW > 0) {
      outM[out] = curM;
      outW[out++] = curW;
    }
    this.means = outM;
    this.weights = outW;
    this.n = out;
    this.total = total;
    this.bufLen = 0;
  }

  /** The largest cumulative share a centroid starting at q may reach (one step of k1). */
  private qLimit(q: number): number {
    const d = this.compression;
    const k = (d / (2 * Math.PI)) * Math.asin(2 * Math.min(1, Math.max(0, q)) - 1) + 1;
    if (k >= d / 4) return 1;
    return (Math.sin((k * 2 * Math.PI) / d) + 1) / 2;
  }

  /**
   * The whole state (centroids, unmerged buffer, min, max) as one array of doubles, for
   * checkpoints: `TDigest.fromState` rebuilds a digest that answers and evolves exactly alike.
   */
  state(): Float64Array {
    const n = this.n;
    const b = this.bufLen;
    const out = new Float64Array(STATE_HEADER + 2 * n + b);
    out.set([STATE_VERSION, this.compression, this.buf.length, n, b, this.total, this._min, this._max]);
    out.set(this.means.subarray(0, n), STATE_HEADER);
    out.set(this.weights.subarray(0, n), STATE_HEADER + n);
    out.set(this.buf.subarray(0, b), STATE_HEADER + 2 * n);
    return out;
  }

  static fromState(s: Float64Array): TDigest {
    const [version, compression, bufferSize, n, b, total, min, max] = s;
    if (version !== STATE_VERSION || s.length !== STATE_HEADER + 2 * n + b) throw new Error(`t-digest: not a saved state of this version (${s.length} values, version ${version})`);
    const d = new TDigest(compression, bufferSize);
    if (n > d.means.length || b > d.buf.length) throw new Error(`t-digest: saved state has ${n} centroids and ${b} buffered values, more than compression ${compression} allows`);
    d.means.set(s.subarray(STATE_HEADER, STATE_HEADER + n));
    d.weights.set(s.subarray(STATE_HEADER + n, STATE_HEADER + 2 * n));
    d.buf.set(s.subarray(STATE_HEADER + 2 * n));
    d.n = n;
    d.bufLen = b;
    d.total = total;
    d._min = min;
    d._max = max;
    return d;
  }

  /** Estimated value at quantile q in [0, 1]. NaN when empty. */
  quantile(q: number): number {
    this.flush();
    if (this.n === 0) return NaN;
    if (q <= 0) return this._min;
    if (q >= 1) return this._max;
    const { means, weights, n } = this;
    if (n === 1) return means[0];
    const target = q * this.total;
    // Centroid i sits at cumulative weight c_i + w_i/2; interpolate between neighbours.
    let cum = 0;
    const firstCenter = weights[0] / 2;
    if (target < firstCenter) {
      if (weights[0] === 1) return means[0];
      return this._min + ((means[0] - this._min) * target) / firstCenter;
    }
    for (let i = 0; i < n - 1; i++) {
      const center = cum + weights[i] / 2;
      const nextCenter = cum + weights[i] + weights[i + 1] / 2;
      if (target < nextCenter) {
        // Singletons are exact values: do not interpolate inside their unit of weight.
        if (weights[i] === 1 && target - center < 0.5) return means[i];
        if (weights[i + 1] === 1 && nextCenter - target <= 0.5) return means[i + 1];
        return means[i] + ((means[i + 1] - means[i]) * (target - center)) / (nextCenter - center);
      }
      cum += weights[i];
    }
    const lastCenter = this.total - weights[n - 1] / 2;
    if (weights[n - 1] === 1) return means[n - 1];
    return means[n - 1] + ((this._max - means[n - 1]) * (target - lastCenter)) / (this.total - lastCenter);
  }

  /** Estimated share of values <= x. */
  cdf(x: number): number {
    this.flush();
    if (this.n === 0) return NaN;
    if (x < this._min) return 0;
    if (x >= this._max) return 1;
    const { means, weights, n } = this;
    let cum = 0;
    for (let i = 0; i < n; i++) {
      const center = cum + weights[i] / 2;
      if (x < means[i]) {
        if (i === 0) return (((x - this._min) / (means[0] - this._min || 1)) * center) / this.total;
        const prevCenter = cum - weights[i - 1] / 2;
        const t = (x - means[i - 1]) / (means[i] - means[i - 1] || 1);
        return (prevCenter + t * (center - prevCenter)) / this.total;
      }
      cum += weights[i];
    }
    const lastCenter = this.total - weights[n - 1] / 2;
    return (lastCenter + ((x - means[n - 1]) / (this._max - means[n - 1] || 1)) * (this.total - lastCenter)) / this.total;
  }
}

/** Exact share of a sorted array strictly below v (for measuring a digest's rank error). */
export function rankBelow(sorted: Float64Array, v: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const m = (lo + hi) >> 1;
    if (sorted[m] < v) lo = m + 1;
    else hi = m;
  }
  return lo / sorted.length;
}
