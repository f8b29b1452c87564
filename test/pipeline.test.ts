import t from 'tap';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { defaultRegistry } from '../lib/cli.ts';
import { loadPipeline, PipelineError, resolvePipeline } from '../lib/pipeline.ts';
import { ROOT, tmpdir } from './helpers.ts';

const registry = defaultRegistry();

t.test('every error is reported at once, with step index, op and option path', async (t) => {
  const spec = {
    steps: [
      { op: 'normalize', nfkc: 'yes', lowercas: true },
      { op: 'normalise' },
      { op: 'decode' },
      { op: 'normalize', rewrite: 'upper' },
    ],
    extra: 1,
  };
  const err = await resolvePipeline(spec, registry).catch((e) => e);
  t.ok(err instanceof PipelineError);
  const got = (err as PipelineError).errors.map((e) => `${e.step ?? '-'}|${e.op ?? ''}|${e.path}`);
  t.same(got.sort(), ['-||extra', '0|normalize|lowercas', '0|normalize|nfkc', '1|normalise|op', '2|decode|op', '3|normalize|rewrite'].sort());
  const messages = (err as PipelineError).message;
  t.match(messages, /unknown operator "normalise"; did you mean "normalize"/);
  t.match(messages, /lowercas: unknown option; did you mean "lowercase"/);
  t.match(messages, /nfkc: expected boolean, got string "yes"/);
  t.match(messages, /decode reads the inputs, so it can only be the first step/);
});

t.test('errors of a step\'s own check are reported beside its schema errors; a value only one variant could take is faulted within it', async (t) => {
  const spec = { steps: [{ op: 'filter', rules: ['gopher-qualty', { set: 'nope' }, { set: 'c4', minNumSentences: 'x' }, { set: 'gopher-quality', disable: ['bogus_reason'] }, 3] }] };
  const err = await resolvePipeline(spec, registry).catch((e) => e);
  t.ok(err instanceof PipelineError);
  const byPath = Object.fromEntries((err as PipelineError).errors.map((e) => [e.path, e.message]));
  t.same(Object.keys(byPath).sort(), ['rules[0]', 'rules[1].set', 'rules[2].minNumSentences', 'rules[3].disable[0]', 'rules[4]'].sort());
  t.match(byPath['rules[0]'], /^expected one of "gopher-quality" \| .*, got "gopher-qualty"$/);
  t.match(byPath['rules[1].set'], /got "nope"$/);
  t.match(byPath['rules[2].minNumSentences'], /expected integer/);
  t.match(byPath['rules[4]'], /or object, got number 3$/);
});

t.test('a terminal step (partition) must be the last one', async (t) => {
  const err = await resolvePipeline({ steps: [{ op: 'partition', dir: 'out' }, { op: 'normalize' }] }, registry).catch((e) => e);
  t.ok(err instanceof PipelineError);
  t.same((err as PipelineError).errors.map((e) => `${e.step}|${e.op}|${e.path}`), ['0|partition|op']);
  t.match((err as PipelineError).message, /partition writes every record itself and passes none on, so it can only be the last step/);
  const ok = await resolvePipeline({ steps: [{ op: 'normalize' }, { op: 'partition', dir: 'out' }] }, registry);
  t.same(ok.steps.map((s) => s.op), ['normalize', 'partition']);
});

t.test('defaults are filled and decode is implicit', async (t) => {
  const p = await resolvePipeline({ steps: [{ op: 'normalize' }] }, registry);
  t.equal(p.decode.op, 'decode');
  t.equal(p.decode.index, -1);
  t.equal(p.steps[0].options.rewrite, 'clean');
  t.equal(p.decode.options.maxRecordBytes, 64 * 1024 * 1024);
});

t.test('the JSON, YAML and TypeScript forms of the clean pipeline are the same pipeline', async (t) => {
  const forms = await Promise.all(['clean.json', 'clean.yaml', 'clean.ts'].map((f) => loadPipeline(path.join(ROOT, 'pipelines', f), registry)));
  const shape = (p: (typeof forms)[0]) => p.steps.map((s) => [s.descriptor.name, s.options]);
  t.same(shape(forms[0]), shape(forms[1]));
  t.same(shape(forms[0]), shape(forms[2]));
  t.equal(forms[0].steps[1].descriptor.name, 'word-count', 'custom operator loaded by path');
});

t.test('custom operator files: missing file and bad export are validation errors', async (t) => {
  const dir = tmpdir();
  writeFileSync(path.join(dir, 'bad-op.ts'), 'export default { nothing: true };\n');
  writeFileSync(path.join(dir, 'p.json'), JSON.stringify({ steps: [{ op: './missing-op.ts' }, { op: './bad-op.ts' }] }));
  const err = await loadPipeline(path.join(dir, 'p.json'), registry).catch((e) => e);
  t.ok(err instanceof PipelineError);
  t.match(err.message, /custom operator file not found/);
  t.match(err.message, /does not export an operator descriptor/);
});

t.test('unparseable and unknown pipeline files', async (t) => {
  const dir = tmpdir();
  writeFileSync(path.join(dir, 'p.json'), '{"steps": [');
  await t.rejects(loadPipeline(path.join(dir, 'p.json'), registry), /cannot parse JSON/);
  writeFileSync(path.join(dir, 'p.toml'), 'x');
  await t.rejects(loadPipeline(path.join(dir, 'p.toml'), registry), /unknown pipeline file type/);
  await t.rejects(loadPipeline(path.join(dir, 'nope.json'), registry), /not found/);
});
