import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { compress as zstdCompress } from 'zstd-napi';
import { cli, killRepeatedly, lines, partsOutput, ROOT, runUntilKilled, SAMPLES, tmpdir } from './helpers.ts';

const dir = tmpdir();
const pipeline = path.join(dir, 'p.json');
writeFileSync(pipeline, JSON.stringify({ steps: [{ op: 'normalize' }, { op: path.join(SAMPLES, 'operators', 'word-count.ts'), minWords: 40 }] }));

// Three inputs of real text (plain, gzip, zstd), with bad lines sprinkled in so errors are written too.
const inputs: string[] = [];
{
  const sources = ['kjv.jsonl', 'handbook.jsonl', 'fortunes.jsonl', 'gcide.jsonl'].map((f) => readFileSync(path.join(SAMPLES, f), 'utf8').trim().split('\n'));
  const all: string[] = [];
  // Six copies: long enough a run that a signal sent after its first checkpoint lands before its end.
  for (let copy = 0; copy < 6; copy++) for (const src of sources) for (const l of src) all.push(JSON.stringify({ ...JSON.parse(l), id: `${JSON.parse(l).id}#${copy}` }));
  for (let i = 0; i < all.length; i += 997) all.splice(i, 0, `{"id":"bad-${i}", "text": `);
  const third = Math.ceil(all.length / 3);
  const parts = [all.slice(0, third), all.slice(third, 2 * third), all.slice(2 * third)].map((p) => p.join('\n') + '\n');
  writeFileSync(path.join(dir, 'in-0.jsonl'), parts[0]);
  writeFileSync(path.join(dir, 'in-1.jsonl.gz'), gzipSync(parts[1]));
  writeFileSync(path.join(dir, 'in-2.jsonl.zst'), zstdCompress(Buffer.from(parts[2])));
  inputs.push(path.join(dir, 'in-0.jsonl'), path.join(dir, 'in-1.jsonl.gz'), path.join(dir, 'in-2.jsonl.zst'));
}

const outputOf = partsOutput;

function args(name: string, interval = 0.02): string[] {
  const base = path.join(dir, name);
  return ['run', pipeline, ...inputs, '-o', path.join(base, 'out'), '--checkpoint', path.join(base, 'ckpt'), '--checkpoint-interval', String(interval), '--errors', path.join(base, 'errors.jsonl'), '--rejects', path.join(base, 'rejects.jsonl'), '--report', path.join(base, 'report.json')];
}

const reference = (() => {
  const r = cli(args('reference', 3600));
  if (r.code !== 3) throw new Error(`reference run: exit ${r.code}: ${r.stderr}`);
  const base = path.join(dir, 'reference');
  return { out: outputOf(path.join(base, 'out')), errors: readFileSync(path.join(base, 'errors.jsonl'), 'utf8'), rejects: readFileSync(path.join(base, 'rejects.jsonl'), 'utf8'), report: JSON.parse(readFileSync(path.join(base, 'report.json'), 'utf8')) };
})();

t.test('the reference run is complete and non-trivial', async (t) => {
  const out = lines(reference.out);
  t.ok(out.length > 1000, `${out.length} records kept`);
  t.ok(lines(reference.rejects).length > 100, 'some records rejected');
  t.ok(lines(reference.errors).length >= 5, 'bad lines reported');
  t.equal(reference.report.status, 'input-errors');
  t.notOk(existsSync(path.join(dir, 'reference', 'ckpt', 'work')), 'a finished run leaves no step scratch state behind');
});

t.test('kill -9 at random points, rerun until done: output equals an uninterrupted run, byte for byte', async (t) => {
  // Six kills at seeded random moments (repeatable), then the run is let finish.
  const { kills, code } = await killRepeatedly(args('killed'), path.join(dir, 'killed', 'ckpt'));
  t.ok(kills >= 3, `killed ${kills} times before it finished`);
  t.equal(code, 3, 'the final run ends like the reference (bad lines seen)');
  const base = path.join(dir, 'killed');
  t.ok(outputOf(path.join(base, 'out')) === reference.out, 'output identical to the uninterrupted run');
  t.equal(readFileSync(path.join(base, 'errors.jsonl'), 'utf8'), reference.errors, 'errors written exactly once');
  t.equal(readFileSync(path.join(base, 'rejects.jsonl'), 'utf8'), reference.rejects, 'rejects written exactly once');
  const report = JSON.parse(readFileSync(path.join(base, 'report.json'), 'utf8'));
  t.same(
    report.steps.map((x: any) => [x.op, x.recordsIn, x.recordsOut, x.dropped, x.errors]),
    reference.report.steps.map((x: any) => [x.op, x.recordsIn, x.recordsOut, x.dropped, x.errors]),
    'the report counts every record once across the resumed runs',
  );
  t.same(report.totals, reference.report.totals, 'totals too (bad records read ahead of a checkpoint are not counted twice)');
  t.notOk(readdirSync(path.join(base, 'out')).some((f) => f.includes('.partial-')), 'no partial files left');
});

