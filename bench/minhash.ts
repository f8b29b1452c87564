// Shingle + MinHash benchmark (issue 3): single-thread kernel throughput (docs/s, MB/s) for the
// classic and the one-permutation (oph) schemes, their accuracy against exact Jaccard on real
// near-duplicate pairs (debian-handbook editions) and graded synthetic edits, the `minhash`
// operator with 1 vs 2 worker threads, and datasketch (MinHash, num_perm=128) on the same text
// and the same pairs in the same run. Writes bench/results/minhash.md.
//   npx tsx bench/minhash.ts [--quick]
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { shuffledSample, handbook, type Doc } from './corpus.ts';
import { machine, median } from './machine.ts';
import { createStepContext } from '../lib/context.ts';
import type { Rec, Step } from '../lib/operator.ts';
import { createMinHasher, estimateJaccard, splitmix32, type MinHashScheme } from '../lib/sketch/minhash.ts';
import { exactJaccard, shingleText } from '../lib/text/shingle.ts';
import minhashOp from '../operators/minhash.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DATA = path.join(ROOT, 'bench', 'data');
const quick = process.argv.includes('--quick');
const targetMB = quick ? 4 : 32;
const peerMB = quick ? 1 : 6;
const repeats = quick ? 1 : 3;
// datasketch is run from a source checkout outside the repository (git clone
// https://github.com/ekzhu/datasketch /work/peers/datasketch) with any Python that has numpy.
const PEER_SRC = process.env.DATASKETCH_SRC ?? '/work/peers/datasketch';
const PEER_PYTHON = process.env.DATASKETCH_PYTHON ?? 'python3';
const W5 = { unit: 'word', n: 5 } as const;

mkdirSync(DATA, { recursive: true });

// Corpus: every source of bench/corpus.ts, documents shuffled deterministically, cut at targetMB.
function corpus(): Doc[] {
  const file = path.join(DATA, `minhash-${targetMB}mb.jsonl`);
  if (existsSync(file)) return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const rnd = splitmix32(2026);
  const out = shuffledSample(targetMB, () => rnd() / 4294967296);
  writeFileSync(file, out.map((d) => JSON.stringify(d)).join('\n') + '\n');
  return out;
}

const mb = (docs: { text: string }[]) => docs.reduce((a, d) => a + Buffer.byteLength(d.text), 0) / 1e6;
const fmt = (x: number, d = 1) => x.toFixed(d);

// ---- single-thread kernels ----
function kernelSpeed(docs: Doc[]) {
  const size = mb(docs);
  const shT: number[] = [];
  const sig: Record<MinHashScheme, number[]> = { classic: [], oph: [] };
  let sets: Uint32Array[] = [];
  for (let r = 0; r < repeats; r++) {
    let t0 = performance.now();
    sets = docs.map((d) => shingleText(d.text, W5));
    shT.push((performance.now() - t0) / 1000);
    for (const scheme of ['classic', 'oph'] as const) {
      const h = createMinHasher({ scheme });
      t0 = performance.now();
      for (const s of sets) h.signature(s);
      sig[scheme].push((performance.now() - t0) / 1000);
    }
  }
  const shingles = sets.reduce((a, s) => a + s.length, 0);
  return { size, docs: docs.length, shingles, shingle: median(shT), classic: median(sig.classic), oph: median(sig.oph) };
}

// ---- accuracy pairs ----
interface Pair {
  kind: string;
  a: Uint32Array;
  b: Uint32Array;
  exact: number;
}

