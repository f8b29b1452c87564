// Dedup quality and speed: mixstream's lsh-band-join versus an exact keep-first oracle and
// versus datasketch (MinHash + MinHashLSH, num_perm=128, threshold 0.85) on the same shingles.
//
//   npx tsx bench/dedup-quality.ts            # full corpus (~45k documents, ~50 MB of real text)
//   npx tsx bench/dedup-quality.ts --quick    # small corpus, < 1 minute
//
// Corpus (bench/data/, built from bench/corpus.ts): every debian-handbook edition (untranslated
// sections are real near-duplicates across editions), KJV chapters, GCIDE entries, fortunes (real
// repeated quotes), and graded synthetic variants of real documents (word substitutions,
// deletions and insertions at 0.5% to 20% of the words), shuffled with a fixed seed.
//
// Ground truth: the exact keep-first oracle. In stream order a document is removed when its
// exact Jaccard similarity (word 5-gram shingle sets) with an earlier kept document is >= 0.85.
// Candidate pairs come from prefix filtering (an exact all-pairs method: two sets with Jaccard
// >= t share a token among the first |x| - ceil(t|x|) + 1 tokens of each, in a global order), and
// the oracle is checked against a complete pair scan on a subset. Precision and recall are
// over the set of removed documents.
//
// datasketch is read from DATASKETCH_PATH (default /work/peers/datasketch, a checkout outside this
// repository) and run with python3 + numpy; it gets the same shingle hashes (as integers, with an
// identity hash function: its fastest input path), so its timing covers MinHash + LSH only,
// while mixstream's covers shingling from the raw text too.
import { mulberry32 } from '../lib/quality/train.ts';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeResults } from './machine.ts';
import { gcide, fortunes, handbook, handbookLanguages, kjv, type Doc } from './corpus.ts';
import { internals, type Rec } from '../lib/operator.ts';
import { runOperator } from '../lib/testing.ts';
import { exactJaccard, shingleText } from '../lib/text/shingle.ts';
import shingleOp from '../operators/shingle.ts';
import minhashOp from '../operators/minhash.ts';
import lshOp from '../operators/lsh-band-join.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DATA = path.join(HERE, 'data');
const THRESHOLD = 0.85;
const SHINGLE = { unit: 'word' as const, n: 5 };

// ---------------------------------------------------------------------------------------------
// Deterministic PRNG and edits

// The project's deterministic PRNG (mulberry32), under the name the dedup benchmarks use.
export const prng = mulberry32;

/** Edits `rate` of the words: a third substituted, a third deleted, a third followed by an inserted word. */
export function editWords(text: string, rate: number, rnd: () => number, vocab: string[]): string {
  const out: string[] = [];
  for (const w of text.split(/\s+/)) {
    if (!w) continue;
    if (rnd() >= rate) {
      out.push(w);
      continue;
    }
    const op = rnd();
    if (op < 1 / 3) out.push(vocab[Math.floor(rnd() * vocab.length)]);
    else if (op < 2 / 3) continue;
    else out.push(w, vocab[Math.floor(rnd() * vocab.length)]);
  }
  return out.join(' ');
}

const QUICK_LANGS = ['en-US', 'da-DK'];
export const EDIT_RATES = [0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2];

function buildCorpus(quick: boolean): Doc[] {
  const rnd = prng(20261127);
  const langs = handbookLanguages();
  const docs: Doc[] = [...handbook(quick ? langs.filter((l) => QUICK_LANGS.includes(l)) : langs)];
  docs.push(...[...kjv()].slice(0, quick ? 300 : Infinity));
  docs.push(...gcide(quick ? 500 : 5000));
  const f = [...fortunes()];
  docs.push(...(quick ? f.slice(0, 1500) : f.slice(0, 20000)));
  const vocab = [...new Set(docs.slice(0, 3000).flatMap((d) => d.text.split(/\s+/)).filter((w) => /^[a-z]{3,12}$/.test(w)))];
  const bases = docs.filter((d) => (d.source !== 'debian-handbook' || d.lang === 'en-US') && d.text.split(/\s+/).length >= 25);
  const variants: Doc[] = [];
  const nVariants = quick ? 700 : 7000;
  for (let i = 0; i < nVariants; i++) {
    const b = bases[Math.floor(rnd() * bases.length)];
    const rate = EDIT_RATES[i % EDIT_RATES.length];
    variants.push({ id: `edit/${rate}/${i}/${b.id}`, text: editWords(b.text, rate, rnd, vocab), source: 'synthetic-edit', base: b.id, rate });
  }
  docs.push(...variants);
  for (let i = docs.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [docs[i], docs[j]] = [docs[j], docs[i]];
  }
  return docs;
}

