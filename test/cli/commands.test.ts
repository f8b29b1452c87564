import t from 'tap';
import { createServer } from 'node:http';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { cli, cliSpawn, lines, ROOT, SAMPLES, tmpdir } from '../helpers.ts';

const dir = tmpdir();

t.test('mixstream report renders run.json as HTML', async (t) => {
  const out = path.join(dir, 'report.html');
  const r = cli(['report', path.join(ROOT, 'test', 'fixtures', 'run-report.json'), '-o', out]);
  t.equal(r.code, 0, r.stderr);
  const html = readFileSync(out, 'utf8');
  const report = JSON.parse(readFileSync(path.join(ROOT, 'test', 'fixtures', 'run-report.json'), 'utf8'));
  t.match(html, /^<!DOCTYPE html>/i);
  for (const s of report.steps) t.match(html, new RegExp(`data-value="${s.recordsOut}"`));
  const bad = path.join(dir, 'bad.json');
  writeFileSync(bad, '{"version": 1}');
  const r2 = cli(['report', bad, '-o', path.join(dir, 'x.html')]);
  t.equal(r2.code, 2);
  t.match(r2.stderr, /cannot render/);
});

t.test('https?:// inputs stream through the same decode rules (gzip over HTTP, a dropped connection resumed)', async (t) => {
  const body = gzipSync(readFileSync(path.join(SAMPLES, 'kjv.jsonl')));
  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    const range = /bytes=(\d+)-/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    res.writeHead(range ? 206 : 200, { 'content-length': body.length - start, ...(range && { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` }), etag: '"v1"', 'accept-ranges': 'bytes' });
    if (requests === 1) {
      // Drop the first connection half-way.
      res.write(body.subarray(0, body.length >> 1), () => res.destroy());
    } else res.end(body.subarray(start));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const identity = path.join(dir, 'identity.json');
  writeFileSync(identity, '{"steps": []}');
  const child = cliSpawn(['run', identity, `http://127.0.0.1:${port}/kjv.jsonl.gz`, '-q']);
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  const code = await new Promise((r) => child.on('exit', r));
  server.close();
  t.equal(code, 0);
  t.same(lines(stdout), lines(readFileSync(path.join(SAMPLES, 'kjv.jsonl'), 'utf8')));
  t.ok(requests >= 2, 'the dropped transfer was resumed');
});

t.test('mixstream train-quality writes an ONNX model and reports held-out accuracy', async (t) => {
  const out = path.join(dir, 'q');
  const r = cli(['train-quality', path.join(SAMPLES, 'quality.jsonl'), '-o', out, '--epochs', '3']);
  t.equal(r.code, 0, r.stderr);
  t.ok(existsSync(`${out}.onnx`) && existsSync(`${out}.json`));
  const result = JSON.parse(r.stdout);
  t.ok(result.holdout.accuracy > 0.9, `held-out accuracy ${result.holdout.accuracy}`);
  const bad = cli(['train-quality', path.join(SAMPLES, 'kjv.jsonl'), '-o', path.join(dir, 'nolabels')]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /label/);
});

t.test('mixstream decont build makes a Bloom filter from evaluation sets', async (t) => {
  const out = path.join(dir, 'eval.bloom');
  const r = cli(['decont', 'build', '--n', '13', path.join(SAMPLES, 'evalsets', '*.jsonl'), '-o', out]);
  t.equal(r.code, 0, r.stderr);
  t.ok(existsSync(out));
  t.ok(JSON.parse(r.stdout).ngrams > 0);
});