function realPairs(limit: number): Pair[] {
  // The same section of the handbook in en-US and in another edition: untranslated or partly
  // translated sections are real near-duplicates.
  const byKey = new Map<string, Doc[]>();
  for (const d of handbook()) {
    const key = d.id.split('/').slice(2).join('/');
    const list = byKey.get(key) ?? [];
    list.push(d);
    byKey.set(key, list);
  }
  const pairs: Pair[] = [];
  for (const list of byKey.values()) {
    const en = list.find((d) => d.lang === 'en-US');
    if (!en) continue;
    const a = shingleText(en.text, W5);
    for (const other of list) {
      if (other === en) continue;
      const b = shingleText(other.text, W5);
      const exact = exactJaccard(a, b);
      if (exact >= 0.1) pairs.push({ kind: 'handbook editions', a, b, exact });
    }
  }
  const rnd = splitmix32(7);
  for (let i = pairs.length - 1; i > 0; i--) {
    const j = Math.floor((rnd() / 4294967296) * (i + 1));
    [pairs[i], pairs[j]] = [pairs[j], pairs[i]];
  }
  return pairs.slice(0, limit);
}

function editedPairs(docs: Doc[], count: number): Pair[] {
  const rnd = splitmix32(11);
  const u = () => rnd() / 4294967296;
  const pool = docs.filter((d) => d.text.split(/\s+/).length >= 12);
  const pairs: Pair[] = [];
  for (let k = 0; k < count; k++) {
    const d = pool[Math.floor(u() * pool.length)];
    const rate = u() * 0.2;
    const out: string[] = [];
    for (const w of d.text.split(/\s+/)) {
      const r = u();
      if (r < rate / 3) continue;
      if (r < (2 * rate) / 3) out.push(`edit${Math.floor(u() * 1e6)}`);
      else if (r < rate) out.push(w, 'inserted');
      else out.push(w);
    }
    const a = shingleText(d.text, W5);
    const b = shingleText(out.join(' '), W5);
    pairs.push({ kind: 'graded edits', a, b, exact: exactJaccard(a, b) });
  }
  return pairs;
}

interface Acc {
  mae: number;
  bias: number;
  within2: number;
  agree85: number;
  n: number;
}

function accuracy(pairs: Pair[], estimate: (p: Pair, i: number) => number): Acc {
  let abs = 0;
  let bias = 0;
  let within = 0;
  let agree = 0;
  pairs.forEach((p, i) => {
    const e = estimate(p, i);
    abs += Math.abs(e - p.exact);
    bias += e - p.exact;
    if (Math.abs(e - p.exact) <= 2 * Math.sqrt((p.exact * (1 - p.exact)) / 128) + 1 / 128) within++;
    if (e >= 0.85 === p.exact >= 0.85) agree++;
  });
  const n = Math.max(1, pairs.length);
  return { mae: abs / n, bias: bias / n, within2: within / n, agree85: agree / n, n: pairs.length };
}

// ---- the operator with worker threads ----
// The timed passes alternate between configurations so that load from other jobs on the machine
// hits them alike; best pass counts. Each configuration is one step, started once and warmed by
// two untimed passes over all the documents, so every thread has run the kernels long enough for
// its compiler to optimize them: a long run spends nearly all its time in that state. (A step per
// pass measured mostly the threads' warm-up: 2 threads each see half the documents, and their
// optimizing compilers run on the same 2 cores.) Worker threads are shared by every pool of the
// process (lib/parallel.ts); a 1-worker step still uses at most one of them at a time.
// CPU time is counted too (it hardly depends on other jobs): the main thread's (from /proc on
// Linux) and the whole process's (workers and V8's helper threads included), per pass. With 2
// workers on 2 cores every CPU millisecond outside the workers is taken from them.
interface OpSpeed {
  best: number;
  /** Mean per pass, seconds. */
  mainCpu: number;
  processCpu: number;
  /** Share of the pass the main thread's event loop was busy. */
  elu: number;
}

function mainThreadCpu(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime + stime in clock ticks (USER_HZ 100)
  } catch {
    return NaN;
  }
}

