import t from 'tap';
import { mkdirSync, readdirSync, writeFileSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BloomFilter, bloomParams, expectedFpRate } from '../../lib/sketch/bloom.ts';
import { ngramHashes } from '../../lib/text/ngrams.ts';
import { splitmix32 } from '../../lib/sketch/minhash.ts';
import { readJsonl } from '../../lib/testing.ts';
import { SAMPLES, tmpdir } from '../helpers.ts';

t.test('sizing follows the optimum (for 0.9 of the rate, the rest left to the double-hashing floor)', async (t) => {
  const { m, k } = bloomParams(1_000_000, 1e-6);
  t.equal(k, 20);
  t.ok(Math.abs(m / 1e6 - 28.97) < 0.01, `bits per item ${m / 1e6}`);
  t.equal(m % 64, 0);
  t.ok(expectedFpRate(m, k, 1e6) < 1.05e-6 && expectedFpRate(m, k, 1e6) > 0.9e-6);
  t.throws(() => bloomParams(10, 0), /rate/);
  t.throws(() => bloomParams(1e12, 1e-9), /4 GiB limit/);
});

t.test('no false negatives; measured false-positive rate matches the design rate', async (t) => {
  const n = 200_000;
  const rate = 1e-3;
  const f = BloomFilter.create(n, rate);
  const next = splitmix32(7);
  const keys: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = next();
    const b = next();
    keys.push(a, b);
    f.add(a, b);
  }
  let missing = 0;
  for (let i = 0; i < keys.length; i += 2) if (!f.has(keys[i], keys[i + 1])) missing++;
  t.equal(missing, 0, 'every added key is found');
  // Keys whose bits were all set already (false positives during insertion) are not counted as new.
  t.ok(f.n <= n && n - f.n < n * rate, `distinct count ${f.n}`);
  let fp = 0;
  const q = 2_000_000;
  for (let i = 0; i < q; i++) if (f.has(next(), next())) fp++;
  const measured = fp / q;
  t.ok(measured > rate * 0.7 && measured < rate * 1.3, `measured ${measured} vs ${rate}`);
  t.ok(Math.abs(f.fillRatio() - 0.5) < 0.02, `fill ${f.fillRatio()}`);
});

t.test('real text: n-grams of the KJV, queried with n-grams of the handbook and fortunes', async (t) => {
  const kjv = readJsonl(path.join(SAMPLES, 'kjv.jsonl'));
  let total = 0;
  for (const d of kjv) total += ngramHashes(d.text, 13).count;
  const f = BloomFilter.create(total, 1e-4);
  for (const d of kjv) {
    const h = ngramHashes(d.text, 13);
    for (let i = 0; i < h.count; i++) f.add(h.a[i], h.b[i]);
  }
  for (const d of kjv.slice(0, 50)) {
    const h = ngramHashes(d.text, 13);
    for (let i = 0; i < h.count; i++) if (!f.has(h.a[i], h.b[i])) t.fail(`missed an n-gram of ${d.id}`);
  }
  let queries = 0;
  let hits = 0;
  for (const file of ['handbook.jsonl', 'fortunes.jsonl', 'gcide.jsonl']) {
    for (const d of readJsonl(path.join(SAMPLES, file))) {
      const h = ngramHashes(d.text, 13);
      for (let i = 0; i < h.count; i++) {
        queries++;
        if (f.has(h.a[i], h.b[i])) hits++;
      }
    }
  }
  t.ok(queries > 50_000, `${queries} clean n-grams queried`);
  // A few real overlaps are possible (quoted verses); the rate must stay near the design rate.
  t.ok(hits / queries < 5e-4, `false-positive rate ${hits / queries} (${hits}/${queries})`);
});

t.test('a save that cannot be renamed into place leaves no temporary file', async (t) => {
  const dir = tmpdir();
  const f = BloomFilter.create(100, 1e-3, { ngram: 13, form: {} });
  const target = path.join(dir, 'taken.bloom');
  mkdirSync(path.join(target, 'inside'), { recursive: true });
  t.throws(() => f.save(target));
  t.same(readdirSync(dir), ['taken.bloom']);
});

t.test('save and load round-trip with header; bad files are named', async (t) => {
  const dir = tmpdir();
  const f = BloomFilter.create(5000, 1e-6, { ngram: 13, form: { lowercase: true } });
  const next = splitmix32(3);
  for (let i = 0; i < 5000; i++) f.add(next(), next());
  const file = path.join(dir, 'x.bloom');
  f.save(file);
  const h = BloomFilter.readHeader(file);
  t.equal(h.m, f.m);
  t.equal(h.k, f.k);
  t.equal(h.n, f.n);
  t.equal(h.ngram, 13);
  t.same(h.form, { lowercase: true });
  t.equal(h.fpRate, 1e-6);
  const g = BloomFilter.load(file);
  t.same(Buffer.from(g.words.buffer), Buffer.from(f.words.buffer));
  t.equal(g.n, f.n);
  t.ok(statSync(file).size >= f.m / 8);

  const bad = path.join(dir, 'bad.bloom');
  writeFileSync(bad, 'hello world, not a filter');
  t.throws(() => BloomFilter.load(bad), /not a mixstream Bloom filter/);
  const cut = path.join(dir, 'cut.bloom');
  writeFileSync(cut, readFileSync(file).subarray(0, 200));
  t.throws(() => BloomFilter.load(cut), /truncated/);
});

// The smallest filter on the wide path (2^32 + 64 bits, 512 MiB), only when memory allows.
t.test('filters above 2^32 bits use the wide path with the same behaviour', { skip: os.freemem() < 2 * 2 ** 30 ? 'less than 2 GiB free memory' : false }, async (t) => {
  const f = new BloomFilter({ m: 2 ** 32 + 64, k: 7 });
  const next = splitmix32(11);
  const keys: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const a = next();
    const b = next();
    keys.push(a, b);
    f.add(a, b);
  }
  let ok = 0;
  for (let i = 0; i < keys.length; i += 2) if (f.has(keys[i], keys[i + 1])) ok++;
  t.equal(ok, 2000);
  let fp = 0;
  for (let i = 0; i < 5000; i++) if (f.has(next(), next())) fp++;
  t.equal(fp, 0);
});

t.test('small filters keep their design rate (double hashing gives at most m^2 probe patterns)', async (t) => {
  // 150 keys at 1e-6: the optimum's 4,352 bits would pass ~150 / 4352^2 = 8e-6 of absent keys.
  const n = 150;
  const rate = 1e-6;
  const f = BloomFilter.create(n, rate);
  t.ok(f.m >= Math.sqrt((10 * n) / rate), `m = ${f.m} bits`);
  t.equal(f.k, 20, 'k as at the optimum');
  t.ok(expectedFpRate(f.m, f.k, n) < 1.2e-6, `expected ${expectedFpRate(f.m, f.k, n)}`);
  const next = splitmix32(11);
  for (let i = 0; i < n; i++) f.add(next(), next());
  let fp = 0;
  const q = 3_000_000;
  for (let i = 0; i < q; i++) if (f.has(next(), next())) fp++;
  t.ok(fp <= 12, `${fp} false positives in ${q} queries (design: ${q * rate})`);
});
