import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { cli, lines, SAMPLES, tmpdir } from '../helpers.ts';

const samples = ['kjv', 'gcide', 'fortunes', 'handbook'].map((s) => path.join(SAMPLES, `${s}.jsonl`));

t.test('pipelines/decontaminate.json drops the documents the sample eval sets were taken from', async (t) => {
  const dir = tmpdir();
  const rejects = path.join(dir, 'rejects.jsonl');
  const r = cli(['run', 'pipelines/decontaminate.json', ...samples, '-o', path.join(dir, 'out.jsonl'), '--rejects', rejects]);
  t.equal(r.code, 0, r.stderr);
  const dropped = lines(readFileSync(rejects, 'utf8'));
  const from = new Set(['kjv-passages', 'definitions', 'quotes'].flatMap((f) => lines(readFileSync(path.join(SAMPLES, 'evalsets', `${f}.jsonl`), 'utf8')).filter((e) => e.text.split(/\s+/).length >= 13).map((e) => e.from)));
  const ids = new Set(dropped.map((d) => d.id));
  t.same([...from].filter((id) => !ids.has(id)), [], 'every source document of a long-enough eval example is dropped');
  t.ok(dropped.every((d) => d.mixstream_reject.reason === 'contaminated'));
  t.match(r.stderr, /dropped_contaminated=\d+/);
});

t.test('pipelines/mix.json interleaves the samples to their shares', async (t) => {
  const dir = tmpdir();
  const r = cli(['run', 'pipelines/mix.json', '-o', path.join(dir, 'out.jsonl')]);
  t.equal(r.code, 0, r.stderr);
  const out = lines(readFileSync(path.join(dir, 'out.jsonl'), 'utf8'));
  const tokens: Record<string, number> = {};
  let total = 0;
  for (const x of out) {
    tokens[x.mix_source] = (tokens[x.mix_source] ?? 0) + x.token_count;
    total += x.token_count;
  }
  // Shares are planned with estimated tokens; measured here with exact cl100k counts.
  t.ok(Math.abs(tokens.bible / total - 0.4) < 0.03, `bible ${tokens.bible / total}`);
  t.ok(Math.abs(tokens.dictionary / total - 0.2) < 0.03, `dictionary ${tokens.dictionary / total}`);
  t.ok(Math.abs(tokens.quotes / total - 0.4) < 0.03, `quotes ${tokens.quotes / total}`);
  t.match(r.stderr, /repeated_docs_quotes=[1-9]/);
});

t.test('input files given to a pipeline that starts with mix are refused, not ignored', async (t) => {
  const dir = tmpdir();
  const out = path.join(dir, 'out.jsonl');
  const r = cli(['run', 'pipelines/mix.json', 'samples/kjv.jsonl', '-o', out]);
  t.equal(r.code, 2, r.stderr);
  t.match(r.stderr, /step 0 \(mix\) reads its own sources, so the inputs given \(samples\/kjv\.jsonl\) would not be read/);
  t.notOk(existsSync(out));
});

t.test('pipelines/partition.json writes units and a manifest', async (t) => {
  const r = cli(['run', 'pipelines/partition.json', ...samples]);
  t.equal(r.code, 0, r.stderr);
  const m = JSON.parse(readFileSync('/tmp/mixstream-partitions/manifest.json', 'utf8'));
  t.equal(m.partitions.length, 4);
  t.ok(m.partitions.every((p: { units: unknown[] }) => p.units.length >= 5));
  t.equal(r.stdout, '', 'a terminal step writes nothing to stdout');
});
