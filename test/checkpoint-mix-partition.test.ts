// `mix` (a source step) and `partition` (a step that writes files itself) under --checkpoint:
// killed with SIGKILL (and once with SIGTERM) at random points and rerun until done, the output
// equals an uninterrupted run's byte for byte.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { compress as zstdCompress } from 'zstd-napi';
import { defaultRegistry } from '../lib/cli.ts';
import { resolvePipeline } from '../lib/pipeline.ts';
import { startRun } from '../lib/run.ts';
import { OWNER_FILE } from '../operators/partition.ts';
import { BIN, bibleAndQuotesMix, partsOutput, runUntilKilled, SAMPLES, tmpdir } from './helpers.ts';

const dir = tmpdir();

// Sources of real text in several files and compressions, with bad lines. The bible's size is
// given (no counting pass), so its bad lines are met while mixing, between checkpoints.
const nd = (lines: string[]) => lines.join('\n') + '\n';
const sample = (f: string) => readFileSync(path.join(SAMPLES, f), 'utf8').trim().split('\n');
{
  const kjv = sample('kjv.jsonl');
  writeFileSync(path.join(dir, 'kjv-0.jsonl'), nd([...kjv.slice(0, 50), '{"id":"bad-a", "text": ', ...kjv.slice(50, 100)]));
  writeFileSync(path.join(dir, 'kjv-1.jsonl.zst'), zstdCompress(Buffer.from(nd([...kjv.slice(100, 120), '[]', ...kjv.slice(120)]))));
  writeFileSync(path.join(dir, 'gcide.jsonl.gz'), gzipSync(nd(sample('gcide.jsonl'))));
  const fortunes = sample('fortunes.jsonl');
  writeFileSync(path.join(dir, 'fortunes.jsonl'), nd([...fortunes.slice(0, 1000), 'not json', ...fortunes.slice(1000)]));
}
const kjvTokens = 157_798;

function mixStep(batchSize: number) {
  return {
    op: 'mix',
    sources: [
      { name: 'bible', paths: [path.join(dir, 'kjv-*')], share: 0.4, tokens: kjvTokens },
      { name: 'dict', paths: [path.join(dir, 'gcide.jsonl.gz')], share: 0.25 },
      { name: 'quotes', paths: [path.join(dir, 'fortunes.jsonl')], share: 0.35 },
    ],
    totalTokens: 300_000,
    seed: 7,
    batchSize,
  };
}

/** A run directory: the pipeline file sits in it, so partition's `dir: "out"` is the same directory as `-o out/`. */
function setup(name: string, steps: unknown[]): string[] {
  const base = path.join(dir, name);
  mkdirSync(base, { recursive: true });
  writeFileSync(path.join(base, 'p.json'), JSON.stringify({ steps }));
  return ['run', path.join(base, 'p.json'), '-o', path.join(base, 'out'), '--checkpoint', path.join(base, 'ckpt'), '--errors', path.join(base, 'errors.jsonl'), '--report', path.join(base, 'report.json')];
}

function withInterval(a: string[], seconds: number): string[] {
  return [...a, '--checkpoint-interval', String(seconds)];
}

/** Every file of a run's output directory (path -> content; parts decompressed and joined, the manifest without its time). */
function outputOf(base: string): Record<string, string> {
  const out: Record<string, string> = {};
  const root = path.join(base, 'out');
  const files = (readdirSync(root, { recursive: true, encoding: 'utf8' }) as string[]).filter((f) => statSync(path.join(root, f)).isFile()).sort();
  out.parts = partsOutput(root);
  for (const f of files) {
    if (/^part-\d+\.jsonl\.zst$/.test(f)) continue;
    if (f === 'manifest.json') {
      const m = JSON.parse(readFileSync(path.join(root, f), 'utf8'));
      delete m.created;
      out[f] = JSON.stringify(m, null, 1);
    } else out[f] = readFileSync(path.join(root, f)).toString('base64');
  }
  return out;
}

const reportOf = (base: string) =>
  JSON.parse(readFileSync(path.join(base, 'report.json'), 'utf8')).steps.map((x: any) => [x.op, x.recordsIn, x.recordsOut, x.dropped, x.errors, x.counters]);

/** Runs `mixstream <args>` to completion without blocking the test (the reference runs beside the killed ones). */
function runToEnd(a: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...a], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

/** Kills the same command at seeded random moments (the signals in order), then lets it finish. */
async function killAndRerun(a: string[], base: string, signals: NodeJS.Signals[], seed: number) {
  let s = seed;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const codes: (number | null)[] = [];
  for (let attempt = 0; attempt < signals.length + 20; attempt++) {
    const signal = signals[codes.length];
    const code = await runUntilKilled(a, path.join(base, 'ckpt'), signal ? Math.floor(rand() * 40) : 1e9, signal ?? 'SIGKILL');
    codes.push(code);
    if (code !== null && code !== 143) break;
  }
  return codes;
}

