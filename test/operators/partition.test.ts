import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import partition, { fieldValue, OWNER_FILE, segmentFor, type Manifest } from '../../operators/partition.ts';
import { createStepContext } from '../../lib/context.ts';
import { validateOptions } from '../../lib/options.ts';
import { recordTokens } from '../../operators/mix.ts';
import { readJsonl, runOperator } from '../../lib/testing.ts';
import type { Rec, Step } from '../../lib/operator.ts';
import { decompress } from 'zstd-napi';
import { SAMPLES, tmpdir } from '../helpers.ts';

const docs: Rec[] = [...readJsonl(path.join(SAMPLES, 'kjv.jsonl')), ...readJsonl(path.join(SAMPLES, 'handbook.jsonl')), ...readJsonl(path.join(SAMPLES, 'fortunes.jsonl')), ...readJsonl(path.join(SAMPLES, 'gcide.jsonl'))];
// A nested field and a missing one, to partition by.
docs.forEach((d, i) => {
  if (i % 7 !== 0) d.meta = { bucket: i % 3 };
});

/** Decompresses one shard in process. */
function unzst(file: string): Rec[] {
  return decompress(readFileSync(file)).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** Decompresses shards with the zstd command-line tool and parses their lines. */
function zstdcat(...files: string[]): Rec[] {
  return execFileSync('zstd', ['-dc', ...files], { maxBuffer: 1 << 28 }).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

function allFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => statSync(path.join(dir, f)).isFile());
}

t.test('partition by field into equal-token units; manifest matches the files; zstd CLI reads the shards', async (t) => {
  const dir = path.join(tmpdir(), 'out');
  const U = 20_000;
  const r = await runOperator(partition, { dir, by: ['source'], unitTokens: U, maxShardBytes: 16_384, frameBytes: 4096 }, docs);
  t.equal(r.output.length, 0, 'a terminal step passes nothing on');
  const m: Manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  t.same(m.partitions.map((p) => p.path), ['source=debian-handbook', 'source=fortunes', 'source=gcide', 'source=kjv']);
  t.equal(m.totals.docs, docs.length);
  const files = allFiles(dir).filter((f) => f.endsWith('.jsonl.zst'));
  t.equal(files.length, m.totals.shards, 'every shard is listed');
  t.notOk(allFiles(dir).some((f) => f.endsWith('.tmp')), 'no temporary files remain');
  let seen = 0;
  for (const p of m.partitions) {
    const source = p.key.source;
    const expected = docs.filter((d) => d.source === source);
    t.equal(p.docs, expected.length, `${source}: documents`);
    const tokens = expected.reduce((a, d) => a + recordTokens(d, 'token_count'), 0);
    t.equal(p.tokens, tokens, `${source}: tokens`);
    const read: Rec[] = [];
    for (const u of p.units) {
      let unitDocs = 0;
      let unitTokens = 0;
      let biggest = 0;
      for (const f of u.shards) {
        const info = p.shards.find((s) => s.file === f)!;
        const recs = unzst(path.join(dir, f));
        t.equal(recs.length, info.docs);
        t.equal(statSync(path.join(dir, f)).size, info.bytes);
        t.ok(info.bytes <= 16_384 || info.docs === 1, `shard ${f} within the size limit (${info.bytes})`);
        t.match(f, new RegExp(`^source=${source}/unit-${String(u.index).padStart(5, '0')}-\\d{5}\\.jsonl\\.zst$`));
        unitDocs += recs.length;
        for (const x of recs) {
          unitTokens += recordTokens(x, 'token_count');
          biggest = Math.max(biggest, recordTokens(x, 'token_count'));
        }
        read.push(...recs);
      }
      t.equal(unitDocs, u.docs);
      t.equal(unitTokens, u.tokens);
      if (!u.partial) {
        // Equal within one document: |unit - U| is at most half of the largest document next to the boundary.
        const maxDoc = Math.max(...expected.map((d) => recordTokens(d, 'token_count')));
        t.ok(Math.abs(u.tokens - U) <= maxDoc / 2 + 1, `${source} unit ${u.index}: ${u.tokens} tokens (largest document ${biggest})`);
      } else t.equal(u.index, p.units.length - 1, 'only the last unit is partial');
    }
    t.same(read.map((x) => x.id), expected.map((d) => d.id), `${source}: every record, in order`);
    t.same(zstdcat(...p.shards.map((s) => path.join(dir, s.file))).map((x) => x.id), expected.map((d) => d.id), `${source}: the zstd CLI reads the shards`);
    t.same(read[0], JSON.parse(JSON.stringify(expected[0])), 'records are written unchanged');
    seen += read.length;
  }
  t.equal(seen, docs.length);
  const kjv = m.partitions.find((p) => p.key.source === 'kjv')!;
  t.ok(kjv.units.length >= 7, `kjv has ${kjv.units.length} units`);
  t.equal(r.counters.counters.shards, m.totals.shards);
  t.equal(r.counters.counters.docs_written, docs.length, 'every record in is counted as written');
  t.equal(r.counters.counters.docs_written, m.totals.docs);
});

