import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cli, lines, ROOT, SAMPLES, tmpdir } from '../helpers.ts';

const dir = tmpdir();

t.test('filter drops by rule with per-reason counts and writes rejects', async (t) => {
  const out = path.join(dir, 'kept.jsonl');
  const rejects = path.join(dir, 'rejects.jsonl');
  const report = path.join(dir, 'report.json');
  const r = cli(['run', path.join(ROOT, 'pipelines', 'quality-rules.json'), path.join(SAMPLES, 'handbook.jsonl'), path.join(SAMPLES, 'kjv.jsonl'), '-o', out, '--rejects', rejects, '--report', report]);
  t.equal(r.code, 0, r.stderr);
  const kept = lines(readFileSync(out, 'utf8'));
  const rejected = lines(readFileSync(rejects, 'utf8'));
  t.equal(kept.length + rejected.length, 259);
  t.ok(rejected.length > 0);
  t.match(r.stderr, /dropped_too_few_sentences=\d+/);
  const rep = JSON.parse(readFileSync(report, 'utf8'));
  const step = rep.steps.find((s: { op: string }) => s.op === 'filter');
  const total = Object.values(step.dropped as Record<string, number>).reduce((a, b) => a + b, 0);
  t.equal(total, rejected.length);
  t.ok(Object.keys(step.dropped).every((k) => /^(gopher_|dup_|top_|duplicated_|too_few_sentences|lorem_ipsum|curly_bracket|line_punct_ratio|short_line_ratio|char_dup_ratio|list_ratio|empty)/.test(k)), JSON.stringify(step.dropped));
  // C4 rewrote the kept handbook sections: no navigation lines are left.
  for (const rec of kept) t.notOk(String(rec.text).includes('Download the ebook'), String(rec.id));
});

t.test('annotate mode, keep-top on the annotation, bad options', async (t) => {
  const pipeline = path.join(dir, 'annotate.json');
  writeFileSync(pipeline, JSON.stringify({ steps: [{ op: 'filter', rules: ['gopher-quality'], mode: 'annotate' }] }));
  const out = path.join(dir, 'annotated.jsonl');
  const r = cli(['run', pipeline, path.join(SAMPLES, 'fortunes.jsonl'), '-o', out]);
  t.equal(r.code, 0, r.stderr);
  const recs = lines(readFileSync(out, 'utf8'));
  t.equal(recs.length, 2053);
  t.ok(recs.every((x) => typeof (x.quality_rules as Record<string, { pass: boolean }>)['gopher-quality'].pass === 'boolean'));

  const top = path.join(dir, 'top.json');
  writeFileSync(top, JSON.stringify({ steps: [{ op: 'tokens', mode: 'estimate' }, { op: 'keep-top', field: 'token_count', fraction: 0.1, mode: 'exact' }] }));
  const r2 = cli(['run', top, path.join(SAMPLES, 'fortunes.jsonl'), '-o', path.join(dir, 'top.jsonl')]);
  t.equal(r2.code, 0, r2.stderr);
  t.equal(lines(readFileSync(path.join(dir, 'top.jsonl'), 'utf8')).length, Math.round(0.1 * 2053));

  const bad = path.join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ steps: [{ op: 'filter', rules: [{ set: 'gopher-quality', minDocWord: 3 }] }, { op: 'keep-top' }] }));
  const r3 = cli(['lint', bad]);
  t.not(r3.code, 0);
  t.match(r3.stderr + r3.stdout, /rules\[0\]\.minDocWord/);
  t.match(r3.stderr + r3.stdout, /fraction/);
});