t.test('a finished run is not redone; a different pipeline is refused', async (t) => {
  const again = cli(args('killed'));
  t.equal(again.code, 3, 'the finished run\'s status again (it saw bad lines), without redoing anything');
  t.match(again.stderr, /already finished/);
  t.equal(outputOf(path.join(dir, 'killed', 'out')), reference.out);
  const other = path.join(dir, 'other.json');
  writeFileSync(other, JSON.stringify({ steps: [{ op: 'normalize', lowercase: false }] }));
  const a = args('killed');
  a[1] = other;
  const refused = cli(a);
  t.equal(refused.code, 2, 'a usage error');
  t.match(refused.stderr, /different pipeline/);
});

t.test('a checkpoint directory a running process holds is refused; a lock left by a process that has ended is taken over', async (t) => {
  const base = path.join(dir, 'locked');
  const lock = path.join(base, 'ckpt', 'lock');
  mkdirSync(path.dirname(lock), { recursive: true });
  // This test's own process stands for a run still going on.
  writeFileSync(lock, String(process.pid));
  const refused = cli(args('locked'));
  t.equal(refused.code, 2, 'a usage error');
  t.match(refused.stderr, new RegExp(`ckpt is in use by another run \\(process ${process.pid}\\).*remove .*lock`));
  t.notOk(existsSync(path.join(base, 'out')), 'no output');
  t.notOk(existsSync(path.join(base, 'errors.jsonl')) || existsSync(path.join(base, 'rejects.jsonl')), 'no side outputs');
  t.equal(readFileSync(lock, 'utf8'), String(process.pid), 'the holder keeps its lock');
  const ended = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
  writeFileSync(lock, ended);
  const r = cli(args('locked', 3600));
  t.equal(r.code, 3, r.stderr);
  t.equal(outputOf(path.join(base, 'out')), reference.out, 'the run went on as if there were no lock');
  t.notOk(existsSync(lock), 'the lock is gone when the run ends');
});

t.test('SIGTERM writes a checkpoint; the rerun continues exactly', async (t) => {
  const a = args('term', 0.3);
  const code = await runUntilKilled(a, path.join(dir, 'term', 'ckpt'), 100, 'SIGTERM');
  t.equal(code, 143);
  const ckpt = JSON.parse(readFileSync(path.join(dir, 'term', 'ckpt', 'checkpoint.json'), 'utf8'));
  t.equal(ckpt.finished, false);
  // Resuming without a side output, or with another file, would lose what the first run wrote to it.
  const rejects = a[a.indexOf('--rejects') + 1];
  const rejectsBefore = readFileSync(rejects, 'utf8');
  const without = a.filter((_, i) => i !== a.indexOf('--rejects') && i !== a.indexOf('--rejects') + 1);
  const elsewhere = a.map((x) => (x === rejects ? path.join(dir, 'term', 'other-rejects.jsonl') : x));
  for (const [changed, problem] of [[without, /with --rejects .*rejects\.jsonl; resume with the same --rejects \(this run: no --rejects\)/], [elsewhere, /resume with the same --rejects \(this run: --rejects .*other-rejects\.jsonl\)/]] as const) {
    const r = cli(changed);
    t.equal(r.code, 2, `refused: ${r.stderr.trim()}`);
    t.match(r.stderr, problem);
  }
  t.equal(readFileSync(rejects, 'utf8'), rejectsBefore, 'the rejects file is untouched');
  t.notOk(existsSync(path.join(dir, 'term', 'other-rejects.jsonl')), 'no other rejects file made');
  const rerun = cli(a);
  t.equal(rerun.code, 3);
  t.match(rerun.stderr, /resuming from/);
  t.ok(outputOf(path.join(dir, 'term', 'out')) === reference.out, 'output identical to the uninterrupted run');
});

