import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { defaultRegistry } from '../lib/cli.ts';
import { resolvePipeline } from '../lib/pipeline.ts';
import { runPipeline, startRun } from '../lib/run.ts';
import { lines, ROOT, SAMPLES, tmpdir } from './helpers.ts';

const registry = defaultRegistry();
const kjvText = readFileSync(path.join(SAMPLES, 'kjv.jsonl'));

function collector() {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      text += chunk;
      cb();
    },
  });
  return { stream, text: () => text };
}

t.test('library API: runs a pipeline, reports per step, routes drops to rejects', async (t) => {
  const pipeline = await resolvePipeline({ steps: [{ op: 'normalize' }, { op: path.join(ROOT, 'samples/operators/word-count.ts'), minWords: 200 }] }, registry);
  const dir = tmpdir();
  const out = collector();
  const report = await runPipeline({ pipeline, inputs: [path.join(SAMPLES, 'fortunes.jsonl')], outputStream: out.stream, rejects: path.join(dir, 'rejects.jsonl'), log: () => {} });
  const kept = lines(out.text());
  const rejected = lines(readFileSync(path.join(dir, 'rejects.jsonl'), 'utf8'));
  t.equal(report.status, 'ok');
  t.equal(report.exitCode, 0);
  t.equal(kept.length + rejected.length, report.totals.recordsIn, 'no record lost: kept + rejected = read');
  t.ok(rejected.length > 0 && kept.length > 0);
  t.same(rejected[0].mixstream_reject, { step: 1, op: pipeline.steps[1].op, reason: 'too_few_words' });
  t.same(report.steps.map((s) => s.op), ['decode', 'normalize', pipeline.steps[1].op]);
  t.equal(report.steps[2].dropped.too_few_words, rejected.length);
  t.equal(report.steps[2].recordsOut, kept.length);
  t.equal(report.inputs[0].complete, true);
  t.equal(report.machine.node, process.version);
});

t.test('backpressure: while the sink is paused, reading stops; memory is bounded by a few batches', async (t) => {
  const pipeline = await resolvePipeline({ steps: [{ op: 'normalize' }] }, registry);
  let bytesRead = 0;
  const total = 400 * kjvText.length; // ~270 MB offered
  let served = 0;
  const source = new Readable({
    highWaterMark: 1 << 16,
    read() {
      if (served >= total) return this.push(null);
      served += kjvText.length;
      bytesRead += kjvText.length;
      this.push(kjvText);
    },
  });
  let paused = true;
  const waiting: (() => void)[] = [];
  let written = 0;
  const sink = new Writable({
    highWaterMark: 1 << 14,
    write(chunk, _enc, cb) {
      written += chunk.length;
      if (paused) waiting.push(cb);
      else cb();
    },
  });
  const handle = startRun({ pipeline, inputs: [{ name: 'gen', open: () => source }], outputStream: sink, log: () => {} });
  await new Promise((r) => setTimeout(r, 800));
  const before = bytesRead;
  await new Promise((r) => setTimeout(r, 800));
  t.equal(bytesRead, before, 'no bytes read while the sink is paused');
  t.ok(before < 32 * 1024 * 1024, `${(before / 1e6).toFixed(1)} MB read ahead of a paused sink`);
  paused = false;
  waiting.splice(0).forEach((cb) => cb());
  await new Promise((r) => setTimeout(r, 300));
  t.ok(bytesRead > before, 'reading resumes when the sink drains');
  handle.stop();
  const report = await handle.done;
  t.equal(report.status, 'interrupted');
  t.ok(written > 0);
});

t.test('a step that throws fails the run with exit 1 and closes every step', async (t) => {
  const dir = tmpdir();
  const opFile = path.join(dir, 'boom.ts');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(
    opFile,
    `export default { name: 'boom', summary: 'fails', options: {}, create() { return { process(b) { if (b.length) throw new Error('boom at ' + b[0].id); return b; }, close() { globalThis.__boomClosed = true; } }; } };\n`,
  );
  const pipeline = await resolvePipeline({ steps: [{ op: opFile }] }, registry, 'p', dir);
  const report = await runPipeline({ pipeline, inputs: [path.join(SAMPLES, 'kjv.jsonl')], outputStream: collector().stream, summary: true, log: () => {} });
  t.equal(report.status, 'failed');
  t.equal(report.exitCode, 1);
  t.match((report as any).error, /boom at kjv\/Genesis_1/);
  t.equal((globalThis as any).__boomClosed, true);
});
