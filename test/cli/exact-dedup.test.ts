import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { hashForm } from '../../lib/text/normalize.ts';
import { cli, lines, SAMPLES, tmpdir } from '../helpers.ts';

const dir = tmpdir();
const handbook = path.join(SAMPLES, 'handbook.jsonl');
const mirror = path.join(SAMPLES, 'handbook-mirror.jsonl');

t.test('pipelines/exact-dedup.json drops the untranslated sections repeated across handbook editions', async (t) => {
  const out = path.join(dir, 'out.jsonl');
  const rejects = path.join(dir, 'rejects.jsonl');
  const report = path.join(dir, 'report.json');
  const r = cli(['run', 'pipelines/exact-dedup.json', handbook, mirror, '-o', out, '--rejects', rejects, '--report', report, '-q']);
  t.equal(r.code, 0, r.stderr);
  const input = [...lines(readFileSync(handbook, 'utf8')), ...lines(readFileSync(mirror, 'utf8'))];
  // The oracle: first record of each hashing form of the cleaned text.
  const seen = new Set<string>();
  const want = input.filter((rec) => {
    const k = hashForm(rec.text);
    return !seen.has(k) && seen.add(k);
  });
  const kept = lines(readFileSync(out, 'utf8'));
  const removed = lines(readFileSync(rejects, 'utf8'));
  t.same(kept.map((k) => k.id), want.map((w) => w.id));
  t.ok(removed.length > 5, `${removed.length} removed`);
  t.equal(kept.length + removed.length, input.length);
  t.ok(removed.every((x) => x.mixstream_reject.reason === 'exact_duplicate'));
  const step = JSON.parse(readFileSync(report, 'utf8')).steps.find((s: { op: string }) => s.op === 'exact-dedup');
  t.equal(step.dropped.exact_duplicate, removed.length);
  t.equal(step.counters.unique, kept.length);
});

t.test('emit removed on KJV chapters with case and spacing variants, spilled to LMDB', async (t) => {
  const kjv = lines(readFileSync(path.join(SAMPLES, 'kjv.jsonl'), 'utf8')).slice(0, 80);
  const variants = kjv.filter((_, i) => i % 4 === 0).map((r, i) => ({ ...r, id: `${r.id}-copy`, text: i % 2 ? r.text.toUpperCase() : r.text.replace(/ /g, '   ') }));
  const input = path.join(dir, 'kjv-copies.jsonl');
  writeFileSync(input, [...kjv, ...variants].map((r) => JSON.stringify(r)).join('\n') + '\n');
  const pipeline = path.join(dir, 'removed.json');
  writeFileSync(pipeline, JSON.stringify({ steps: [{ op: 'normalize' }, { op: 'exact-dedup', emit: 'removed', memoryMB: 0.001 }] }));
  const out = path.join(dir, 'removed.jsonl');
  const r = cli(['run', pipeline, input, '-o', out, '-q']);
  t.equal(r.code, 0, r.stderr);
  const got = lines(readFileSync(out, 'utf8'));
  t.same(got.map((g) => [g.id, g.dup_of]), variants.map((v) => [v.id, v.id.replace(/-copy$/, '')]));
});