// ---------------------------------------------------------------------------------------------
// Exact keep-first oracle

export interface Outcome {
  /** Index of the kept document each removed document duplicates (by position in the corpus). */
  removed: Map<number, number>;
}

/** Exact keep-first dedup with prefix filtering. `sets` are sorted unique shingle hashes. */
export function oracle(sets: Uint32Array[], t: number): Outcome {
  // Global token order: rarest first (short candidate lists), ties by value.
  const freq = new Map<number, number>();
  for (const s of sets) for (const x of s) freq.set(x, (freq.get(x) ?? 0) + 1);
  // count * 2^32 + token is exact in a double and sorts natively by (count, token).
  const keys = new Float64Array(freq.size);
  let k = 0;
  for (const [x, c] of freq) keys[k++] = c * 4294967296 + x;
  keys.sort();
  const rank = new Map<number, number>();
  for (let r = 0; r < keys.length; r++) rank.set(keys[r] % 4294967296, r);
  const ordered = sets.map((s) => Uint32Array.from(s, (x) => rank.get(x)!).sort());
  const index = new Map<number, number[]>();
  const removed = new Map<number, number>();
  const seen = new Int32Array(sets.length).fill(-1);
  for (let i = 0; i < sets.length; i++) {
    const a = ordered[i];
    const p = a.length - Math.ceil(t * a.length - 1e-9) + 1;
    let best = -1;
    let bestJ = -1;
    for (let k = 0; k < p; k++) {
      const list = index.get(a[k]);
      if (!list) continue;
      for (const j of list) {
        if (seen[j] === i) continue;
        seen[j] = i;
        const lb = sets[j].length;
        if (lb < t * a.length - 1e-9 || a.length < t * lb - 1e-9) continue;
        const J = exactJaccard(sets[i], sets[j]);
        if (J >= t && (J > bestJ || (J === bestJ && j < best))) {
          best = j;
          bestJ = J;
        }
      }
    }
    if (best >= 0) removed.set(i, best);
    else
      for (let k = 0; k < p; k++) {
        const list = index.get(a[k]);
        if (list) list.push(i);
        else index.set(a[k], [i]);
      }
  }
  return { removed };
}

/** The same keep-first rule by a complete scan of all kept documents (quadratic; for checking the oracle). */
export function bruteOracle(sets: Uint32Array[], t: number): Set<number> {
  const kept: number[] = [];
  const removed = new Set<number>();
  for (let i = 0; i < sets.length; i++) {
    if (kept.some((j) => exactJaccard(sets[i], sets[j]) >= t)) removed.add(i);
    else kept.push(i);
  }
  return removed;
}

// ---------------------------------------------------------------------------------------------
// Child processes: one system per process, so each gets its own time and peak RSS

interface ChildResult {
  system: string;
  seconds: number;
  /** User + system CPU seconds of the timed part (what 'per core' compares on a shared machine). */
  cpuSeconds: number;
  maxRssMB: number;
  /** Corpus positions of the removed documents, with the position they duplicate (-1: unknown). */
  removed: [number, number][];
}

function cpu(): number {
  const u = process.resourceUsage();
  return (u.userCPUTime + u.systemCPUTime) / 1e6;
}

/**
 * One mixstream configuration: `<verify>-<scheme>` from raw JSONL text (parse, shingle, minhash,
 * join), or `<verify>-<scheme>-preshingled` from the shingle file datasketch reads (minhash + join:
 * the same work datasketch is timed on).
 */
