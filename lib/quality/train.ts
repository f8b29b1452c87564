// Logistic regression over hashed n-gram features: the trainer behind `mixstream
// train-quality`. Plain per-example SGD with exact L2 decay (a scalar weight scale, so each
// step only touches the document's own features). No stream code.
import type { SparseVector } from './vectorizer.ts';

/** Deterministic 32-bit PRNG (mulberry32); the same seed gives the same shuffles everywhere. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffleInPlace<T>(xs: T[], rand: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = xs[i];
    xs[i] = xs[j];
    xs[j] = t;
  }
  return xs;
}

export interface Example {
  x: SparseVector;
  /** 1 = positive (high quality), 0 = negative. */
  y: 0 | 1;
}

export interface SgdOptions {
  dim: number;
  epochs: number;
  /** Initial learning rate; decays as lr / (1 + epoch). */
  lr: number;
  /** L2 penalty (weight decay per example step is lr * l2). */
  l2: number;
  seed: number;
  /** Called after each epoch with the mean training log loss. */
  onEpoch?(epoch: number, loss: number): void;
}

export interface LinearWeights {
  weights: Float32Array;
  bias: number;
}

export function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

export function predict(w: LinearWeights, x: SparseVector): number {
  let z = w.bias;
  for (let i = 0; i < x.indices.length; i++) z += w.weights[x.indices[i]] * x.values[i];
  return sigmoid(z);
}

export function trainLogistic(examples: Example[], o: SgdOptions): LinearWeights {
  const v = new Float64Array(o.dim);
  let scale = 1;
  let bias = 0;
  const rand = mulberry32(o.seed);
  const order = examples.map((_, i) => i);
  // Classes weighted to balance: an unbalanced training set does not shift the decision point.
  const pos = examples.reduce((n, e) => n + e.y, 0);
  const neg = examples.length - pos;
  const wPos = pos ? examples.length / (2 * pos) : 1;
  const wNeg = neg ? examples.length / (2 * neg) : 1;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    shuffleInPlace(order, rand);
    const lr = o.lr / (1 + epoch);
    const decay = 1 - lr * o.l2;
    let loss = 0;
    for (const k of order) {
      const { x, y } = examples[k];
      let dot = 0;
      for (let i = 0; i < x.indices.length; i++) dot += v[x.indices[i]] * x.values[i];
      const p = sigmoid(bias + dot * scale);
      loss -= Math.log(Math.max(1e-12, y ? p : 1 - p));
      const g = (p - y) * (y ? wPos : wNeg);
      scale *= decay;
      if (scale < 1e-9) {
        for (let i = 0; i < v.length; i++) v[i] *= scale;
        scale = 1;
      }
      const step = (lr * g) / scale;
      for (let i = 0; i < x.indices.length; i++) v[x.indices[i]] -= step * x.values[i];
      bias -= lr * g;
    }
    o.onEpoch?.(epoch, loss / Math.max(1, examples.length));
  }
  const weights = new Float32Array(o.dim);
  for (let i = 0; i < o.dim; i++) weights[i] = v[i] * scale;
  return { weights, bias };
}

export interface BinaryMetrics {
  n: number;
  accuracy: number;
  logLoss: number;
  /** Area under the ROC curve (probability a random positive outranks a random negative). */
  auc: number;
  positives: number;
  negatives: number;
}

export function binaryMetrics(scores: number[], labels: (0 | 1)[]): BinaryMetrics {
  const n = scores.length;
  let correct = 0;
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const p = scores[i];
    if ((p >= 0.5 ? 1 : 0) === labels[i]) correct++;
    loss -= Math.log(Math.max(1e-12, labels[i] ? p : 1 - p));
  }
  // AUC by ranks (ties get their mean rank).
  const idx = scores.map((_, i) => i).sort((a, b) => scores[a] - scores[b]);
  const ranks = new Float64Array(n);
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[idx[j + 1]] === scores[idx[i]]) j++;
    for (let k = i; k <= j; k++) ranks[idx[k]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  const positives = labels.reduce<number>((a, b) => a + b, 0);
  const negatives = n - positives;
  let rankSum = 0;
  for (let i = 0; i < n; i++) if (labels[i]) rankSum += ranks[i];
  const auc = positives && negatives ? (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives) : NaN;
  return { n, accuracy: n ? correct / n : NaN, logLoss: n ? loss / n : NaN, auc, positives, negatives };
}
