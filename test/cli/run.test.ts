import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { compress as zstdCompress, decompress as zstdDecompress } from 'zstd-napi';
import { BIN, cli, cliSpawn, lines, ROOT, SAMPLES, tmpdir } from '../helpers.ts';

const dir = tmpdir();
const identity = path.join(dir, 'identity.json');
writeFileSync(identity, JSON.stringify({ steps: [] }));
const kjvText = readFileSync(path.join(SAMPLES, 'kjv.jsonl'));
const kjv = lines(kjvText.toString());

// ~20 MB of real text with unique ids, for the tests that need a run to last.
function bigInput(): string {
  const file = path.join(dir, 'big.jsonl');
  if (existsSync(file)) return file;
  const sources = ['kjv.jsonl', 'handbook.jsonl', 'fortunes.jsonl', 'gcide.jsonl'].map((f) => lines(readFileSync(path.join(SAMPLES, f), 'utf8')));
  let out = '';
  for (let copy = 0; copy < 10; copy++) for (const recs of sources) for (const r of recs) out += JSON.stringify({ ...r, id: `${r.id}#${copy}` }) + '\n';
  writeFileSync(file, out);
  return file;
}

t.test('stdin to stdout: records keep every field, in order', async (t) => {
  const withFields = kjv.slice(0, 5).map((r, i) => ({ z: i, id: r.id, meta: { a: [1, 2], b: null }, text: r.text, source: 'kjv' }));
  const r = cli(['run', identity, '-q'], { input: withFields.map((x) => JSON.stringify(x)).join('\n') + '\n' });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, withFields.map((x) => JSON.stringify(x)).join('\n') + '\n', 'byte-identical, field order kept');
  t.equal(r.stderr, '');
});

t.test('- among input files reads stdin at its place in the list', async (t) => {
  const file = path.join(dir, 'after-stdin.jsonl');
  writeFileSync(file, kjv.slice(3, 6).map((x) => JSON.stringify(x)).join('\n') + '\n');
  const stdin = kjv.slice(0, 3).map((x) => JSON.stringify(x)).join('\n') + '\n';
  const first = cli(['run', identity, '-', file, '-q'], { input: stdin });
  t.equal(first.code, 0, first.stderr);
  t.same(lines(first.stdout).map((x) => x.id), kjv.slice(0, 6).map((x) => x.id), 'stdin, then the file');
  const last = cli(['run', identity, file, '-', '-o', '-', '-q'], { input: stdin });
  t.equal(last.code, 0, last.stderr);
  t.same(lines(last.stdout).map((x) => x.id), [...kjv.slice(3, 6), ...kjv.slice(0, 3)].map((x) => x.id), 'the file, then stdin (-o - is stdout)');
  const withSource = path.join(dir, 'with-source.json');
  writeFileSync(withSource, JSON.stringify({ source: [file], steps: [] }));
  const over = cli(['run', withSource, '-', '-q'], { input: stdin });
  t.same(lines(over.stdout).map((x) => x.id), kjv.slice(0, 3).map((x) => x.id), '- overrides the pipeline\'s source');
});

t.test('several compressed inputs to a compressed output chosen by extension', async (t) => {
  const a = path.join(dir, 'a.jsonl.zst');
  const b = path.join(dir, 'b.jsonl.gz');
  const c = path.join(dir, 'c.jsonl');
  writeFileSync(a, zstdCompress(Buffer.from(kjv.slice(0, 50).map((x) => JSON.stringify(x)).join('\n') + '\n')));
  writeFileSync(b, gzipSync(Buffer.from(kjv.slice(50, 100).map((x) => JSON.stringify(x)).join('\n') + '\n')));
  writeFileSync(c, kjv.slice(100).map((x) => JSON.stringify(x)).join('\n') + '\n');
  for (const out of ['out.jsonl.zst', 'out.jsonl.gz', 'out.jsonl']) {
    const target = path.join(dir, out);
    const r = cli(['run', path.join(ROOT, 'pipelines', 'clean.json'), a, b, c, '-o', target]);
    t.equal(r.code, 0, r.stderr);
    const raw = readFileSync(target);
    const text = out.endsWith('.zst') ? zstdDecompress(raw).toString() : out.endsWith('.gz') ? spawnSync('gzip', ['-dc'], { input: raw }).stdout.toString() : raw.toString();
    const recs = lines(text);
    t.equal(recs.length, 150, out);
    t.same(recs.map((x) => x.id), kjv.map((x) => x.id), 'inputs in order');
    t.ok(recs.every((x) => typeof x.word_count === 'number'));
    t.notOk(existsSync(`${target}.partial-${r.code}`));
  }
  const r = cli(['run', path.join(ROOT, 'pipelines', 'clean.json'), a, '-o', path.join(dir, 'x.jsonl')]);
  t.match(r.stderr, /step op/, 'summary on stderr');
  t.match(r.stderr, /normalize\s+50 ->\s+50/);
});

