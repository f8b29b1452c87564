import t from 'tap';
import { clusterDiversity, newClusterAggregates, QualityAggregates, roundCount, samplingScale } from '../../lib/sketch/samplemix.ts';
import { mulberry32 } from '../../lib/sketch/kmeans.ts';

t.test('randomized rounding is unbiased', async (t) => {
  const rand = mulberry32(1);
  for (const e of [0.3, 1.7, 2.5]) {
    let sum = 0;
    let outside = 0;
    const N = 20000;
    for (let i = 0; i < N; i++) {
      const n = roundCount(e, rand());
      if (n !== Math.floor(e) && n !== Math.floor(e) + 1) outside++;
      sum += n;
    }
    t.equal(outside, 0, 'floor or floor + 1');
    const sd = Math.sqrt(((e % 1) * (1 - (e % 1))) / N);
    t.ok(Math.abs(sum / N - e) < 5 * sd, `mean ${(sum / N).toFixed(4)} for expected ${e}`);
  }
});

t.test('scale from aggregates equals the brute-force scale', async (t) => {
  const rand = mulberry32(2);
  const k = 5;
  const clusters = newClusterAggregates(k);
  const quality = new QualityAggregates();
  const docs = Array.from({ length: 500 }, () => ({ c: Math.floor(rand() * k), q: rand() * 10, t: 1 + Math.floor(rand() * 900), d: 0 }));
  for (const x of docs) {
    clusters.size[x.c]++;
    clusters.distance[x.c] += rand();
    clusters.tokens[x.c] += x.t;
    quality.add(x.q, x.t);
  }
  const dist = (a: number, b: number) => (a === b ? 0 : 0.2 + 0.1 * Math.abs(a - b));
  const { diversity } = clusterDiversity({ centroidDistance: dist }, clusters);
  t.equal(Math.min(...diversity), 0);
  t.equal(Math.max(...diversity), 1);
  const alpha = 0.7;
  const target = 123456;
  const s = samplingScale(alpha, diversity, clusters, quality, target);
  const brute = docs.reduce((sum, x) => sum + (alpha * diversity[x.c] + (1 - alpha) * quality.normalize(x.q)) * x.t, 0);
  t.ok(Math.abs(s * brute - target) < 1e-6 * target, 'Σ s·p·t = target');
});

t.test('crowded and tight clusters score lower', async (t) => {
  const agg = newClusterAggregates(3);
  // cluster 0: 100 tight members; cluster 1: 10 loose members; cluster 2: 10 tight members.
  agg.size.set([100, 10, 10]);
  agg.distance.set([100 * 0.1, 10 * 0.8, 10 * 0.1]);
  const { diversity } = clusterDiversity({ centroidDistance: () => 0.5 }, agg);
  t.ok(diversity[1] > diversity[2] && diversity[2] > diversity[0], `${[...diversity].map((d) => d.toFixed(3))}`);
});
