// Benchmark: `score` with ONNX models on real text, docs/s per core on 1 and 2 cores, for the
// dense-input model (the shipped samples/quality-model.onnx layout) and the sparse-input layout
// of the same weights; beside fastText (the classifier datatrove's FastTextClassifierFilter and
// most quality pipelines run), trained on the same labelled data and run on the same documents
// in the same run: held-out accuracy of both and the speed ratio.
//
//   npx tsx bench/score.ts [--quick] [--fasttext /usr/bin/fasttext]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gcide, handbook, kjv, fortunes, type Doc } from './corpus.ts';
import { machine } from './machine.ts';
import { trainQuality } from '../lib/commands/train-quality.ts';
import type { Rec } from '../lib/operator.ts';
import { mulberry32, shuffleInPlace } from '../lib/quality/train.ts';
import { createStepContext } from '../lib/context.ts';
import { validateOptions, type OptionError } from '../lib/options.ts';
import { readJsonl, runOperator } from '../lib/testing.ts';
import score, { type ScoreOptions } from '../operators/score.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const fasttextBin = args.includes('--fasttext') ? args[args.indexOf('--fasttext') + 1] : '/usr/bin/fasttext';
const dataDir = path.join(here, 'data', 'score');
const REPS = 3;
mkdirSync(dataDir, { recursive: true });

// Documents to score: every source of bench/corpus.ts (handbook in 26 languages, KJV, fortunes, GCIDE).
function documents(n: number): Doc[] {
  const take = (g: Iterable<Doc>, k: number) => {
    const out: Doc[] = [];
    for (const d of g) if (out.push(d) >= k) break;
    return out;
  };
  const parts = [take(handbook(), n * 0.4), take(kjv(), n * 0.1), take(fortunes(), n * 0.25), take(gcide(), n * 0.25)];
  return shuffleInPlace(parts.flat(), mulberry32(7)).slice(0, n);
}

const docs = documents(quick ? 3000 : 30000);
const mb = docs.reduce((s, d) => s + Buffer.byteLength(d.text), 0) / 1e6;
process.stderr.write(`${docs.length} documents, ${mb.toFixed(1)} MB\n`);

// Labelled data: samples/quality.jsonl split 80/20, the same split for both classifiers.
const labelled = shuffleInPlace(readJsonl(path.join(here, '..', 'samples', 'quality.jsonl')), mulberry32(11));
const cut = Math.round(labelled.length * 0.8);
const trainSet = labelled.slice(0, cut);
const holdSet = labelled.slice(cut);
const trainFile = path.join(dataDir, 'train.jsonl');
writeFileSync(trainFile, trainSet.map((r) => JSON.stringify(r)).join('\n') + '\n');

// Two layouts of one model: same seed and data give the same weights.
const dims = 1 << 16;
const models: Record<string, string> = {};
for (const layout of ['dense', 'sparse'] as const) {
  const res = await trainQuality({ input: [trainFile], out: path.join(dataDir, `model-${layout}`), dim: dims, holdout: 0, layout });
  models[layout] = res.model;
}

