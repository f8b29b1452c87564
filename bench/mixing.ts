// Mixing-stage benchmark (issue: mixing and sampling): decontaminate, mix and partition on real
// text from bench/corpus.ts, the Bloom filter's build rate and its measured false-positive rate,
// and datatrove's Bloom filter on the same evaluation set and corpus in the same run.
// Writes bench/results/mixing.md (or mixing-quick.md).
//   npx tsx bench/mixing.ts [--quick]
// The peer needs a Python with datatrove importable: MIXSTREAM_PEER_PYTHON (default
// /work/peers/venv-mixing/bin/python); without it the peer rows are left out.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { all, type Doc } from './corpus.ts';
import { leastOf, machine, machineLoaded } from './machine.ts';
import { buildDecontFilter } from '../lib/commands/decont-build.ts';
import { createStepContext } from '../lib/context.ts';
import type { OperatorDescriptor, Rec } from '../lib/operator.ts';
import { validateOptions } from '../lib/options.ts';
import { BloomFilter } from '../lib/sketch/bloom.ts';
import { ngramHashes, words } from '../lib/text/ngrams.ts';
import decontaminate from '../operators/decontaminate.ts';
import mix, { recordTokens } from '../operators/mix.ts';
import partition from '../operators/partition.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DATA = path.join(ROOT, 'bench', 'data', 'mixing');
const quick = process.argv.includes('--quick');
const corpusMB = quick ? 12 : 103;
const peerMB = quick ? 2 : 12;
const PY = process.env.MIXSTREAM_PEER_PYTHON ?? '/work/peers/venv-mixing/bin/python';
mkdirSync(DATA, { recursive: true });

const nd = (rs: object[]) => rs.map((r) => JSON.stringify(r)).join('\n') + '\n';
const mb = (b: number) => (b / 1e6).toFixed(1);
const rate = (x: number) => Math.round(x).toLocaleString('en-US');

