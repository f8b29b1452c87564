import t from 'tap';
import { createStepContext } from '../../lib/context.ts';
import type { Rec } from '../../lib/operator.ts';
import { validateOptions } from '../../lib/options.ts';
import { readJsonl, runOperator } from '../../lib/testing.ts';
import exactDedup from '../../operators/exact-dedup.ts';
import normalize from '../../operators/normalize.ts';
import { tmpdir } from '../helpers.ts';

const samples = new URL('../../samples/', import.meta.url);
const originals = [
  ...readJsonl(new URL('kjv.jsonl', samples)).slice(0, 60),
  ...readJsonl(new URL('fortunes.jsonl', samples)).slice(0, 600),
  ...readJsonl(new URL('handbook.jsonl', samples)).slice(0, 30),
];

// Copies that differ only in case, whitespace or punctuation (the hashing form folds them), and
// byte-identical copies (both modes catch them).
const edits: [string, (s: string) => string][] = [
  // Letter by letter: a letter whose capital is two letters (German ß -> SS) keeps its case, since
  // lowercasing cannot undo that (the hashing form lowercases; it does not case-fold).
  ['upper', (s) => s.replace(/\p{Ll}/gu, (c) => (c.toUpperCase().length === 1 ? c.toUpperCase() : c))],
  ['spaces', (s) => s.replace(/ /g, '  ').replace(/\n/g, ' \n\t')],
  ['punct', (s) => s.replace(/[.,;:!?]/g, (c) => (c === '.' ? '!' : ' '))],
  ['same', (s) => s],
];

/** Originals first; every 3rd original gets one edited copy, later in the stream (deterministic). */
function corpus(): { recs: Rec[]; firstOf: Map<string, string>; exactCopies: number; editedCopies: number } {
  const recs: Rec[] = [];
  const pending = new Map<number, Rec[]>();
  const firstOf = new Map<string, string>();
  let exactCopies = 0, editedCopies = 0;
  originals.forEach((r, i) => {
    recs.push({ ...r }, ...(pending.get(i) ?? []));
    if (i % 3) return;
    const [name, edit] = edits[(i / 3) % edits.length];
    const id = `${r.id}#${name}`;
    const text = edit(r.text);
    if (text === r.text) exactCopies++;
    else editedCopies++;
    firstOf.set(id, r.id);
    const at = Math.min(originals.length - 1, i + 7 + (i % 11));
    pending.set(at, [...(pending.get(at) ?? []), { ...r, id, text }]);
  });
  return { recs, firstOf, exactCopies, editedCopies };
}

const clone = (recs: Rec[]) => recs.map((r) => ({ ...r }));
const ids = (recs: Rec[]) => recs.map((r) => r.id);

t.test('hash-form drops case/whitespace/punctuation variants, text mode only byte-identical copies', async (t) => {
  const { recs, firstOf, exactCopies, editedCopies } = corpus();
  const hf = await runOperator(exactDedup, {}, clone(recs));
  t.same(ids(hf.output), ids(originals), 'hash-form keeps exactly the originals, in order');
  t.equal(hf.dropped.length, exactCopies + editedCopies);
  t.ok(hf.dropped.every((d) => d.reason === 'exact_duplicate' && firstOf.has(d.rec.id)));
  t.equal(hf.counters.counters.unique, originals.length);
  t.equal(hf.counters.dropped.exact_duplicate, exactCopies + editedCopies);

  const tx = await runOperator(exactDedup, { on: 'text' }, clone(recs));
  t.equal(tx.dropped.length, exactCopies, `text mode drops the ${exactCopies} identical copies only`);
  const byId = new Map(originals.map((r) => [r.id, r.text]));
  t.ok(tx.dropped.every((d) => d.rec.text === byId.get(firstOf.get(d.rec.id)!)), 'each an identical copy of its first');
  t.equal(tx.output.length, recs.length - exactCopies);

  // After normalize, the hashing form it computed is used; the decisions are the same.
  const norm = await runOperator(normalize, {}, clone(recs));
  const after = await runOperator(exactDedup, {}, norm.output);
  t.same(ids(after.output), ids(originals));
});

t.test('a tiny memory budget spills to LMDB and gives identical output', async (t) => {
  const { recs } = corpus();
  for (const emit of ['kept', 'all']) {
    const ram = await runOperator(exactDedup, { emit }, clone(recs));
    const disk = await runOperator(exactDedup, { emit, memoryMB: 0.004 }, clone(recs));
    t.same(disk.output, ram.output, `emit ${emit}: same records and dup_of`);
    t.same(ids(disk.dropped.map((d) => d.rec)), ids(ram.dropped.map((d) => d.rec)));
    t.notOk(ram.counters.counters.spills, 'default budget: no spill');
    t.ok(disk.counters.counters.spills >= 3, `${disk.counters.counters.spills} spills`);
  }
});

