import t from 'tap';
import { readFileSync } from 'node:fs';
import { HASH_INVISIBLE, HASH_INVISIBLE_ASTRAL, hashForm, normalizeText } from '../../lib/text/normalize.ts';

t.test('normalizeText cleans controls, whitespace, BOM and line ends', async (t) => {
  t.equal(normalizeText('\ufeffa\u0000b  c\r\n\r\n\r\n\r\nd \t e  '), 'ab c\n\nd e');
  t.equal(normalizeText('ﬁne ＡＢＣ'), 'fine ABC', 'NFKC folds ligatures and full-width forms');
  t.equal(normalizeText('a  b', { whitespace: false, lines: false }), 'a  b');
  t.equal(normalizeText('alpha\fbeta\x0bgamma\u0085delta'), 'alpha\nbeta\ngamma\ndelta', 'form feed, vertical tab and NEL break lines, they do not join words');
});

t.test('normalizeText keeps the invisible characters that carry meaning', async (t) => {
  t.equal(normalizeText('می\u200cخواهم بسته\u200cها'), 'می\u200cخواهم بسته\u200cها', 'ZWNJ: Persian spelling');
  t.equal(normalizeText('👨\u200d👩\u200d👧'), '👨\u200d👩\u200d👧', 'ZWJ: one emoji');
  t.equal(normalizeText('abc \u200fשלום\u200e def'), 'abc \u200fשלום\u200e def', 'bidirectional marks: display of mixed scripts');
  t.equal(normalizeText('zero\u200bwidth soft\u00adhyphen\u2060joiner'), 'zerowidth softhyphenjoiner');
  t.equal(hashForm('می\u200cخواهم \u200fשלום\u200e 👨\u200d👩'), 'میخواهم שלום', 'the hashing form drops them all (and the emoji, a symbol)');
  t.equal(hashForm('I love it \u2764\ufe0f so much'), hashForm('I love it \u2764 so much'), 'an emoji presentation selector leaves no word behind');
  t.equal(hashForm('I love it \u2764\ufe0f so much'), 'i love it so much');
});

t.test('hashForm folds case, punctuation and digits for ASCII and non-ASCII alike', async (t) => {
  t.equal(hashForm('Hello, World! In 1999  the END.'), 'hello world in 0000 the end');
  t.equal(hashForm('Ｈｅｌｌｏ — Straße 42, «quote»'), 'hello straße 00 quote');
  t.equal(hashForm('Hello, World!', { lowercase: false }), 'Hello World');
  // The ASCII fast path and the general path agree.
  const ascii = 'The LORD is my shepherd; I shall not want. (Psalm 23:1)';
  t.equal(hashForm(ascii), hashForm(ascii + ' é').slice(0, -2));
  // ... also on controls other than whitespace, which both drop (words join across them).
  const controls = 'whether I\bI win\x01 or\x7flose\x1f.\ttab';
  t.equal(hashForm(controls), 'whether ii win orlose tab');
  t.equal(hashForm(controls), hashForm(controls + ' é').slice(0, -2));
  t.equal(hashForm(controls, { foldPunctuation: false }), hashForm(controls + ' é', { foldPunctuation: false }).slice(0, -2));
});

t.test('Turkish upper- and lower-case copies hash alike: İ (i + dot above once lowercased) and dotless ı fold to i', async (t) => {
  const upper = 'İSTANBUL BÜYÜK BİR ŞEHİR, KAPISI AÇIK';
  const lower = 'istanbul büyük bir şehir, kapısı açık';
  t.equal(hashForm(upper), 'istanbul büyük bir şehir kapisi açik');
  t.equal(hashForm(upper), hashForm(lower));
  t.notMatch(hashForm(upper), /\u0307|\u0131/u, 'no combining dot, no dotless i');
  t.equal(hashForm(upper, { lowercase: false }), 'İSTANBUL BÜYÜK BİR ŞEHİR KAPISI AÇIK', 'without lowercase nothing is folded');
  t.equal(hashForm('ė ï'), 'ė ï', 'other letters with dots keep them');
});

