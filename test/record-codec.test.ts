import t from 'tap';
import { createStepContext } from '../lib/context.ts';
import { internals, peekInternals, type Rec } from '../lib/operator.ts';
import { decodeRecord, encodeRecord } from '../lib/record-codec.ts';
import { readJsonl } from '../lib/testing.ts';
import { hashForm } from '../lib/text/normalize.ts';

const recs = readJsonl(new URL('../samples/fortunes.jsonl', import.meta.url)).slice(0, 50);

t.test('plain records round-trip as their JSON', async (t) => {
  for (const r of recs) {
    const line = encodeRecord(r);
    t.notOk(line.includes('\n'));
    const back = decodeRecord(line);
    t.equal(JSON.stringify(back), JSON.stringify(r));
    t.equal(peekInternals(back), undefined);
  }
});

t.test('internals (strings, typed arrays, JSON values) and fields written by steps survive', async (t) => {
  const ctx = createStepContext({ op: 'test', log: () => {} });
  const r: Rec = { ...recs[0], quality_score: 0.5 };
  const ints = internals(r);
  ints.hashText = hashForm(r.text);
  ints.shingles = Uint32Array.from([1, 2 ** 32 - 1, 77]);
  ints.signature = new Uint32Array(128).map((_, i) => (i * 2654435761) >>> 0);
  ints.weights = Float64Array.from([0.1, -0, Infinity]);
  ints.note = { a: [1, 'x'] };
  ctx.annotate(r, 'cluster_id', 'c1');
  const back = decodeRecord(encodeRecord(r));
  t.equal(JSON.stringify(back), JSON.stringify(r));
  const b = peekInternals(back)!;
  t.equal(b.hashText, ints.hashText);
  t.ok(b.shingles instanceof Uint32Array);
  t.same([...b.shingles!], [...ints.shingles]);
  t.same([...b.signature!], [...ints.signature]);
  t.ok(b.weights instanceof Float64Array);
  t.ok(Object.is((b.weights as Float64Array)[1], -0), 'doubles bit for bit');
  t.same(b.note, ints.note);
  // Writing cluster_id again is not an overwrite of user data: the step wrote it.
  ctx.annotate(back, 'cluster_id', 'c2');
  t.equal(ctx.counters.counters.overwrote_cluster_id, undefined);
  ctx.annotate(back, 'quality_score', 1);
  t.equal(ctx.counters.counters.overwrote_quality_score, 1, 'a field the record came with still counts');
});
