import t from 'tap';
import { KMeans, mulberry32, mulberry32After, wordFeatures } from '../../lib/sketch/kmeans.ts';
import { readJsonl } from '../../lib/testing.ts';

const load = (f: string) => readJsonl(new URL(`../../samples/${f}.jsonl`, import.meta.url));
const recs = [...load('kjv'), ...load('gcide').slice(0, 300), ...load('fortunes').filter((r) => r.lang === 'ru').slice(0, 300), ...load('fortunes').filter((r) => r.lang === 'de').slice(0, 300)];

t.test('clusters follow the sources on real text, deterministically', async (t) => {
  const feats = recs.map((r) => wordFeatures(r.text, 4096));
  const km = new KMeans({ k: 8, dim: 4096, iterations: 5, seed: 1 });
  km.fit(feats);
  const assign = feats.map((f) => km.assign(f));
  // Purity: share of documents whose cluster's majority source is their own.
  const key = (i: number) => `${recs[i].source}/${recs[i].lang ?? ''}`;
  const byCluster = new Map<number, Map<string, number>>();
  assign.forEach((a, i) => {
    const m = byCluster.get(a.cluster) ?? new Map();
    m.set(key(i), (m.get(key(i)) ?? 0) + 1);
    byCluster.set(a.cluster, m);
  });
  let majority = 0;
  for (const m of byCluster.values()) majority += Math.max(...m.values());
  t.ok(majority / recs.length > 0.85, `purity ${(majority / recs.length).toFixed(3)}`);
  t.ok(assign.every((a) => a.distance >= 0 && a.distance <= 1));
  const km2 = new KMeans({ k: 8, dim: 4096, iterations: 5, seed: 1 });
  km2.fit(feats);
  t.same(feats.map((f) => km2.assign(f).cluster), assign.map((a) => a.cluster), 'same seed, same clusters');
});

t.test('CJK text gets character bigrams', async (t) => {
  const ja = load('handbook').find((r) => r.lang === 'ja-JP')!;
  t.ok(wordFeatures(ja.text, 4096).indices.length > 100);
  const km = new KMeans({ k: 4, dim: 64, iterations: 1, seed: 0 });
  km.fit([]);
  t.same(km.assign(wordFeatures('x', 64)), { cluster: 0, distance: 0 }, 'an empty fit assigns everything to cluster 0');
});

t.test('mulberry32After continues the generator after a number of draws', async (t) => {
  for (const seed of [0, 1, 0x6b43a9b5, 0xffffffff]) {
    const r = mulberry32(seed);
    const seq = Array.from({ length: 300 }, () => r());
    for (const n of [0, 1, 17, 299]) t.equal(mulberry32After(seed, n)(), seq[n], `seed ${seed}, after ${n} draws`);
  }
  // Past 2^32 draws the state wraps around: the draw count is taken modulo 2^32 too.
  t.equal(mulberry32After(5, 2 ** 32 + 3)(), mulberry32After(5, 3)());
});
