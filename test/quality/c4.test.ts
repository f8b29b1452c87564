import t from 'tap';
import { c4 } from '../../lib/quality/c4.ts';
import { resolveRuleOptions } from '../../lib/quality/rules.ts';
import { readJsonl } from '../../lib/testing.ts';

const opts = resolveRuleOptions('c4');
const ev = (text: string, over: Record<string, unknown> = {}) => c4.evaluate(text, { ...opts, ...over } as never);
const good = [
  'The river runs through the valley where farmers built their houses.',
  'In spring the water rises with melting snow from distant mountains.',
  'Children walk to school on the hill beside an old stone mill.',
  'Travellers often stay at inns near the bridge before crossing.',
  'A small market opens every Saturday morning in the square.',
];

t.test('keeps good lines and drops bad ones, rewriting the text', async (t) => {
  const text = [
    'Home | About | Contact',
    good[0],
    'Please enable JavaScript to view the comments.',
    good[1] + '[1]',
    'Read our privacy policy and terms of use.',
    'Too short.',
    good[2],
    'And then it went on...',
    `A line with ${'x'.repeat(1001)} inside.`,
    good[3],
    good[4],
  ].join('\n');
  const r = ev(text);
  t.ok(r.pass, JSON.stringify(r.reasons));
  t.equal(r.text, good.join('\n'));
  t.equal(r.metrics.lines, 11);
  t.equal(r.metrics.lines_kept, 5);
  t.equal(r.metrics.lines_javascript, 1);
  t.equal(r.metrics.lines_policy, 1);
  t.equal(r.metrics.lines_too_few_words, 1);
  t.equal(r.metrics.lines_no_terminal_punc, 2);
  t.equal(r.metrics.lines_too_long_word, 1);
  t.equal(r.metrics.sentences, 5);
});

t.test('document-level drops', async (t) => {
  t.same(ev(good.slice(0, 4).join('\n')).reasons, ['too_few_sentences']);
  t.same(ev([...good, 'Lorem ipsum dolor sit amet, consectetur.'].join('\n')).reasons, ['lorem_ipsum']);
  t.same(ev([...good, 'function f() { return 1; } is a thing.'].join('\n')).reasons, ['curly_bracket']);
  // A curly bracket on a line already dropped for other reasons does not drop the document.
  t.ok(ev([...good, 'if (x) {'].join('\n')).pass);
  t.ok(ev([...good, 'function f() { return 1; } is a thing.'].join('\n'), { filterCurlyBracket: false }).pass);
  t.ok(ev(good.slice(0, 4).join('\n'), { minNumSentences: 4 }).pass);
});

t.test('real text: the handbook loses its navigation lines', async (t) => {
  const hb = readJsonl(new URL('../../samples/handbook.jsonl', import.meta.url));
  let kept = 0;
  for (const r of hb) {
    const res = ev(r.text);
    if (!res.pass) continue;
    kept++;
    t.ok(res.text!.length < r.text.length, r.id);
    t.notOk(res.text!.includes('Download the ebook'));
  }
  t.ok(kept > hb.length / 2);
});
