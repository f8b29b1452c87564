import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { cli, lines, SAMPLES, tmpdir } from '../helpers.ts';

const dir = tmpdir();
const PIPELINE = new URL('../../pipelines/quality-score.json', import.meta.url).pathname;

t.test('pipelines/quality-score.json on the samples: rule and model scores, top 20% kept, rejects written', async (t) => {
  const rejects = path.join(dir, 'rejects.jsonl');
  const report = path.join(dir, 'report.json');
  const r = cli(['run', PIPELINE, path.join(SAMPLES, 'quality.jsonl'), '--rejects', rejects, '--report', report], { cwd: dir });
  t.equal(r.code, 0, r.stderr);
  const out = lines(r.stdout);
  const share = out.length / 1400;
  t.ok(Math.abs(share - 0.2) <= 0.01, `kept ${(share * 100).toFixed(2)}%`);
  // One pass keeps the share within bounds, so a few records near the end may be kept to fill it (docs/quality-rules.md).
  const prose = out.filter((x) => x.label === 1).length;
  t.ok(prose >= 0.99 * out.length, `the kept fifth is prose: ${prose} of ${out.length}`);
  for (const x of out) {
    if (!(typeof x.rule_score === 'number' && Array.isArray(x.rule_score_failed))) t.fail(`${x.id}: rule score`);
    if (!(x.quality_grade === Math.round(10 * (x.quality_score as number)))) t.fail(`${x.id}: grade ${x.quality_grade} for ${x.quality_score}`);
    const p = x.quality_probs as { lq: number; hq: number };
    if (Math.abs(p.hq - (x.quality_score as number)) > 1e-6) t.fail(`${x.id}: probabilities`);
  }
  t.equal(lines(readFileSync(rejects, 'utf8')).length, 1400 - out.length, 'every dropped record in the rejects output');
  const rep = readFileSync(report, 'utf8');
  t.match(rep, /below_top_fraction/);
  t.match(rep, /"score"/, 'score histogram in the report');
});

t.test('a model that does not match its vectorizer config fails before reading, naming the option', async (t) => {
  copyFileSync(path.join(SAMPLES, 'quality-model.onnx'), path.join(dir, 'm.onnx'));
  const config = JSON.parse(readFileSync(path.join(SAMPLES, 'quality-model.json'), 'utf8'));
  config.vectorizer.dim = 1024;
  writeFileSync(path.join(dir, 'm.json'), JSON.stringify(config));
  writeFileSync(path.join(dir, 'bad.json'), JSON.stringify({ steps: [{ op: 'score', model: 'm.onnx' }] }));
  const r = cli(['run', path.join(dir, 'bad.json'), path.join(SAMPLES, 'kjv.jsonl')], { cwd: dir });
  t.equal(r.code, 2, 'a usage error');
  t.match(r.stderr, /step 0 \(score\): option model: input "input" has shape \[batch, 65536\] but the vectorizer in .*m\.json gives 1024 features/);
  t.equal(r.stdout, '');
  writeFileSync(path.join(dir, 'missing.json'), JSON.stringify({ steps: [{ op: 'score', model: 'nope.onnx' }] }));
  const missing = cli(['run', path.join(dir, 'missing.json'), path.join(SAMPLES, 'kjv.jsonl')], { cwd: dir });
  t.equal(missing.code, 2, missing.stderr);
  t.match(missing.stderr, /step 0 \(score\) model: nope\.onnx does not exist \(.*nope\.onnx\)/);
});