/** Steady-state rate of one `score` step: threads started and sessions opened by a warm-up batch first. */
async function timeScore(model: string, workers: number, threads: number, recs: Rec[]): Promise<{ docsPerSec: number; scores: number[] }> {
  const errors: OptionError[] = [];
  const opts = validateOptions({ model, workers, threads }, score.options, errors);
  if (errors.length) throw new Error(errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  const ctx = createStepContext({ op: 'score', log: () => {} });
  const step = await score.create(opts as unknown as ScoreOptions, ctx);
  const copy = recs.map((r) => ({ id: r.id, text: r.text }));
  try {
    await step.process(copy.slice(0, 256).map((r) => ({ ...r })));
    await step.flush?.();
    const out: Rec[] = [];
    const t0 = performance.now();
    for (let i = 0; i < copy.length; i += 256) out.push(...(await step.process(copy.slice(i, i + 256))));
    out.push(...((await step.flush?.()) ?? []));
    const s = (performance.now() - t0) / 1000;
    return { docsPerSec: recs.length / s, scores: out.map((x) => x.quality_score as number) };
  } finally {
    await step.close?.();
  }
}

const accuracy = (scores: number[], recs: Rec[]) => scores.filter((s, i) => (s >= 0.5 ? 1 : 0) === recs[i].label).length / recs.length;

interface Row {
  config: string;
  cores: number;
  docsPerSec: number;
}
const rows: Row[] = [];
let oursAcc = 0;
for (const layout of ['dense', 'sparse'] as const) {
  for (const [workers, threads, label, cores] of [
    [0, 1, 'in the step thread, 1 onnxruntime thread', 1],
    [0, 2, 'in the step thread, 2 onnxruntime intra-op threads', 2],
    [2, 1, '2 worker threads, 1 onnxruntime thread each', 2],
  ] as const) {
    // Best of REPS runs: the machine is shared, and the best run is the least disturbed one.
    let best = 0;
    for (let rep = 0; rep < REPS; rep++) best = Math.max(best, (await timeScore(models[layout], workers, threads, docs)).docsPerSec);
    rows.push({ config: `${layout}: ${label}`, cores, docsPerSec: best });
    process.stderr.write(`${layout} ${label}: ${best.toFixed(0)} docs/s\n`);
  }
  const held = await runOperator(score, { model: models[layout], workers: 0 }, holdSet.map((r) => ({ ...r })));
  oursAcc = accuracy(held.output.map((x) => x.quality_score as number), holdSet);
}

// fastText: supervised, word bigrams, the same number of hash buckets, on the same split.
let peer: { acc: number; docsPerSec: number; version: string } | undefined;
if (existsSync(fasttextBin)) {
  // One document per line, as fastText reads them; line breaks become its end-of-line token </s>.
  const line = (t: string) => t.split('\n').map((l) => l.replace(/\s+/g, ' ').trim()).filter(Boolean).join(' </s> ');
  const ftTrain = path.join(dataDir, 'ft-train.txt');
  const ftHold = path.join(dataDir, 'ft-holdout.txt');
  const ftDocs = path.join(dataDir, 'ft-docs.txt');
  writeFileSync(ftTrain, trainSet.map((r) => `__label__${r.label ? 'hq' : 'lq'} ${line(r.text)}`).join('\n') + '\n');
  writeFileSync(ftHold, holdSet.map((r) => `__label__${r.label ? 'hq' : 'lq'} ${line(r.text)}`).join('\n') + '\n');
  writeFileSync(ftDocs, docs.map((d) => line(d.text)).join('\n') + '\n');
  const ftModel = path.join(dataDir, 'ft-model');
  const run = (a: string[]) => {
    const r = spawnSync(fasttextBin, a, { encoding: 'utf8', maxBuffer: 1 << 28 });
    if (r.status !== 0) throw new Error(`fasttext ${a.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  run(['supervised', '-input', ftTrain, '-output', ftModel, '-wordNgrams', '2', '-bucket', String(dims), '-dim', '16', '-epoch', '10', '-lr', '0.5', '-thread', '1', '-seed', '1', '-verbose', '0']);
  const test = run(['test', `${ftModel}.bin`, ftHold]);
  const acc = Number(/P@1\s+([\d.]+)/.exec(test)?.[1]);
  run(['predict-prob', `${ftModel}.bin`, ftHold]); // warm the page cache
  let s = Infinity;
  for (let rep = 0; rep < REPS; rep++) {
    const t0 = performance.now();
    run(['predict-prob', `${ftModel}.bin`, ftDocs]);
    s = Math.min(s, (performance.now() - t0) / 1000);
  }
  const version = spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'fasttext'], { encoding: 'utf8' }).stdout || 'unknown';
  peer = { acc, docsPerSec: docs.length / s, version };
  process.stderr.write(`fastText predict-prob: ${peer.docsPerSec.toFixed(0)} docs/s, held-out accuracy ${acc}\n`);
}

const best1 = Math.max(...rows.filter((r) => r.cores === 1).map((r) => r.docsPerSec));
const load = os.loadavg().map((l) => l.toFixed(1)).join(', ');
let md = `## Quality scoring with ONNX models (\`score\`)\n\n`;
md += `${docs.length} real documents (${mb.toFixed(1)} MB; bench/corpus.ts: Debian handbook in 26 languages, KJV chapters, fortunes en/de/ru, GCIDE entries), `;
md += `scored by a hashed n-gram logistic regression (word unigrams + bigrams, ${dims} buckets) trained with \`train-quality\` on 80% of samples/quality.jsonl. `;
md += `Timed through the \`score\` operator (vectorizing, batching, onnxruntime-node, annotation; JSON parsing excluded), after a warm-up batch, best of ${REPS} runs.\n`;
md += `Machine: ${machine()}; load average at the end ${load} (the machine was shared with other jobs: compare ratios within this run).\n\n`;
md += `| model input, execution | cores | docs/s | docs/s per core |\n|---|---|---|---|\n`;
for (const r of rows) md += `| ${r.config} | ${r.cores} | ${r.docsPerSec.toFixed(0)} | ${(r.docsPerSec / r.cores).toFixed(0)} |\n`;
md += `\nHeld-out accuracy (20% of samples/quality.jsonl, ${holdSet.length} documents): mixstream ${(oursAcc * 100).toFixed(1)}%`;
if (peer) {
  md += `, fastText ${(peer.acc * 100).toFixed(1)}%.\n\n`;
  md += `Peer: fastText ${peer.version} (Debian package), \`supervised -wordNgrams 2 -bucket ${dims} -dim 16 -epoch 10\` on the same training split, `;
  md += `\`predict-prob\` over the same documents (one per line, line breaks as fastText's \`</s>\` token), one thread: ${peer.docsPerSec.toFixed(0)} docs/s including process start and model load. `;
  md += `Best one-core mixstream configuration / fastText: ${(best1 / peer.docsPerSec).toFixed(2)}x.\n`;
} else md += `.\n\nfastText was not found at ${fasttextBin} (apt-get install fasttext), so no peer was run.\n`;
md += `\nCommand: \`npx tsx bench/score.ts${quick ? ' --quick' : ''}\`\n`;
mkdirSync(path.join(here, 'results'), { recursive: true });
const out = path.join(here, 'results', quick ? 'score-quick.md' : 'score.md');
writeFileSync(out, md);
process.stderr.write(`wrote ${out}\n`);
process.stdout.write(md);