t.test('bad input: counted by reason, written to --errors with input and line, exit 3, good records kept', async (t) => {
  const input = path.join(dir, 'bad.jsonl');
  const good = kjv.slice(0, 3).map((x) => JSON.stringify(x));
  writeFileSync(
    input,
    Buffer.concat([
      Buffer.from('\ufeff' + good[0] + '\r\n'),
      Buffer.from('{"id":"x","text":\n'),
      Buffer.concat([Buffer.from('{"id":"u","text":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}\n')]),
      Buffer.from('{"id":"n","text":null}\n{"id":"e","text":""}\n'),
      Buffer.from(JSON.stringify({ id: 'big', text: 'word '.repeat(3000) }) + '\n'),
      Buffer.from(good[1] + '\r\n' + good[2] + '\n'),
    ]),
  );
  const errors = path.join(dir, 'errors.jsonl');
  const report = path.join(dir, 'report.json');
  const decodeOpts = path.join(dir, 'p.json');
  writeFileSync(decodeOpts, JSON.stringify({ steps: [{ op: 'decode', maxRecordBytes: 10000 }, { op: 'normalize' }] }));
  const r = cli(['run', decodeOpts, input, '--errors', errors, '--report', report]);
  t.equal(r.code, 3, 'exit 3: the run finished but some records were bad');
  t.same(lines(r.stdout).map((x) => x.id), kjv.slice(0, 3).map((x) => x.id));
  const errs = lines(readFileSync(errors, 'utf8'));
  t.same(errs.map((e) => [e.reason, e.line, e.input]), [
    ['invalid_json', 2, input],
    ['invalid_utf8', 3, input],
    ['missing_text', 4, input],
    ['empty_text', 5, input],
    ['record_too_large', 6, input],
  ]);
  const rep = JSON.parse(readFileSync(report, 'utf8'));
  t.equal(rep.status, 'input-errors');
  t.same(rep.steps[0].errors, { invalid_json: 1, invalid_utf8: 1, missing_text: 1, empty_text: 1, record_too_large: 1 });
  t.same([rep.steps[0].recordsIn, rep.steps[0].recordsOut], [8, 3], 'decode read 8 lines, 3 good ones out, 5 errors');
  t.equal(rep.totals.errors, 5);
  t.equal(rep.inputs[0].complete, true);
  t.match(r.stderr, /error_invalid_json=1/);
  t.notMatch(r.stderr, /--errors FILE writes/, 'no hint when the bad records are written');
  const bare = cli(['run', decodeOpts, input]);
  t.equal(bare.code, 3);
  t.match(bare.stderr, /\(--errors FILE writes each bad record with its input, line, reason and raw text\)/, 'without --errors the summary says how to see them');
});

t.test('decode textField/idField replacing a text/id the record had: counted per record, warned about once', async (t) => {
  const p = path.join(dir, 'fields.json');
  writeFileSync(p, JSON.stringify({ steps: [{ op: 'decode', textField: 'body', idField: 'doc' }, { op: 'normalize' }] }));
  const input = [
    { doc: 'a', body: 'first body', text: 'its own text', id: 1 },
    { doc: 'b', body: 'second body', text: 'more own text' },
    { doc: 'c', body: 'third body' },
  ].map((x) => JSON.stringify(x)).join('\n') + '\n';
  const report = path.join(dir, 'fields-report.json');
  const r = cli(['run', p, '-q', '--report', report], { input });
  t.equal(r.code, 0, r.stderr);
  t.same(lines(r.stdout).map((o) => [o.id, o.text]), [['a', 'first body'], ['b', 'second body'], ['c', 'third body']]);
  t.equal(r.stderr.match(/warning/g)?.length, 2, r.stderr);
  t.match(r.stderr, /decode: warning: the record at <stdin>:1 already has a field "text"; it is replaced by its "body" \(warned once; the report counts each record as overwrote_text\)/);
  t.match(r.stderr, /already has a field "id"; it is replaced by its "doc"/);
  const decode = JSON.parse(readFileSync(report, 'utf8')).steps[0];
  t.same([decode.counters.overwrote_text, decode.counters.overwrote_id], [2, 1]);
});

