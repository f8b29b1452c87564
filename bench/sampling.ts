// Token counting, weighted reservoir sampling and SampleMix benchmark (issue 5): token counting
// throughput (exact vs estimate, against js-tiktoken's own encoder on the same text in the same
// run), the estimate's error per source, sampler and SampleMix throughput, peak RSS of a child
// process whose sample is larger than its memoryMB, and the distribution of SampleMix sampling
// counts (the paper's Figure 6) on real text. Writes bench/results/sampling.md.
//   npx tsx bench/sampling.ts [--quick]
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tiktoken } from 'js-tiktoken/lite';
import cl100k from 'js-tiktoken/ranks/cl100k_base';
import { shuffledSample, type Doc } from './corpus.ts';
import { machine, machineLoaded } from './machine.ts';
import type { Rec } from '../lib/operator.ts';
import { runOperator } from '../lib/testing.ts';
import { mulberry32 } from '../lib/sketch/kmeans.ts';
import { estimateTokens, loadEncoding } from '../lib/text/tokenizer.ts';
import reservoirOp from '../operators/reservoir-weighted-sample.ts';
import samplemixOp from '../operators/samplemix.ts';
import scoreOp from '../operators/score.ts';
import tokensOp from '../operators/tokens.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DATA = path.join(ROOT, 'bench', 'data');
const quick = process.argv.includes('--quick');
const targetMB = quick ? 1 : 12;
const peerMB = quick ? 0.25 : 3;
const memInputMB = quick ? [2, 8] : [12, 48];
const fmt = (x: number, d = 1) => x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
const int = (x: number) => Math.round(x).toLocaleString('en-US');
const mb = (docs: { text: string }[]) => docs.reduce((a, d) => a + Buffer.byteLength(d.text), 0) / 1e6;

mkdirSync(DATA, { recursive: true });
const lines: string[] = [];
const say = (s = '') => {
  lines.push(s);
  process.stderr.write(s + '\n');
};

// Corpus: every source of bench/corpus.ts, shuffled deterministically, cut at targetMB.
function corpus(): Doc[] {
  const file = path.join(DATA, `sampling-${targetMB}mb.jsonl`);
  if (existsSync(file)) return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const rnd = mulberry32(2026);
  const out = shuffledSample(targetMB, rnd);
  writeFileSync(file, out.map((d) => JSON.stringify(d)).join('\n') + '\n');
  return out;
}

function time<T>(f: () => T): { seconds: number; value: T } {
  const t0 = performance.now();
  const value = f();
  return { seconds: (performance.now() - t0) / 1000, value };
}
async function timeAsync<T>(f: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const t0 = performance.now();
  const value = await f();
  return { seconds: (performance.now() - t0) / 1000, value };
}

const docs = corpus();
const size = mb(docs);
const sourceOf = (d: Doc) => (d.source === 'debian-handbook' ? 'handbook' : d.source === 'fortunes' ? `fortunes-${d.lang}` : d.source);

say('## Token counting, weighted reservoir sampling and SampleMix');
say();
say(`Machine: ${machine()}; 1-minute load average ${os.loadavg()[0].toFixed(2)} at the start${machineLoaded() ? ' (the machine was shared with other jobs: compare ratios from the same run)' : ''}.`);
say(`Corpus: ${int(docs.length)} documents, ${fmt(size)} MB of real text from the Debian packages (bench/corpus.ts: handbook in 26 languages, KJV, GCIDE, fortunes en/de/ru), shuffled. Command: \`npx tsx bench/sampling.ts${quick ? ' --quick' : ''}\`.`);
say();

// ---- token counting, one thread ----
const enc = await loadEncoding('cl100k_base');
const o200 = await loadEncoding('o200k_base');
const peer = new Tiktoken(cl100k);
const peerDocs: Doc[] = [];
for (let i = 0, bytes = 0; i < docs.length && bytes < peerMB * 1e6; i++) {
  peerDocs.push(docs[i]);
  bytes += Buffer.byteLength(docs[i].text);
}
const peerSize = mb(peerDocs);
const cold = () => {
  enc.clearCache();
  o200.clearCache();
};
const peerRun = time(() => peerDocs.map((d) => peer.encode(d.text, [], []).length));
cold();
const oursOnPeer = time(() => peerDocs.map((d) => enc.count(d.text)));
const mismatches = peerRun.value.filter((n, i) => n !== oursOnPeer.value[i]).length;
const encodeRun = time(() => {
  let n = 0;
  for (const d of docs) n += enc.encode(d.text).length;
  return n;
});
cold();
const countRun = time(() => docs.map((d) => enc.count(d.text)));
const exact = countRun.value;
cold();
const o200Run = time(() => docs.reduce((a, d) => a + o200.count(d.text), 0));
const estRun = time(() => docs.map((d) => estimateTokens(d.text)));
const bytes4Run = time(() => docs.map((d) => Math.ceil(Buffer.byteLength(d.text) / 4)));
const totalExact = exact.reduce((a, b) => a + b, 0);