async function operatorSpeeds(docs: Doc[], scheme: MinHashScheme, workerCounts: number[], passes: number): Promise<OpSpeed[]> {
  const steps: Step[] = [];
  for (const workers of workerCounts) {
    const ctx = createStepContext({ op: 'minhash', workers, log: () => {} });
    steps.push(await minhashOp.create({ perms: 128, seed: 1, scheme, workers, unit: 'word', n: 5, shingleSeed: 0 }, ctx));
  }
  const pass = async (step: Step) => {
    const recs = docs.map((d) => ({ id: d.id, text: d.text }) as Rec);
    let n = 0;
    for (let i = 0; i < recs.length; i += 512) n += (await step.process(recs.slice(i, i + 512))).length;
    n += (await step.flush!()).length;
    if (n !== recs.length) throw new Error(`operator lost records: ${n} of ${recs.length}`);
  };
  for (const step of steps) for (let w = 0; w < 2; w++) await pass(step);
  const out: OpSpeed[] = workerCounts.map(() => ({ best: Infinity, mainCpu: 0, processCpu: 0, elu: 0 }));
  for (let r = 0; r < passes; r++) {
    for (let c = 0; c < workerCounts.length; c++) {
      const m0 = mainThreadCpu();
      const u0 = process.cpuUsage();
      const e0 = performance.eventLoopUtilization();
      const t0 = performance.now();
      await pass(steps[c]);
      out[c].best = Math.min(out[c].best, (performance.now() - t0) / 1000);
      out[c].elu += performance.eventLoopUtilization(e0).utilization / passes;
      const u = process.cpuUsage(u0);
      out[c].processCpu += (u.user + u.system) / 1e6 / passes;
      out[c].mainCpu += (mainThreadCpu() - m0) / passes;
    }
  }
  for (const step of steps) await step.close?.();
  return out;
}

// ---- datasketch ----
const PEER_SCRIPT = `
import json, os, sys, time, types
corpus_file, pairs_file, src = sys.argv[1], sys.argv[2], sys.argv[3]
# Load datasketch.minhash alone: the package __init__ also imports the LSH modules (scipy).
pkg = types.ModuleType("datasketch")
pkg.__path__ = [os.path.join(src, "datasketch")]
sys.modules["datasketch"] = pkg
from datasketch.minhash import MinHash
texts = [json.loads(l)["text"] for l in open(corpus_file, encoding="utf-8")]
# End to end as datasketch users write it: lowercase word 5-grams, then MinHash(num_perm=128).
t0 = time.perf_counter()
for t in texts:
    w = t.lower().split()
    grams = [" ".join(w[i:i + 5]).encode("utf-8") for i in range(max(1, len(w) - 4))]
    m = MinHash(num_perm=128)
    m.update_batch(grams)
elapsed = time.perf_counter() - t0
# The same with the permutations drawn once and shared (MinHash(permutations=...)), its fastest use.
template = MinHash(num_perm=128)
t0 = time.perf_counter()
for t in texts:
    w = t.lower().split()
    grams = [" ".join(w[i:i + 5]).encode("utf-8") for i in range(max(1, len(w) - 4))]
    m = MinHash(num_perm=128, permutations=template.permutations)
    m.update_batch(grams)
shared = time.perf_counter() - t0
# Accuracy on the very same shingle sets as mixstream (each 32-bit shingle hash as 4 bytes).
errs = []
for line in open(pairs_file):
    a, b = json.loads(line)
    ma, mb = MinHash(num_perm=128), MinHash(num_perm=128)
    ma.update_batch([int(x).to_bytes(4, "little") for x in a])
    mb.update_batch([int(x).to_bytes(4, "little") for x in b])
    errs.append(ma.jaccard(mb))
print(json.dumps({"seconds": elapsed, "sharedSeconds": shared, "estimates": errs}))
`;

