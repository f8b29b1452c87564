import t from 'tap';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { compress as zstdCompress } from 'zstd-napi';
import mix, { recordTokens } from '../../operators/mix.ts';
import { createStepContext, type ErrorEntry } from '../../lib/context.ts';
import { validateOptions, type OptionError } from '../../lib/options.ts';
import { readJsonl } from '../../lib/testing.ts';
import type { Rec } from '../../lib/operator.ts';
import { bibleAndQuotesMix, SAMPLES, tmpdir } from '../helpers.ts';

/** Drives a source step: validates options, pulls every batch from generate(). */
async function runMix(options: Record<string, unknown>, baseDir = SAMPLES) {
  const errs: OptionError[] = [];
  const opts = validateOptions(options, mix.options, errs);
  errs.push(...(mix.check?.(opts as never) ?? []));
  if (errs.length) throw new Error(errs.map((e) => `${e.path}: ${e.message}`).join('\n'));
  const logs: string[] = [];
  const errors: ErrorEntry[] = [];
  const ctx = createStepContext({ op: 'mix', baseDir, log: (m) => logs.push(m), onError: (e) => errors.push(e) });
  const step = await mix.create(opts as never, ctx);
  const output: Rec[] = [];
  try {
    for await (const b of step.generate!()) output.push(...b);
  } finally {
    await step.close?.();
  }
  return { output, logs, errors, counters: ctx.counters };
}

const sizeOf = (file: string) => readJsonl(path.join(SAMPLES, file)).reduce((a, r) => a + recordTokens(r, 'token_count'), 0);
const SIZES = { kjv: sizeOf('kjv.jsonl'), gcide: sizeOf('gcide.jsonl'), fortunes: sizeOf('fortunes.jsonl') };

/** Largest deviation of any source's token share from its target over every prefix past `burnIn` tokens. */
function prefixError(output: Rec[], targets: Record<string, number>, burnIn: number) {
  const emitted: Record<string, number> = {};
  let total = 0;
  let worst = 0;
  for (const r of output) {
    const t = recordTokens(r, 'token_count');
    emitted[r.mix_source as string] = (emitted[r.mix_source as string] ?? 0) + t;
    total += t;
    if (total < burnIn) continue;
    for (const [name, share] of Object.entries(targets)) worst = Math.max(worst, Math.abs((emitted[name] ?? 0) / total - share));
  }
  return { worst, total, emitted };
}

t.test('shares within 1% of the target at every prefix, on sources of different sizes', async (t) => {
  const targets = { kjv: 0.4, gcide: 0.2, fortunes: 0.4 };
  const r = await runMix({
    sources: [
      { name: 'kjv', paths: ['kjv.jsonl'], share: 0.4 },
      { name: 'gcide', paths: ['gcide.jsonl'], share: 0.2 },
      { name: 'fortunes', paths: ['fortunes.jsonl'], share: 0.4 },
    ],
  });
  // Sized from the largest source (KJV) at its share: KJV is used exactly once.
  const kjvDocs = r.output.filter((x) => x.mix_source === 'kjv');
  t.equal(kjvDocs.length, 150);
  t.equal(new Set(kjvDocs.map((x) => x.id)).size, 150);
  t.notOk(kjvDocs.some((x) => 'mix_repeat' in x));
  const maxDoc = Math.max(...r.output.map((x) => recordTokens(x, 'token_count')));
  const { worst, total, emitted } = prefixError(r.output, targets, 100 * maxDoc);
  t.ok(Math.abs(total - SIZES.kjv / 0.4) < maxDoc * 3, `total ${total} vs ${SIZES.kjv / 0.4}`);
  t.ok(worst < 0.01, `worst prefix share error ${worst} after ${100 * maxDoc} tokens`);
  for (const [name, share] of Object.entries(targets)) t.ok(Math.abs(emitted[name] / total - share) < 0.002, `${name} final share ${emitted[name] / total}`);
  // Fortunes (88k tokens for a 158k target) is repeated, gcide (111k for 79k) is cut.
  t.ok(r.counters.counters.repeated_docs_fortunes > 0);
  t.equal(r.counters.counters.repeated_docs_gcide, 0);
  t.equal(r.counters.counters.passes_kjv, 1);
  t.ok(r.logs.some((l) => /source fortunes: .* repeated copies over 2 pass\(es\)/.test(l)), r.logs.join('\n'));
});