t.test('nested fields, missing values, several fields; LRU keeps few shards open', async (t) => {
  const dir = path.join(tmpdir(), 'out');
  const r = await runOperator(partition, { dir, by: ['source', 'meta.bucket'], maxOpenPartitions: 2, frameBytes: 2048 }, docs);
  const m: Manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  t.equal(m.partitions.length, 16, '4 sources x (3 buckets + NA)');
  t.ok(m.partitions.some((p) => p.path === 'source=kjv/meta.bucket=NA'));
  t.equal(m.partitions.find((p) => p.path === 'source=gcide/meta.bucket=NA')!.docs, docs.filter((d) => d.source === 'gcide' && !d.meta).length);
  t.ok(r.counters.counters.partition_evictions > 10, `evictions ${r.counters.counters.partition_evictions}`);
  t.equal(r.counters.counters['missing_meta.bucket'], docs.filter((d) => !d.meta).length);
  for (const p of m.partitions) {
    const recs = zstdcat(...p.shards.map((s) => path.join(dir, s.file)));
    t.same(recs.map((x) => x.id), docs.filter((d) => p.path === `source=${d.source}/meta.bucket=${(d.meta as { bucket: number } | undefined)?.bucket ?? 'NA'}`).map((d) => d.id), p.path);
    t.equal(p.units.length, 1, 'no unitTokens: one unit');
    t.equal(p.shards.length, 1, 'evictions reopen the shard instead of starting small ones');
    t.match(p.shards[0].file, /shard-\d{5}\.jsonl\.zst$/);
  }
  t.equal(fieldValue({ a: { b: { c: 3 } } }, 'a.b.c'), 3);
  t.equal(fieldValue({ 'a.b': 1 }, 'a.b'), 1, 'a literal dotted key wins');
  t.equal(segmentFor('a/b'), 'a%2Fb');
  t.equal(segmentFor('..'), '%2E.');
  t.ok(segmentFor('x'.repeat(300)).length < 100);
});

t.test('upsampleTo repeats small partitions up to that many complete units', async (t) => {
  const dir = path.join(tmpdir(), 'out');
  const U = 30_000;
  const r = await runOperator(partition, { dir, by: ['source'], unitTokens: U, upsampleTo: 4 }, docs);
  const m: Manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  for (const p of m.partitions) {
    const complete = p.units.filter((u) => !u.partial);
    t.ok(complete.length >= 4, `${p.path}: ${complete.length} complete units`);
    const firstIds = docs.filter((d) => d.source === p.key.source).map((d) => d.id);
    if (p.repeatedDocs > 0) {
      t.equal(p.units.length, 4, `${p.path}: upsampled to exactly 4 units`);
      t.notOk(p.units.some((u) => u.partial));
      const ids = zstdcat(...p.shards.map((s) => path.join(dir, s.file))).map((x) => x.id);
      t.same(ids.slice(0, firstIds.length), firstIds, 'the original documents first, then copies in the same order');
      t.same(ids.slice(firstIds.length, firstIds.length + 5), firstIds.slice(0, 5));
      t.equal(ids.length, p.docs);
      t.equal(p.repeatedDocs, p.docs - firstIds.length);
    } else t.equal(p.docs, firstIds.length);
  }
  const byPath = Object.fromEntries(m.partitions.map((p) => [p.key.source, p]));
  t.equal(byPath.kjv.repeatedDocs, 0, 'kjv (158k tokens) has 5 units of its own');
  t.ok(byPath.fortunes.repeatedDocs > 0, 'fortunes (88k tokens) is repeated');
  t.ok(r.counters.counters.upsampled_partitions >= 1);
  t.ok(r.logs.some((l) => /upsampled source=/.test(l)));
});

t.test('refuses to overwrite; option errors; no output left behind by a failed run', async (t) => {
  const dir = path.join(tmpdir(), 'out');
  await runOperator(partition, { dir }, docs.slice(0, 10));
  await t.rejects(runOperator(partition, { dir }, docs.slice(0, 10)), /already holds a partitioned dataset/);
  await runOperator(partition, { dir, overwrite: true }, docs.slice(0, 3));
  t.equal(JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')).totals.docs, 3);
  await t.rejects(runOperator(partition, { dir: path.join(dir, 'x'), upsampleTo: 3 }, []), /upsampleTo: upsampling counts base units: set unitTokens too/);
  t.notOk(existsSync(path.join(dir, 'x')));
});

/** Every file under `dir` (path -> bytes), the manifest without its creation time. */
function snapshotDir(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of allFiles(dir).sort()) {
    if (f === 'manifest.json') {
      const m = JSON.parse(readFileSync(path.join(dir, f), 'utf8'));
      delete m.created;
      out[f] = JSON.stringify(m);
    } else out[f] = readFileSync(path.join(dir, f)).toString('base64');
  }
  return out;
}

/**
 * Partitions `docs` like a `--checkpoint` run killed once: the first `cut` records, a checkpoint,
 * `lost` more records (and the flush, when they reach the end) that the crash loses, then a new
 * step on the same scratch directory restored from the checkpoint does the rest.
 */
