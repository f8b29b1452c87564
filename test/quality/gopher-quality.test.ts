import t from 'tap';
import { gopherQuality } from '../../lib/quality/gopher-quality.ts';
import { resolveRuleOptions } from '../../lib/quality/rules.ts';
import { readJsonl } from '../../lib/testing.ts';

const opts = resolveRuleOptions('gopher-quality');
const evalText = (text: string, over: Record<string, unknown> = {}) => gopherQuality.evaluate(text, { ...opts, ...over } as never);
const prose =
  'The river runs through the valley and the farmers have built their houses along its banks. ' +
  'In the spring the water rises with the melting snow, and the fields turn green with young wheat. ' +
  'Children walk to the school on the hill, and the old mill still grinds grain for the bakery in town. ' +
  'Travellers who come to the valley often stay with the families who keep the inns near the bridge.';

t.test('well-formed prose passes every rule', async (t) => {
  const r = evalText(prose);
  t.ok(r.pass, JSON.stringify(r));
  t.same(r.reasons, []);
  t.ok(r.metrics.words >= 50);
  t.ok(r.metrics.stop_words >= 2);
});

t.test('each rule fails on crafted text', async (t) => {
  t.same(evalText('The cat and the dog.').reasons, ['gopher_short_doc']);
  t.same(evalText(prose, { maxDocWords: 20 }).reasons, ['gopher_long_doc']);
  t.same(evalText(Array(60).fill('a of is to be').join(' ')).reasons, ['gopher_below_avg_threshold']);
  t.same(evalText(Array(60).fill('the and incomprehensibilities electroencephalographically').join(' ')).reasons, ['gopher_above_avg_threshold']);
  t.same(evalText(prose + ' #tag'.repeat(20), { disable: ['gopher_below_alpha_threshold'] }).reasons.slice(0, 1), ['gopher_too_many_hashes']);
  t.same(evalText(prose + ' and so...'.repeat(20)).reasons.slice(0, 1), ['gopher_too_many_ellipsis']);
  const bullets = Array.from({ length: 20 }, (_, i) => `- the item number ${i} and the thing with a name`).join('\n');
  t.same(evalText(bullets).reasons, ['gopher_too_many_bullets']);
  const ellipses = prose + '\n' + Array.from({ length: 5 }, () => 'and then the river went on and on…').join('\n');
  t.same(evalText(ellipses).reasons, ['gopher_too_many_end_ellipsis']);
  t.same(evalText(prose + ' 12 34 56 78 90 11 22 33 44 55 66 77 88 99 00 13 24 35 46 57'.repeat(1)).reasons, ['gopher_below_alpha_threshold']);
  t.same(evalText(prose.replace(/\b(the|and|have|to|of|with|that|be)\b/g, 'a')).reasons, ['gopher_enough_stop_words']);
});

t.test('all reasons are listed unless firstFailure', async (t) => {
  const text = 'x # # # ... ...';
  const all = gopherQuality.evaluate(text, opts as never);
  const first = gopherQuality.evaluate(text, opts as never, { firstFailure: true });
  t.ok(all.reasons.length > 1);
  t.same(first.reasons, all.reasons.slice(0, 1));
  t.same(gopherQuality.evaluate(text, { ...opts, disable: all.reasons } as never).reasons, []);
});

t.test('real text: scripture passes, one-line fortunes are too short', async (t) => {
  const kjv = readJsonl(new URL('../../samples/kjv.jsonl', import.meta.url));
  const pass = kjv.filter((r) => gopherQuality.evaluate(r.text, opts as never).pass).length;
  t.ok(pass / kjv.length > 0.95, `kjv pass rate ${pass}/${kjv.length}`);
  const fortunes = readJsonl(new URL('../../samples/fortunes.jsonl', import.meta.url));
  const short = fortunes.filter((r) => gopherQuality.evaluate(r.text, opts as never, { firstFailure: true }).reasons[0] === 'gopher_short_doc');
  t.ok(short.length / fortunes.length > 0.8);
  for (const r of short.slice(0, 50)) t.ok(gopherQuality.evaluate(r.text, opts as never).metrics.words < 50);
});