t.test('upsampling: every document is used floor(f) or ceil(f) times, copies labelled', async (t) => {
  const totalTokens = 3 * (SIZES.gcide + SIZES.fortunes);
  const r = await runMix({
    sources: [
      { name: 'gcide', paths: ['gcide.jsonl'], share: 0.7 },
      { name: 'fortunes', paths: ['fortunes.jsonl'], share: 0.3 },
    ],
    totalTokens,
    seed: 5,
  });
  const f = { gcide: (0.7 * totalTokens) / SIZES.gcide, fortunes: (0.3 * totalTokens) / SIZES.fortunes };
  for (const [name, factor] of Object.entries(f)) {
    const uses = new Map<string, number>();
    for (const x of r.output) if (x.mix_source === name) uses.set(x.id, (uses.get(x.id) ?? 0) + 1);
    const counts = [...uses.values()];
    t.ok(counts.every((c) => c === Math.floor(factor) || c === Math.ceil(factor)), `${name}: uses ${[...new Set(counts)]} for factor ${factor}`);
    const repeats = r.output.filter((x) => x.mix_source === name && x.mix_repeat !== undefined).length;
    t.equal(repeats, counts.reduce((a, c) => a + c - 1, 0), `${name}: mix_repeat on every copy but the first`);
    t.equal(r.counters.counters[`repeated_docs_${name}`], repeats);
    t.equal(r.counters.counters[`passes_${name}`], Math.ceil(factor));
  }
  const { worst, total } = prefixError(r.output, { gcide: 0.7, fortunes: 0.3 }, 20_000);
  const maxDoc = Math.max(...r.output.map((x) => recordTokens(x, 'token_count')));
  t.ok(Math.abs(total - totalTokens) <= maxDoc, `total ${total} vs ${totalTokens}: off by less than one document`);
  t.ok(worst < 0.01, `worst prefix error ${worst}`);
  // Repeats are whole passes: the second copy of a document comes after every first copy of its source.
  let firstPassEnd = -1;
  r.output.forEach((x, i) => {
    if (x.mix_source === 'gcide' && x.mix_repeat === undefined) firstPassEnd = i;
  });
  const firstRepeat = r.output.findIndex((x) => x.mix_source === 'gcide' && x.mix_repeat === 1);
  t.ok(firstRepeat > firstPassEnd);
});