async function resumedPartition(options: Record<string, unknown>, cut: number | undefined, lost: number) {
  const opts = validateOptions(options, partition.options, []);
  const work = tmpdir();
  const newStep = async () => {
    const ctx = createStepContext({ op: 'partition', tmpDir: work, log: () => {} });
    return { step: await partition.create(opts as never, ctx), ctx };
  };
  const feed = async (step: Step, from: number, to: number) => {
    for (let i = from; i < to; i += 100) await step.process(docs.slice(i, Math.min(i + 100, to)));
  };
  const first = await newStep();
  const state = tmpdir();
  // The runner keeps a step's counters with the checkpoint and restores them.
  let atCheckpoint: Record<string, number> = {};
  if (cut !== undefined) {
    await feed(first.step, 0, cut);
    await first.step.checkpoint!(state);
    atCheckpoint = { ...first.ctx.counters.counters };
  }
  const end = Math.min(docs.length, (cut ?? 0) + lost);
  await feed(first.step, cut ?? 0, end);
  // Stopped (SIGTERM) after the flush, before the run's final checkpoint: the manifest is written and the mark removed.
  if (end === docs.length) await first.step.flush!();
  await first.step.close!(); // otherwise a crash: nothing more is written; close only releases file handles
  const second = await newStep();
  if (cut !== undefined) await second.step.restore!(state);
  await feed(second.step, cut ?? 0, docs.length);
  await second.step.flush!();
  await second.step.close!();
  const counters = { ...atCheckpoint };
  for (const [k, n] of Object.entries(second.ctx.counters.counters)) counters[k] = (counters[k] ?? 0) + n;
  return counters;
}

t.test('checkpoint, crash, fresh step restored on the same directory: files and manifest equal an uninterrupted run', async (t) => {
  t.equal(partition.stateful, true);
  const cuts: [number | undefined, number][] = [
    [undefined, 500], // killed before its first checkpoint: the rerun starts over in the same directory
    [300, 800],
    [1700, 1200],
    [docs.length - 100, 50],
    [docs.length, 0], // stopped after the flush (units closed, upsampling, manifest written)
  ];
  const variants = [
    { options: { by: ['source'], unitTokens: 20_000, maxShardBytes: 16_384, frameBytes: 4096 }, cuts },
    // Evictions: the order of the open set is part of the state.
    { options: { by: ['source', 'meta.bucket'], maxOpenPartitions: 2, frameBytes: 2048, level: 1 }, cuts: cuts.slice(1, 3) },
  ];
  for (const { options: v, cuts } of variants) {
    const refDir = path.join(tmpdir(), 'out');
    const ref = await runOperator(partition, { ...v, dir: refDir }, docs);
    const want = snapshotDir(refDir);
    t.ok(Object.keys(want).length > 10, `${Object.keys(want).length} files`);
    for (const [cut, lost] of cuts) {
      const dir = path.join(tmpdir(), 'out');
      const counters = await resumedPartition({ ...v, dir }, cut, lost);
      t.same(snapshotDir(dir), want, `${JSON.stringify(v)} cut ${cut} lost ${lost}`);
      t.same(counters, ref.counters.counters, 'counters (shards, partitions, evictions, tokens) counted once over both steps');
    }
  }
});

t.test('with upsampleTo the step has no checkpoint, so --checkpoint refuses the pipeline instead of resuming it wrongly', async (t) => {
  const opts = validateOptions({ dir: path.join(tmpdir(), 'out'), by: ['source'], unitTokens: 20_000, upsampleTo: 4 }, partition.options, []);
  const step = await partition.create(opts as never, createStepContext({ op: 'partition', tmpDir: tmpdir(), log: () => {} }));
  t.equal(step.checkpoint, undefined);
  t.equal(step.restore, undefined);
  await step.close!();
});

t.test('an owner mark lets the same run take its directory back; another run is refused', async (t) => {
  const dir = path.join(tmpdir(), 'out');
  const opts = validateOptions({ dir, by: ['source'] }, partition.options, []);
  const work = tmpdir();
  const step = await partition.create(opts as never, createStepContext({ op: 'partition', tmpDir: work, log: () => {} }));
  await step.process(docs.slice(0, 50));
  await step.close!();
  t.ok(existsSync(path.join(dir, OWNER_FILE)));
  const other = await partition.create(opts as never, createStepContext({ op: 'partition', tmpDir: tmpdir(), log: () => {} }));
  await t.rejects(async () => other.process(docs.slice(0, 1)), /exists and is not empty/, 'refused at its first batch (a resumed run would restore it first)');
  await other.close!();
  const again = await partition.create(opts as never, createStepContext({ op: 'partition', tmpDir: work, log: () => {} }));
  await again.process(docs.slice(0, 10));
  await again.flush!();
  await again.close!();
  t.equal(JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')).totals.docs, 10, 'started over');
  t.notOk(existsSync(path.join(dir, OWNER_FILE)), 'a finished run removes its mark');
});
