// Benchmark: exact-dedup on real text (Debian handbook, KJV, GCIDE, fortunes) with copies that
// are identical or differ in case/spacing. Throughput (docs/s, MB/s of text) and the memory of
// the set of seen documents, beside the naive baseline: a JS Set of SHA-1 hex strings on the
// same records in the same run. Records are parsed before timing: this measures dedup only.
//
//   npx tsx bench/exact-dedup.ts [--quick]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { all } from './corpus.ts';
import { machine } from './machine.ts';
import { createStepContext } from '../lib/context.ts';
import type { Rec } from '../lib/operator.ts';
import { validateOptions } from '../lib/options.ts';
import { hashForm } from '../lib/text/normalize.ts';
import exactDedup from '../operators/exact-dedup.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  // Memory is measured after full collections: run again with --expose-gc.
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

// --- data: every document of the corpus (--quick: every 6th), then a copy of every 5th one,
// 50 documents later: identical, UPPER-CASED, or with doubled spaces, in turn.
const dataDir = path.join(here, 'data');
mkdirSync(dataDir, { recursive: true });
const dataFile = path.join(dataDir, `exact-dedup${quick ? '-quick' : ''}.jsonl`);
if (!existsSync(dataFile)) {
  const out: string[] = [];
  const pending = new Map<number, Rec>();
  let n = 0, i = 0;
  for (const d of all()) {
    if (quick && n++ % 6) continue;
    out.push(JSON.stringify(d));
    const due = pending.get(i);
    if (due) out.push(JSON.stringify(due)), pending.delete(i);
    if (i % 5 === 0) {
      const kind = (i / 5) % 3;
      const text = kind === 0 ? d.text : kind === 1 ? d.text.toUpperCase() : d.text.replace(/ /g, '  ');
      pending.set(i + 50, { ...d, id: `${d.id}#copy${kind}`, text });
    }
    i++;
  }
  for (const r of pending.values()) out.push(JSON.stringify(r));
  writeFileSync(dataFile, out.join('\n') + '\n');
}
const records: Rec[] = readFileSync(dataFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const textMB = records.reduce((a, r) => a + Buffer.byteLength(r.text), 0) / 1e6;
process.stderr.write(`${records.length} records, ${textMB.toFixed(1)} MB of text\n`);

/** Bytes in ArrayBuffers (exact-dedup's typed arrays) or on the JS heap (the Set and its strings), after full GCs. */
function memNow(kind: 'arrayBuffers' | 'heapUsed'): number {
  gc!();
  gc!();
  return process.memoryUsage()[kind];
}

interface Result {
  name: string;
  kept: number;
  unique: number;
  secs: number;
  memMB: number;
  note?: string;
}

async function ours(name: string, options: Record<string, unknown>, limit = records.length): Promise<Result> {
  const recs = records.slice(0, limit).map((r) => ({ ...r }));
  const opts = validateOptions(options, exactDedup.options, []);
  const tmp = mkdtempSync(path.join(tmpdir(), 'exact-dedup-bench-'));
  const ctx = createStepContext({ op: 'exact-dedup', tmpDir: tmp, log: () => {} });
  const base = memNow('arrayBuffers');
  const step = await exactDedup.create(opts as never, ctx);
  let kept = 0;
  const t = performance.now();
  for (let i = 0; i < recs.length; i += 256) kept += (await step.process(recs.slice(i, i + 256))).length;
  const secs = (performance.now() - t) / 1000;
  const memMB = (memNow('arrayBuffers') - base) / 2 ** 20;
  const file = path.join(tmp, 'exact-dedup', 'exact-dedup.mdb');
  const note = existsSync(file) ? `${ctx.counters.counters.spills} spills, LMDB file ${(statSync(file).size / 2 ** 20).toFixed(1)} MB` : undefined;
  await step.close?.();
  rmSync(tmp, { recursive: true, force: true });
  return { name, kept, unique: ctx.counters.counters.unique, secs, memMB, note };
}

function baseline(name: string, key: (r: Rec) => string, limit = records.length): Result {
  const base = memNow('heapUsed');
  const seen = new Set<string>();
  let kept = 0;
  const t = performance.now();
  for (let i = 0; i < limit; i++) {
    const r = records[i];
    const h = createHash('sha1').update(key(r)).digest('hex');
    if (seen.has(h)) continue;
    seen.add(h);
    kept++;
  }
  const secs = (performance.now() - t) / 1000;
  const memMB = (memNow('heapUsed') - base) / 2 ** 20;
  if (seen.size !== kept) throw new Error('unreachable');
  return { name, kept, unique: seen.size, secs, memMB };
}

const results: Result[] = [];
// Warm-up (JIT) on the first records, untimed.
await ours('warm-up', { on: 'text', emit: 'all' }, 5000);
await ours('warm-up', {}, 5000);
baseline('warm-up', (r) => hashForm(r.text), 5000);
const reps = quick ? 2 : 3;
for (let rep = 0; rep < reps; rep++) {
  // Alternate, so that load from other processes on the machine hits both sides alike; keep the best.
  const round = [
    await ours('exact-dedup on: text', { on: 'text' }),
    baseline('Set of SHA-1 hex (text)', (r) => r.text),
    await ours('exact-dedup on: hash-form', {}),
    baseline('Set of SHA-1 hex (hashForm(text))', (r) => hashForm(r.text)),
    await ours('exact-dedup on: text, emit: all (ids kept)', { on: 'text', emit: 'all' }),
    await ours('exact-dedup on: text, memoryMB: 1 (LMDB spill)', { on: 'text', memoryMB: 1 }),
  ];
  for (const r of round) {
    const prev = results.find((x) => x.name === r.name);
    if (!prev) results.push(r);
    else if (r.secs < prev.secs) Object.assign(prev, r);
  }
}

const check = (a: string, b: string) => {
  const x = results.find((r) => r.name === a)!, y = results.find((r) => r.name === b)!;
  if (x.kept !== y.kept) throw new Error(`${a} kept ${x.kept}, ${b} kept ${y.kept}`);
  return y.secs / x.secs;
};
const speedText = check('exact-dedup on: text', 'Set of SHA-1 hex (text)');
const speedHash = check('exact-dedup on: hash-form', 'Set of SHA-1 hex (hashForm(text))');
check('exact-dedup on: text', 'exact-dedup on: text, memoryMB: 1 (LMDB spill)');
const memText = results.find((r) => r.name === 'Set of SHA-1 hex (text)')!.memMB / results.find((r) => r.name === 'exact-dedup on: text')!.memMB;

const rows = results.map((r) =>
  `| ${r.name} | ${r.kept} | ${(records.length / r.secs / 1000).toFixed(1)}k | ${(textMB / r.secs).toFixed(0)} | ${r.memMB.toFixed(1)} | ${((r.memMB * 2 ** 20) / r.unique).toFixed(0)} | ${r.note ?? ''} |`,
);
const md = `## exact-dedup${quick ? ' (--quick)' : ''}

\`npx tsx bench/exact-dedup.ts${quick ? ' --quick' : ''}\` on ${machine()}.
The machine was shared with other jobs during the run (load varied); each row is the best of ${reps} alternating round(s).

Data: ${records.length} records, ${textMB.toFixed(1)} MB of text (bench/corpus.ts: handbook in 26 languages, KJV, GCIDE, fortunes${quick ? ', every 6th document' : ''}), plus a copy of every 5th document 50 records later: identical, upper-cased or with doubled spaces in turn. Records are parsed before timing (dedup only, one thread). Memory after full GCs: for exact-dedup the ArrayBuffers of its RAM tier (table, ids; the spilled keys are in the LMDB file), for the baseline the JS heap held by the Set and its strings.

| method | emitted | docs/s | MB/s | memory MB | bytes / unique doc | notes |
|---|---|---|---|---|---|---|
${rows.join('\n')}

- Same keep decisions as the baseline in both modes (checked in the run). Speed vs the SHA-1 Set: **${speedText.toFixed(2)}x** on the text, **${speedHash.toFixed(2)}x** on the hashing form (where \`hashForm\` dominates both).
- Memory vs the SHA-1 Set: **${memText.toFixed(1)}x less** for the seen-set (16-byte keys in a table kept at most 70% full and grown by doubling, against a 40-character string plus a Set entry per document). The hash-form mode catches the upper-cased and respaced copies, the text mode only the identical ones.
- With \`memoryMB: 1\` the set stays within 1 MB of RAM and continues in LMDB, with the same output.
`;
mkdirSync(path.join(here, 'results'), { recursive: true });
writeFileSync(path.join(here, 'results', `exact-dedup${quick ? '-quick' : ''}.md`), md);
process.stdout.write(md);
