import t from 'tap';
import { fineweb } from '../../lib/quality/fineweb.ts';
import { resolveRuleOptions } from '../../lib/quality/rules.ts';
import { readJsonl } from '../../lib/testing.ts';

const opts = resolveRuleOptions('fineweb');
const ev = (text: string, over: Record<string, unknown> = {}) => fineweb.evaluate(text, { ...opts, ...over } as never, { firstFailure: true });
const para = 'The river runs through the valley where farmers built their houses, and in spring the water rises with melting snow from distant mountains.';

t.test('prose passes', async (t) => {
  const r = fineweb.evaluate([para, para.replace('river', 'stream')].join('\n'), opts as never);
  t.ok(r.pass, JSON.stringify(r));
  t.equal(r.metrics.line_punct_ratio, 1);
});

t.test('each rule fails on crafted text', async (t) => {
  t.same(ev(' \n\t\n').reasons, ['empty']);
  const noPunct = Array.from({ length: 10 }, (_, i) => `${para.slice(0, -1)} number ${i}`).join('\n');
  t.same(ev(noPunct).reasons, ['line_punct_ratio']);
  t.ok(ev(noPunct.replace(/ number \d/g, (m) => m), { lineEndPunctExcludeZero: true }).reasons[0] !== 'line_punct_ratio');
  const menu = ['Home.', 'About us.', 'Contact.', 'News.', para].join('\n');
  t.same(ev(menu).reasons, ['short_line_ratio']);
  const dup = [para, para.replace('river', 'road'), 'Short repeated line here.', 'Short repeated line here.'].join('\n');
  t.same(ev(dup).reasons, ['char_dup_ratio']);
  const list = Array.from({ length: 12 }, (_, i) => `Item ${i} is good.`).join('\n\n');
  t.same(ev(list, { shortLineRatio: 1 }).reasons, ['list_ratio']);
});

t.test('custom stop characters', async (t) => {
  const text = Array.from({ length: 5 }, (_, i) => `${para.slice(0, -1)} ${i};`).join('\n');
  t.same(ev(text).reasons, ['line_punct_ratio']);
  t.ok(ev(text, { stopChars: [';'] }).pass);
});

t.test('real text: scripture passes, dictionary entries are often lists', async (t) => {
  const kjv = readJsonl(new URL('../../samples/kjv.jsonl', import.meta.url));
  t.ok(kjv.filter((r) => ev(r.text).pass).length / kjv.length > 0.8);
  const gcide = readJsonl(new URL('../../samples/gcide.jsonl', import.meta.url));
  const reasons = new Set(gcide.map((r) => ev(r.text).reasons[0]).filter(Boolean));
  t.ok(reasons.has('short_line_ratio') || reasons.has('char_dup_ratio'));
});
