import t from 'tap';
import normalize from '../../operators/normalize.ts';
import { internals, type Rec } from '../../lib/operator.ts';
import { readJsonl, runOperator } from '../../lib/testing.ts';

t.test('cleans emitted text and keeps a separate hashing form', async (t) => {
  const recs: Rec[] = [{ id: 'a', text: 'Ｔｈｅ  LORD\r\nis my shepherd;\u200b 1611.\n\n\n\nEnd', source: 'kjv' }];
  const { output } = await runOperator(normalize, {}, recs);
  t.equal(output[0].text, 'The LORD\nis my shepherd; 1611.\n\nEnd');
  t.equal(internals(output[0]).hashText, 'the lord is my shepherd 0000 end');
  t.same(Object.keys(output[0]), ['id', 'text', 'source'], 'no fields added, order kept');
});

t.test('rewrite none keeps the text; hashField emits the hashing form', async (t) => {
  const { output } = await runOperator(normalize, { rewrite: 'none', hashField: 'text_hash_form' }, [{ id: 'a', text: 'A  B!' }]);
  t.equal(output[0].text, 'A  B!');
  t.equal(output[0].text_hash_form, 'a b');
});

t.test('a text that is empty after cleaning is dropped with a reason', async (t) => {
  const { output, dropped } = await runOperator(normalize, {}, [{ id: 'z', text: '\u200b\u0000 \n' }, { id: 'ok', text: 'fine' }]);
  t.same(output.map((r) => r.id), ['ok']);
  t.same(dropped.map((d) => d.reason), ['empty_after_normalize']);
});

t.test('real multilingual text: idempotent and never empty', async (t) => {
  const recs = readJsonl(new URL('../../samples/handbook.jsonl', import.meta.url));
  const once = await runOperator(normalize, {}, recs);
  const texts = once.output.map((r) => r.text);
  const twice = await runOperator(normalize, {}, once.output.map((r) => ({ ...r })));
  t.same(twice.output.map((r) => r.text), texts);
  t.ok(texts.every((x) => x.length > 0 && !/\r|\u200b| {2}/.test(x)));
});
