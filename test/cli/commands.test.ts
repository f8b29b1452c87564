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
  t.equal(r2.code, 1, 'a file that is not a run report fails the command');
  t.match(r2.stderr, /cannot render .*bad\.json.*not a mixstream run report/);
  t.notOk(existsSync(path.join(dir, 'x.html')), 'nothing written');
  const r3 = cli(['report', path.join(dir, 'missing.json')]);
  t.equal(r3.code, 1, 'a missing run report fails the command');
  t.match(r3.stderr, /cannot render .*missing\.json.*ENOENT/);
  t.equal(r3.stdout, '');
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

t.test('mixstream decont build takes the documented word-form options and --out', async (t) => {
  const evalSet = path.join(dir, 'eval-form.jsonl');
  // A number every fourth word and every word capitalized: with 8-grams, a copy with other
  // numbers, or lowercased (where case is kept), shares no n-gram.
  const question = 'How Many Apples 3 Did Farmers Pick 12 From The Old 45 Trees In The 7 Northern Orchard 9 Last Autumn';
  writeFileSync(evalSet, JSON.stringify({ id: 'q1', text: question }) + '\n');
  const docs = path.join(dir, 'docs-form.jsonl');
  const variants = { same: question, lower: question.toLowerCase(), digits: question.replace(/\d+/g, (d) => String(Number(d) + 1)) };
  writeFileSync(docs, Object.entries(variants).map(([id, text]) => JSON.stringify({ id, text })).join('\n') + '\n');
  const kept = (flags: string[]) => {
    const bloom = path.join(dir, `form-${flags.join('') || 'default'}.bloom`);
    const b = cli(['decont', 'build', '--n', '8', evalSet, '--out', bloom, ...flags]);
    t.equal(b.code, 0, b.stderr);
    const p = path.join(dir, `form-${flags.join('') || 'default'}.json`);
    writeFileSync(p, JSON.stringify({ steps: [{ op: 'decontaminate', filter: bloom }] }));
    const r = cli(['run', p, docs, '-q']);
    t.equal(r.code, 0, r.stderr);
    return lines(r.stdout).map((o) => o.id);
  };
  t.same(kept([]), ['digits'], 'default: case folded, digits kept');
  t.same(kept(['--keep-case']), ['lower', 'digits'], '--keep-case: a lowercased copy no longer matches');
  t.same(kept(['--fold-digits']), [], '--fold-digits: other numbers match too');
});

t.test('decont build and train-quality refuse an output they cannot write before reading their inputs', async (t) => {
  const file = path.join(dir, 'plain-file.txt');
  writeFileSync(file, 'x\n');
  // The inputs do not exist either: the output is what is reported, at once.
  const missing = path.join(dir, 'no-such-input.jsonl');
  for (const args of [
    ['decont', 'build', missing, '-o', path.join(file, 'eval.bloom')],
    ['train-quality', missing, '-o', path.join(file, 'model')],
  ]) {
    const r = cli(args);
    t.equal(r.code, 1, r.stderr);
    t.match(r.stderr, new RegExp(`^mixstream: cannot write ${path.join(file, '').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}.*not a directory`), args[0]);
  }
});

t.test('option values that do not work with the files met are usage errors naming the step and option (exit 2)', async (t) => {
  const cases: [string, object, RegExp][] = [
    ['missing-filter', { steps: [{ op: 'decontaminate', filter: path.join(dir, 'nope.bloom') }] }, /step 0 \(decontaminate\) filter: .*nope\.bloom does not exist; build it with \"mixstream decont build/],
    ['not-a-filter', { steps: [{ op: 'decontaminate', filter: path.join(SAMPLES, 'kjv.jsonl') }] }, /step 0 \(decontaminate\): option filter: /],
    ['mix-no-files', { steps: [{ op: 'mix', sources: [{ name: 'a', paths: [path.join(dir, 'nothing-*.jsonl')], weight: 1 }] }] }, /step 0 \(mix\): option sources\[0\]\.paths: no file matches/],
    ['tokens-no-file', { steps: [{ op: 'tokens', mode: 'exact', tokenizer: path.join(dir, 'missing-tokenizer.json') }] }, /step 0 \(tokens\) tokenizer: .*missing-tokenizer\.json does not exist/],
  ];
  for (const [name, spec, message] of cases) {
    const p = path.join(dir, `${name}.json`);
    writeFileSync(p, JSON.stringify(spec));
    const inputs = name.startsWith('mix') ? [] : [path.join(SAMPLES, 'kjv.jsonl')];
    const r = cli(['run', p, ...inputs, '-o', path.join(dir, `${name}.jsonl`)]);
    t.equal(r.code, 2, `${name}: exit 2`);
    t.match(r.stderr, message, name);
    t.notOk(existsSync(path.join(dir, `${name}.jsonl`)), `${name}: no output`);
    // A file a step reads as it starts is looked for by lint too.
    if (message.source.includes('does not exist')) t.match(cli(['lint', p]), { code: 2, stderr: message }, `${name}: lint`);
  }
  const noSources = path.join(dir, 'mix-no-sources.json');
  writeFileSync(noSources, JSON.stringify({ steps: [{ op: 'mix' }] }));
  const lint = cli(['lint', noSources]);
  t.equal(lint.code, 2);
  t.match(lint.stderr, /step 0 \(mix\) sources: required option missing/);
});