t.test('weights multiply source sizes; downsampling takes an even sample; seeds are reproducible', async (t) => {
  const r = await runMix({
    sources: [
      { name: 'kjv', paths: ['kjv.jsonl'], weight: 0.5 },
      { name: 'gcide', paths: ['gcide.jsonl'], weight: 2 },
    ],
  });
  const gc = r.output.filter((x) => x.mix_source === 'gcide');
  t.equal(gc.length, 2 * 1242, 'weight 2: every entry twice');
  const kj = r.output.filter((x) => x.mix_source === 'kjv');
  t.equal(new Set(kj.map((x) => x.id)).size, kj.length, 'weight 0.5: no repeats');
  const kjTokens = kj.reduce((a, x) => a + recordTokens(x, 'token_count'), 0);
  t.ok(Math.abs(kjTokens - SIZES.kjv / 2) / (SIZES.kjv / 2) < 0.02, `kjv tokens ${kjTokens} vs ${SIZES.kjv / 2}`);
  // The selected chapters are spread over the whole book, not a prefix.
  const idx = kj.map((x) => readJsonl(path.join(SAMPLES, 'kjv.jsonl')).findIndex((y) => y.id === x.id));
  t.ok(Math.max(...idx) > 140 && Math.min(...idx) < 5, 'sample spans the source');

  const again = await runMix({ sources: [{ name: 'kjv', paths: ['kjv.jsonl'], weight: 0.5 }, { name: 'gcide', paths: ['gcide.jsonl'], weight: 2 }] });
  t.same(again.output.map((x) => x.id), r.output.map((x) => x.id), 'same seed, same output');
  const other = await runMix({ sources: [{ name: 'kjv', paths: ['kjv.jsonl'], weight: 0.5 }, { name: 'gcide', paths: ['gcide.jsonl'], weight: 2 }], seed: 99 });
  t.not(other.output.filter((x) => x.mix_source === 'kjv').map((x) => x.id).join(), kj.map((x) => x.id).join(), 'another seed, another sample');

  const capped = await runMix({ sources: [{ name: 'kjv', paths: ['kjv.jsonl'], share: 0.5 }, { name: 'gcide', paths: ['gcide.jsonl'], share: 0.5 }], upsample: false });
  const ids = capped.output.map((x) => `${x.mix_source}/${x.id}`);
  t.equal(new Set(ids).size, ids.length, 'upsample false: nothing repeats');
  const maxDoc = Math.max(...capped.output.map((x) => recordTokens(x, 'token_count')));
  const { worst } = prefixError(capped.output, { kjv: 0.5, gcide: 0.5 }, 100 * maxDoc);
  t.ok(worst < 0.01, `worst ${worst}`);
});

t.test('globs, compressed files and bad lines', async (t) => {
  const dir = tmpdir();
  const fortunes = readJsonl(path.join(SAMPLES, 'fortunes.jsonl'));
  mkdirSync(path.join(dir, 'f', 'sub'), { recursive: true });
  const nd = (rs: Rec[]) => rs.map((x) => JSON.stringify(x)).join('\n') + '\n';
  writeFileSync(path.join(dir, 'f', 'part-0.jsonl'), nd(fortunes.slice(0, 700)) + '{broken\n');
  writeFileSync(path.join(dir, 'f', 'part-1.jsonl.gz'), gzipSync(nd(fortunes.slice(700, 1400))));
  writeFileSync(path.join(dir, 'f', 'sub', 'part-2.jsonl'), nd(fortunes.slice(1400)));
  writeFileSync(path.join(dir, 'k.jsonl'), nd(readJsonl(path.join(SAMPLES, 'kjv.jsonl'))));
  const r = await runMix(
    {
      sources: [
        { name: 'fortunes', paths: ['f/**/part-*.jsonl*'], weight: 1 },
        { name: 'kjv', paths: ['k.jsonl'], weight: 2 },
      ],
      field: 'origin',
    },
    dir,
  );
  t.equal(r.output.filter((x) => x.origin === 'fortunes').length, fortunes.length, 'all three files of the glob');
  t.equal(r.output.filter((x) => x.origin === 'kjv').length, 300);
  t.equal(r.errors.length, 1, 'the bad line is reported once');
  t.match(r.errors[0].message, /part-0\.jsonl:701/);
  t.match(r.errors[0], { input: path.join(dir, 'f', 'part-0.jsonl'), line: 701, raw: '{broken', reason: 'invalid_json' }, 'the errors output names the file and line and keeps the raw line');
  // Record fields are carried through; `source` stays the record's own.
  t.ok(r.output.every((x) => x.source === 'fortunes' || x.source === 'kjv'));
});

t.test('option errors', async (t) => {
  await t.rejects(runMix({ sources: [{ name: 'a', paths: ['kjv.jsonl'], share: 0.5 }, { name: 'b', paths: ['gcide.jsonl'], share: 0.4 }] }), /shares must sum to 1, they sum to 0.9/);
  const err = await runMix({ sources: [{ name: 'a', paths: ['kjv.jsonl'], share: 1 }, { name: 'a', paths: ['gcide.jsonl'], weight: 1 }] }).catch((e: Error) => e.message);
  t.match(err, /sources\[1\]\.name: duplicate source name "a"/);
  t.match(err, /every source needs a share when one has one/);
  await t.rejects(runMix({ sources: [{ name: 'a', paths: ['nothing-*.jsonl'], weight: 1 }] }), /sources\[0\]\.paths: no file matches "nothing-\*\.jsonl"/);
  await t.rejects(
    runMix({ sources: [{ name: 'a', paths: ['kjv.jsonl'], share: 0.5 }, { name: 'b', paths: ['gcide.jsonl'], share: 0.5 }], totalTokens: 10_000_000, upsample: false }),
    /sources\[0\] \(a\) has \d+ tokens but its target is 5000000: set upsample: true/,
  );
});

