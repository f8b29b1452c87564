import t from 'tap';
import { findDuplicates, gopherRepetition } from '../../lib/quality/gopher-repetition.ts';
import { resolveRuleOptions } from '../../lib/quality/rules.ts';
import { readJsonl } from '../../lib/testing.ts';

const opts = resolveRuleOptions('gopher-repetition');
const ev = (text: string, over: Record<string, unknown> = {}) => gopherRepetition.evaluate(text, { ...opts, ...over } as never, { firstFailure: true });
const sentences = [
  'The river runs through the valley where farmers built their houses.',
  'In spring the water rises with melting snow from distant mountains.',
  'Children walk to school on the hill beside an old stone mill.',
  'Travellers often stay at inns near the bridge before crossing.',
  'A small market opens every Saturday morning in the square.',
  'Bakers sell bread, cheese and apples grown in nearby orchards.',
  'Evening light turns the western cliffs a deep shade of orange.',
  'Fishermen mend their nets while gulls circle above the harbour.',
];

t.test('findDuplicates counts repeats and their characters', async (t) => {
  t.same(findDuplicates(['ab', 'c', 'ab', 'ab', 'd']), { elements: 2, chars: 4 });
});

t.test('varied text passes', async (t) => {
  const r = gopherRepetition.evaluate(sentences.join('\n\n'), opts as never);
  t.ok(r.pass, JSON.stringify(r));
});

t.test('each rule fails on crafted text', async (t) => {
  const paras = [...sentences.slice(0, 4), sentences[0], sentences[1]].join('\n\n');
  t.same(ev(paras).reasons, ['dup_para_frac']);
  t.same(ev(paras, { dupParaFrac: 0.5 }).reasons, ['dup_para_char_frac']);
  const lines = [...sentences.slice(0, 4), sentences[0], sentences[1]].join('\n');
  t.same(ev(lines).reasons, ['dup_line_frac']);
  t.same(ev(lines, { dupLineFrac: 0.5 }).reasons, ['dup_line_char_frac']);
  const bigram = sentences.join(' ') + ' ' + Array(40).fill('big deal').join(' , ');
  t.same(ev(bigram).reasons, ['top_2_gram']);
  const trigram = sentences.join(' ') + ' ' + Array(20).fill('the deal was').map((s, i) => `${s} ${'abcdefghijklmnopqrstuvwxyz'[i]}`).join(' ');
  t.same(ev(trigram).reasons, ['top_3_gram']);
  const five = sentences.join(' ') + ' ' + sentences.slice(0, 3).join(' ');
  t.same(ev(five, { dupParaCharFrac: 1, dupLineCharFrac: 1 }).reasons, ['duplicated_5_n_grams']);
  // With 5..9 disabled, the 10-gram rule catches the same repetition.
  const disable = [5, 6, 7, 8, 9].map((n) => `duplicated_${n}_n_grams`);
  t.same(ev(five, { disable }).reasons, ['duplicated_10_n_grams']);
});

t.test('metrics are exact on a small example', async (t) => {
  // words: a b c a b c a b c  (len 17 chars)
  const r = gopherRepetition.evaluate('a b c a b c a b c', { ...opts, topNGrams: [[2, 1]], dupNGrams: [[3, 1]] } as never);
  // top 2-gram "a b" x3 = 3 chars * 3 / 17
  t.equal(r.metrics.top_2_gram, 9 / 17);
  // 3-grams: abc (new), bca, cab, abc (dup at 3 -> +3 chars, jump to 6), abc at 6 dup (+3)
  t.equal(r.metrics.duplicated_3_n_grams, 6 / 17);
});

t.test('real text: dictionary entries repeat their headword n-grams', async (t) => {
  const gcide = readJsonl(new URL('../../samples/gcide.jsonl', import.meta.url));
  const fails = gcide.filter((r) => !ev(r.text).pass);
  t.ok(fails.length > 0 && fails.length < gcide.length);
  const kjv = readJsonl(new URL('../../samples/kjv.jsonl', import.meta.url));
  t.ok(kjv.filter((r) => ev(r.text).pass).length / kjv.length > 0.7);
});