say('### Token counting (one thread)');
say();
say(`js-tiktoken runs on the first ${fmt(peerSize)} MB of the corpus (it is the slowest); the other rows on all ${fmt(size)} MB. Every mixstream row starts with an empty piece cache. ${int(totalExact)} cl100k_base tokens in all (${fmt((size * 1e6) / totalExact, 2)} bytes per token).`);
say();
say('| counter | MB/s | vs js-tiktoken |');
say('|---|---:|---:|');
const peerMBs = peerSize / peerRun.seconds;
say(`| js-tiktoken \`encode(text).length\`, cl100k_base (peer) | ${fmt(peerMBs, 2)} | 1.0x |`);
say(`| mixstream \`count\`, cl100k_base, same ${fmt(peerSize)} MB | ${fmt(peerSize / oursOnPeer.seconds, 2)} | ${fmt(peerSize / oursOnPeer.seconds / peerMBs)}x |`);
say(`| mixstream \`encode\` (token ids, no piece cache), cl100k_base | ${fmt(size / encodeRun.seconds, 2)} | ${fmt(size / encodeRun.seconds / peerMBs)}x |`);
say(`| mixstream \`count\` (piece cache), cl100k_base | ${fmt(size / countRun.seconds, 2)} | ${fmt(size / countRun.seconds / peerMBs)}x |`);
say(`| mixstream \`count\`, o200k_base | ${fmt(size / o200Run.seconds, 2)} | ${fmt(size / o200Run.seconds / peerMBs)}x |`);
say(`| estimate (character classes, one pass) | ${fmt(size / estRun.seconds, 1)} | ${fmt(size / estRun.seconds / peerMBs)}x |`);
say(`| bytes / 4 (baseline estimate) | ${fmt(size / bytes4Run.seconds, 1)} | ${fmt(size / bytes4Run.seconds / peerMBs)}x |`);
say();
say(`Counts equal to js-tiktoken's on ${int(peerDocs.length - mismatches)} of ${int(peerDocs.length)} documents.`);
say();

// ---- the tokens operator, threads ----
const recs = (): Rec[] => structuredClone(docs) as Rec[];
cold();
const op0 = await timeAsync(() => runOperator(tokensOp, { workers: 0 }, recs(), { batchSize: 512 }));
const startup = await timeAsync(() => runOperator(tokensOp, { workers: 2, parallelAfterChars: 0 }, recs().slice(0, 64), { batchSize: 64 }));
const op2 = await timeAsync(() => runOperator(tokensOp, { workers: 2, parallelAfterChars: 0 }, recs(), { batchSize: 512 }));
const opEst = await timeAsync(() => runOperator(tokensOp, { mode: 'estimate' }, recs(), { batchSize: 512 }));
say('### `tokens` operator');
say();
say(`Starting 2 worker threads (each boots the TypeScript loader and loads the rank tables) took ${fmt(startup.seconds)} s here; by default the operator counts the first 8 million characters in the main thread and starts its threads only after them (\`parallelAfterChars\`). The 2-thread row forces them from the start (\`parallelAfterChars: 0\`); "without start-up" subtracts the start-up time.`);
say();
say('| mode | MB/s | docs/s |');
say('|---|---:|---:|');
say(`| exact, main thread (workers: 0) | ${fmt(size / op0.seconds, 2)} | ${int(docs.length / op0.seconds)} |`);
say(`| exact, 2 worker threads | ${fmt(size / op2.seconds, 2)} | ${int(docs.length / op2.seconds)} |`);
say(`| exact, 2 worker threads, without start-up | ${fmt(size / Math.max(0.001, op2.seconds - startup.seconds), 2)} | ${int(docs.length / Math.max(0.001, op2.seconds - startup.seconds))} |`);
say(`| estimate | ${fmt(size / opEst.seconds, 1)} | ${int(docs.length / opEst.seconds)} |`);
say();