t.test('a stop between the batches of one read checkpoints the position after them: no record is handed on twice', async (t) => {
  // One read of the input holds hundreds of 5-record batches, and only the last carries the
  // read position; the step stops the run on its first batch.
  const base = path.join(dir, 'mid-read');
  const input = path.join(dir, 'mid-read.jsonl');
  const recs = readFileSync(path.join(SAMPLES, 'kjv.jsonl'), 'utf8').trim().split('\n').slice(0, 1500);
  writeFileSync(input, recs.join('\n') + '\n');
  const p = path.join(dir, 'mid-read.json');
  writeFileSync(p, JSON.stringify({ steps: [{ op: 'decode', batchRecords: 5 }, { op: path.join(ROOT, 'test', 'fixtures', 'stop-on-first-batch.ts') }] }));
  const a = ['run', p, input, '-o', path.join(base, 'out'), '--checkpoint', path.join(base, 'ckpt')];
  const stopped = cli(a, { env: { MIXSTREAM_TEST_STOP: '1' } });
  t.equal(stopped.code, 143, 'stopped by its SIGTERM');
  t.equal(JSON.parse(readFileSync(path.join(base, 'ckpt', 'checkpoint.json'), 'utf8')).finished, false);
  const rerun = cli(a);
  t.equal(rerun.code, 0);
  t.match(rerun.stderr, /resuming from/);
  t.same(lines(outputOf(path.join(base, 'out'))).map((r) => r.id), recs.map((l) => JSON.parse(l).id), 'every record once, in input order');
});

t.test('--checkpoint needs an output directory and input files', async (t) => {
  const r = cli(['run', pipeline, '--checkpoint', path.join(dir, 'c1')], { input: '{"id":"a","text":"x"}\n' });
  t.equal(r.code, 2, 'a usage error');
  t.match(r.stderr, /--checkpoint needs -o DIR/);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line: no summary of a run that read nothing');
  t.notOk(existsSync(path.join(dir, 'c1', 'checkpoint.json')));
  const piped = cli(['run', pipeline, '-', '-o', path.join(dir, 'c2-out'), '--checkpoint', path.join(dir, 'c2')], { input: '{"id":"a","text":"x"}\n' });
  t.equal(piped.code, 2, 'stdin as input: a usage error');
  t.match(piped.stderr, /--checkpoint needs input files \(stdin cannot be read again/);
  t.notOk(existsSync(path.join(dir, 'c2-out')), 'nothing written');
});

t.test('--checkpoint refuses compressed side outputs (they are cut back on resume)', async (t) => {
  const r = cli(['run', pipeline, inputs[0], '-o', path.join(dir, 'c3-out'), '--checkpoint', path.join(dir, 'c3'), '--errors', path.join(dir, 'c3-errors.jsonl.gz')]);
  t.equal(r.code, 2, 'a usage error');
  t.match(r.stderr, /--errors .*c3-errors\.jsonl\.gz: with --checkpoint, side outputs are plain NDJSON/);
  t.notOk(existsSync(path.join(dir, 'c3-out')), 'nothing written');
});

t.test('a stateful step that cannot checkpoint makes --checkpoint refuse to start', async (t) => {
  const p = path.join(dir, 'numbered.json');
  writeFileSync(p, JSON.stringify({ steps: [{ op: path.join(SAMPLES, '..', 'test', 'fixtures', 'running-count.ts') }] }));
  const r = cli(['run', p, inputs[0], '-o', path.join(dir, 'numbered-out'), '--checkpoint', path.join(dir, 'numbered-ckpt')]);
  t.equal(r.code, 2, 'a usage error');
  t.match(r.stderr, /running-count\.ts\) keeps state across records but cannot checkpoint it/);
  const plain = cli(['run', p, inputs[0], '-q']);
  const out = lines(plain.stdout);
  t.ok(out.length > 100, 'without --checkpoint it runs');
  t.same(out.slice(0, 3).map((r) => r.position), [1, 2, 3]);
});

t.test('the report of a run stopped by a signal gives the exit status the process ends with', async (t) => {
  const p = path.join(dir, 'signal.json');
  writeFileSync(p, JSON.stringify({ steps: [{ op: 'decode', batchRecords: 5 }, { op: path.join(ROOT, 'test', 'fixtures', 'stop-on-first-batch.ts') }] }));
  const report = path.join(dir, 'signal-report.json');
  const r = cli(['run', p, inputs[0], '-o', path.join(dir, 'signal-out.jsonl'), '--report', report, '-q'], { env: { MIXSTREAM_TEST_STOP: '1' } });
  t.equal(r.code, 143, 'SIGTERM');
  const written = JSON.parse(readFileSync(report, 'utf8'));
  t.equal(written.status, 'interrupted');
  t.equal(written.exitCode, 143, 'the report says 143 too (it said 130)');
});
