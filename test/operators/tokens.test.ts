import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tokens from '../../operators/tokens.ts';
import { readJsonl, runOperator } from '../../lib/testing.ts';
import { byteLevelAlphabet, loadEncoding } from '../../lib/text/tokenizer.ts';

const recs = readJsonl(new URL('../../samples/kjv.jsonl', import.meta.url)).slice(0, 40);

t.test('exact counts with cl100k_base into token_count', async (t) => {
  const enc = await loadEncoding('cl100k_base');
  const run = await runOperator(tokens, { parallelAfterChars: 0 }, structuredClone(recs), { workers: 2 });
  t.equal(run.output.length, recs.length);
  t.same(run.output.map((r) => r.token_count), recs.map((r) => enc.count(r.text)));
  t.equal(run.counters.counters.tokens, run.output.reduce((s, r) => s + (r.token_count as number), 0));
  t.same(Object.keys(run.output[0]).slice(0, Object.keys(recs[0]).length), Object.keys(recs[0]), 'fields carried through');
});

t.test('o200k_base, estimate mode and a renamed field', async (t) => {
  const a = await runOperator(tokens, { encoding: 'o200k_base', field: 'n_tok' }, structuredClone(recs));
  const b = await runOperator(tokens, { mode: 'estimate' }, structuredClone(recs));
  t.equal(a.output[0].token_count, undefined);
  const exact = a.output.reduce((s, r) => s + (r.n_tok as number), 0);
  const est = b.output.reduce((s, r) => s + (r.token_count as number), 0);
  t.ok(Math.abs(est - exact) / exact < 0.15, `estimate ${est} vs o200k ${exact}`);
});

t.test('tokenizer.json path relative to the pipeline directory', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tokop-'));
  const alphabet = byteLevelAlphabet();
  const vocab: Record<string, number> = Object.fromEntries(alphabet.map((c, i) => [c, i]));
  vocab['th'] = 256;
  vocab['the'] = 257;
  writeFileSync(path.join(dir, 'tok.json'), JSON.stringify({
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, use_regex: true },
    model: { type: 'BPE', vocab, merges: ['t h', 'th e'] },
  }));
  const run = await runOperator(tokens, { tokenizer: 'tok.json' }, [{ id: 'a', text: 'the theme' }], { baseDir: dir });
  // "the" -> [the]; " theme" -> [Ġ, the, m, e]
  t.equal(run.output[0].token_count, 5);
});

t.test('option and record errors', async (t) => {
  await t.rejects(runOperator(tokens, { mode: 'estimate', tokenizer: 'x.json' }, []), /tokenizer: a tokenizer file is only used in mode "exact"/);
  await t.rejects(runOperator(tokens, { encoding: 'cl99k' }, []), /encoding: expected one of/);
  await t.rejects(runOperator(tokens, { tokenizer: 'does-not-exist.json' }, []), /option tokenizer: .*does-not-exist\.json: cannot read/);
  const run = await runOperator(tokens, {}, [{ id: 'x', text: 5 as unknown as string }, { id: 'y', text: 'ok' }]);
  t.equal(run.output.length, 1);
  t.match(run.errors[0], { reason: 'no_text', id: 'x' });
});

t.test('worker threads give the same counts in the same order as the main thread', async (t) => {
  const many = readJsonl(new URL('../../samples/fortunes.jsonl', import.meta.url)).slice(0, 600);
  const inline = await runOperator(tokens, { workers: 0 }, structuredClone(many), { batchSize: 64 });
  const threaded = await runOperator(tokens, { workers: 2, parallelAfterChars: 5000 }, structuredClone(many), { batchSize: 64 });
  t.same(threaded.output.map((r) => r.id), many.map((r) => r.id));
  t.same(threaded.output.map((r) => r.token_count), inline.output.map((r) => r.token_count));
  t.equal(threaded.counters.counters.tokens, inline.counters.counters.tokens);
});