// ---- estimate error ----
say('### Estimate error against cl100k_base');
say();
say('Total: (sum of estimates - sum of exact counts) / exact; per document: mean of |estimate - exact| / exact. The estimate\'s coefficients were fitted on samples/*.jsonl (a subset of these sources), so this corpus is mostly unseen text.');
say();
say('| source | docs | exact tokens | estimate: total | estimate: per doc | bytes/4: total | bytes/4: per doc |');
say('|---|---:|---:|---:|---:|---:|---:|');
const groups = new Map<string, number[]>();
docs.forEach((d, i) => {
  const g = groups.get(sourceOf(d)) ?? [];
  g.push(i);
  groups.set(sourceOf(d), g);
});
const errRow = (name: string, idx: number[]) => {
  let ex = 0;
  let es = 0;
  let b4 = 0;
  let perEs = 0;
  let perB4 = 0;
  for (const i of idx) {
    const e = Math.max(1, exact[i]);
    ex += exact[i];
    es += estRun.value[i];
    b4 += bytes4Run.value[i];
    perEs += Math.abs(estRun.value[i] - exact[i]) / e;
    perB4 += Math.abs(bytes4Run.value[i] - exact[i]) / e;
  }
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${fmt(100 * x)}%`;
  say(`| ${name} | ${int(idx.length)} | ${int(ex)} | ${pct((es - ex) / ex)} | ${fmt((100 * perEs) / idx.length)}% | ${pct((b4 - ex) / ex)} | ${fmt((100 * perB4) / idx.length)}% |`);
};
for (const [g, idx] of [...groups].sort()) errRow(g, idx);
errRow('**all**', docs.map((_, i) => i));
say();

// ---- samplers ----
const counted: Rec[] = docs.map((d, i) => ({ ...d, token_count: exact[i] }) as Rec);
const resBudget = await timeAsync(() => runOperator(reservoirOp, { budgetTokens: Math.round(totalExact / 10), weight: 'log(token_count + 1)', seed: 1 }, structuredClone(counted), { batchSize: 512 }));
const resCount = await timeAsync(() => runOperator(reservoirOp, { count: 1000, seed: 1 }, structuredClone(counted), { batchSize: 512 }));
// Quality from the sample quality model (score operator), as in pipelines/samplemix.ts.
const scored = (await runOperator(scoreOp, { model: path.join(ROOT, 'samples', 'quality-model.onnx'), workers: 0 }, structuredClone(counted), { batchSize: 512 })).output;
const mix = async (ratio: number) => timeAsync(() => runOperator(samplemixOp, { budgetRatio: ratio, seed: 1 }, structuredClone(scored), { batchSize: 512 }));
const mix1 = await mix(1);
const mixSmall = await mix(0.25);
const mixLarge = await mix(3);
say('### Samplers (main thread, records already carry token_count)');
say();
say('| step | MB/s | docs/s | output |');
say('|---|---:|---:|---|');
const sampleTok = (r: { output: Rec[] }) => r.output.reduce((a, x) => a + (x.token_count as number), 0);
say(`| reservoir-weighted-sample, budgetTokens = 10% of the tokens, weight log(token_count + 1) | ${fmt(size / resBudget.seconds)} | ${int(docs.length / resBudget.seconds)} | ${int(resBudget.value.output.length)} docs, ${int(sampleTok(resBudget.value))} of ${int(Math.round(totalExact / 10))} tokens |`);
say(`| reservoir-weighted-sample, count 1000, uniform | ${fmt(size / resCount.seconds)} | ${int(docs.length / resCount.seconds)} | ${int(resCount.value.output.length)} docs |`);
for (const [name, r] of [['1 (T_tgt = T_src)', mix1], ['0.25', mixSmall], ['3', mixLarge]] as const) {
  const c = r.value.counters.counters;
  say(`| samplemix, budgetRatio ${name}, 64 clusters | ${fmt(size / r.seconds)} | ${int(docs.length / r.seconds)} | ${int(r.value.output.length)} docs, ${int(c.output_tokens)} tokens for a target of ${int(c.target_tokens)} (rounding SD ${int(c.output_tokens_sd)}) |`);
}
say();

// ---- Figure 6 ----
say('### SampleMix sampling counts (the paper\'s Figure 6)');
say();
say('Share of documents per sampling count and their mean weight p(x) (Figure 6a and 6b), with quality from the sample quality model, α = 0.8, k = 64 clusters.');
say();
const fig = (r: typeof mix1) => {
  const all = [...r.value.output, ...r.value.dropped.map((d) => d.rec)];
  const seen = new Set<string>();
  const by = new Map<string, { n: number; w: number }>();
  for (const x of all) {
    if (seen.has(x.id)) continue;
    seen.add(x.id);
    const n = x.sampling_count as number;
    const k = n >= 6 ? '6+' : String(n);
    const o = by.get(k) ?? { n: 0, w: 0 };
    o.n++;
    o.w += x.samplemix_weight as number;
    by.set(k, o);
  }
  return { by, total: seen.size };
};
const figs = [['T_tgt = T_src', fig(mix1)], ['T_tgt = 0.25 T_src', fig(mixSmall)], ['T_tgt = 3 T_src', fig(mixLarge)]] as const;
say(`| sampling count | ${figs.map(([n]) => `${n}: docs`).join(' | ')} | ${figs.map(([n]) => `${n}: mean p(x)`).join(' | ')} |`);
say(`|---|${figs.map(() => '---:').join('|')}|${figs.map(() => '---:').join('|')}|`);
for (const k of ['0', '1', '2', '3', '4', '5', '6+']) {
  const cells = figs.map(([, f]) => {
    const o = f.by.get(k);
    return o ? `${fmt((100 * o.n) / f.total)}%` : '-';
  });
  const ws = figs.map(([, f]) => {
    const o = f.by.get(k);
    return o ? fmt(o.w / o.n, 3) : '-';
  });
  say(`| ${k} | ${cells.join(' | ')} | ${ws.join(' | ')} |`);
}
say();
// Token share by source before and after (the domain mix SampleMix arrives at).
const share = (rs: Rec[]) => {
  const m = new Map<string, number>();
  let total = 0;
  for (const r of rs) {
    const k = sourceOf(r as unknown as Doc);
    m.set(k, (m.get(k) ?? 0) + (r.token_count as number));
    total += r.token_count as number;
  }
  return (k: string) => `${fmt((100 * (m.get(k) ?? 0)) / total)}%`;
};
const before = share(counted);
const after1 = share(mix1.value.output);
const afterSmall = share(mixSmall.value.output);
say('Token share per source, input and output (SampleMix sets the domain mix from the per-document weights):');
say();
say('| source | input | T_tgt = T_src | T_tgt = 0.25 T_src |');
say('|---|---:|---:|---:|');
for (const g of [...groups.keys()].sort()) say(`| ${g} | ${before(g)} | ${after1(g)} | ${afterSmall(g)} |`);
say();

// ---- memory: samples larger than memoryMB ----
function bigInput(targetMB: number): { file: string; docs: number; tokens: number } {
  const file = path.join(DATA, `sampling-mem-${targetMB}mb.jsonl`);
  if (!existsSync(file)) {
    const fd = openSync(file, 'w');
    let bytes = 0;
    for (let rep = 0; bytes < targetMB * 1e6; rep++) {
      const chunk: string[] = [];
      for (const r of scored) {
        chunk.push(JSON.stringify({ ...r, id: `${r.id}#${rep}` }));
        bytes += Buffer.byteLength(r.text);
        if (bytes >= targetMB * 1e6) break;
      }
      writeSync(fd, chunk.join('\n') + '\n');
    }
    closeSync(fd);
  }
  let docs = 0;
  let tokens = 0;
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    if (!l) continue;
    docs++;
    tokens += JSON.parse(l).token_count;
  }
  return { file, docs, tokens };
}
function child(file: string, op: string, opts: Record<string, unknown>, heapCapMB?: number) {
  const timeFile = path.join(os.tmpdir(), `mixstream-sampling-time-${process.pid}`);
  const t0 = performance.now();
  const script = path.join(ROOT, 'bench', 'sampling-child.ts');
  const node = [process.execPath, '--expose-gc', ...(heapCapMB ? [`--max-old-space-size=${heapCapMB}`] : []), '--import', 'tsx'];
  const r = spawnSync('/usr/bin/time', ['-f', '%M', '-o', timeFile, ...node, script, op, file, JSON.stringify(opts)], { encoding: 'utf8', cwd: ROOT, maxBuffer: 1 << 26 });
  const seconds = (performance.now() - t0) / 1000;
  const rss = Number(readFileSync(timeFile, 'utf8').trim().split('\n').pop()) / 1024;
  if (r.status !== 0) {
    if (heapCapMB && /heap out of memory|Allocation failed/i.test(r.stderr)) return { seconds, rssMB: rss, oom: true as const };
    throw new Error(`child ${op} failed: ${r.stderr}`);
  }
  return { seconds, rssMB: rss, oom: false as const, out: JSON.parse(r.stdout.trim().split('\n').pop()!) as { outRecs: number; liveHeapMB: number; counters: Record<string, number> } };
}
say('### Memory: samples larger than memoryMB');
say();
say(`Inputs: ${memInputMB.map((m) => `${m} MB`).join(' and ')} of text (the corpus repeated under new ids, with token_count and quality_score). Each row is a child process (bench/sampling-child.ts) that reads the file in batches of 512, runs the operator and streams its output (\`flushBatches\`) to /dev/null. The reservoir keeps a sample of half the input tokens; samplemix holds every record until the end of input ("held"). "live heap" is the largest heapUsed right after a forced full GC (sampled every 8 batches and during the output): the memory the operator really holds. Peak RSS (from /usr/bin/time) also counts garbage V8 has not collected yet and the ~100 MB of node + tsx.`);
say();
say('| operator | input | memoryMB | held | records spilled | live heap | peak RSS | time |');
say('|---|---:|---:|---:|---:|---:|---:|---:|');
const live: Record<string, number> = {};
const budgetOpts = (op: string, tokens: number, memoryMB: number) =>
  op === 'reservoir' ? { budgetTokens: Math.round(tokens / 2), weight: 'quality_score', memoryMB } : { budgetRatio: 1, memoryMB };
