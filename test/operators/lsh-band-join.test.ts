import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { internals, type Rec } from '../../lib/operator.ts';
import { createStepContext } from '../../lib/context.ts';
import { validateOptions } from '../../lib/options.ts';
import { createMinHasher } from '../../lib/sketch/minhash.ts';
import { exactJaccard, shingleText } from '../../lib/text/shingle.ts';
import { readJsonl, runOperator } from '../../lib/testing.ts';
import { resumedRun } from '../checkpoint-helpers.ts';
import { cli } from '../helpers.ts';
import lsh from '../../operators/lsh-band-join.ts';

const samples = new URL('../../samples/', import.meta.url);
const kjv = readJsonl(new URL('kjv.jsonl', samples));
const fortunes = readJsonl(new URL('fortunes.jsonl', samples));
const hasher = createMinHasher({ perms: 128, seed: 1, scheme: 'oph' });

/** What normalize -> shingle -> minhash leave on a record (computed with the kernels). */
function sketch(recs: Rec[]): Rec[] {
  for (const r of recs) {
    const shingles = shingleText(r.text, { unit: 'word', n: 5 });
    internals(r).shingles = shingles;
    internals(r).signature = hasher.signature(shingles);
  }
  return recs;
}

function copy(r: Rec, id: string, extra: Record<string, unknown> = {}): Rec {
  return { ...r, id, ...extra };
}

/** Replaces every `every`-th word with a marker: a graded real-text edit. */
function edit(r: Rec, id: string, every: number): Rec {
  const words = r.text.split(' ');
  for (let i = every - 1; i < words.length; i += every) words[i] = `zq${i}x`;
  return { ...r, id, text: words.join(' ') };
}

function tmp(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'lsh-op-test-'));
}

const ids = (recs: Rec[]) => recs.map((r) => r.id);
const json = (recs: Rec[]) => recs.map((r) => JSON.stringify(r)).join('\n');

t.test('identical documents are always joined, the first copy kept', async (t) => {
  const base = kjv.slice(0, 60);
  const recs = sketch([...base.map((r) => copy(r, r.id)), ...base.map((r) => copy(r, `${r.id}#copy`))]);
  const run = await runOperator(lsh, {}, recs);
  t.same(ids(run.output), ids(base));
  t.equal(run.dropped.length, 60);
  t.ok(run.dropped.every((d) => d.reason === 'near_duplicate' && d.rec.id.endsWith('#copy')));
  t.equal(run.counters.counters.near_duplicates, 60);
  t.equal(run.counters.counters.clusters, 60);
  t.equal(run.counters.histograms.cluster_size.max, 2);
});

t.test('documents sharing no shingle are never joined', async (t) => {
  const recs = sketch([...kjv.slice(0, 150), ...fortunes.slice(0, 400)].map((r) => copy(r, r.id)));
  const run = await runOperator(lsh, { emit: 'removed', verify: 'none' }, recs);
  const byId = new Map(recs.map((r) => [r.id, r]));
  for (const r of run.output) {
    const j = exactJaccard(internals(r).shingles!, internals(byId.get(r.dup_of as string)!).shingles!);
    t.ok(j > 0, `${r.id} joined to ${r.dup_of} shares shingles (J = ${j.toFixed(3)})`);
  }
  // Every pair of distinct KJV chapters is far below the threshold: none is removed even unverified... unless LSH collides.
  t.ok(run.output.filter((r) => r.id.startsWith('kjv/')).length === 0, 'no KJV chapter is a candidate of another');
});

t.test('graded edits: exact verification removes exactly the pairs at or above the threshold', async (t) => {
  const base = kjv.slice(0, 80);
  const variants = base.flatMap((r, i) => [edit(r, `${r.id}~e`, [400, 150, 60, 20][i % 4])]);
  const recs = sketch([...base.map((r) => copy(r, r.id)), ...variants]);
  const run = await runOperator(lsh, { emit: 'all' }, recs);
  t.equal(run.output.length, recs.length);
  let tp = 0;
  for (const r of run.output.slice(80)) {
    const orig = recs.find((x) => x.id === r.id.replace('~e', ''))!;
    const j = exactJaccard(internals(r).shingles!, internals(orig).shingles!);
    if (j >= 0.85) {
      t.equal(r.dup_of, orig.id, `${r.id} (J = ${j.toFixed(3)}) is removed as a duplicate of ${orig.id}`);
      t.equal(r.cluster_id, orig.id);
      t.equal(r.dup_similarity, Math.round(j * 1e4) / 1e4);
      tp++;
    } else t.equal(r.dup_of, null, `${r.id} (J = ${j.toFixed(3)}) is kept`);
  }
  t.ok(tp >= 20 && tp < 80, `both sides of the threshold are exercised (${tp} above)`);
  for (const r of run.output.slice(0, 80)) {
    t.equal(r.dup_of, null);
    t.equal(r.dup_similarity, null);
    t.equal(r.cluster_id, r.id);
  }
});

