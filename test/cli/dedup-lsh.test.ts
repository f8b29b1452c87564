import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { cli, lines, ROOT, SAMPLES, tmpdir } from '../helpers.ts';

const dir = tmpdir();

t.test('pipelines/dedup.json removes the untranslated copies among handbook editions', async (t) => {
  const out = path.join(dir, 'dedup.jsonl');
  const rejects = path.join(dir, 'removed.jsonl');
  const report = path.join(dir, 'report.json');
  const r = cli(['run', 'pipelines/dedup.json', path.join(SAMPLES, 'handbook.jsonl'), '-o', out, '--rejects', rejects, '--report', report, '-q']);
  t.equal(r.code, 0, r.stderr);
  const kept = lines(readFileSync(out, 'utf8'));
  const removed = lines(readFileSync(rejects, 'utf8'));
  t.equal(kept.length + removed.length, 109);
  t.ok(removed.length > 0, `${removed.length} removed`);
  const keptIds = new Set(kept.map((k) => k.id));
  for (const rec of removed) {
    t.ok(keptIds.has(rec.dup_of), `${rec.id} duplicates kept ${rec.dup_of}`);
    t.ok(rec.dup_similarity >= 0.85);
  }
  const step = JSON.parse(readFileSync(report, 'utf8')).steps.find((s: { op: string }) => s.op === 'lsh-band-join');
  t.equal(step.dropped.near_duplicate, removed.length);
  t.ok(step.histograms.cluster_size.count >= 1);
});

t.test('pipelines/cross-dedup.ts keeps the preferred source of each cluster', async (t) => {
  const out = path.join(dir, 'cross.jsonl');
  const r = cli(['run', 'pipelines/cross-dedup.ts', '-o', out, '-q'], { cwd: ROOT });
  t.equal(r.code, 0, r.stderr);
  const kept = lines(readFileSync(out, 'utf8'));
  t.equal(kept.filter((k) => k.source === 'handbook-mirror').length, 0, 'every mirror section loses to its debian-handbook copy');
  t.equal(kept.filter((k) => k.source === 'debian-handbook').length, 103);
  t.equal(kept[0].source, 'debian-handbook');
});

t.test('explain prints the band choice', async (t) => {
  const r = cli(['explain', 'pipelines/dedup.json']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout + r.stderr, /16 bands x 8 rows/);
});
