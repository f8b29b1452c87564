// Exactly-once resume of keep-top and score's keepTop: killed at random moments and rerun until
// done, a pipeline writes the same output and rejects as an uninterrupted run, in the one-pass
// mode (t-digest, warm-up buffer; model scored in a worker thread) and in the exact mode (held
// records and spill files).
import t from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cli, killRepeatedly, lines, partsOutput, SAMPLES, tmpdir } from './helpers.ts';

const dir = tmpdir();

// Real text from every sample, interleaved by a hash of the id, in 16 files (checkpoints come
// between input chunks: small files give a run more places to stop).
const inputs: string[] = [];
{
  // Three copies (ids apart): a run long enough that kills at random points after a checkpoint land before its end.
  const once = ['fortunes.jsonl', 'gcide.jsonl', 'kjv.jsonl', 'handbook.jsonl', 'quality.jsonl'].flatMap((f) => lines(readFileSync(path.join(SAMPLES, f), 'utf8')));
  const docs = [0, 1, 2].flatMap((copy) => once.map((d) => ({ ...d, id: `${d.id}#${copy}` })));
  const h = (s: string) => {
    let x = 2166136261;
    for (let i = 0; i < s.length; i++) x = Math.imul(x ^ s.charCodeAt(i), 16777619);
    return x >>> 0;
  };
  docs.sort((a, b) => h(a.id) - h(b.id));
  const per = Math.ceil(docs.length / 16);
  for (let k = 0; k < 16; k++) {
    inputs.push(path.join(dir, `in-${k}.jsonl`));
    writeFileSync(inputs[k], docs.slice(k * per, (k + 1) * per).map((d) => JSON.stringify(d)).join('\n') + '\n');
  }
}

const PIPELINES = {
  stream: [
    { op: 'normalize' },
    { op: 'score', model: path.join(SAMPLES, 'quality-model.onnx'), keepTop: 0.6, keepTopWarmup: 500, workers: 1, batchSize: 32 },
    { op: 'keep-top', field: 'quality_score', fraction: 0.5, warmup: 1000 },
  ],
  exact: [
    { op: 'normalize' },
    { op: 'score', rules: ['gopher-quality', 'c4'], keepTop: 0.7, keepTopMode: 'exact', keepTopMemoryMB: 1 },
    { op: 'keep-top', field: 'quality_score', fraction: 0.5, mode: 'exact', memoryBytes: 300_000 },
  ],
};

function args(mode: keyof typeof PIPELINES, name: string, interval = 0.02): string[] {
  const pipeline = path.join(dir, `${mode}.json`);
  writeFileSync(pipeline, JSON.stringify({ steps: PIPELINES[mode] }));
  const base = path.join(dir, mode, name);
  return ['run', pipeline, ...inputs, '-o', path.join(base, 'out'), '--checkpoint', path.join(base, 'ckpt'), '--checkpoint-interval', String(interval), '--rejects', path.join(base, 'rejects.jsonl'), '--report', path.join(base, 'report.json')];
}

function rejectsByStep(text: string): Record<string, string[]> {
  const by: Record<string, string[]> = {};
  for (const line of text.split('\n')) if (line) (by[JSON.parse(line).mixstream_reject.step] ??= []).push(line);
  return by;
}

for (const mode of ['stream', 'exact'] as const) {
  t.test(`${mode} mode: kill -9 at random points, rerun until done: output and rejects equal an uninterrupted run`, async (t) => {
    const r = cli(args(mode, 'reference', 3600));
    t.equal(r.code, 0, r.stderr);
    const ref = path.join(dir, mode, 'reference');
    const refOut = partsOutput(path.join(ref, 'out'));
    const refRejects = readFileSync(path.join(ref, 'rejects.jsonl'), 'utf8');
    const refReport = JSON.parse(readFileSync(path.join(ref, 'report.json'), 'utf8'));
    const total = refReport.steps[0].recordsIn;
    const kept = lines(refOut).length;
    t.ok(total > 4900 && kept > total * 0.15 && kept < total * 0.45, `${kept} of ${total} records kept`);
    t.same(refReport.steps.filter((s: any) => s.dropped.below_top_fraction > 0).map((s: any) => s.op), ['score', 'keep-top'], 'both keep-top steps drop records');
    if (mode === 'exact') t.ok(refReport.steps.at(-1).counters.spilled_records > 1000, 'keep-top spills');

    const base = path.join(dir, mode, 'killed');
    const { kills, code } = await killRepeatedly(args(mode, 'killed'), path.join(base, 'ckpt'), { kills: 3, maxDelayMs: 400, seed: mode === 'stream' ? 7 : 8 });
    t.ok(kills >= 3, `killed ${kills} times before it finished`);
    t.equal(code, 0);
    const history = readFileSync(path.join(base, 'ckpt', 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    t.ok(new Set(history.map((h) => h.pid)).size > kills, `${history.length} checkpoints committed by ${new Set(history.map((h) => h.pid)).size} processes`);
    t.ok(partsOutput(path.join(base, 'out')) === refOut, 'output identical to the uninterrupted run, byte for byte');
    // Rejects of two steps interleave by batch, and batches are cut differently after a resume:
    // each step's rejects, in their order, are what is defined.
    t.same(rejectsByStep(readFileSync(path.join(base, 'rejects.jsonl'), 'utf8')), rejectsByStep(refRejects), 'rejects written exactly once, in order within each step');
    const report = JSON.parse(readFileSync(path.join(base, 'report.json'), 'utf8'));
    t.same(
      report.steps.map((x: any) => [x.op, x.recordsIn, x.recordsOut, x.dropped, x.counters]),
      refReport.steps.map((x: any) => [x.op, x.recordsIn, x.recordsOut, x.dropped, x.counters]),
      'every record counted once across the resumed runs',
    );
    t.notOk(existsSync(path.join(base, 'ckpt', 'work')), 'scratch state (spill files) removed once the run finished');
  });
}
