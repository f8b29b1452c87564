import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cli, lines, SAMPLES, tmpdir } from '../helpers.ts';

const dir = tmpdir();

t.test('tokens -> reservoir-weighted-sample through the CLI: budget, report, rejects', async (t) => {
  const pipeline = path.join(dir, 'sample.json');
  writeFileSync(pipeline, JSON.stringify({ steps: [{ op: 'tokens', mode: 'estimate' }, { op: 'reservoir-weighted-sample', budgetTokens: 20000, weight: 'log(token_count + 1)', seed: 2 }] }));
  const report = path.join(dir, 'report.json');
  const rejects = path.join(dir, 'rejects.jsonl');
  const r = cli(['run', pipeline, path.join(SAMPLES, 'gcide.jsonl'), '--report', report, '--rejects', rejects], { cwd: dir });
  t.equal(r.code, 0, r.stderr);
  const out = lines(r.stdout);
  const tokens = out.reduce((s, x) => s + (x.token_count as number), 0);
  t.ok(tokens <= 20000 && tokens > 19000, `${tokens} tokens`);
  const rep = JSON.parse(readFileSync(report, 'utf8'));
  const step = rep.steps.find((s: { op: string }) => s.op === 'reservoir-weighted-sample');
  t.equal(step.tokensOut, tokens);
  t.equal(step.dropped.not_sampled, 1242 - out.length);
  t.equal(lines(readFileSync(rejects, 'utf8')).length, 1242 - out.length);
  const again = cli(['run', pipeline, path.join(SAMPLES, 'gcide.jsonl')], { cwd: dir });
  t.equal(again.stdout, r.stdout, 'same seed, same output');
});

t.test('samplemix through the CLI: sampling_count histogram in the report', async (t) => {
  const pipeline = path.join(dir, 'mix.json');
  writeFileSync(pipeline, JSON.stringify({ steps: [{ op: 'tokens', mode: 'estimate' }, { op: 'samplemix', quality: 'log(token_count + 1)', budgetRatio: 2, clusters: 8, fitDocs: 500 }] }));
  const report = path.join(dir, 'mix-report.json');
  const r = cli(['run', pipeline, path.join(SAMPLES, 'fortunes.jsonl'), '--report', report], { cwd: dir });
  t.equal(r.code, 0, r.stderr);
  const rep = JSON.parse(readFileSync(report, 'utf8'));
  const step = rep.steps.find((s: { op: string }) => s.op === 'samplemix');
  t.equal(step.histograms.sampling_count.count, 2053);
  t.ok(step.histograms.sampling_count.max >= 3);
  t.equal(lines(r.stdout).length, step.recordsOut);
});

t.test('a bad weight expression fails before reading, naming the step and option', async (t) => {
  const bad = path.join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ steps: [{ op: 'reservoir-weighted-sample', count: 3, weight: 'min(quality_score' }] }));
  const r = cli(['run', bad, path.join(SAMPLES, 'kjv.jsonl')], { cwd: dir });
  t.not(r.code, 0);
  t.match(r.stderr, /step 0 \(reservoir-weighted-sample\) weight: expected "," or "\)"/);
  t.equal(r.stdout, '');
});