t.test('on real text the hashing form is idempotent', async (t) => {
  const text = readFileSync(new URL('../../samples/handbook.jsonl', import.meta.url), 'utf8').split('\n').slice(0, 50).join('\n');
  const once = hashForm(text);
  t.equal(hashForm(once), once);
  t.notMatch(once, /[A-Z.,;:!?]/);
});

t.test('the hashing form drops exactly the controls other than whitespace, the format characters (Cf) and the variation selectors of this Unicode', async (t) => {
  const expected = /^[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\p{Cf}\p{Variation_Selector}]$/u;
  const wrong: string[] = [];
  for (let c = 0; c <= 0x10ffff; c++) {
    if (c >= 0xd800 && c <= 0xdfff) continue;
    const ch = String.fromCodePoint(c);
    const dropped = ch.replace(HASH_INVISIBLE, '').replace(HASH_INVISIBLE_ASTRAL, '') === '';
    if (dropped !== expected.test(ch)) wrong.push(c.toString(16));
  }
  t.same(wrong, [], `Unicode ${process.versions.unicode}`);
});

t.test('a long text cleaned and hashed piece by piece gives exactly the whole-text result', async (t) => {
  // Real text of many scripts plus the cases at piece edges: CRLF, runs of spaces and newlines
  // across a cut, final sigma, Turkish I, combining marks after a space, controls, invisible and
  // astral format characters, punctuation and digits, and a long run without any cut point.
  const real = ['handbook.jsonl', 'fortunes.jsonl', 'kjv.jsonl']
    .flatMap((f) => readFileSync(new URL(`../../samples/${f}`, import.meta.url), 'utf8').split('\n').slice(0, 40))
    .filter(Boolean)
    .map((l) => JSON.parse(l).text as string);
  const edges = ['ΟΔΟΣ ΚΑΙ ΛΟΓΟΣ.', 'İSTANBUL ıı', ' \u0301x \u00b4y', 'a\r\nb\r\n\r\n\r\n\r\nc', '  \t  x  \u3000 \u00a0 y   ', '\x01\x02ab\x7f\u0085c', '\u200bz\ufeff \ufe0f\u2764\ufe0f', '\ud834\udd73q\udb40\udc20r', 'Ein 1999 ünd 2024!!! ???', 'x'.repeat(300), '\n\n\n\n', '   '];
  let seed = 7;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const texts: string[] = [];
  for (let k = 0; k < 60; k++) {
    const parts: string[] = [];
    for (let i = 0; i < 12; i++) parts.push(rnd() < 0.5 ? edges[Math.floor(rnd() * edges.length)] : real[Math.floor(rnd() * real.length)]);
    texts.push(parts.join(['', ' ', '\n', '\n\n\n', '  '][Math.floor(rnd() * 5)]));
  }
  texts.push('plain ascii text only, with 42 digits and punctuation... ' + 'ok '.repeat(200), '\x01ascii\x02with controls ' + ' a\x03b '.repeat(50));
  let compared = 0;
  for (const text of texts) {
    for (const size of [1, 7, 64, 500]) {
      for (const o of [{}, { lines: false }, { whitespace: false }, { nfkc: false, controls: false }]) {
        if (normalizeText(text, o, size) !== normalizeText(text, o, Infinity)) return t.fail(`normalizeText ${JSON.stringify(o)} in pieces of ${size} differs on ${JSON.stringify(text.slice(0, 80))}`);
      }
      const cleaned = normalizeText(text);
      for (const input of [text, cleaned]) {
        for (const o of [{}, { lowercase: false }, { foldPunctuation: false }, { foldDigits: false }]) {
          if (hashForm(input, o, size) !== hashForm(input, o, Infinity)) return t.fail(`hashForm ${JSON.stringify(o)} in pieces of ${size} differs on ${JSON.stringify(input.slice(0, 80))}`);
          compared++;
        }
      }
    }
  }
  t.ok(compared > 1000, `${compared} hashing forms compared`);
});