t.test('emit modes and annotations', async (t) => {
  const base = fortunes.slice(0, 30).filter((r) => r.text.split(' ').length > 12);
  const mk = () => sketch([...base.map((r) => copy(r, r.id)), ...base.slice(0, 5).map((r) => copy(r, `${r.id}#2`))]);
  const removed = await runOperator(lsh, { emit: 'removed' }, mk());
  t.same(ids(removed.output), base.slice(0, 5).map((r) => `${r.id}#2`));
  t.same(removed.output.map((r) => [r.dup_of, r.dup_similarity, r.cluster_id]), base.slice(0, 5).map((r) => [r.id, 1, r.id]));
  t.same(removed.dropped.map((d) => [d.rec.id, d.reason]), base.map((r) => [r.id, 'not_duplicate']), 'emit removed accounts for the kept documents as dropped (not_duplicate)');
  const kept = await runOperator(lsh, { emit: 'kept' }, mk());
  t.same(ids(kept.output), ids(base));
  t.notOk('dup_of' in kept.output[0], 'emit kept adds no fields to kept documents');
  t.same(kept.dropped.map((d) => [d.reason, d.rec.dup_of]), base.slice(0, 5).map((r) => ['near_duplicate', r.id]), 'dropped copies say what they duplicate');
  t.ok(JSON.stringify(kept.output[0]).indexOf('signature') < 0, 'internals stay off the output');
  const all = await runOperator(lsh, { emit: 'all' }, mk());
  t.equal(all.output.length, base.length + 5);
});

t.test('ids with lone surrogates are named as they were, in RAM, spilled and from an against index', async (t) => {
  const dir = tmp();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const base = kjv.slice(0, 20);
  const mk = (tag: string) => sketch([...base.map((r, i) => copy(r, `${tag}-\udcff${i}\ud800`)), ...base.map((r, i) => copy(r, `${tag}-copy${i}`))]);
  for (const memoryMB of [1024, 0.01]) {
    const run = await runOperator(lsh, { emit: 'all', memoryMB }, mk('a'));
    t.same(run.output.slice(20).map((r) => [r.dup_of, r.cluster_id]), base.map((_, i) => [`a-\udcff${i}\ud800`, `a-\udcff${i}\ud800`]), `memoryMB ${memoryMB}`);
  }
  await runOperator(lsh, { writeIndex: 'lone.idx' }, mk('w').slice(0, 20), { baseDir: dir });
  const against = await runOperator(lsh, { against: ['lone.idx'], emit: 'removed' }, sketch(base.map((r, i) => copy(r, `b${i}`))), { baseDir: dir });
  t.same(against.output.map((r) => r.dup_of), base.map((_, i) => `w-\udcff${i}\ud800`));
});

t.test('keep priority: a later copy from the preferred source replaces an earlier one', async (t) => {
  const base = kjv.slice(0, 20);
  const recs = sketch([
    ...base.map((r) => copy(r, `web/${r.id}`, { source: 'web' })),
    ...base.slice(0, 10).map((r) => copy(r, `books/${r.id}`, { source: 'books' })),
    copy(fortunes[0], 'other/1', { source: 'misc' }),
  ]);
  const run = await runOperator(lsh, { keep: 'priority', priority: ['books', 'web'], emit: 'all', memoryMB: 0.001 }, recs);
  t.same(ids(run.output), ids(recs), 'output in arrival order');
  for (const r of run.output) {
    const n = Number(/_(\d+)$/.exec(r.id)?.[1] ?? 0);
    if (r.id.startsWith('web/') && base.slice(0, 10).some((b) => `web/${b.id}` === r.id)) {
      t.equal(r.dup_of, r.id.replace('web/', 'books/'), `${r.id} loses to the books copy`);
    } else t.equal(r.dup_of, null, `${r.id} kept (${n})`);
  }
  t.equal(typeof internals(run.output[0]).signature, 'object', 'internals survive the spool');
  t.throws(() => lsh.check!({ ...defaults(), keep: 'priority' } as any).forEach((e) => { throw new Error(e.path); }), /priority/);
});

