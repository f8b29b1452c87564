import t from 'tap';
import { readFileSync } from 'node:fs';
import { hashForm, normalizeText } from '../../lib/text/normalize.ts';

t.test('normalizeText cleans controls, whitespace, BOM and line ends', async (t) => {
  t.equal(normalizeText('\ufeffa\u0000b  c\r\n\r\n\r\n\r\nd \t e  '), 'ab c\n\nd e');
  t.equal(normalizeText('ﬁne ＡＢＣ'), 'fine ABC', 'NFKC folds ligatures and full-width forms');
  t.equal(normalizeText('a  b', { whitespace: false, lines: false }), 'a  b');
});

t.test('hashForm folds case, punctuation and digits for ASCII and non-ASCII alike', async (t) => {
  t.equal(hashForm('Hello, World! In 1999  the END.'), 'hello world in 0000 the end');
  t.equal(hashForm('Ｈｅｌｌｏ — Straße 42, «quote»'), 'hello straße 00 quote');
  t.equal(hashForm('Hello, World!', { lowercase: false }), 'Hello World');
  // The ASCII fast path and the general path agree.
  const ascii = 'The LORD is my shepherd; I shall not want. (Psalm 23:1)';
  t.equal(hashForm(ascii), hashForm(ascii + ' é').slice(0, -2));
});

t.test('on real text the hashing form is idempotent', async (t) => {
  const text = readFileSync(new URL('../../samples/handbook.jsonl', import.meta.url), 'utf8').split('\n').slice(0, 50).join('\n');
  const once = hashForm(text);
  t.equal(hashForm(once), once);
  t.notMatch(once, /[A-Z.,;:!?]/);
});
