import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { exactTop, TopFractionSelector, type TopFractionOptions } from '../../lib/quality/keep-top.ts';
import type { Rec } from '../../lib/operator.ts';
import { gopherQuality } from '../../lib/quality/gopher-quality.ts';
import { resolveRuleOptions } from '../../lib/quality/rules.ts';
import { readJsonl } from '../../lib/testing.ts';

const samples = ['handbook', 'kjv', 'gcide', 'fortunes'].flatMap((f) => readJsonl(new URL(`../../samples/${f}.jsonl`, import.meta.url)));
// A real score: the share of alphabetic tokens times the mean word length (continuous, many ties on short docs).
const gq = resolveRuleOptions('gopher-quality');
const scored = samples.map((r) => {
  const m = gopherQuality.evaluate(r.text, gq as never).metrics;
  return { rec: r, score: (m.alpha_words_ratio ?? 0) * (m.avg_word_length || 0) };
});

function shuffled<T>(xs: T[], seed: number): T[] {
  let s = seed;
  const a = xs.slice();
  for (let i = a.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const j = Math.floor((s / 2 ** 32) * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

t.test('exactTop keeps round(f*n), ties by position', async (t) => {
  t.same([...exactTop(Float64Array.from([1, 5, 3, 5, 2]), 0.4)], [0, 1, 0, 1, 0]);
  t.same([...exactTop(Float64Array.from([2, 2, 2, 2]), 0.5)], [1, 1, 0, 0]);
  t.same([...exactTop(Float64Array.from([1, 2, 3]), 0.01)], [0, 0, 1]);
});

for (const fraction of [0.1, 0.15, 0.2, 0.5]) {
  t.test(`stream mode keeps ${fraction} of real-text scores within 1 point`, async (t) => {
    for (const seed of [1, 2, 3]) {
      const input = shuffled(scored, seed);
      let rejected = 0;
      const sel = new TopFractionSelector({ fraction, warmup: 500, onReject: () => rejected++ });
      const out: Rec[] = [];
      for (const { rec, score } of input) out.push(...sel.push(rec, score));
      out.push(...(await sel.finish()));
      t.equal(out.length + rejected, input.length);
      const kept = out.length / input.length;
      t.ok(Math.abs(kept - fraction) < 0.01, `seed ${seed}: kept ${kept}`);
      // Output keeps input order.
      const pos = new Map(input.map((x, i) => [x.rec, i]));
      t.ok(out.every((r, i) => i === 0 || pos.get(r)! > pos.get(out[i - 1])!));
      // What is kept is mostly what the exact selection keeps.
      const exact = exactTop(Float64Array.from(input, (x) => x.score), fraction);
      const exactSet = new Set(input.filter((_, i) => exact[i]).map((x) => x.rec));
      const overlap = out.filter((r) => exactSet.has(r)).length / exactSet.size;
      t.ok(overlap > 0.9, `overlap with exact ${overlap}`);
    }
  });
}

t.test('stream mode with drift: correction holds the fraction', async (t) => {
  // Scores ascending in input order: a fixed quantile would keep far too much.
  const input = scored.slice().sort((a, b) => a.score - b.score);
  for (const correct of [true, false]) {
    const sel = new TopFractionSelector({ fraction: 0.15, warmup: 200, correct });
    let kept = 0;
    for (const { rec, score } of input) kept += sel.push(rec, score).length;
    kept += (await sel.finish()).length;
    const share = kept / input.length;
    if (correct) t.ok(Math.abs(share - 0.15) < 0.02, `corrected share ${share}`);
    else t.ok(share > 0.3, `uncorrected share ${share}`);
  }
});

t.test('fewer records than the warm-up: exact on finish', async (t) => {
  const sel = new TopFractionSelector({ fraction: 0.2, warmup: 1000 });
  for (let i = 0; i < 10; i++) t.same(sel.push({ id: String(i), text: '' }, i), []);
  t.same((await sel.finish()).map((r) => r.id), ['8', '9']);
});

t.test('exact mode spills to disk and keeps exactly round(f*n)', async (t) => {
  const tmpDir = mkdtempSync(path.join(os.tmpdir(), 'keep-top-test-'));
  t.teardown(() => rmSync(tmpDir, { recursive: true, force: true }));
  const rejected: Rec[] = [];
  const sel = new TopFractionSelector({ fraction: 0.15, mode: 'exact', tmpDir, memoryBytes: 100_000, onReject: (r) => rejected.push(r) });
  for (const { rec, score } of scored) t.same(sel.push(rec, score), []);
  t.ok(sel.spilledRecords > scored.length / 2, `spilled ${sel.spilledRecords}`);
  const out = await sel.finish();
  t.equal(out.length, Math.round(0.15 * scored.length));
  t.equal(out.length + rejected.length, scored.length);
  const exact = exactTop(Float64Array.from(scored, (x) => x.score), 0.15);
  t.same(out.map((r) => r.id), scored.filter((_, i) => exact[i]).map((x) => x.rec.id));
  t.same(readdirSync(tmpDir), [], 'spill file removed');
});

t.test('bad input', async (t) => {
  t.throws(() => new TopFractionSelector({ fraction: 0 }), /fraction/);
  t.throws(() => new TopFractionSelector({ fraction: 1.5 }), /fraction/);
  const sel = new TopFractionSelector({ fraction: 0.5 });
  t.throws(() => sel.push({ id: 'x1', text: '' }, NaN), /x1/);
});

/**
 * Pushes `input` through selectors with a checkpoint at each cut: the selector saves, goes on
 * with `lost` more records (and a checkpoint of them that is never committed) as a run killed
 * later would, and a NEW selector in the same tmpDir loads the committed checkpoint and
 * continues. Returns every decision in order (+id kept, -id rejected) and the kept records.
 */
function resumed(o: Omit<TopFractionOptions, 'tmpDir' | 'onReject'>, input: { rec: Rec; score: number }[], cuts: number[] = [], lost = 0) {
  const tmpDir = mkdtempSync(path.join(os.tmpdir(), 'keep-top-resume-'));
  let events: string[] = [];
  const make = () => new TopFractionSelector({ ...o, tmpDir, onReject: (r) => events.push(`-${r.id}`) });
  const feed = (sel: TopFractionSelector, from: number, to: number, out: Rec[]) => {
    for (const { rec, score } of input.slice(from, to)) {
      for (const r of sel.push(JSON.parse(JSON.stringify(rec)), score)) {
        events.push(`+${r.id}`);
        out.push(r);
      }
    }
  };
  let sel = make();
  let out: Rec[] = [];
  let at = 0;
  const crashed: TopFractionSelector[] = [];
  for (const cut of cuts) {
    feed(sel, at, cut, out);
    at = cut;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'keep-top-state-'));
    sel.save(dir);
    const committed = { events: events.slice(), out: out.slice() };
    // The killed run: more records, and a later checkpoint that never got committed.
    feed(sel, cut, cut + (lost >> 1), []);
    sel.save(mkdtempSync(path.join(os.tmpdir(), 'keep-top-state-')));
    feed(sel, cut + (lost >> 1), cut + lost, []);
    crashed.push(sel);
    ({ events, out } = committed);
    sel = make();
    sel.load(dir);
  }
  feed(sel, at, input.length, out);
  for (const batch of sel.finishBatches(100)) {
    for (const r of batch) events.push(`+${r.id}`);
    out.push(...batch);
  }
  const left = readdirSync(tmpDir);
  sel.close();
  for (const c of crashed) c.close();
  rmSync(tmpDir, { recursive: true, force: true });
  return { events, out: out.map((r) => JSON.stringify(r)), left, stats: sel.stats };
}

t.test('save, load in a new selector, continue: the same decisions as one uninterrupted pass', async (t) => {
  const input = shuffled(scored, 7);
  const n = input.length;
  const size = (r: Rec) => r.text.length * 2 + 200;
  // A budget that the records fill between the first cut and the end: the spill starts after a restore.
  const lateSpill = input.slice(0, 2000).reduce((s, x) => s + size(x.rec), 0);
  const cases: [string, Omit<TopFractionOptions, 'tmpDir' | 'onReject'>, number[]][] = [
    ['stream, cut in the warm-up', { fraction: 0.15, warmup: 500 }, [200]],
    ['stream, cuts after the warm-up', { fraction: 0.15, warmup: 500 }, [1777, 2900]],
    ['stream, cut at the end of the warm-up', { fraction: 0.3, warmup: 500 }, [500]],
    ['exact, all in memory', { fraction: 0.15, mode: 'exact' }, [1777]],
    ['exact, everything spilled', { fraction: 0.15, mode: 'exact', memoryBytes: 0 }, [1777, 2900]],
    ['exact, spilling before the cut', { fraction: 0.1, mode: 'exact', memoryBytes: 100_000 }, [1001, 1002, 3000]],
    ['exact, spilling starts after the cut', { fraction: 0.1, mode: 'exact', memoryBytes: lateSpill }, [1500, 2500]],
  ];
  for (const [name, o, cuts] of cases) {
    const whole = resumed(o, input);
    t.equal(whole.events.length, n, `${name}: every record decided`);
    for (const lost of [0, 300]) {
      const r = resumed(o, input, cuts, lost);
      t.same(r.events, whole.events, `${name}, ${lost} lost: same decisions in the same order`);
      t.same(r.out, whole.out, `${name}, ${lost} lost: same records`);
      t.same(r.stats, whole.stats, `${name}, ${lost} lost: same counts and threshold`);
      t.same(r.left, [], `${name}: the stale files of the killed run are gone`);
    }
  }
});

t.test('a checkpoint is refused by a selector with other options', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keep-top-state-'));
  const sel = new TopFractionSelector({ fraction: 0.2, warmup: 10 });
  for (const { rec, score } of scored.slice(0, 30)) sel.push(rec, score);
  sel.save(dir);
  t.throws(() => new TopFractionSelector({ fraction: 0.3, warmup: 10 }).load(dir), /saved with fraction 0.2, this step has 0.3/);
  t.throws(() => new TopFractionSelector({ fraction: 0.2, warmup: 10, mode: 'exact' }).load(dir), /saved with mode "stream"/);
  t.throws(() => new TopFractionSelector({ fraction: 0.2, warmup: 20 }).load(dir), /warmup 10, this step has 20/);
  const used = new TopFractionSelector({ fraction: 0.2, warmup: 10 });
  used.push(scored[0].rec, scored[0].score);
  t.throws(() => used.load(dir), /seen no record/);
});