t.test('keep priority: numbers match their decimal form; missing and unlisted values are counted and warned about', async (t) => {
  const base = kjv.slice(0, 4);
  const recs = sketch([
    copy(base[0], 'typo/0', { tier: 'tier-one' }),
    copy(base[0], 'num/0', { tier: 1 }),
    copy(base[1], 'none/1', {}),
    copy(base[1], 'two/1', { tier: '2' }),
    copy(base[2], 'one/2', { tier: '1' }),
  ]);
  const run = await runOperator(lsh, { keep: 'priority', priority: ['1', '2'], priorityField: 'tier', emit: 'all' }, recs);
  const dupOf = Object.fromEntries(run.output.map((r) => [r.id, r.dup_of]));
  t.same(dupOf, { 'typo/0': 'num/0', 'num/0': null, 'none/1': 'two/1', 'two/1': null, 'one/2': null }, 'the number 1 ranks as "1"; the unlisted copies lose');
  t.equal(run.counters.counters.priority_unlisted, 2);
  t.match(run.logs.join('\n'), /warning: 2 records have a tier value that is missing or not in priority \("tier-one", \(missing\)\); they rank after every listed value/);
  const listed = await runOperator(lsh, { keep: 'priority', priority: ['1', '2', 'tier-one'], priorityField: 'tier' }, recs.filter((r) => r.tier !== undefined));
  t.equal(listed.counters.counters.priority_unlisted, 0, 'reported at 0');
  t.notMatch(listed.logs.join('\n'), /warning/);
});

t.test('keep priority equals keep first over the input sorted by rank, over spool pages and transactions', async (t) => {
  const base = [...kjv, ...fortunes];
  const sources = ['c', 'a', 'b'];
  const mk = () =>
    sketch([...base.map((r) => copy(r, r.id)), ...base.filter((_, i) => i % 2 === 0).map((r, i) => edit(r, `${r.id}~`, [40, 20, 10][i % 3]))]).map((r, i) => ({ ...r, source: sources[i % 3] }));
  const recs = mk();
  t.ok(recs.length > 1500, `${recs.length} records: several pages of the spool`);
  const rank = (r: Rec) => ({ b: 0, a: 1 })[r.source as string] ?? 2;
  const sorted = mk().map((r, i) => ({ r, i })).sort((x, y) => rank(x.r) - rank(y.r) || x.i - y.i).map((x) => x.r);
  const reference = await runOperator(lsh, { keep: 'first', emit: 'all' }, sorted);
  const expected = new Map(reference.output.map((r) => [r.id, r.dup_of]));
  const run = await runOperator(lsh, { keep: 'priority', priority: ['b', 'a'], emit: 'all', memoryMB: 0.5 }, recs);
  t.same(ids(run.output), ids(recs), 'output in arrival order');
  t.ok(run.counters.counters.near_duplicates > 300, `${run.counters.counters.near_duplicates} duplicates`);
  t.same(run.output.map((r) => [r.id, r.dup_of]), recs.map((r) => [r.id, expected.get(r.id)]), 'the same documents removed, as duplicates of the same ones');
});

function defaults(): Record<string, unknown> {
  return Object.fromEntries(Object.entries(lsh.options).map(([k, s]) => [k, s.default]));
}