function peer(docs: Doc[], pairs: Pair[]): { seconds: number; sharedSeconds: number; estimates: number[] } | { error: string } {
  if (!existsSync(path.join(PEER_SRC, 'datasketch', 'minhash.py'))) return { error: `no datasketch checkout at ${PEER_SRC} (set DATASKETCH_SRC)` };
  const corpusFile = path.join(DATA, 'minhash-peer-corpus.jsonl');
  const pairsFile = path.join(DATA, 'minhash-peer-pairs.jsonl');
  const scriptFile = path.join(DATA, 'minhash-peer.py');
  writeFileSync(corpusFile, docs.map((d) => JSON.stringify({ text: d.text })).join('\n') + '\n');
  writeFileSync(pairsFile, pairs.map((p) => JSON.stringify([Array.from(p.a), Array.from(p.b)])).join('\n') + '\n');
  writeFileSync(scriptFile, PEER_SCRIPT);
  try {
    const out = execFileSync(PEER_PYTHON, [scriptFile, corpusFile, pairsFile, PEER_SRC], { encoding: 'utf8', maxBuffer: 1 << 28 });
    return JSON.parse(out);
  } catch (e) {
    return { error: (e as Error).message.split('\n')[0] };
  }
}

function peerVersion(): string {
  try {
    return 'commit ' + execFileSync('git', ['-C', PEER_SRC, 'log', '-1', '--format=%h %cs'], { encoding: 'utf8' }).trim();
  } catch {
    return '(unknown version)';
  }
}

// ---- run ----
const docs = corpus();
const load = os.loadavg()[0];
process.stderr.write(`corpus: ${docs.length} docs, ${fmt(mb(docs))} MB\n`);

const k = kernelSpeed(docs);
process.stderr.write(`kernels: shingle ${fmt(k.size / k.shingle)} MB/s, classic ${fmt(k.size / k.classic)} MB/s, oph ${fmt(k.size / k.oph)} MB/s\n`);

const pairs = [...realPairs(quick ? 300 : 1500), ...editedPairs(docs, quick ? 300 : 1500)];
const hashers = { classic: createMinHasher({ scheme: 'classic' }), oph: createMinHasher({ scheme: 'oph' }) };
const sigs = { classic: pairs.map((p) => [hashers.classic.signature(p.a), hashers.classic.signature(p.b)]), oph: pairs.map((p) => [hashers.oph.signature(p.a), hashers.oph.signature(p.b)]) };
const est = (scheme: MinHashScheme) => (_: Pair, i: number) => estimateJaccard(sigs[scheme][i][0], sigs[scheme][i][1]);

const groups: [string, (p: Pair) => boolean][] = [
  ['all pairs', () => true],
  ['handbook editions (real)', (p) => p.kind === 'handbook editions'],
  ['graded edits', (p) => p.kind === 'graded edits'],
  ['exact J >= 0.7', (p) => p.exact >= 0.7],
  ['short: < 64 shingles', (p) => Math.min(p.a.length, p.b.length) < 64],
  ['long: >= 256 shingles', (p) => Math.min(p.a.length, p.b.length) >= 256],
];

const opDocs = docs.slice(0, quick ? 3000 : Math.min(docs.length, 12000));
const opMB = mb(opDocs);
const op: Record<string, OpSpeed> = {};
const passes = quick ? 3 : 15;
const loadOp = os.loadavg()[0];
for (const scheme of ['classic', 'oph'] as const) {
  const speeds = await operatorSpeeds(opDocs, scheme, [0, 1, 2], passes);
  [0, 1, 2].forEach((workers, i) => {
    op[`${scheme}/${workers}`] = speeds[i];
    process.stderr.write(`operator ${scheme} workers=${workers}: ${fmt(opMB / speeds[i].best)} MB/s, main thread ${fmt(1000 * speeds[i].mainCpu, 0)} ms CPU per pass, process ${fmt(1000 * speeds[i].processCpu, 0)} ms\n`);
  });
}
const loadOpEnd = os.loadavg()[0];