const inputs = memInputMB.map((m) => ({ m, ...bigInput(m) }));
for (const input of inputs) {
  const m = input.m;
  for (const op of ['reservoir', 'samplemix'] as const) {
    for (const memoryMB of [8, 4096]) {
      const r = child(input.file, op, budgetOpts(op, input.tokens, memoryMB));
      if (r.oom) throw new Error('unexpected out of memory');
      const c = r.out.counters;
      live[`${op}/${m}/${memoryMB}`] = r.out.liveHeapMB;
      const held = op === 'reservoir' ? `${int(c.sampled)} docs, ~${fmt(m / 2, 0)} MB` : `${int(input.docs)} docs, ${m} MB`;
      const name = op === 'reservoir' ? 'reservoir-weighted-sample, budget = half the tokens' : 'samplemix, budgetRatio 1';
      say(`| ${name} | ${m} MB | ${memoryMB} | ${held} | ${int(c.spilled_records ?? 0)} | ${fmt(r.out.liveHeapMB, 0)} MB | ${fmt(r.rssMB, 0)} MB | ${fmt(r.seconds)} s |`);
    }
  }
}
say();
const [small, large] = memInputMB;
const growth = (op: string, mem: number) => fmt(live[`${op}/${large}/${mem}`] - live[`${op}/${small}/${mem}`], 0);
say(`From ${small} MB to ${large} MB of input, the live heap grows by ${growth('reservoir', 8)} MB (reservoir) and ${growth('samplemix', 8)} MB (samplemix) with memoryMB 8 (records spilled), against ${growth('reservoir', 4096)} MB and ${growth('samplemix', 4096)} MB with memoryMB 4096 (records in memory).`);
say();
const cap = 48;
const last = inputs[inputs.length - 1];
if (!quick) {
  say(`With the V8 heap capped below what holding the records would need (\`node --max-old-space-size=${cap}\`, ${last.m} MB input):`);
  say();
  say('| operator | memoryMB | result | peak RSS |');
  say('|---|---:|---|---:|');
  for (const op of ['reservoir', 'samplemix'] as const) {
    for (const memoryMB of [8, 4096]) {
      const r = child(last.file, op, budgetOpts(op, last.tokens, memoryMB), cap);
      const result = r.oom ? 'out of memory' : `completes, ${int(r.out.outRecs)} records out, ${int(r.out.counters.spilled_records ?? 0)} spilled`;
      say(`| ${op === 'reservoir' ? 'reservoir-weighted-sample' : 'samplemix'} | ${memoryMB} | ${result} | ${fmt(r.rssMB, 0)} MB |`);
    }
  }
  say();
}
say('Note: the runner of `mixstream run` currently collects `flush()` into one array, so through the CLI the emitted sample is in memory at the end of input; iterating `flushBatches()` (as here) keeps it bounded.');
say();

const outFile = path.join(ROOT, 'bench', 'results', quick ? 'sampling-quick.md' : 'sampling.md');
mkdirSync(path.dirname(outFile), { recursive: true });
writeFileSync(outFile, lines.join('\n') + '\n');
process.stderr.write(`wrote ${path.relative(ROOT, outFile)}\n`);