t.test('writeIndex and against: a second run joins against the first run\'s kept documents', async (t) => {
  const dir = tmp();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const first = kjv.slice(0, 40);
  const run1 = await runOperator(lsh, { writeIndex: 'a.idx' }, sketch([...first.map((r) => copy(r, `a/${r.id}`)), copy(first[0], 'a/again')]), { baseDir: dir });
  t.equal(run1.output.length, 40);
  const second = sketch([...kjv.slice(30, 60).map((r) => copy(r, `b/${r.id}`)), ...kjv.slice(30, 35).map((r) => copy(r, `b2/${r.id}`))]);
  const run2 = await runOperator(lsh, { against: ['a.idx'], emit: 'all', writeIndex: 'b.idx' }, second, { baseDir: dir });
  for (const r of run2.output) {
    const n = Number(r.id.split('_').pop());
    const chapterIndex = kjv.findIndex((k) => r.id.endsWith(k.id));
    if (chapterIndex < 40) t.equal(r.dup_of, `a/${kjv[chapterIndex].id}`, `${r.id} duplicates run 1`);
    else if (r.id.startsWith('b2/')) t.fail(`${r.id} ${n}`);
    else t.equal(r.dup_of, null, `${r.id} is new`);
  }
  // Chained: a third run against both indexes.
  const run3 = await runOperator(lsh, { against: ['a.idx', 'b.idx'], emit: 'removed' }, sketch(kjv.slice(35, 50).map((r) => copy(r, `c/${r.id}`))), { baseDir: dir });
  t.same(run3.output.map((r) => r.dup_of), kjv.slice(35, 50).map((r, i) => (i < 5 ? `a/${r.id}` : `b/${r.id}`)));
  await t.rejects(runOperator(lsh, { writeIndex: 'a.idx' }, sketch([copy(kjv[0], 'x')]), { baseDir: dir }), /already exists/);
  await t.rejects(runOperator(lsh, { against: ['missing.idx'] }, sketch([copy(kjv[0], 'x')]), { baseDir: dir }), /does not exist/);
  await t.rejects(runOperator(lsh, { writeIndex: 'sig.idx', verify: 'signature' }, sketch([copy(kjv[0], 'x')]), { baseDir: dir }).then(() =>
    runOperator(lsh, { against: ['sig.idx'] }, sketch([copy(kjv[0], 'y')]), { baseDir: dir })), /without shingle sets/);
});

t.test('writeIndex claims its directory as the step starts: a second run finds it in use; a lock of an ended run is taken over', async (t) => {
  const dir = tmp();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const recs = () => sketch(kjv.slice(0, 30).map((r) => copy(r, r.id)));
  // The parent of this test process stands for another run that is writing the index.
  mkdirSync(path.join(dir, 'busy.idx'));
  writeFileSync(path.join(dir, 'busy.idx', 'writer.lock'), String(process.ppid));
  await t.rejects(runOperator(lsh, { writeIndex: 'busy.idx' }, recs(), { baseDir: dir }), /busy\.idx already exists and holds an index another running process .*is writing/);
  await t.rejects(runOperator(lsh, { against: ['busy.idx'] }, recs(), { baseDir: dir }), new RegExp(`busy\\.idx is an LSH index that process ${process.ppid} is still writing`));
  // The lock is taken as the step starts, before any record: the directory is there at once.
  const held = await lsh.create(validateOptions({ writeIndex: 'early.idx' }, lsh.options, []) as never, createStepContext({ op: 'lsh-band-join', baseDir: dir, log: () => {} }));
  t.ok(existsSync(path.join(dir, 'early.idx', 'writer.lock')), 'claimed before any record');
  await held.close?.();
  // A lock whose process has ended (and no database): a run stopped early; the next one starts over.
  const ended = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
  mkdirSync(path.join(dir, 'stale.idx'));
  writeFileSync(path.join(dir, 'stale.idx', 'writer.lock'), ended);
  const run = await runOperator(lsh, { writeIndex: 'stale.idx' }, recs(), { baseDir: dir });
  t.match(run.logs.join('\n'), /stale\.idx held an unfinished index left by a stopped run/);
  t.same(readdirSync(path.join(dir, 'stale.idx')), ['index.sqlite'], 'a finished index has no lock');
  const again = await runOperator(lsh, { against: ['stale.idx'] }, recs(), { baseDir: dir });
  t.equal(again.output.length, 0, 'the finished index is used');
  // A run without records writes no index and leaves nothing behind; nor does one refused as it starts.
  await runOperator(lsh, { writeIndex: 'empty.idx' }, [], { baseDir: dir });
  t.notOk(existsSync(path.join(dir, 'empty.idx')), 'no directory for an index never written');
  await t.rejects(runOperator(lsh, { writeIndex: 'never.idx', against: ['missing.idx'] }, recs(), { baseDir: dir }), /missing\.idx does not exist/);
  t.notOk(existsSync(path.join(dir, 'never.idx')), 'no directory after a refused start');
});