async function childMixstream(variant: string, corpus: string, shinglesPath: string, out: string): Promise<void> {
  const [verify, scheme, pre] = variant.split('-');
  const lines = readFileSync(corpus, 'utf8').split('\n').filter(Boolean);
  let recs: Rec[];
  let t0: number, c0: number;
  if (pre) {
    recs = lines.map((l) => JSON.parse(l));
    const raw = readFileSync(shinglesPath);
    const words = new Uint32Array(raw.buffer, raw.byteOffset, raw.length / 4);
    let at = 0;
    for (const r of recs) {
      const n = words[at];
      internals(r).shingles = words.slice(at + 1, at + 1 + n);
      at += 1 + n;
    }
    t0 = performance.now();
    c0 = cpu();
  } else {
    t0 = performance.now();
    c0 = cpu();
    recs = lines.map((l) => JSON.parse(l));
    recs = (await runOperator(shingleOp, { unit: 'word', n: 5, workers: 0 }, recs, { batchSize: 512 })).output;
  }
  const pos = new Map(recs.map((r, i) => [r.id, i]));
  const mh = await runOperator(minhashOp, { perms: 128, seed: 1, scheme, workers: 0 }, recs, { batchSize: 512 });
  const run = await runOperator(lshOp, { threshold: THRESHOLD, verify, emit: 'removed' }, mh.output, { batchSize: 512 });
  const seconds = (performance.now() - t0) / 1000;
  const cpuSeconds = cpu() - c0;
  const removed = run.output.map((r) => [pos.get(r.id)!, pos.get(r.dup_of as string) ?? -1] as [number, number]);
  const system = `mixstream verify=${verify} scheme=${scheme}${pre ? ' (precomputed shingles)' : ''}`;
  const res: ChildResult = { system, seconds, cpuSeconds, maxRssMB: process.resourceUsage().maxRSS / 1024, removed };
  writeFileSync(out, JSON.stringify(res));
}

const PYTHON = `
import json, sys, time, resource
import numpy as np
from datasketch import MinHash, MinHashLSH
shingles_path, out_path, threshold, verify = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == 'verify'
raw = np.fromfile(shingles_path, dtype='<u4')
t0 = time.perf_counter()
c0 = time.process_time()
lsh = MinHashLSH(threshold=threshold, num_perm=128)
kept = {}
removed = []
at = 0
i = 0
ident = lambda x: int(x)
while at < len(raw):
    n = int(raw[at]); hs = raw[at + 1: at + 1 + n]; at += 1 + n
    m = MinHash(num_perm=128, seed=1, hashfunc=ident)
    m.update_batch(hs)
    cands = lsh.query(m)
    dup = -1
    if cands:
        if verify:
            best = -1.0
            for c in sorted(cands):
                j = m.jaccard(kept[c])
                if j >= threshold and j > best:
                    best, dup = j, c
        else:
            dup = min(cands)
    if dup >= 0 or (cands and not verify):
        removed.append([i, dup])
    else:
        lsh.insert(i, m)
        if verify:
            kept[i] = m
    i += 1
secs = time.perf_counter() - t0
cpu = time.process_time() - c0
json.dump({'system': 'datasketch' + (' + verify' if verify else '') + ' (b=%d, r=%d)' % (lsh.b, lsh.r), 'seconds': secs, 'cpuSeconds': cpu,
           'maxRssMB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 'removed': removed}, open(out_path, 'w'))
`;

// ---------------------------------------------------------------------------------------------

function metrics(res: ChildResult, truth: Outcome, sets: Uint32Array[]) {
  const ours = new Map(res.removed);
  let tp = 0;
  for (const i of ours.keys()) if (truth.removed.has(i)) tp++;
  let pairOk = 0;
  let pairKnown = 0;
  for (const [i, j] of ours) {
    if (j < 0) continue;
    pairKnown++;
    if (exactJaccard(sets[i], sets[j]) >= THRESHOLD) pairOk++;
  }
  return {
    precision: ours.size ? tp / ours.size : 1,
    recall: truth.removed.size ? tp / truth.removed.size : 1,
    removed: ours.size,
    pairPrecision: pairKnown ? pairOk / pairKnown : NaN,
  };
}

