import t from 'tap';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { esKey, uniformFor, WeightedReservoir } from '../../lib/sketch/weighted-reservoir.ts';
import { readJsonl } from '../../lib/testing.ts';

interface Item { id: string; w: number; tok: number }
const reservoir = (o: { count?: number; budgetTokens?: number; memoryBytes?: number }, dir?: string) =>
  new WeightedReservoir<Item>({
    ...o,
    memoryBytes: o.memoryBytes ?? 1 << 30,
    spillDir: () => (dir ??= mkdtempSync(path.join(os.tmpdir(), 'wr-'))),
    serialize: (x) => JSON.stringify(x),
    deserialize: (s) => JSON.parse(s),
    sizeOf: (x) => 64 + x.id.length * 2,
  });

function sampleIds(items: Item[], seed: number, o: { count?: number; budgetTokens?: number; memoryBytes?: number }): string[] {
  const r = reservoir(o);
  for (const x of items) r.offer(x, esKey(uniformFor(seed, x.id), x.w), x.tok);
  return [...r.drain()].flat().map((e) => e.item.id);
}

/** Every ordering of sequential weighted draws without replacement, with its probability. */
function* orderings(w: number[], used: boolean[] = w.map(() => false), prefix: number[] = [], p = 1): Generator<{ order: number[]; p: number }> {
  const rest = w.reduce((s, x, i) => (used[i] ? s : s + x), 0);
  if (prefix.length === w.length) {
    yield { order: prefix, p };
    return;
  }
  for (let i = 0; i < w.length; i++) {
    if (used[i]) continue;
    used[i] = true;
    yield* orderings(w, used, [...prefix, i], (p * w[i]) / rest);
    used[i] = false;
  }
}

function checkFrequencies(t: { ok(v: boolean, msg: string): unknown }, items: Item[], runs: number, o: { count?: number; budgetTokens?: number }, exact: number[]) {
  const hits = new Array(items.length).fill(0);
  for (let seed = 0; seed < runs; seed++) for (const id of sampleIds(items, seed, o)) hits[+id.slice(1)]++;
  items.forEach((x, i) => {
    const f = hits[i] / runs;
    const sd = Math.sqrt((exact[i] * (1 - exact[i])) / runs);
    t.ok(Math.abs(f - exact[i]) <= 5 * sd + 1e-9, `${x.id} (w=${x.w}, tok=${x.tok}): frequency ${f.toFixed(4)} vs exact ${exact[i].toFixed(4)}`);
  });
}

const items: Item[] = [1, 2, 3, 5, 9].map((w, i) => ({ id: `r${i}`, w, tok: [3, 1, 2, 4, 2][i] }));
const W = items.map((x) => x.w);
const RUNS = 20000;

t.test('count 1: inclusion proportional to weight', async (t) => {
  const total = W.reduce((a, b) => a + b, 0);
  checkFrequencies(t, items, RUNS, { count: 1 }, W.map((w) => w / total));
});

t.test('count 2 and 3: inclusion equals the exact probabilities of successive sampling', async (t) => {
  for (const k of [2, 3]) {
    const exact = new Array(items.length).fill(0);
    for (const { order, p } of orderings(W)) for (const i of order.slice(0, k)) exact[i] += p;
    checkFrequencies(t, items, RUNS, { count: k }, exact);
  }
});

t.test('token budget: draw until the next draw does not fit', async (t) => {
  for (const B of [4, 6]) {
    const exact = new Array(items.length).fill(0);
    for (const { order, p } of orderings(W)) {
      let used = 0;
      for (const i of order) {
        if (items[i].tok > B) continue;
        if (used + items[i].tok > B) break;
        used += items[i].tok;
        exact[i] += p;
      }
    }
    checkFrequencies(t, items, RUNS, { budgetTokens: B }, exact);
  }
});

const docs = readJsonl(new URL('../../samples/gcide.jsonl', import.meta.url)).map((r, i) => ({ id: r.id, w: 1 + (i % 7), tok: Math.ceil(r.text.length / 4) }));

t.test('budget respected, seed reproducible, order independent', async (t) => {
  const B = 5000;
  const r = reservoir({ budgetTokens: B });
  for (const x of docs) r.offer(x, esKey(uniformFor(7, x.id), x.w), x.tok);
  const got = [...r.drain()].flat();
  const sum = got.reduce((s, e) => s + e.tokens, 0);
  t.ok(sum <= B && sum > B * 0.9, `sample tokens ${sum} within the budget ${B}`);
  const a = sampleIds(docs, 7, { budgetTokens: B });
  t.same(a, got.map((e) => e.item.id), 'same seed, same sample');
  const b = sampleIds(docs, 8, { budgetTokens: B });
  t.not(a.join(), b.join(), 'another seed, another sample');
  const shuffled = docs.slice().reverse();
  t.same(sampleIds(shuffled, 7, { budgetTokens: B }).sort(), a.slice().sort(), 'input order does not change the sample');
  t.equal(sampleIds(docs, 7, { count: 100 }).length, 100);
});

t.test('spilling gives the same sample as memory, and the spill file is removed', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wr-'));
  const mem = reservoir({ budgetTokens: 20000 });
  const disk = reservoir({ budgetTokens: 20000, memoryBytes: 2000 }, dir);
  for (const x of docs) {
    const key = esKey(uniformFor(3, x.id), x.w);
    mem.offer(x, key, x.tok);
    disk.offer(x, key, x.tok);
  }
  t.ok(disk.stats.spilledItems > 100, `${disk.stats.spilledItems} items spilled`);
  t.ok(disk.stats.peakMemoryBytes <= 2000);
  t.equal(readdirSync(dir).length, 1);
  const a = [...mem.drain(50)].flat();
  const b = [...disk.drain(50)].flat();
  t.same(b, a);
  t.equal(readdirSync(dir).length, 0);
});