// The machine's own ceiling for a second thread: the same kernel (shingles + MinHash, one thread
// each) in 1 process alone, then in 2 independent processes at once, nothing shared between
// them. 2 x (time alone) / (time of the pair) is the aggregate speed-up two busy threads get
// here (two vCPUs of a virtual machine need not be two whole cores).
const ceilingFile = path.join(DATA, 'minhash-ceiling.jsonl');
writeFileSync(ceilingFile, opDocs.map((d) => JSON.stringify({ text: d.text })).join('\n') + '\n');
const kernel = path.join(ROOT, 'bench', 'minhash-kernel.ts');
/** Seconds the slowest of `copies` simultaneous processes took for its timed passes (each times itself, start-up excluded). */
const kernelRun = async (scheme: string, copies: number): Promise<number> => {
  const runs = Array.from(
    { length: copies },
    () =>
      new Promise<number>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', kernel, ceilingFile, scheme, quick ? '3' : '8'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
        child.on('exit', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`minhash-kernel exited with ${code}`))));
      }),
  );
  return Math.max(...(await Promise.all(runs)));
};
const ceiling: Record<string, { alone: number; pair: number }> = {};
for (const scheme of ['classic', 'oph'] as const) {
  const c = { alone: Infinity, pair: Infinity };
  for (let r = 0; r < (quick ? 1 : 3); r++) {
    c.alone = Math.min(c.alone, await kernelRun(scheme, 1));
    c.pair = Math.min(c.pair, await kernelRun(scheme, 2));
  }
  ceiling[scheme] = c;
  process.stderr.write(`kernel ${scheme}: 1 process ${fmt(c.alone, 2)} s, 2 processes at once ${fmt(c.pair, 2)} s: ${fmt((2 * c.alone) / c.pair, 2)}x\n`);
}

const peerDocs: Doc[] = [];
for (let i = 0, bytes = 0; i < docs.length && bytes < peerMB * 1e6; i++) {
  peerDocs.push(docs[i]);
  bytes += Buffer.byteLength(docs[i].text);
}
const peerPairs = pairs.filter((_, i) => i % 3 === 0);
const peerRun = peer(peerDocs, peerPairs);
const oursOnPeer = (() => {
  const h = createMinHasher({ scheme: 'classic' });
  const ho = createMinHasher({ scheme: 'oph' });
  const t0 = performance.now();
  for (const d of peerDocs) h.signature(shingleText(d.text, W5));
  const classic = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  for (const d of peerDocs) ho.signature(shingleText(d.text, W5));
  return { classic, oph: (performance.now() - t1) / 1000 };
})();

// ---- report ----
const lines: string[] = [];
lines.push('## Shingle + MinHash signatures', '');
const loadEnd = os.loadavg()[0];
lines.push(`Machine: ${machine()}; 1-minute load average ${fmt(load, 2)} at the start and ${fmt(loadEnd, 2)} at the end${Math.max(load, loadEnd) > os.availableParallelism() ? ' (the machine was shared with other jobs and oversubscribed: absolute rates are low, compare ratios from the same run; a speed-up from a second thread needs an idle second core)' : ''}.`);
lines.push(`Corpus: ${k.docs.toLocaleString('en-US')} documents, ${fmt(k.size)} MB of real text from the Debian packages (bench/corpus.ts: handbook in 26 languages, KJV, GCIDE, fortunes), shuffled; word 5-grams, 128 values per signature. Command: \`npx tsx bench/minhash.ts${quick ? ' --quick' : ''}\`.`, '');
lines.push('### One thread (kernels, main thread)', '');
lines.push('| stage | MB/s | docs/s |', '|---|---:|---:|');
const row = (name: string, secs: number) => lines.push(`| ${name} | ${fmt(k.size / secs)} | ${Math.round(k.docs / secs).toLocaleString('en-US')} |`);
row('shingles (raw text to word 5-gram hash set, hashing form included)', k.shingle);
row('classic MinHash (128 multiply-add permutations), signatures only', k.classic);
row('oph MinHash (one permutation + densification), signatures only', k.oph);
row('shingles + classic', k.shingle + k.classic);
row('shingles + oph', k.shingle + k.oph);
lines.push('', `${(k.shingles / k.docs).toFixed(0)} distinct shingles per document on average. oph computes signatures ${fmt(k.classic / k.oph)}x faster than classic.`, '');