// ---- data: the corpus (all sources, interleaved by taking every k-th document so --quick still has all four),
// one file per source for `mix`, and an evaluation set of passages from 1% of the documents.
const corpusFile = path.join(DATA, `corpus-${corpusMB}mb.jsonl`);
const evalFile = path.join(DATA, `eval-${corpusMB}mb.jsonl`);
const peerFile = path.join(DATA, `peer-${peerMB}mb.jsonl`);
if (!existsSync(corpusFile) || !existsSync(evalFile)) {
  const docs = [...all()];
  const stride = Math.max(1, Math.floor(103 / corpusMB));
  const picked: Doc[] = docs.filter((_, i) => i % stride === 0);
  writeFileSync(corpusFile, nd(picked));
  // Evaluation examples: the middle paragraph (or lines) of every 100th document with >= 40 words.
  const evalSet = picked
    .filter((d, i) => i % 100 === 7 && words(d.text).length >= 40)
    .map((d, i) => {
      const paras = d.text.split(/\n+/).filter((p) => words(p).length >= 13);
      const text = paras.length ? paras[Math.floor(paras.length / 2)] : d.text;
      return { id: `eval/${i}`, text, from: d.id };
    });
  writeFileSync(evalFile, nd(evalSet));
}
if (!existsSync(peerFile)) {
  const lines = readFileSync(corpusFile, 'utf8').split('\n');
  let out = '';
  for (let i = 0; i < lines.length && out.length < peerMB * 1e6; i += 7) if (lines[i]) out += lines[i] + '\n';
  writeFileSync(peerFile, out);
}
const corpus: Rec[] = readFileSync(corpusFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const corpusBytes = statSync(corpusFile).size;
const textBytes = corpus.reduce((a, d) => a + Buffer.byteLength(d.text), 0);
const evalRecs: Rec[] = readFileSync(evalFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

/** CPU seconds (user + system, all threads) of this process since `from`: unaffected by other jobs on a shared machine. */
function cpuSeconds(from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1e6;
}

async function drive(desc: OperatorDescriptor, options: Record<string, unknown>, records: Rec[]) {
  const opts = validateOptions(options, desc.options, []);
  const ctx = createStepContext({ op: desc.name, log: () => {} });
  const step = await desc.create(opts, ctx);
  const out: Rec[] = [];
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let i = 0; i < records.length; i += 1024) out.push(...(await step.process(records.slice(i, i + 1024))));
  if (step.flush) out.push(...(await step.flush()));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(c0);
  await step.close?.();
  return { out, seconds, cpu, counters: ctx.counters };
}

const lines: string[] = [];
const say = (s = '') => {
  lines.push(s);
  process.stderr.write(s + '\n');
};

say(`## Mixing: decontaminate, mix, partition${quick ? ' (quick)' : ''}`);
say();
say(`Machine: ${machine()}. Load average ${os.loadavg().map((l) => l.toFixed(1)).join(', ')} at the start on ${os.availableParallelism()} cores${machineLoaded() ? ': the machine was shared with other jobs, so wall-clock rates are depressed' : ''}. The tables also give rates per CPU-second of the measured process (user + system time), which other jobs change less, and ratios come from the same run.`);
say(`Corpus: ${mb(corpusBytes)} MB NDJSON (${corpus.length.toLocaleString('en-US')} documents, ${mb(textBytes)} MB of text) from bench/corpus.ts (Debian handbook in 26 languages, KJV, GCIDE, fortunes).`);
say(`Evaluation set: ${evalRecs.length} passages (the middle paragraph of every 100th document), so the corpus holds real contamination to find.`);
say();

// ---- Bloom build
const bloomFile = path.join(DATA, 'eval.bloom');
const built = await buildDecontFilter({ inputs: [evalFile], out: bloomFile, fpRate: 1e-6, log: () => {} });
let insertN = 0;
const bulk = BloomFilter.create(5_000_000, 1e-6);
const tIns = performance.now();
const cIns = process.cpuUsage();
for (const d of corpus) {
  const h = ngramHashes(d.text, 13);
  for (let i = 0; i < h.count && insertN < 5_000_000; i++, insertN++) bulk.add(h.a[i], h.b[i]);
  if (insertN >= 5_000_000) break;
}
const insSeconds = (performance.now() - tIns) / 1000;
const insCpu = cpuSeconds(cIns);
say('### Bloom filter (13-word n-grams, rate 1e-6)');
say();
say(`- \`decont build\` of the evaluation set: ${built.records} records, ${built.ngrams.toLocaleString('en-US')} n-grams (${built.distinct.toLocaleString('en-US')} distinct) in ${built.seconds.toFixed(2)} s (two passes: count, insert), ${(built.bytes / 2 ** 20).toFixed(2)} MiB, k = ${built.k}.`);
say(`- Bulk insert (hashing included) of ${insertN.toLocaleString('en-US')} corpus n-grams into a ${(bulk.m / 8 / 2 ** 20).toFixed(1)} MiB filter: ${rate(insertN / insSeconds)} n-grams/s wall, ${rate(insertN / insCpu)} per CPU-second; fill ratio ${bulk.fillRatio().toFixed(3)}.`);

// ---- decontaminate: throughput and measured false positives (annotate mode counts every hit)
const dec = await drive(decontaminate, { filter: bloomFile, mode: 'annotate', workers: 0 }, corpus);
const exact = new Set<string>();
for (const e of evalRecs) {
  const w = words(e.text);
  for (let i = 0; i + 13 <= w.length; i++) exact.add(w.slice(i, i + 13).join(' '));
}
let hits = 0;
let trueHits = 0;
let flagged = 0;
let falseDocs = 0;
for (const r of dec.out) {
  const c = r.contaminated_ngrams as number;
  if (!c) continue;
  hits += c;
  flagged++;
  const w = words(r.text);
  let real = 0;
  for (let i = 0; i + 13 <= w.length; i++) if (exact.has(w.slice(i, i + 13).join(' '))) real++;
  trueHits += real;
  if (real === 0) falseDocs++;
}
const queries = dec.counters.counters.ngrams_checked;
const fp = hits - trueHits;
const fromIds = new Set(evalRecs.map((e) => e.from));
const caught = dec.out.filter((r) => fromIds.has(r.id) && (r.contaminated_ngrams as number) > 0).length;
const drop = await drive(decontaminate, { filter: bloomFile, workers: 0 }, corpus);
const threads = os.availableParallelism();
const dropThreads = await drive(decontaminate, { filter: bloomFile, workers: threads, parallelAfterChars: 0 }, corpus);
say();
say('### decontaminate');
say();
say('| mode | MB/s of text (wall) | MB/s per CPU-s | docs/s (wall) | n-grams per CPU-s |');
say('|---|---|---|---|---|');
say(`| drop (stops at the first hit) | ${(textBytes / 1e6 / drop.seconds).toFixed(1)} | ${(textBytes / 1e6 / drop.cpu).toFixed(1)} | ${rate(corpus.length / drop.seconds)} | ${rate(drop.counters.counters.ngrams_checked / drop.cpu)} |`);
say(`| drop, ${threads} worker threads (shared filter) | ${(textBytes / 1e6 / dropThreads.seconds).toFixed(1)} | ${(textBytes / 1e6 / dropThreads.cpu).toFixed(1)} | ${rate(corpus.length / dropThreads.seconds)} | ${rate(dropThreads.counters.counters.ngrams_checked / dropThreads.cpu)} |`);
say(`| annotate (checks every n-gram) | ${(textBytes / 1e6 / dec.seconds).toFixed(1)} | ${(textBytes / 1e6 / dec.cpu).toFixed(1)} | ${rate(corpus.length / dec.seconds)} | ${rate(queries / dec.cpu)} |`);
say();
say(`- ${queries.toLocaleString('en-US')} n-grams queried; ${hits.toLocaleString('en-US')} hits, of which ${trueHits.toLocaleString('en-US')} are real 13-gram overlaps (checked against the exact set of evaluation n-grams).`);
say(`- Measured false-positive rate: ${fp} / ${(queries - trueHits).toLocaleString('en-US')} clean n-grams = ${((fp / (queries - trueHits)) || 0).toExponential(2)} (design rate 1e-6, expected at this load ${built.expectedFpRate.toExponential(2)}); documents flagged with no real overlap: ${falseDocs} of ${corpus.length.toLocaleString('en-US')}.`);
say(`- ${caught} of ${fromIds.size} documents the evaluation passages came from are flagged (all must be); ${flagged - caught} other documents share real 13-grams with the evaluation set (repeated verses, untranslated handbook sections, quoted definitions).`);
say(`- drop mode removed ${drop.counters.dropped.contaminated ?? 0} documents (${dropThreads.counters.dropped.contaminated ?? 0} with worker threads). Thread rows: CPU time includes starting the threads (each loads the TypeScript loader); on a loaded 2-core machine the wall-clock gain is bounded by the cores the other jobs leave.`);

// ---- peer: datatrove's Bloom filter on a subset
if (existsSync(PY)) {
  const peerRecs: Rec[] = readFileSync(peerFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  // The subset takes under a second here, so both sides run 3 times and the least CPU counts
  // (other jobs on a shared machine stretch single short runs).
  const ours = await leastOf(3, () => drive(decontaminate, { filter: bloomFile, mode: 'annotate', workers: 0 }, peerRecs), (r) => r.cpu);
  const oursQ = ours.counters.counters.ngrams_checked;
  const peerBytes = statSync(peerFile).size;
  const runPeer = (variant: string) => {
    const r = spawnSync(PY, [path.join(ROOT, 'bench', 'mixing-datatrove-bloom.py'), evalFile, peerFile, String(built.ngrams), '1e-6', variant], { encoding: 'utf8', maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`peer failed: ${r.stderr.slice(-2000)}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!);
  };
  const shipped = runPeer('shipped');
  const tuned = await leastOf(3, () => runPeer('tuned'), (r) => r.query_cpu);
  const oursHits = ours.out.reduce((a, r) => a + (r.contaminated_ngrams as number), 0);
  say();
  say(`### Peer: datatrove SingleBloomFilter on the same evaluation set and a ${mb(peerBytes)} MB corpus subset`);
  say();
  say('| | query n-grams per CPU-s | MB/s per CPU-s (NDJSON) | MB/s (wall) | n-grams queried | hits | real overlaps | docs flagged |');
  say('|---|---|---|---|---|---|---|---|');
  say(`| mixstream decontaminate (annotate, one thread) | ${rate(oursQ / ours.cpu)} | ${(peerBytes / 1e6 / ours.cpu).toFixed(1)} | ${(peerBytes / 1e6 / ours.seconds).toFixed(1)} | ${oursQ.toLocaleString('en-US')} | ${oursHits} | - | ${ours.out.filter((r) => (r.contaminated_ngrams as number) > 0).length} |`);
  for (const [name, p] of [['datatrove as shipped', shipped], ['datatrove tuned (m = 2^p bits, k given)', tuned]] as const) {
    say(`| ${name} (k = ${p.k}) | ${rate(p.queries / p.query_cpu)} | ${(p.bytes / 1e6 / p.query_cpu).toFixed(2)} | ${(p.bytes / 1e6 / p.query_seconds).toFixed(2)} | ${p.queries.toLocaleString('en-US')} | ${p.hits.toLocaleString('en-US')} | ${p.true_hits.toLocaleString('en-US')} | ${p.flagged_docs} |`);
  }
  say();
  say(`Ratio (query throughput per CPU-second; mixstream and datatrove tuned each the least CPU of 3 runs): mixstream / datatrove tuned = ${((peerBytes / ours.cpu) / (tuned.bytes / tuned.query_cpu)).toFixed(1)}x (wall clock: ${((peerBytes / ours.seconds) / (tuned.bytes / tuned.query_seconds)).toFixed(1)}x). Build: datatrove inserts ${rate(tuned.inserted / tuned.build_cpu)} n-grams per CPU-s (tuned); ours, bulk, above. datatrove's times include its text simplification and n-gram string building in Python; ours include normalization and hashing. datatrove as shipped sizes k from the bits x 8 and reduces hashes with \`& m_bytes\` instead of a modulo, so its filter saturates: it flags ${shipped.flagged_docs} of ${shipped.docs} documents. Its word split differs (numbers folded to 0), so hit counts differ slightly.`);
} else {
  say();
  say(`(Peer rows left out: no Python with datatrove at ${PY}.)`);
}

// ---- mix: one file per source, equal token shares
const bySource = new Map<string, Rec[]>();
for (const d of corpus) {
  const s = String(d.source);
  if (!bySource.has(s)) bySource.set(s, []);
  bySource.get(s)!.push(d);
}
const sources = [...bySource.keys()].sort();
for (const s of sources) writeFileSync(path.join(DATA, `src-${corpusMB}-${s}.jsonl`), nd(bySource.get(s)!));
{
  const opts = validateOptions({ sources: sources.map((s) => ({ name: s, paths: [`src-${corpusMB}-${s}.jsonl`], share: 1 / sources.length })) }, mix.options, []);
  const ctx = createStepContext({ op: 'mix', baseDir: DATA, log: () => {} });
  const step = await mix.create(opts as never, ctx);
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let docs = 0;
  let bytes = 0;
  let total = 0;
  const emitted: Record<string, number> = {};
  let worst = 0;
  let maxDoc = 0;
  const trace: [string, number][] = [];
  for await (const b of step.generate!()) {
    for (const r of b) {
      docs++;
      bytes += Buffer.byteLength(JSON.stringify(r));
      const t = recordTokens(r, 'token_count');
      maxDoc = Math.max(maxDoc, t);
      trace.push([r.mix_source as string, t]);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(c0);
  await step.close?.();
  for (const [s, t] of trace) {
    emitted[s] = (emitted[s] ?? 0) + t;
    total += t;
    if (total < 100 * maxDoc) continue;
    for (const n of sources) worst = Math.max(worst, Math.abs((emitted[n] ?? 0) / total - 1 / sources.length));
  }
  const c = ctx.counters.counters;
  say();
  say(`### mix (${sources.length} sources, equal token shares, sized from the largest source)`);
  say();
  say(`- ${docs.toLocaleString('en-US')} documents, ${mb(bytes)} MB out in ${seconds.toFixed(2)} s including the counting pass over every source (reading, decoding, estimating tokens): ${(bytes / 1e6 / seconds).toFixed(1)} MB/s wall, ${(bytes / 1e6 / cpu).toFixed(1)} MB/s per CPU-s, ${rate(docs / seconds)} docs/s wall.`);
  say(`- Largest deviation of any source's token share from 25% over every prefix past 100 x the largest document (${rate(100 * maxDoc)} tokens): ${(worst * 100).toFixed(3)} percentage points.`);
  say(`- Repeats: ${sources.map((s) => `${s} ${c[`passes_${s}`]} pass(es), ${rate(c[`repeated_docs_${s}`])} repeated copies`).join('; ')}.`);
}

// ---- partition: by source, 1M-token units (quick: 100k), 8 MiB shards
{
  const out = path.join(DATA, 'partitions');
  rmSync(out, { recursive: true, force: true });
  const unit = quick ? 100_000 : 1_000_000;
  const r = await drive(partition, { dir: out, by: ['source'], unitTokens: unit, maxShardBytes: 8 << 20 }, corpus);
  const m = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8'));
  const units = m.partitions.flatMap((p: { units: { tokens: number; partial: boolean }[] }) => p.units.filter((u) => !u.partial));
  const dev = Math.max(...units.map((u: { tokens: number }) => Math.abs(u.tokens - unit)));
  say();
  say(`### partition (by source, units of ${rate(unit)} tokens, zstd level 3, 8 MiB shards)`);
  say();
  say(`- ${mb(corpusBytes)} MB in ${r.seconds.toFixed(2)} s: ${(corpusBytes / 1e6 / r.seconds).toFixed(1)} MB/s wall, ${(corpusBytes / 1e6 / r.cpu).toFixed(1)} MB/s per CPU-s, ${rate(corpus.length / r.seconds)} docs/s wall; ${m.totals.shards} shards, ${(m.totals.bytes / 2 ** 20).toFixed(1)} MiB compressed (${((m.totals.bytes / corpusBytes) * 100).toFixed(1)}% of the input).`);
  say(`- ${units.length} complete units; largest deviation from ${rate(unit)} tokens: ${rate(dev)} tokens (${((dev / unit) * 100).toFixed(2)}%).`);
}

say();
say(`Reproduce: \`npx tsx bench/mixing.ts${quick ? ' --quick' : ''}\`.`);
const outFile = path.join(ROOT, 'bench', 'results', quick ? 'mixing-quick.md' : 'mixing.md');
writeFileSync(outFile, lines.join('\n') + '\n');
process.stderr.write(`wrote ${outFile}\n`);