t.test('checkpoint between batches, fresh step, restore: the rest of the output and errors as in one uninterrupted run', async (t) => {
  t.equal(mix.stateful, true);
  const dir = tmpdir();
  const nd = (rs: Rec[]) => rs.map((x) => JSON.stringify(x)).join('\n') + '\n';
  const kjv = readJsonl(path.join(SAMPLES, 'kjv.jsonl'));
  const fortunes = readJsonl(path.join(SAMPLES, 'fortunes.jsonl'));
  // kjv in two files (plain, zstd) with bad lines; its size is given, so its bad lines are found while mixing, not while counting.
  writeFileSync(path.join(dir, 'k-0.jsonl'), nd(kjv.slice(0, 40)) + '{bad one\n' + nd(kjv.slice(40, 75)) + '[1]\n');
  writeFileSync(path.join(dir, 'k-1.jsonl.zst'), zstdCompress(Buffer.from(nd(kjv.slice(75, 120)) + '{"id":"x"}\n' + nd(kjv.slice(120)))));
  writeFileSync(path.join(dir, 'f.jsonl.gz'), gzipSync(nd(fortunes.slice(0, 900)) + 'not json\n' + nd(fortunes.slice(900))));
  const options = {
    sources: [
      { name: 'kjv', paths: ['k-*.jsonl*'], share: 0.4, tokens: SIZES.kjv },
      { name: 'dictionary', paths: [path.join(SAMPLES, 'gcide.jsonl')], share: 0.15 },
      { name: 'quotes', paths: ['f.jsonl.gz'], share: 0.35 },
      // Parquet: positions are rows.
      { name: 'parquet', paths: [path.join(SAMPLES, '..', 'test', 'fixtures', 'kjv.parquet')], share: 0.1 },
    ],
    seed: 3,
    batchSize: 37,
  };
  const errs: OptionError[] = [];
  const opts = validateOptions(options, mix.options, errs);
  t.same(errs, []);
  const newStep = async () => {
    const errors: ErrorEntry[] = [];
    const ctx = createStepContext({ op: 'mix', baseDir: dir, log: () => {}, onError: (e) => errors.push(e) });
    return { step: await mix.create(opts as never, ctx), errors, ctx };
  };
  const key = (b: Rec[][]) => b.map((x) => x.map((r) => JSON.stringify(r)).join('\n'));

  const whole = await newStep();
  const batches: Rec[][] = [];
  for await (const b of whole.step.generate!()) batches.push(b);
  await whole.step.close!();
  t.ok(batches.length > 60, `${batches.length} batches`);
  t.equal(whole.errors.length, 4, 'four bad lines');
  t.ok(batches.flat().some((r) => r.mix_repeat === 1) && batches.flat().filter((r) => r.mix_source === 'dictionary').length < 1242, 'one source repeated, one cut');

  for (const cut of [1, 23, Math.floor(batches.length / 2), batches.length - 1, batches.length]) {
    const first = await newStep();
    const gen = first.step.generate!()[Symbol.asyncIterator]();
    const got: Rec[][] = [];
    for (let i = 0; i < cut; i++) got.push((await gen.next()).value);
    // As in the runner, the next batch may already be asked for before the barrier behind batch `cut` reaches the step
    // (it travels in microtasks): the checkpoint still describes the state after batch `cut`.
    const ahead = gen.next();
    for (let i = 0; i < 5000; i++) await Promise.resolve();
    const state = tmpdir();
    await first.step.checkpoint!(state);
    const reported = first.errors.length;
    // Work after the checkpoint is lost with the process.
    await ahead;
    await gen.next();
    await first.step.close!();

    const second = await newStep();
    await second.step.restore!(state);
    for await (const b of second.step.generate!()) got.push(b);
    await second.step.close!();
    t.same(key(got), key(batches), `cut after batch ${cut}: same records in the same batches`);
    t.same([...first.errors.slice(0, reported), ...second.errors], whole.errors, `cut after batch ${cut}: every bad line reported once`);
    for (const name of ['kjv', 'dictionary', 'quotes', 'parquet']) {
      for (const c of [`docs_${name}`, `tokens_${name}`, `repeated_docs_${name}`, `passes_${name}`]) t.equal(second.ctx.counters.counters[c], whole.ctx.counters.counters[c], `cut ${cut}: ${c}`);
    }
  }
});