async function main(): Promise<void> {
  const loadStart = os.loadavg()[0];
  const args = process.argv.slice(2);
  if (args[0] === '--child') {
    await childMixstream(args[1], args[2], args[3], args[4]);
    return;
  }
  const quick = args.includes('--quick');
  mkdirSync(DATA, { recursive: true });
  const tag = quick ? 'dedup-quality-quick' : 'dedup-quality';
  const corpusPath = path.join(DATA, `${tag}.jsonl`);
  const shinglesPath = path.join(DATA, `${tag}.shingles.u32`);
  let t = performance.now();
  const docs = buildCorpus(quick);
  writeFileSync(corpusPath, docs.map((d) => JSON.stringify(d)).join('\n') + '\n');
  const textBytes = docs.reduce((n, d) => n + Buffer.byteLength(d.text), 0);
  const sets = docs.map((d) => shingleText(d.text, SHINGLE));
  const words = new Uint32Array(sets.reduce((n, s) => n + 1 + s.length, 0));
  let at = 0;
  for (const s of sets) {
    words[at++] = s.length;
    words.set(s, at);
    at += s.length;
  }
  writeFileSync(shinglesPath, Buffer.from(words.buffer));
  console.error(`corpus: ${docs.length} documents, ${(textBytes / 1e6).toFixed(1)} MB of text (${((performance.now() - t) / 1000).toFixed(1)} s)`);

  t = performance.now();
  const truth = oracle(sets, THRESHOLD);
  console.error(`oracle: ${truth.removed.size} near-duplicates (${((performance.now() - t) / 1000).toFixed(1)} s)`);
  const sub = sets.slice(0, quick ? 1500 : 3000);
  const bruteRemoved = bruteOracle(sub, THRESHOLD);
  const prefRemoved = new Set(oracle(sub, THRESHOLD).removed.keys());
  const oracleAgrees = bruteRemoved.size === prefRemoved.size && [...bruteRemoved].every((i) => prefRemoved.has(i));
  console.error(`oracle check on ${sub.length} documents by complete pair scan: ${oracleAgrees ? 'identical' : 'DIFFERENT'} (${bruteRemoved.size} removed)`);
  if (!oracleAgrees) process.exitCode = 1;

  const results: ChildResult[] = [];
  const self = fileURLToPath(import.meta.url);
  for (const variant of ['exact-oph', 'signature-oph', 'none-oph', 'exact-classic', 'signature-classic', 'exact-oph-preshingled']) {
    const out = path.join(DATA, `${tag}.${variant}.json`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', variant, corpusPath, shinglesPath, out], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) throw new Error(`mixstream child ${variant} failed`);
    results.push(JSON.parse(readFileSync(out, 'utf8')));
    console.error(`${results.at(-1)!.system}: ${results.at(-1)!.seconds.toFixed(1)} s`);
  }
  const dsPath = process.env.DATASKETCH_PATH ?? '/work/peers/datasketch';
  let peerNote = '';
  if (existsSync(path.join(dsPath, 'datasketch'))) {
    const py = path.join(DATA, 'datasketch_dedup.py');
    writeFileSync(py, PYTHON);
    for (const mode of ['plain', 'verify']) {
      const out = path.join(DATA, `${tag}.datasketch-${mode}.json`);
      const r = spawnSync('python3', [py, shinglesPath, out, String(THRESHOLD), mode], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, PYTHONPATH: dsPath } });
      if (r.status !== 0) throw new Error(`datasketch run failed`);
      results.push(JSON.parse(readFileSync(out, 'utf8')));
      console.error(`${results.at(-1)!.system}: ${results.at(-1)!.seconds.toFixed(1)} s`);
    }
    const rev = spawnSync('git', ['-C', dsPath, 'log', '-1', '--format=%h %cs'], { encoding: 'utf8' }).stdout.trim();
    peerNote = `datasketch ${rev} (${dsPath}), python3 ${spawnSync('python3', ['-c', 'import sys,numpy;print(sys.version.split()[0], "numpy", numpy.__version__)'], { encoding: 'utf8' }).stdout.trim()}`;
  } else peerNote = `datasketch not found at ${dsPath}: peer not run`;

  const rows = results.map((r) => ({ r, m: metrics(r, truth, sets) }));
  const ds = rows.find((x) => x.r.system.startsWith('datasketch ('));
  const base = rows[0];
  const pre = rows.find((x) => x.r.system.includes('precomputed'));
  const table = [
    '| system | removed | precision | recall | pair precision | docs/s (CPU) | MB/s (CPU) | docs/s (wall) | peak RSS MB |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(({ r, m }) =>
      `| ${r.system} | ${m.removed} | ${m.precision.toFixed(4)} | ${m.recall.toFixed(4)} | ${Number.isNaN(m.pairPrecision) ? '-' : m.pairPrecision.toFixed(4)} | ${Math.round(docs.length / r.cpuSeconds)} | ${(textBytes / 1e6 / r.cpuSeconds).toFixed(2)} | ${Math.round(docs.length / r.seconds)} | ${Math.round(r.maxRssMB)} |`,
    ),
  ];
  const byRate = EDIT_RATES.map((rate) => {
    const idx = docs.map((d, i) => [d, i] as const).filter(([d]) => d.rate === rate);
    const truthIn = idx.filter(([, i]) => truth.removed.has(i)).length;
    const found = idx.filter(([, i]) => truth.removed.has(i) && new Map(base.r.removed).has(i)).length;
    return `| ${(rate * 100).toFixed(1)}% | ${idx.length} | ${truthIn} | ${found} |`;
  });
  const md = [
    `## Dedup quality: lsh-band-join vs exact oracle vs datasketch${quick ? ' (--quick)' : ''}`,
    '',
    `Command: \`npx tsx bench/dedup-quality.ts${quick ? ' --quick' : ''}\` · machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), node ${process.version}, ${new Date().toISOString().slice(0, 10)} · ${peerNote}. 1-minute load average ${loadStart.toFixed(2)} at the start and ${os.loadavg()[0].toFixed(2)} at the end (${os.cpus().length} cores; above that, other jobs shared the machine); every system ran in the same run, one at a time, one core each (mixstream with workers: 0).`,
    '',
    `Corpus: ${docs.length} documents, ${(textBytes / 1e6).toFixed(1)} MB of text: debian-handbook editions (${quick ? QUICK_LANGS.length : handbookLanguages().length} languages), KJV chapters, GCIDE entries, fortunes, and ${docs.filter((d) => d.source === 'synthetic-edit').length} graded edits of real documents (${EDIT_RATES.map((r) => `${r * 100}%`).join(', ')} of words substituted/deleted/inserted), shuffled. Word 5-gram shingles, 128 permutations, threshold ${THRESHOLD}.`,
    '',
    `Ground truth: exact keep-first oracle (${truth.removed.size} near-duplicates; prefix-filtered candidate pairs, identical to a complete pair scan on the first ${sub.length} documents: ${oracleAgrees ? 'yes' : 'NO'}). Precision/recall are over removed documents; pair precision = share of removed documents whose exact Jaccard with the document they were matched to is >= ${THRESHOLD}. mixstream timings include shingling from raw text and JSON parsing; datasketch timings cover MinHash + LSH on precomputed shingle integers (identity hash function) only. datasketch picks its own bands (balanced false positives/negatives); "datasketch" calls a document a duplicate when the LSH query is non-empty (its usual use), "+ verify" checks candidates by estimated Jaccard >= ${THRESHOLD}.`,
    '',
    ...table,
    '',
    ds
      ? `Throughput per core (CPU seconds; wall-clock rates are noisier on a shared machine), mixstream default (verify=exact, oph) vs datasketch on the same corpus: **${(ds.r.cpuSeconds / base.r.cpuSeconds).toFixed(1)}x** including mixstream's JSON parsing and shingling of the raw text; **${(ds.r.cpuSeconds / pre!.r.cpuSeconds).toFixed(1)}x** on the same work (MinHash + LSH from the same precomputed shingles). Wall clock: ${(ds.r.seconds / base.r.seconds).toFixed(1)}x and ${(ds.r.seconds / pre!.r.seconds).toFixed(1)}x.`
      : '',
    '',
    'Recall of the default configuration (verify=exact, oph) on the graded edits:',
    '',
    '| edit rate | variants | near-duplicates (oracle) | found |',
    '|---:|---:|---:|---:|',
    ...byRate,
    '',
  ].join('\n');
  writeResults(md, quick, path.join(HERE, 'results', 'dedup-quality.md'), path.join(DATA, 'dedup-quality-quick.md'));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