t.test('truncated zstd: records before the break are emitted, the input is reported incomplete, exit 3', async (t) => {
  const packed = zstdCompress(kjvText);
  const cut = path.join(dir, 'cut.jsonl.zst');
  writeFileSync(cut, packed.subarray(0, Math.floor(packed.length / 2)));
  const errors = path.join(dir, 'cut-errors.jsonl');
  const r = cli(['run', identity, cut, '--errors', errors]);
  t.equal(r.code, 3);
  const got = lines(r.stdout);
  t.ok(got.length > 20 && got.length < 150, `${got.length} records`);
  t.same(got, kjv.slice(0, got.length));
  t.match(r.stderr, /input not read to its end/);
  t.equal(lines(readFileSync(errors, 'utf8')).at(-1).reason, 'truncated_input');
});

t.test('--max-errors stops early with exit 4', async (t) => {
  const input = path.join(dir, 'many-bad.jsonl');
  writeFileSync(input, Array.from({ length: 5000 }, (_, i) => (i % 2 ? `{"id":"${i}","text":"ok ${i}"}` : 'nope')).join('\n') + '\n');
  const r = cli(['run', identity, input, '--max-errors', '10', '-q']);
  t.equal(r.code, 4);
  t.ok(lines(r.stdout).length < 2500, 'stopped before the end');
});

t.test('--max-errors with --checkpoint: the same command again stays stopped; a larger limit goes on to the uninterrupted output', async (t) => {
  const input = path.join(dir, 'bad-every-100.jsonl');
  writeFileSync(input, Array.from({ length: 2000 }, (_, i) => (i % 100 === 99 ? 'nope' : JSON.stringify({ id: `r${i}`, text: `record ${i}` }))).join('\n') + '\n');
  const out = path.join(dir, 'max-errors-out') + '/';
  const ckpt = path.join(dir, 'max-errors-ckpt');
  const errors = path.join(dir, 'max-errors-errors.jsonl');
  const run = (limit: string) => cli(['run', identity, input, '-o', out, '--checkpoint', ckpt, '--errors', errors, '--max-errors', limit, '-q']);
  const records = () => lines(readdirSync(out).filter((f) => f.startsWith('part-')).sort().map((f) => zstdDecompress(readFileSync(path.join(out, f))).toString()).join(''));
  t.equal(run('2').code, 4);
  const first = { records: records().length, errors: lines(readFileSync(errors, 'utf8')).length };
  t.equal(first.errors, 3, 'stopped at the third bad record');
  for (let again = 0; again < 2; again++) {
    const r = run('2');
    t.equal(r.code, 4, r.stderr);
    t.match(r.stderr, /stopped after 3 bad records, more than --max-errors 2; it goes on only with a larger --max-errors/);
    t.same({ records: records().length, errors: lines(readFileSync(errors, 'utf8')).length }, first, 'nothing more read');
  }
  t.equal(run('100').code, 3, 'bad records, none over the limit');
  t.same(records().map((r) => r.id), Array.from({ length: 2000 }, (_, i) => `r${i}`).filter((_, i) => i % 100 !== 99));
  t.equal(lines(readFileSync(errors, 'utf8')).length, 20);
});

t.test('a missing input file is an error, not a crash', async (t) => {
  const r = cli(['run', identity, path.join(dir, 'does-not-exist.jsonl')]);
  t.equal(r.code, 3);
  t.match(r.stderr, /does-not-exist/);
  t.notMatch(r.stderr, /at .*\.ts:\d+/, 'no stack trace');
});

t.test('invalid pipelines are rejected before reading, all errors at once, exit 2', async (t) => {
  const p = path.join(dir, 'bad-pipeline.json');
  writeFileSync(p, JSON.stringify({ steps: [{ op: 'normalise' }, { op: 'normalize', nfkc: 3, lowercas: true }] }));
  for (const cmd of ['run', 'lint']) {
    const r = cli([cmd, p], { input: 'this would be a bad line\n' });
    t.equal(r.code, 2, cmd);
    t.match(r.stderr, /3 error\(s\)/);
    t.match(r.stderr, /step 0 \(normalise\) op: unknown operator "normalise"; did you mean "normalize"/);
    t.match(r.stderr, /step 1 \(normalize\) nfkc: expected boolean/);
    t.match(r.stderr, /step 1 \(normalize\) lowercas: unknown option; did you mean "lowercase"/);
    t.equal(r.stdout, '');
  }
  const ok = cli(['lint', path.join(ROOT, 'pipelines', 'clean.yaml')]);
  t.equal(ok.code, 0);
  t.match(ok.stdout, /^ok: .*normalize -> /);
});