const scenarios = [
  {
    name: 'mix into output parts',
    steps: [mixStep(50), { op: 'normalize' }],
    signals: ['SIGKILL', 'SIGKILL', 'SIGKILL'] as NodeJS.Signals[],
  },
  {
    name: 'mix into partition (same directory as -o)',
    steps: [mixStep(64), { op: 'tokens', mode: 'estimate' }, { op: 'partition', dir: 'out', by: ['mix_source'], unitTokens: 20_000, maxShardBytes: 16_000, frameBytes: 8192, maxOpenPartitions: 2 }],
    signals: ['SIGKILL', 'SIGTERM', 'SIGKILL'] as NodeJS.Signals[],
  },
];

for (const [i, sc] of scenarios.entries()) {
  t.test(`${sc.name}: killed at random points and rerun, the output equals an uninterrupted run's`, async (t) => {
    const refBase = path.join(dir, `reference-${i}`);
    const reference = runToEnd(withInterval(setup(`reference-${i}`, sc.steps), 3600));
    const base = path.join(dir, `killed-${i}`);
    const a = withInterval(setup(`killed-${i}`, sc.steps), 0.02);
    const codes = await killAndRerun(a, base, sc.signals, 1000 + i);
    const ref = await reference;
    t.equal(ref.code, 3, `reference run: bad lines seen (${ref.stderr.slice(-400)})`);
    const want = outputOf(refBase);
    const errors = readFileSync(path.join(refBase, 'errors.jsonl'), 'utf8');
    t.equal(errors.trim().split('\n').length, 3, 'the three bad lines');

    const interrupted = codes.filter((c) => c === null || c === 143).length;
    t.ok(interrupted >= 3, `interrupted ${interrupted} times (${codes.join(', ')})`);
    t.equal(codes[codes.length - 1], 3, 'the last run finishes like the reference');
    if (sc.signals.includes('SIGTERM')) t.ok(codes.includes(143), 'SIGTERM: drained, checkpointed, exited 143; the files it left were taken back');
    const history = readFileSync(path.join(base, 'ckpt', 'history.jsonl'), 'utf8').trim().split('\n');
    t.ok(history.length > 5, `${history.length} checkpoints`);
    const got = outputOf(base);
    t.same(Object.keys(got), Object.keys(want), 'the same files');
    for (const f of Object.keys(want)) t.ok(got[f] === want[f], `${f} identical`);
    t.ok(want.parts.length > 0 || 'manifest.json' in want, 'something was written');
    t.equal(readFileSync(path.join(base, 'errors.jsonl'), 'utf8'), errors, 'each bad line reported once');
    t.same(reportOf(base), reportOf(refBase), 'the report counts every record once across the resumed runs');
    t.notOk(existsSync(path.join(base, 'out', OWNER_FILE)), 'no owner mark left in a finished directory');
  });
}

t.test('stopped (as by SIGTERM) right after each resume: every run hands on one batch and checkpoints it; the output equals an uninterrupted run\'s', async (t) => {
  const base = path.join(dir, 'stopped-each-run');
  mkdirSync(base, { recursive: true });
  const pipeline = await resolvePipeline({ steps: [{ op: 'mix', ...bibleAndQuotesMix() }] }, defaultRegistry());
  const run = (name: string, stopAtOnce: boolean) => {
    const handle = startRun({ pipeline, output: path.join(base, name, 'out'), checkpoint: path.join(base, name, 'ckpt'), checkpointIntervalSec: 3600, log: () => {} });
    if (stopAtOnce) handle.stop();
    return handle.done;
  };
  const reference = await run('reference', false);
  t.equal(reference.status, 'ok');
  const statuses: string[] = [];
  for (let k = 0; k < 15; k++) statuses.push((await run('stopped', true)).status);
  t.same(new Set(statuses), new Set(['interrupted']), 'every stopped run checkpointed and ended interrupted');
  const last = await run('stopped', false);
  t.equal(last.status, 'ok');
  const history = readFileSync(path.join(base, 'stopped', 'ckpt', 'history.jsonl'), 'utf8').trim().split('\n');
  t.equal(history.length, 16, 'one checkpoint per stopped run, and the final one');
  t.ok(partsOutput(path.join(base, 'stopped', 'out')) === partsOutput(path.join(base, 'reference', 'out')), 'the same documents in the same order');
  t.same(last.steps[1].counters, reference.steps[1].counters, 'the same counts per source');
});

t.test('partition with upsampleTo is refused by --checkpoint (its end-of-input upsampling does not resume exactly)', async (t) => {
  const a = withInterval(setup('upsample', [mixStep(64), { op: 'tokens', mode: 'estimate' }, { op: 'partition', dir: 'out', by: ['mix_source'], unitTokens: 20_000, upsampleTo: 4 }]), 0.02);
  const r = await runToEnd(a);
  t.equal(r.code, 2, 'a usage error');
  t.match(r.stderr, /\(partition\) keeps state across records but cannot checkpoint it/);
});