t.test('weights <= 0 and items above the budget are never drawn', async (t) => {
  const r = reservoir({ budgetTokens: 10 });
  t.equal(r.offer({ id: 'a', w: 0, tok: 1 }, esKey(0.5, 0), 1), false);
  t.equal(r.offer({ id: 'b', w: 1, tok: 11 }, esKey(0.5, 1), 11), false);
  t.equal(r.offer({ id: 'c', w: 1, tok: 10 }, esKey(0.5, 1), 10), true);
  t.equal(r.stats.tooLarge, 1);
  t.throws(() => reservoir({}), /exactly one of count and budgetTokens/);
});

t.test('uniformFor is uniform', async (t) => {
  const bins = new Array(10).fill(0);
  const N = 50000;
  for (let i = 0; i < N; i++) bins[Math.floor(uniformFor(i % 13, `doc-${i}`) * 10)]++;
  const chi2 = bins.reduce((s, b) => s + (b - N / 10) ** 2 / (N / 10), 0);
  t.ok(chi2 < 30, `chi-square over 10 bins ${chi2.toFixed(1)} (9 dof)`);
});

t.test('save and load: a new reservoir continues exactly; the checkpoint outlives the working spill file', async (t) => {
  for (const o of [{ budgetTokens: 20000 }, { budgetTokens: 20000, memoryBytes: 2000 }, { count: 150, memoryBytes: 0 }]) {
    const work = mkdtempSync(path.join(os.tmpdir(), 'wr-'));
    const ckpt = mkdtempSync(path.join(os.tmpdir(), 'wr-ckpt-'));
    const half = docs.length >> 1;
    const offer = (r: WeightedReservoir<Item>, xs: Item[], evicted: string[]) => {
      for (const x of xs) if (!r.offer(x, esKey(uniformFor(3, x.id), x.w), x.tok)) evicted.push(x.id);
    };
    const whole = reservoir(o, mkdtempSync(path.join(os.tmpdir(), 'wr-')));
    offer(whole, docs, []);
    const expected = [...whole.drain(50)].flat();
    const a = reservoir(o, work);
    offer(a, docs.slice(0, half), []);
    a.save(ckpt);
    const saved = { ...a.stats };
    // The interrupted run goes on to the end of input and drains (removing its spill file).
    offer(a, docs.slice(half), []);
    t.same([...a.drain(50)].flat(), expected);
    t.same(readdirSync(work), []);
    const b = reservoir(o, work);
    b.load(ckpt);
    t.same(b.stats, saved, 'counters restored');
    offer(b, docs.slice(half), []);
    t.same(b.stats, whole.stats, 'counters as without the interruption');
    t.same([...b.drain(50)].flat(), expected, `${JSON.stringify(o)}: the same sample, keys and order`);
    if (o.memoryBytes !== undefined) t.ok(whole.stats.spilledItems > 50, `${whole.stats.spilledItems} spilled`);
    if (o.count === undefined) t.throws(() => reservoir({ count: 150 }, work).load(ckpt), /saved by a reservoir for a budget of 20000 tokens, this one is for a count of 150/);
    else t.throws(() => b.load(ckpt), /not empty/);
  }
});

t.test('checkpoint after checkpoint: only new held bodies are written; the copy is compacted; any checkpoint resumes', async (t) => {
  // 40 passes over the dictionary entries: most items that enter are evicted again later.
  const texts = readJsonl(new URL('../../samples/gcide.jsonl', import.meta.url)).map((r) => r.text as string);
  const items: (Item & { text: string })[] = [];
  for (let copy = 0; copy < 40; copy++) docs.forEach((d, i) => items.push({ ...d, id: `${d.id}#${copy}`, text: texts[i] }));
  const o = { count: 2000, memoryBytes: 1 << 30 };
  const offer = (r: WeightedReservoir<Item>, xs: Item[]) => {
    for (const x of xs) r.offer(x, esKey(uniformFor(9, x.id), x.w), x.tok);
  };
  const whole = reservoir(o);
  offer(whole, items);
  const expected = [...whole.drain()].flat();
  const work = mkdtempSync(path.join(os.tmpdir(), 'wr-'));
  const a = reservoir(o, work);
  const saves: { dir: string; at: number; size: number }[] = [];
  for (let at = 0; at < items.length; at += 500) {
    offer(a, items.slice(at, at + 500));
    const dir = mkdtempSync(path.join(os.tmpdir(), 'wr-ckpt-'));
    a.save(dir);
    saves.push({ dir, at: Math.min(items.length, at + 500), size: statSync(path.join(dir, 'held.jsonl')).size });
  }
  t.ok(saves.some((s, i) => i > 0 && s.size < saves[i - 1].size), 'the copy of held bodies was rewritten without the evicted ones');
  t.ok(saves[saves.length - 1].size < 4 << 20, `held.jsonl ${saves[saves.length - 1].size} bytes at the end`);
  // Latest first: resuming from a checkpoint cuts back the files it shares with later ones
  // (the runner only ever resumes from its latest committed checkpoint).
  for (const s of [saves[saves.length - 2], saves[Math.floor(saves.length / 2)], saves[3]]) {
    const b = reservoir(o, work);
    b.load(s.dir);
    offer(b, items.slice(s.at));
    t.same([...b.drain()].flat(), expected, `resumed from the checkpoint after ${s.at} items`);
  }
});
