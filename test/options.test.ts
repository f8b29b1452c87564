import t from 'tap';
import { validateOptions, closest, type OptionSchema, type OptionError } from '../lib/options.ts';

const schema: OptionSchema = {
  threshold: { type: 'number', description: 'Jaccard threshold', default: 0.85, min: 0, max: 1 },
  perms: { type: 'integer', description: 'permutations', default: 128, min: 1 },
  keep: { type: 'string', description: 'keep rule', enum: ['first', 'priority'], default: 'first' },
  priority: { type: 'array', description: 'order', items: { type: 'string', description: 'name' } },
};

t.test('fills defaults and keeps given values', async (t) => {
  const errors: OptionError[] = [];
  const out = validateOptions({ perms: 64 }, schema, errors);
  t.same(errors, []);
  t.same(out, { perms: 64, threshold: 0.85, keep: 'first' });
});

t.test('collects every error at once with option paths', async (t) => {
  const errors: OptionError[] = [];
  validateOptions({ threshhold: 0.8, perms: 1.5, keep: 'last', priority: ['a', 3] }, schema, errors);
  const paths = errors.map((e) => e.path).sort();
  t.same(paths, ['keep', 'perms', 'priority[1]', 'threshhold']);
  t.match(errors.find((e) => e.path === 'threshhold')!.message, /did you mean "threshold"/);
  t.match(errors.find((e) => e.path === 'perms')!.message, /expected integer/);
  t.match(errors.find((e) => e.path === 'keep')!.message, /"first" \| "priority"/);
});

t.test('range errors name the range', async (t) => {
  const errors: OptionError[] = [];
  validateOptions({ threshold: 1.5 }, schema, errors);
  t.match(errors[0].message, /out of range.*<= 1.*1\.5/);
});

t.test('closest suggests near names', async (t) => {
  t.same(closest('minhsh', ['minhash', 'shingle', 'normalize']), ['minhash']);
  t.same(closest('zzzzzzzzzz', ['minhash']), []);
});

t.test('null, NaN and infinities are named as such; empty field names and repeated list values are refused', async (t) => {
  const errors: OptionError[] = [];
  const fields: OptionSchema = {
    ...schema,
    priority: { type: 'array', description: 'order', items: { type: 'string', description: 'name' }, unique: true },
    field: { type: 'string', description: 'an output field', nonEmpty: true },
  };
  validateOptions({ threshold: null, perms: Number.NaN, keep: Number.POSITIVE_INFINITY, priority: ['a', 'b', 'a'], field: '' }, fields, errors);
  const byPath = Object.fromEntries(errors.map((e) => [e.path, e.message]));
  t.equal(byPath.threshold, 'expected number (>= 0, <= 1), got null');
  t.equal(byPath.perms, 'expected integer (>= 1), got number NaN');
  t.equal(byPath.keep, 'expected "first" | "priority", got number Infinity');
  t.equal(byPath['priority[2]'], '"a" is listed already (priority[0]); list each value once');
  t.equal(byPath.field, 'expected a non-empty string, got ""');
  t.equal(errors.length, 5);
});