t.test('restore refuses a checkpoint taken with other files', async (t) => {
  const dir = tmpdir();
  writeFileSync(path.join(dir, 'a-0.jsonl'), readFileSync(path.join(SAMPLES, 'kjv.jsonl')));
  const opts = validateOptions({ sources: [{ name: 'a', paths: ['a-*.jsonl'], weight: 1 }], batchSize: 10 }, mix.options, []);
  const step = await mix.create(opts as never, createStepContext({ op: 'mix', baseDir: dir, log: () => {} }));
  const gen = step.generate!()[Symbol.asyncIterator]();
  await gen.next();
  const state = tmpdir();
  await step.checkpoint!(state);
  await step.close!();
  writeFileSync(path.join(dir, 'a-1.jsonl'), readFileSync(path.join(SAMPLES, 'gcide.jsonl')));
  const again = await mix.create(opts as never, createStepContext({ op: 'mix', baseDir: dir, log: () => {} }));
  t.throws(() => again.restore!(state), /files of source a are not the ones the checkpoint was taken with/);
});

t.test('restored, then checkpointed again before a source is read: that source still resumes after the documents handed on', async (t) => {
  const opts = validateOptions(bibleAndQuotesMix(), mix.options, []);
  const newStep = () => mix.create(opts as never, createStepContext({ op: 'mix', baseDir: SAMPLES, log: () => {} }));
  const ids = (b: Rec[][]) => b.flat().map((r) => `${r.mix_source}:${r.id}:${r.mix_repeat ?? 0}`);
  const checkpointed = async (step: Awaited<ReturnType<typeof newStep>>) => {
    const state = tmpdir();
    await step.checkpoint!(state);
    await step.close!();
    return state;
  };

  const whole = await newStep();
  const batches: Rec[][] = [];
  for await (const b of whole.generate!()) batches.push(b);
  await whole.close!();
  const withoutBible = batches.slice(1).filter((b) => !b.some((r) => r.mix_source === 'bible')).length;
  t.ok(withoutBible > 5, `${withoutBible} of ${batches.length} batches hold no bible document`);

  for (let cut = 1; cut < batches.length; cut++) {
    const got: Rec[][] = [];
    const first = await newStep();
    const a = first.generate!()[Symbol.asyncIterator]();
    for (let i = 0; i < cut; i++) got.push((await a.next()).value);
    const afterCut = await checkpointed(first);
    // Resumed: one batch, then the next checkpoint (a kill or SIGTERM right after it).
    const second = await newStep();
    await second.restore!(afterCut);
    const next = await second.generate!()[Symbol.asyncIterator]().next();
    if (!next.done) got.push(next.value);
    const afterOneMore = await checkpointed(second);
    const third = await newStep();
    await third.restore!(afterOneMore);
    for await (const b of third.generate!()) got.push(b);
    await third.close!();
    const same = JSON.stringify(ids(got)) === JSON.stringify(ids(batches));
    if (!same) {
      t.same(ids(got), ids(batches), `cut after batch ${cut}, then one more batch: same documents`);
      return;
    }
  }
  t.pass('every cut: same documents in the same order');
});