t.test('writeIndex through the CLI: a run stopped before the end of its input leaves the index unfinished; an empty input writes an empty index', async (t) => {
  const dir = tmp();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pipeline = (options: object) => {
    const file = path.join(dir, `p-${Object.keys(options).join('-')}.json`);
    writeFileSync(file, JSON.stringify({ steps: [{ op: 'normalize' }, { op: 'shingle' }, { op: 'minhash' }, { op: 'lsh-band-join', ...options }] }));
    return file;
  };
  const write = pipeline({ writeIndex: 'a.idx' });
  const against = pipeline({ against: ['a.idx'] });
  const recs = kjv.slice(0, 40);
  const good = path.join(dir, 'a.jsonl');
  writeFileSync(good, json(recs) + '\n');
  // A bad line in the middle stops the run at --max-errors 0: the index holds only the records before it.
  const broken = path.join(dir, 'broken.jsonl');
  writeFileSync(broken, json(recs.slice(0, 20)) + '\n{not json\n' + json(recs.slice(20)) + '\n');
  const stopped = cli(['run', write, broken, '-o', path.join(dir, 'out1.jsonl'), '--max-errors', '0']);
  t.equal(stopped.code, 4, stopped.stderr);
  t.match(stopped.stderr, /writeIndex: .*a\.idx is left unfinished: the run was stopped before the end of its input/);
  const refused = cli(['run', against, good, '-o', path.join(dir, 'out2.jsonl')]);
  t.equal(refused.code, 2, 'against refuses the partial index');
  t.match(refused.stderr, /a\.idx is an unfinished LSH index: its writer was stopped before it finished/);
  // The same command on the whole input starts the index over and finishes it.
  const rerun = cli(['run', write, good, '-o', path.join(dir, 'out3.jsonl')]);
  t.equal(rerun.code, 0, rerun.stderr);
  t.match(rerun.stderr, /a\.idx held an unfinished index left by a stopped run; it is written again from the start/);
  const joined = cli(['run', against, good, '-o', path.join(dir, 'out4.jsonl'), '-q']);
  t.equal(joined.code, 0, joined.stderr);
  t.equal(joined.stdout + readFileSync(path.join(dir, 'out4.jsonl'), 'utf8'), '', 'every record is a duplicate of the finished index');
  // An empty shard of a chain: an empty index, and the next run against it keeps everything.
  const empty = path.join(dir, 'empty.jsonl');
  writeFileSync(empty, '');
  const writeEmpty = pipeline({ writeIndex: 'e.idx' });
  const none = cli(['run', writeEmpty, empty, '-o', path.join(dir, 'out5.jsonl')]);
  t.equal(none.code, 0, none.stderr);
  t.ok(existsSync(path.join(dir, 'e.idx', 'index.sqlite')), 'an empty index is written');
  const againstEmpty = cli(['run', pipeline({ against: ['e.idx'] }), good, '-o', path.join(dir, 'out6.jsonl'), '-q']);
  t.equal(againstEmpty.code, 0, againstEmpty.stderr);
  t.equal(readFileSync(path.join(dir, 'out6.jsonl'), 'utf8').trim().split('\n').length, recs.length, 'nothing is a duplicate of an empty index');
});

t.test('writeIndex of a --checkpoint run stopped after a checkpoint: another run may not start it over; the resume finishes it', async (t) => {
  const dir = tmp();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pipeline = path.join(dir, 'p.json');
  writeFileSync(pipeline, JSON.stringify({ steps: [{ op: 'decode', batchRecords: 10 }, { op: 'normalize' }, { op: 'shingle' }, { op: 'minhash' }, { op: 'lsh-band-join', writeIndex: 'c.idx' }] }));
  const recs = kjv.slice(0, 80);
  const input = path.join(dir, 'in.jsonl');
  writeFileSync(input, json(recs.slice(0, 40)) + '\n{not json\n' + json(recs.slice(40)) + '\n');
  const resumable = ['run', pipeline, input, '-o', path.join(dir, 'out') + '/', '--checkpoint', path.join(dir, 'ck'), '--checkpoint-interval', '0'];
  const stopped = cli([...resumable, '--max-errors', '0']);
  t.equal(stopped.code, 4, stopped.stderr);
  const other = cli(['run', pipeline, path.join(dir, 'in.jsonl'), '-o', path.join(dir, 'other.jsonl'), '--max-errors', '5']);
  t.equal(other.code, 2, 'the index waits for its resume');
  t.match(other.stderr, /writeIndex: .*c\.idx holds the unfinished index of a --checkpoint run \(its checkpoint: .*ck\): run that command again to resume and finish it/);
  const resumed = cli([...resumable, '--max-errors', '5']);
  t.equal(resumed.code, 3, resumed.stderr);
  t.same(readdirSync(path.join(dir, 'c.idx')), ['index.sqlite'], 'finished: no lock, no checkpoint reference');
  const against = path.join(dir, 'a.json');
  writeFileSync(against, JSON.stringify({ steps: [{ op: 'normalize' }, { op: 'shingle' }, { op: 'minhash' }, { op: 'lsh-band-join', against: ['c.idx'] }] }));
  const all = path.join(dir, 'all.jsonl');
  writeFileSync(all, json(recs) + '\n');
  const joined = cli(['run', against, all, '-o', path.join(dir, 'j.jsonl'), '-q']);
  t.equal(joined.code, 0, joined.stderr);
  t.equal(readFileSync(path.join(dir, 'j.jsonl'), 'utf8'), '', 'the resumed index holds every record');
});

