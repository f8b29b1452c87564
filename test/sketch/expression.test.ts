import t from 'tap';
import { compileExpression, ExpressionError } from '../../lib/sketch/expression.ts';

t.test('arithmetic, precedence, functions and fields', async (t) => {
  const rec = { a: 2, b: 3, meta: { q: 0.5 }, flag: true, s: 'x' };
  const ev = (src: string) => compileExpression(src).evaluate(rec);
  t.equal(ev('1 + 2 * 3'), 7);
  t.equal(ev('(1 + 2) * 3'), 9);
  t.equal(ev('2 ^ 3 ^ 2'), 512, 'right-associative power');
  t.equal(ev('-a ^ 2'), -4);
  t.equal(ev('a * b - 10 / 4'), 3.5);
  t.equal(ev('min(a, b, 1) + max(a, b)'), 4);
  t.equal(ev('log(exp(a))'), 2);
  t.equal(ev('sqrt(16) + abs(-1)'), 5);
  t.equal(ev('meta.q * 4'), 2);
  t.equal(ev('flag + 1.5e1'), 16);
  t.same(compileExpression('a * meta.q + a').fields, ['a', 'meta.q']);
});

t.test('missing or non-numeric fields explain themselves per record', async (t) => {
  t.equal(compileExpression('a + zz').evaluate({ a: 1 }), 'field "zz" is missing');
  t.equal(compileExpression('s').evaluate({ s: 'x' }), 'field "s" is "x", not a number');
});

t.test('syntax errors say what and where', async (t) => {
  const bad: [string, RegExp][] = [
    ['', /empty expression/],
    ['1 +', /unexpected end of expression/],
    ['(a + b', /expected "\)"/],
    ['a b', /unexpected "b" at position 3/],
    ['foo(1)', /unknown function "foo"/],
    ['log(1, 2)', /log\(\) takes 1 argument\(s\), got 2/],
    ['a # 2', /unexpected "#"/],
    ['process.exit(1)', /unknown function "process.exit"/],
  ];
  for (const [src, re] of bad) {
    t.throws(() => compileExpression(src), re, src);
    try {
      compileExpression(src);
    } catch (e) {
      t.ok(e instanceof ExpressionError && e.position >= 0, 'an ExpressionError with a position');
    }
  }
});