lines.push('### Accuracy against exact Jaccard', '');
lines.push(`Pairs: ${pairs.filter((p) => p.kind === 'handbook editions').length} real near-duplicates (the same handbook section in en-US and another edition, exact Jaccard >= 0.1) and ${pairs.filter((p) => p.kind === 'graded edits').length} copies with 0-20% of words deleted, replaced or followed by an insertion. MAE = mean absolute error of the estimate; "within 2σ" = share of estimates within two binomial standard errors (sqrt(J(1-J)/128)) plus 1/128; "same side of 0.85" = share of pairs the estimate puts on the same side of the 0.85 threshold as the exact value.`, '');
lines.push('| pairs | n | classic MAE | oph MAE | classic within 2σ | oph within 2σ | classic same side of 0.85 | oph same side of 0.85 |', '|---|---:|---:|---:|---:|---:|---:|---:|');
const accRows: Record<string, { classic: Acc; oph: Acc }> = {};
for (const [name, keep] of groups) {
  const idx = pairs.map((p, i) => (keep(p) ? i : -1)).filter((i) => i >= 0);
  const sub = idx.map((i) => pairs[i]);
  const c = accuracy(sub, (_, j) => est('classic')(sub[j], idx[j]));
  const o = accuracy(sub, (_, j) => est('oph')(sub[j], idx[j]));
  accRows[name] = { classic: c, oph: o };
  lines.push(`| ${name} | ${c.n} | ${fmt(c.mae, 4)} | ${fmt(o.mae, 4)} | ${fmt(100 * c.within2)}% | ${fmt(100 * o.within2)}% | ${fmt(100 * c.agree85)}% | ${fmt(100 * o.agree85)}% |`);
}
lines.push('');

lines.push('### The `minhash` operator in worker threads', '');
lines.push(`${opDocs.length.toLocaleString('en-US')} documents (${fmt(opMB)} MB) through the operator (raw text in; shingling and MinHash together in the worker; batches of 512; one step per configuration, started and warmed by two untimed passes over these documents, as in a long run); best of ${passes} passes, the configurations alternating. 1-minute load average ${fmt(loadOp, 2)} before this part and ${fmt(loadOpEnd, 2)} after.`, '');
lines.push('| scheme | main thread (workers: 0) | 1 worker | 2 workers | speed-up 2 vs 1 |', '|---|---:|---:|---:|---:|');
for (const scheme of ['classic', 'oph'] as const) {
  const [s0, s1, s2] = [0, 1, 2].map((w) => op[`${scheme}/${w}`].best);
  lines.push(`| ${scheme} | ${fmt(opMB / s0)} MB/s | ${fmt(opMB / s1)} MB/s | ${fmt(opMB / s2)} MB/s | ${fmt(s1 / s2, 2)}x |`);
}
lines.push('');
lines.push(`The machine's ceiling for a second thread, measured in the same run: the same work (shingles + MinHash of these documents, ${quick ? 3 : 8} passes after a warm-up pass, each process timing its own passes) in one process alone and in two independent processes started together (the slower one counts), best of ${quick ? 1 : 3}. The two processes share no heap, no threads and no data, so 2 x (time alone) / (time of the pair) is what two busy threads can get from this machine's two vCPUs.`, '');
lines.push('| scheme | 1 process alone | 2 processes at once | aggregate speed-up of two processes | operator 2 vs 1 worker, share of that gain |', '|---|---:|---:|---:|---:|');
for (const scheme of ['classic', 'oph'] as const) {
  const c = ceiling[scheme];
  const best = (2 * c.alone) / c.pair;
  const opRatio = op[`${scheme}/1`].best / op[`${scheme}/2`].best;
  lines.push(`| ${scheme} | ${fmt(c.alone, 2)} s | ${fmt(c.pair, 2)} s | ${fmt(best, 2)}x | ${fmt(opRatio, 2)}x = ${fmt((100 * (opRatio - 1)) / Math.max(1e-9, best - 1), 0)}% of the gain |`);
}
lines.push('');
lines.push('CPU time per pass (mean of all passes): the main thread\'s, and the whole process\'s (workers and V8\'s garbage-collector threads included); "main busy" is the main thread\'s event-loop utilization. With 2 workers on 2 cores, the 2-worker pass cannot take less than half the process CPU time, and every millisecond the main thread and the collectors spend is taken from the workers.', '');
lines.push('| scheme | workers | main thread CPU | main busy | process CPU | process CPU per MB |', '|---|---:|---:|---:|---:|---:|');
for (const scheme of ['classic', 'oph'] as const) {
  for (const w of [0, 1, 2]) {
    const x = op[`${scheme}/${w}`];
    lines.push(`| ${scheme} | ${w} | ${fmt(1000 * x.mainCpu, 0)} ms | ${fmt(100 * x.elu, 0)}% | ${fmt(1000 * x.processCpu, 0)} ms | ${fmt((1000 * x.processCpu) / opMB, 1)} ms |`);
  }
}
lines.push('');

