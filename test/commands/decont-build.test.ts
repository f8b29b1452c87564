import t from 'tap';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { compress } from 'zstd-napi';
import { buildDecontFilter } from '../../lib/commands/decont-build.ts';
import { BloomFilter, bloomParams } from '../../lib/sketch/bloom.ts';
import { ngramHashes } from '../../lib/text/ngrams.ts';
import { readJsonl } from '../../lib/testing.ts';
import { SAMPLES, tmpdir } from '../helpers.ts';

t.test('builds from plain, gzip and zstd NDJSON through globs; sized from the n-gram count', async (t) => {
  const dir = tmpdir();
  const kjv = readJsonl(path.join(SAMPLES, 'kjv.jsonl')).slice(0, 30);
  const gcide = readJsonl(path.join(SAMPLES, 'gcide.jsonl')).slice(0, 200);
  const fortunes = readJsonl(path.join(SAMPLES, 'fortunes.jsonl')).slice(0, 200);
  const nd = (rs: object[]) => rs.map((r) => JSON.stringify(r)).join('\n') + '\n';
  writeFileSync(path.join(dir, 'a.jsonl'), nd(kjv) + 'this is not json\n');
  writeFileSync(path.join(dir, 'b.jsonl.gz'), gzipSync(nd(gcide)));
  writeFileSync(path.join(dir, 'c.jsonl.zst'), compress(Buffer.from(nd(fortunes.map((f) => ({ question: f.text, id: f.id }))))));
  const logs: string[] = [];
  const out = path.join(dir, 'eval.bloom');
  const r = await buildDecontFilter({ inputs: [path.join(dir, '*.jsonl'), path.join(dir, '*.gz')], out, log: (m) => logs.push(m) });
  t.equal(r.files.length, 2);
  t.equal(r.records, 230);
  t.same(r.errors, { invalid_json: 1 }, 'the bad line is counted');
  let total = 0;
  let short = 0;
  for (const d of [...kjv, ...gcide]) {
    const c = ngramHashes(d.text, 13).count;
    total += c;
    if (c === 0) short++;
  }
  t.equal(r.ngrams, total);
  t.equal(r.shortRecords, short);
  t.ok(short > 0, 'some dictionary entries are shorter than 13 words');
  t.same({ m: r.m, k: r.k }, bloomParams(total, 1e-6));
  t.ok(r.expectedFpRate < 1e-6);
  t.ok(logs.some((l) => l.includes('shorter than 13 words')));
  const h = BloomFilter.readHeader(out);
  t.equal(h.ngram, 13);
  t.same(h.form, { lowercase: true, stripPunctuation: true, foldDigits: false });
  t.equal(h.kind, 'decontamination');
  t.equal(h.records, 230);
  const f = BloomFilter.load(out);
  for (const d of kjv) {
    const g = ngramHashes(d.text, 13);
    for (let i = 0; i < g.count; i++) if (!f.has(g.a[i], g.b[i])) t.fail(`missing n-gram of ${d.id}`);
  }

  // Another text field, zstd input, n = 8, explicit size.
  const r2 = await buildDecontFilter({ inputs: [path.join(dir, 'c.jsonl.zst')], out: path.join(dir, 'q.bloom'), textField: 'question', n: 8, expectedItems: 50_000, fpRate: 1e-4, log: () => {} });
  t.equal(r2.records, 200);
  t.same({ m: r2.m, k: r2.k }, bloomParams(50_000, 1e-4));
  t.equal(BloomFilter.readHeader(path.join(dir, 'q.bloom')).ngram, 8);
});

t.test('errors name the problem', async (t) => {
  const dir = tmpdir();
  await t.rejects(buildDecontFilter({ inputs: [path.join(dir, '*.jsonl')], out: path.join(dir, 'x.bloom'), log: () => {} }), /no evaluation set files match/);
  await t.rejects(buildDecontFilter({ inputs: [path.join(dir, 'missing.jsonl')], out: path.join(dir, 'x.bloom'), log: () => {} }), /evaluation set .*missing\.jsonl: ENOENT/);
  await t.rejects(buildDecontFilter({ inputs: ['x'], out: 'y', n: 0, log: () => {} }), /--n/);
  await t.rejects(buildDecontFilter({ inputs: ['x'], out: 'y', fpRate: 2, log: () => {} }), /--fp-rate/);
});

t.test('the shipped sample filter is what a fresh build of samples/evalsets gives', async (t) => {
  const dir = tmpdir();
  const out = path.join(dir, 'eval.bloom');
  await buildDecontFilter({ inputs: [path.join(SAMPLES, 'evalsets', '*.jsonl')], out, log: () => {} });
  const fresh = BloomFilter.load(out);
  const shipped = BloomFilter.load(path.join(SAMPLES, 'evalsets', 'eval.bloom'));
  t.equal(shipped.m, fresh.m);
  t.equal(shipped.k, fresh.k);
  t.ok(Buffer.from(shipped.words.buffer).equals(Buffer.from(fresh.words.buffer)), 'same bits (rebuild samples/evalsets/eval.bloom after changing the hashing)');
});