t.test('a spilled run gives the same output as an all-in-RAM run', async (t) => {
  const base = [...kjv, ...fortunes.slice(0, 600)];
  const mk = () => sketch([...base.map((r) => copy(r, r.id)), ...base.filter((_, i) => i % 3 === 0).map((r, i) => edit(r, `${r.id}~`, [40, 20, 10][i % 3]))]);
  const ram = await runOperator(lsh, { emit: 'all' }, mk());
  const spill = await runOperator(lsh, { emit: 'all', memoryMB: 0.05 }, mk());
  t.notOk(ram.counters.counters.index_spills, 'all-in-RAM run did not spill');
  t.ok(spill.counters.counters.index_spills > 5, `tiny budget spilled ${spill.counters.counters.index_spills} times`);
  t.ok(ram.counters.counters.near_duplicates > 50);
  t.equal(json(spill.output), json(ram.output));
  t.same(spill.counters.counters.near_duplicates, ram.counters.counters.near_duplicates);
});

t.test('Bloom probes made a batch ahead in a worker thread give the decisions of probes in the join', async (t) => {
  const base = [...kjv, ...fortunes.slice(0, 600)];
  const mk = () => sketch([...base.map((r) => copy(r, r.id)), ...base.filter((_, i) => i % 3 === 0).map((r, i) => edit(r, `${r.id}~`, [40, 20, 10][i % 3]))]);
  const ahead = await runOperator(lsh, { emit: 'all', memoryMB: 0.5 }, mk(), { workers: 2, batchSize: 16 });
  const inline = await runOperator(lsh, { emit: 'all', memoryMB: 0.5 }, mk(), { workers: 0, batchSize: 16 });
  const c = ahead.counters.counters;
  t.ok(c.index_probed_ahead > mk().length / 2, `${c.index_probed_ahead} of ${mk().length} documents joined with probes from the worker`);
  t.notOk(inline.counters.counters.index_probed_ahead, 'workers 0 probes in the join');
  t.ok(c.index_block_hits > 0 && c.near_duplicates > 50);
  t.equal(json(ahead.output), json(inline.output));
  for (const k of ['index_block_reads', 'index_block_hits', 'index_doc_reads', 'candidates', 'rejected_candidates', 'index_spills', 'index_merges']) t.equal(c[k], inline.counters.counters[k], k);
});

t.test('checkpoint and restore: a resumed step gives the uninterrupted output, also after a crash that kept spilling', async (t) => {
  const base = [...kjv, ...fortunes.slice(0, 600)];
  const recs = sketch([...base.map((r) => copy(r, r.id)), ...base.filter((_, i) => i % 3 === 0).map((r, i) => edit(r, `${r.id}~`, [40, 20, 10][i % 3]))]).map((r, i) => ({ ...r, src: i % 2 ? 'kjv' : 'other' }));
  const n = recs.length;
  for (const options of [{ emit: 'all' }, { emit: 'all', memoryMB: 0.05 }, { memoryMB: 0.05, verify: 'signature' }, { keep: 'priority', priority: ['kjv'], priorityField: 'src', emit: 'all', memoryMB: 0.01 }]) {
    const whole = await resumedRun(lsh, options, recs);
    t.ok(whole.counters.counters.near_duplicates > 50, `${JSON.stringify(options)}: duplicates found`);
    for (const [cut, lost] of [[0, 0], [1, 200], [Math.floor(n / 3), 400], [n - 5, 5], [n, 0]]) {
      const resumed = await resumedRun(lsh, options, recs, { cut, lost, checkpointsBefore: 2, releaseCrashed: true });
      t.equal(resumed.output, whole.output, `${JSON.stringify(options)}, checkpoint after ${cut} records, ${lost} processed and lost: same output`);
      t.same(resumed.dropped, whole.dropped);
      t.same(resumed.counters.histograms.cluster_size?.count, whole.counters.histograms.cluster_size?.count, 'cluster sizes survive the checkpoint');
    }
  }
});