lines.push('### datasketch side by side', '');
if ('error' in peerRun) {
  lines.push(`datasketch did not run: ${peerRun.error}.`, '');
} else {
  const pm = mb(peerDocs);
  const pAcc = accuracy(peerPairs, (_, i) => peerRun.estimates[i]);
  const cAcc = accuracy(peerPairs, (p) => estimateJaccard(hashers.classic.signature(p.a), hashers.classic.signature(p.b)));
  const oAcc = accuracy(peerPairs, (p) => estimateJaccard(hashers.oph.signature(p.a), hashers.oph.signature(p.b)));
  lines.push(`Same ${peerDocs.length.toLocaleString('en-US')} documents (${fmt(pm)} MB), one thread each; datasketch ${peerVersion()} (MinHash, num_perm=128) end to end as its users write it (lowercase, split, word 5-grams, update_batch); mixstream: raw text to signature. Accuracy on the same ${peerPairs.length} pairs, datasketch fed mixstream's shingle hashes (so the sets are identical).`, '');
  lines.push('| | MB/s | docs/s | MAE vs exact Jaccard | same side of 0.85 |', '|---|---:|---:|---:|---:|');
  lines.push(`| datasketch | ${fmt(pm / peerRun.seconds, 2)} | ${Math.round(peerDocs.length / peerRun.seconds).toLocaleString('en-US')} | ${fmt(pAcc.mae, 4)} | ${fmt(100 * pAcc.agree85)}% |`);
  lines.push(`| datasketch, permutations shared | ${fmt(pm / peerRun.sharedSeconds, 2)} | ${Math.round(peerDocs.length / peerRun.sharedSeconds).toLocaleString('en-US')} | (same) | (same) |`);
  lines.push(`| mixstream classic | ${fmt(pm / oursOnPeer.classic, 2)} | ${Math.round(peerDocs.length / oursOnPeer.classic).toLocaleString('en-US')} | ${fmt(cAcc.mae, 4)} | ${fmt(100 * cAcc.agree85)}% |`);
  lines.push(`| mixstream oph | ${fmt(pm / oursOnPeer.oph, 2)} | ${Math.round(peerDocs.length / oursOnPeer.oph).toLocaleString('en-US')} | ${fmt(oAcc.mae, 4)} | ${fmt(100 * oAcc.agree85)}% |`);
  lines.push('', `Per core: mixstream classic ${fmt(peerRun.seconds / oursOnPeer.classic)}x, oph ${fmt(peerRun.seconds / oursOnPeer.oph)}x datasketch's throughput (against datasketch with shared permutations: ${fmt(peerRun.sharedSeconds / oursOnPeer.classic)}x and ${fmt(peerRun.sharedSeconds / oursOnPeer.oph)}x).`, '');
}

mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
const outFile = path.join(ROOT, 'bench', 'results', quick ? 'minhash-quick.md' : 'minhash.md');
writeFileSync(outFile, lines.join('\n'));
process.stdout.write(lines.join('\n') + '\n');