t.test('emit removed and all annotate dup_of with the first copy', async (t) => {
  const { recs, firstOf } = corpus();
  const removed = await runOperator(exactDedup, { emit: 'removed' }, clone(recs));
  t.equal(removed.output.length, firstOf.size);
  for (const r of removed.output) t.equal(r.dup_of, firstOf.get(r.id), r.id);
  t.equal(removed.dropped.length, recs.length - firstOf.size, 'the first copies are accounted for as dropped');
  t.ok(removed.dropped.every((d) => d.reason === 'not_duplicate' && !firstOf.has(String(d.rec.id))));

  const all = await runOperator(exactDedup, { emit: 'all' }, clone(recs));
  t.same(ids(all.output), ids(recs));
  for (const r of all.output) t.equal(r.dup_of, firstOf.get(r.id) ?? null);
  t.equal(JSON.parse(JSON.stringify(all.output[0])).dup_of, null);
});

t.test('first-copy ids with lone surrogates are named as they were, in RAM and spilled', async (t) => {
  const texts = [...new Set(readJsonl(new URL('kjv.jsonl', samples)).map((r) => r.text))];
  const recs = () => [...texts.map((text, i) => ({ id: `first-\udcff${i}`, text })), ...texts.map((text, i) => ({ id: `copy${i}`, text }))];
  for (const memoryMB of [512, 0.004]) {
    const run = await runOperator(exactDedup, { emit: 'removed', memoryMB }, recs());
    t.same(run.output.map((r) => r.dup_of), texts.map((_, i) => `first-\udcff${i}`), `memoryMB ${memoryMB}`);
    if (memoryMB < 1) t.ok(run.counters.counters.spills >= 1, `${run.counters.counters.spills} spills`);
  }
});

t.test('field mode compares another field; a record without it is an error naming it', async (t) => {
  const gcide = readJsonl(new URL('gcide.jsonl', samples)).slice(0, 400);
  const headwords = new Set<string>();
  const unique = gcide.filter((r) => !headwords.has(r.headword as string) && headwords.add(r.headword as string));
  const recs = [...gcide, ...gcide.slice(0, 50).map((r) => ({ ...r, id: `${r.id}-again`, text: 'different text' }))];
  const r = await runOperator(exactDedup, { field: 'headword' }, clone(recs));
  t.same(ids(r.output), ids(unique), 'compared on the exact headword, not the text');
  const folded = [...gcide.slice(0, 20), ...gcide.slice(0, 20).map((r) => ({ ...r, id: `${r.id}-upper`, headword: (r.headword as string).toUpperCase() }))];
  const distinct = new Set(folded.map((r) => r.headword)).size;
  t.ok(distinct > 30);
  t.equal((await runOperator(exactDedup, { field: 'headword' }, clone(folded))).output.length, distinct, 'exact value by default with field');
  const hf = await runOperator(exactDedup, { field: 'headword', on: 'hash-form' }, clone(folded));
  t.same(ids(hf.output), ids(gcide.slice(0, 20)), 'on: hash-form folds the field value');

  const broken = clone(recs.slice(0, 5));
  delete broken[2].headword;
  broken[3].headword = 7;
  const e = await runOperator(exactDedup, { field: 'headword' }, broken);
  t.equal(e.output.length, 3);
  t.equal(e.errors.length, 2);
  t.match(e.errors[0], { reason: 'missing_field', id: broken[2].id, message: new RegExp(`record ${broken[2].id} has no field "headword"`) });
  t.match(e.errors[1].message, /has a number in field "headword"/);
});

t.test('option errors', async (t) => {
  await t.rejects(runOperator(exactDedup, { on: 'bytes', memoryMB: 0 }, []), /on: expected one of "hash-form" \| "text"[\s\S]*memoryMB: out of range/);
});

/** Drives one step over `batches` with checkpoint/restore in between, as `run --checkpoint` does. */
async function stepRun(options: Record<string, unknown>, recs: Rec[], cut?: number) {
  const errors: never[] = [];
  const opts = validateOptions(options, exactDedup.options, errors);
  t.same(errors, []);
  const out: Rec[] = [];
  const dropped: Rec[] = [];
  const newStep = async () => exactDedup.create(opts as any, createStepContext({ op: 'exact-dedup', tmpDir: tmpdir(), onDrop: (r) => dropped.push(r) }));
  let step = await newStep();
  const batches = (from: number, to: number) => {
    const b: Rec[][] = [];
    for (let i = from; i < to; i += 100) b.push(recs.slice(i, Math.min(i + 100, to)));
    return b;
  };
  const first = batches(0, cut ?? recs.length);
  for (const b of first) out.push(...(await step.process(b)));
  if (cut !== undefined) {
    const dir = tmpdir();
    await step.checkpoint!(dir);
    await step.close?.();
    step = await newStep();
    await step.restore!(dir);
    for (const b of batches(cut, recs.length)) out.push(...(await step.process(b)));
  }
  await step.close?.();
  return { out, dropped };
}

t.test('checkpoint, fresh step, restore: same output as one uninterrupted pass', async (t) => {
  t.equal(exactDedup.stateful, true);
  const { recs } = corpus();
  const half = recs.length >> 1;
  for (const options of [{}, { emit: 'all' }, { emit: 'removed', memoryMB: 0.004 }, { memoryMB: 0.004 }]) {
    const whole = await stepRun(options, clone(recs));
    const resumed = await stepRun(options, clone(recs), half);
    t.same(resumed, whole, JSON.stringify(options));
  }
});