t.test('a cluster of more than 255 copies is counted whole, also across a checkpoint', async (t) => {
  const original = kjv[5];
  const recs = sketch([copy(original, original.id), ...Array.from({ length: 300 }, (_, i) => copy(original, `${original.id}#${i}`)), ...fortunes.slice(0, 50).map((r) => copy(r, r.id))]);
  const run = await runOperator(lsh, {}, recs);
  t.equal(run.counters.counters.near_duplicates, 300);
  t.equal(run.counters.histograms.cluster_size.max, 301);
  const whole = await resumedRun(lsh, {}, recs);
  const resumed = await resumedRun(lsh, {}, recs, { cut: 280, lost: 10, checkpointsBefore: 1, releaseCrashed: true });
  t.equal(whole.counters.histograms.cluster_size.max, 301);
  t.equal(resumed.counters.histograms.cluster_size.max, 301, 'counts past 255 survive the checkpoint');
  t.equal(resumed.counters.histograms.cluster_size.count, whole.counters.histograms.cluster_size.count);
});

t.test('checkpoint with writeIndex: the resumed run completes the same index', async (t) => {
  const dir = tmp();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const first = () => sketch([...kjv.slice(0, 60).map((r) => copy(r, `a/${r.id}`)), ...fortunes.slice(0, 300)]);
  await runOperator(lsh, { writeIndex: 'whole.idx', memoryMB: 0.02 }, first(), { baseDir: dir });
  await resumedRun(lsh, { writeIndex: path.join(dir, 'resumed.idx'), memoryMB: 0.02 }, first(), { cut: 150, lost: 60, releaseCrashed: true });
  const probe = () => sketch([...kjv.slice(30, 90).map((r) => copy(r, `b/${r.id}`)), ...fortunes.slice(250, 350).map((r) => copy(r, `b/${r.id}`))]);
  const viaWhole = await runOperator(lsh, { against: ['whole.idx'], emit: 'all' }, probe(), { baseDir: dir });
  const viaResumed = await runOperator(lsh, { against: ['resumed.idx'], emit: 'all' }, probe(), { baseDir: dir });
  t.ok(viaWhole.output.filter((r) => r.dup_of).length >= 80, 'the index finds the overlap');
  t.equal(json(viaResumed.output), json(viaWhole.output));
});

t.test('bad records and options are reported clearly', async (t) => {
  const run = await runOperator(lsh, {}, [{ id: 'nosig', text: 'hello' }]);
  t.equal(run.errors[0].reason, 'missing_signature');
  t.match(run.errors[0].message, /nosig.*minhash/);
  const sig = sketch([copy(kjv[0], 'a')]);
  delete internals(sig[0]).shingles;
  const run2 = await runOperator(lsh, {}, sig);
  t.equal(run2.errors[0].reason, 'missing_shingles');
  await t.rejects(runOperator(lsh, { bands: 20, rows: 8 }, sketch([copy(kjv[0], 'a')])), /bands x rows \(20 x 8\)/);
  await t.rejects(runOperator(lsh, { verify: 'maybe' }, []), /verify/);
});

t.test('explain shows the band choice and the candidate curve', async (t) => {
  const text = lsh.explain!({ ...defaults() } as any);
  t.match(text, /16 bands x 8 rows/);
  t.match(text, /s = 0\.85: P\(candidate\) = 0\.99/);
  t.match(text, /s = 0\.50: P\(candidate\) = 0\.0/);
  t.match(text, /the "balanced" 8 x 16 for this threshold would catch 4\d%/);
  t.match(lsh.explain!({ ...defaults(), bands: 32, rows: 4 } as any), /32 bands x 4 rows/);
});
