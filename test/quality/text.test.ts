import t from 'tap';
import { countSentences, cpLength, endsWithTerminal, hasAlpha, isSymbolWord, pySplit, pyStrip, splitLines, splitWords } from '../../lib/quality/text.ts';

t.test('splitWords splits punctuation like a Treebank tokenizer', async (t) => {
  t.same(splitWords('Hello, world. "Don\'t" go (there) -- it\'s 3.14 and 1,000 U.S. e.g., #tag wait...what? The end.'), [
    'Hello', ',', 'world', '.', '``', 'Do', "n't", "''", 'go', '(', 'there', ')', '--', 'it', "'s", '3.14', 'and', '1,000', 'U.S', '.', 'e.g.', ',', '#', 'tag', 'wait', '...', 'what', '?', 'The', 'end', '.',
  ]);
  t.same(splitWords('  well-known\tfoo\n\nbar  '), ['well-known', 'foo', 'bar']);
  t.same(splitWords('Größe: 10 €; «Mañana»!'), ['Größe', ':', '10', '€', ';', '«', 'Mañana', '»', '!']);
  t.same(splitWords(''), []);
  // Punkt-style sentence ends: numbers and initials keep their period before a lowercase word.
  t.same(splitWords('n. 1. a game. It is J. Doe. Version 12.1. Next'), ['n', '.', '1.', 'a', 'game', '.', 'It', 'is', 'J.', 'Doe', '.', 'Version', '12.1', '.', 'Next']);
  t.same(splitWords('https://x.org/a b, regexp:/etc 10:30 --- x ----'), ['https', ':', '//x.org/a', 'b', ',', 'regexp', ':', '/etc', '10:30', '--', '-', 'x', '--', '--']);
});

t.test('character classes', async (t) => {
  t.ok(isSymbolWord('...'));
  t.ok(isSymbolWord('«'));
  t.ok(isSymbolWord('--'));
  t.notOk(isSymbolWord('a.'));
  t.notOk(isSymbolWord('42'));
  t.notOk(isSymbolWord('Überall'));
  t.ok(hasAlpha('x1'));
  t.ok(hasAlpha('ж'));
  t.notOk(hasAlpha('1984'));
  t.notOk(hasAlpha('...'));
  t.equal(cpLength('a😀b'), 3);
  t.ok(endsWithTerminal('end.'));
  t.ok(endsWithTerminal('終わり。'));
  t.notOk(endsWithTerminal('end,'));
});

t.test('Python string semantics', async (t) => {
  t.same(splitLines('a\nb\r\nc\rd\u2028e\n'), ['a', 'b', 'c', 'd', 'e']);
  t.same(splitLines('a\n\nb'), ['a', '', 'b']);
  t.same(splitLines(''), []);
  t.equal(pyStrip('\u00a0 x y \t\n'), 'x y');
  t.same(pySplit('  a  b\tc '), ['a', 'b', 'c']);
});

t.test('countSentences', async (t) => {
  t.equal(countSentences('One. Two! Three? Four.'), 4);
  t.equal(countSentences('Mr. Smith met J. Doe. Then they left.'), 3);
  t.equal(countSentences('I think... I think it is 1. a thing. Yes!! No? ok'), 4);
  t.equal(countSentences('"Go." He went.'), 2);
  t.equal(countSentences(''), 0);
});