t.test('ops lists every operator with its options', async (t) => {
  const r = cli(['ops']);
  t.equal(r.code, 0);
  for (const name of ['decode', 'normalize']) t.match(r.stdout, new RegExp(`^${name}  `, 'm'));
  t.match(r.stdout, /maxRecordBytes: integer \(>= 1\) \(default 67108864\)/);
  const one = cli(['ops', 'normalize']);
  t.match(one.stdout, /rewrite: "clean" \| "hash" \| "none" \(default "clean"\)/);
  const unknown = cli(['ops', 'normalise']);
  t.equal(unknown.code, 2, 'an unknown operator is a usage error');
  t.match(unknown.stderr, /did you mean normalize/);
});

t.test('| head -1 ends the run quietly', async (t) => {
  const big = bigInput();
  const r = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${BIN}" run "${identity}" "${big}" | head -1; echo "status=\${PIPESTATUS[0]}" >&2`], { encoding: 'utf8' });
  t.equal(lines(r.stdout).length, 1);
  t.match(r.stderr, /status=0/);
  t.notMatch(r.stderr, /EPIPE|Error|at /);
});

t.test('backpressure: a sink that does not read stops the reading', async (t) => {
  const big = readFileSync(bigInput());
  const child = cliSpawn(['run', identity, '-q']);
  let accepted = 0;
  let offered = 0;
  let blocked = false;
  // Feed stdin as fast as the child accepts it, never reading its stdout.
  const feed = async () => {
    while (offered < big.length * 10) {
      const chunk = big.subarray(0, 1 << 16);
      offered += chunk.length;
      if (!child.stdin.write(chunk)) {
        blocked = true;
        await new Promise((r) => child.stdin.once('drain', r));
        blocked = false;
      }
      accepted += chunk.length;
    }
  };
  child.stdin.on('error', () => {});
  feed().catch(() => {});
  await new Promise((r) => setTimeout(r, 3000));
  const first = accepted;
  await new Promise((r) => setTimeout(r, 1500));
  t.ok(blocked, 'the writer is blocked');
  t.equal(accepted, first, 'nothing more was read while the output was not read');
  t.ok(first < 64 * 1024 * 1024, `only ${(first / 1e6).toFixed(1)} MB read ahead of a stopped sink`);
  child.kill('SIGKILL');
});

t.test('SIGTERM stops reading, flushes what is in flight, prints the summary and exits 143', async (t) => {
  const child = cliSpawn(['run', identity]);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  // stdin stays open: the run is waiting for more data when the signal arrives.
  child.stdin.on('error', () => {}); // the child stops reading: the rest of our write is refused
  child.stdin.write(kjvText);
  while (!stdout.includes('\n')) await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGTERM');
  const code = await new Promise((r) => child.on('exit', (c) => r(c)));
  t.equal(code, 143);
  const got = lines(stdout);
  t.ok(got.length > 0);
  t.same(got, kjv.slice(0, got.length), 'complete records, in order');
  const summary = /(\d+) records in, (\d+) out/.exec(stderr);
  t.ok(summary, 'summary printed');
  t.equal(Number(summary![1]), got.length, 'every record read before the signal was written');
  t.equal(Number(summary![2]), got.length);
  t.match(stderr, /SIGTERM/);
  t.match(stderr, /mixstream: interrupted/);
});

t.test('histograms of a report over more values than their sample: the same for the same input, bins adding up to the count', async (t) => {
  const input = bigInput();
  const pipeline = path.join(dir, 'shingles.json');
  writeFileSync(pipeline, JSON.stringify({ steps: [{ op: 'shingle', workers: 0 }] }));
  const histogram = (n: number) => {
    const report = path.join(dir, `hist-${n}.json`);
    const r = cli(['run', pipeline, input, '-o', path.join(dir, `hist-${n}.jsonl`), '--report', report, '-q']);
    t.equal(r.code, 0, r.stderr);
    return JSON.parse(readFileSync(report, 'utf8')).steps.find((s: { op: string }) => s.op === 'shingle').histograms.shingles;
  };
  const a = histogram(1);
  t.ok(a.count > 4096 * 4, `${a.count} values`);
  t.equal(a.bins.reduce((n: number, b: { count: number }) => n + b.count, 0), a.count, 'the bins add up to the count');
  t.same(histogram(2), a, 'a second run reports the same histogram');
});
