import t from 'tap';
import { rankBelow as rankOf, TDigest } from '../../lib/sketch/tdigest.ts';

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

const QS = [0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99, 0.999];

for (const dist of ['uniform', 'exponential', 'bimodal', 'ascending', 'descending'] as const) {
  t.test(`rank error on ${dist} input`, async (t) => {
    const rnd = lcg(7);
    const N = 100_000;
    const xs = new Float64Array(N);
    for (let i = 0; i < N; i++) {
      const u = rnd();
      xs[i] = dist === 'uniform' ? u : dist === 'exponential' ? -Math.log(1 - u) : dist === 'bimodal' ? (u < 0.3 ? u : 10 + u * 5) : dist === 'ascending' ? i : N - i;
    }
    const td = new TDigest(200);
    for (const x of xs) td.add(x);
    const sorted = Float64Array.from(xs).sort();
    for (const q of QS) {
      const err = Math.abs(rankOf(sorted, td.quantile(q)) - q);
      // k1 scale: error bound shrinks towards the tails; 0.5% everywhere is generous.
      t.ok(err < 0.005, `q=${q} rank error ${err}`);
    }
    t.ok(td.centroids <= 200, `centroids ${td.centroids}`);
    t.equal(td.count, N);
    t.equal(td.quantile(0), sorted[0]);
    t.equal(td.quantile(1), sorted[N - 1]);
    const c = td.cdf(td.quantile(0.85));
    t.ok(Math.abs(c - 0.85) < 0.01, `cdf(quantile(0.85)) = ${c}`);
  });
}

t.test('small inputs are exact', async (t) => {
  const td = new TDigest(100);
  for (const x of [5, 1, 4, 2, 3]) td.add(x);
  t.equal(td.quantile(0.5), 3);
  t.equal(td.quantile(0), 1);
  t.equal(td.quantile(1), 5);
  t.ok(Number.isNaN(new TDigest().quantile(0.5)));
  t.throws(() => td.add(NaN));
  t.throws(() => new TDigest(1));
});

t.test('a saved state continues exactly like the digest it came from', async (t) => {
  const rnd = lcg(11);
  const xs = Array.from({ length: 30_000 }, () => -Math.log(1 - rnd()));
  // Cuts on a buffer boundary, inside the buffer, before anything merged, and on an empty digest.
  for (const cut of [0, 3, 1000, 12_345]) {
    const a = new TDigest(100);
    for (const x of xs.slice(0, cut)) a.add(x);
    const saved = a.state();
    const b = TDigest.fromState(Float64Array.from(saved));
    t.same(b.state(), saved, `cut ${cut}: same state`);
    for (const x of xs.slice(cut)) {
      a.add(x);
      b.add(x);
    }
    t.same(QS.map((q) => b.quantile(q)), QS.map((q) => a.quantile(q)), `cut ${cut}: same quantiles`);
    t.same(b.state(), a.state(), `cut ${cut}: same centroids`);
    t.equal(b.min, a.min);
    t.equal(b.max, a.max);
  }
  t.throws(() => TDigest.fromState(new Float64Array([2, 100, 500, 0, 0, 0, 0, 0])), /version/);
  t.throws(() => TDigest.fromState(new TDigest(100).state().subarray(1)), /not a saved state/);
});
