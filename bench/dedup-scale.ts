// Dedup at scale: time and peak RSS of `mixstream run` (normalize -> shingle -> minhash ->
// lsh-band-join, the Zyda-2 parameters) at 1x, 4x and 16x input, with a small index budget that
// forces spilling to disk, and a check that the spilled output is byte-identical to an
// all-in-RAM run on the same input.
//
//   npx tsx bench/dedup-scale.ts            # 312,500 / 1.25M / 5M documents (the 16x run takes a while)
//   npx tsx bench/dedup-scale.ts --quick    # 10k / 40k / 160k documents
//   options: --base N (documents at 1x), --sizes 1,4,16, --memory MB (spilled runs' memoryMB, default 256),
//            --ram-check 1,4 (multipliers that also run all-in-RAM for the identical-output check),
//            --repeat N (spilled runs per size, the fastest counts; default 2, 1 with --quick)
//
// Documents are short (30-78 words): three passages of real text (debian-handbook en-US, KJV, fortunes);
// 35% are copies of an earlier document (a recent one or one drawn uniformly from the whole
// stream, so joins reach into spilled parts of the index) with 0-10% of their words edited.
// Peak RSS is measured by /usr/bin/time -v around the CLI process (worker threads included).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeResults } from './machine.ts';
import { fortunes, handbook, kjv } from './corpus.ts';
import { editWords, prng } from './dedup-quality.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const DATA = path.join(HERE, 'data');

function wordPool(): string[] {
  const words: string[] = [];
  const add = (text: string) => {
    for (const w of text.split(/\s+/)) if (w) words.push(w);
  };
  for (const d of handbook(['en-US'])) add(d.text);
  for (const d of kjv()) add(d.text);
  for (const d of fortunes()) if (d.lang === 'en') add(d.text);
  return words;
}

/**
 * Writes `n` documents to `file` (deterministic for a given n). A copy's original is drawn half
 * of the time from the last RING documents and half of the time uniformly from all earlier ones
 * (read back from the file), so duplicates reach into every part of the index while a document's
 * expected number of copies, and so the candidates a lookup verifies, hardly change with n. (Drawing
 * from a fixed-size sample of the stream instead makes each sampled document collect copies in
 * proportion to n, and every verified-LSH run quadratic in n, spilled or not.)
 */
function generate(file: string, n: number, pool: string[]): void {
  const rnd = prng(0x5ca1e + n);
  const vocab = pool.slice(0, 50000).filter((w) => /^[a-z]{3,12}$/.test(w));
  const RING = 4096;
  const ring: string[] = [];
  const offsets = new Float64Array(n + 1);
  const fd = openSync(file, 'w+');
  let flushed = 0;
  let pending: string[] = [];
  let pendingFrom = 0;
  let pendingBytes = 0;
  const readBuf = Buffer.alloc(1 << 20);
  const textOf = (j: number): string => {
    if (j >= pendingFrom) return JSON.parse(pending[j - pendingFrom]).text;
    const len = offsets[j + 1] - offsets[j];
    readSync(fd, readBuf, 0, len, offsets[j]);
    return JSON.parse(readBuf.toString('utf8', 0, len)).text;
  };
  for (let i = 0; i < n; i++) {
    let text: string;
    let kind: string;
    if (i > 100 && rnd() < 0.35) {
      const base = rnd() < 0.5 ? ring[Math.floor(rnd() * ring.length)] : textOf(Math.floor(rnd() * i));
      const rate = [0, 0.01, 0.02, 0.05, 0.1][Math.floor(rnd() * 5)];
      text = rate === 0 ? base : editWords(base, rate, rnd, vocab);
      kind = `copy-${rate}`;
    } else {
      // Three passages from random places: one long window of the finite pool would overlap
      // earlier windows more and more often as n grows.
      const parts: string[] = [];
      for (let k = 0; k < 3; k++) {
        const len = 10 + Math.floor(rnd() * 17);
        const start = Math.floor(rnd() * (pool.length - len));
        parts.push(pool.slice(start, start + len).join(' '));
      }
      text = parts.join(' ');
      kind = 'fresh';
    }
    if (ring.length < RING) ring.push(text);
    else ring[i % RING] = text;
    const line = JSON.stringify({ id: `s${i}`, text, source: 'scale', kind }) + '\n';
    pending.push(line);
    const bytes = Buffer.byteLength(line);
    offsets[i + 1] = offsets[i] + bytes;
    pendingBytes += bytes;
    if (pendingBytes > 1 << 22) {
      flushed += writeSync(fd, pending.join(''), flushed);
      pending = [];
      pendingFrom = i + 1;
      pendingBytes = 0;
    }
  }
  writeSync(fd, pending.join(''), flushed);
  closeSync(fd);
}

interface RunResult {
  wallS: number;
  cpuS: number;
  maxRssMB: number;
  anonMB: number;
  fileMB: number;
  sha: string;
  recordsOut: number;
  counters: Record<string, number>;
  /** Time the lsh-band-join step was busy, seconds. */
  joinS: number;
  /** What the process read from the storage device rather than the page cache (file system inputs, 512-byte units on Linux), MB. */
  diskReadMB: number;
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function runPipeline(input: string, memoryMB: number, tag: string): Promise<RunResult> {
  const pipeline = path.join(DATA, `dedup-scale-pipeline-${memoryMB}.json`);
  writeFileSync(
    pipeline,
    JSON.stringify({
      steps: [
        { op: 'normalize' },
        { op: 'shingle', unit: 'word', n: 5 },
        { op: 'minhash', perms: 128, seed: 1 },
        { op: 'lsh-band-join', threshold: 0.85, memoryMB },
      ],
    }),
  );
  const out = path.join(DATA, `dedup-scale-out-${tag}.jsonl`);
  const report = path.join(DATA, `dedup-scale-report-${tag}.json`);
  // Peak RSS from /usr/bin/time; peaks of its two parts sampled from /proc every 100 ms: anonymous
  // memory (heaps, typed arrays: what the process needs) and file-backed pages (the node binary
  // and libraries: page cache the kernel reclaims under memory pressure).
  const child = spawn('/usr/bin/time', ['-v', process.execPath, path.join(ROOT, 'bin', 'mixstream.js'), 'run', pipeline, input, '-o', out, '--report', report, '-q'], { cwd: ROOT });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const peaks = { anon: 0, file: 0 };
  const sampler = setInterval(() => {
    try {
      for (const pid of readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) {
        const st = readFileSync(`/proc/${pid}/status`, 'utf8');
        const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(st)?.[1] ?? 0);
        peaks.anon = Math.max(peaks.anon, kb('RssAnon') / 1024);
        peaks.file = Math.max(peaks.file, kb('RssFile') / 1024);
      }
    } catch {
      // the process is starting or gone
    }
  }, 100);
  const status = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearInterval(sampler);
  const r = { status, stderr };
  if (r.status !== 0) throw new Error(`mixstream run failed (${r.status}):\n${r.stderr.slice(-3000)}`);
  const field = (name: string) => {
    const m = new RegExp(`${name}: (.*)`).exec(r.stderr);
    if (!m) throw new Error(`no "${name}" in /usr/bin/time output`);
    return m[1].trim();
  };
  const wall = field('Elapsed \\(wall clock\\) time \\(h:mm:ss or m:ss\\)').split(':').map(Number);
  const wallS = wall.reduce((a, b) => a * 60 + b, 0);
  const cpuS = Number(field('User time \\(seconds\\)')) + Number(field('System time \\(seconds\\)'));
  const maxRssMB = Number(field('Maximum resident set size \\(kbytes\\)')) / 1024;
  const diskReadMB = (Number(field('File system inputs')) * 512) / 2 ** 20;
  const rep = JSON.parse(readFileSync(report, 'utf8'));
  const step = rep.steps.find((s: { op: string }) => s.op === 'lsh-band-join');
  const sha = await sha256(out);
  rmSync(out, { force: true });
  return { wallS, cpuS, maxRssMB, anonMB: peaks.anon, fileMB: peaks.file, sha, recordsOut: rep.totals.recordsOut, counters: step.counters, joinS: step.timeMs / 1000, diskReadMB };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string, def: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : def;
  };
  const quick = args.includes('--quick');
  const base = Number(opt('base', quick ? '10000' : '312500'));
  const sizes = opt('sizes', '1,4,16').split(',').map(Number);
  const memoryMB = Number(opt('memory', quick ? '32' : '256'));
  const ramCheck = new Set(opt('ram-check', quick ? '1,4,16' : '1,4').split(',').map(Number));
  const repeat = Number(opt('repeat', quick ? '1' : '2'));
  const loadStart = os.loadavg();
  mkdirSync(DATA, { recursive: true });
  let pool: string[] | undefined;
  const results: { m: number; n: number; mb: number; spill: RunResult; walls: number[]; ram?: RunResult }[] = [];
  for (const m of sizes) {
    const n = base * m;
    const input = path.join(DATA, `dedup-scale-${n}.jsonl`);
    if (!existsSync(input)) {
      pool ??= wordPool();
      const t = performance.now();
      generate(input, n, pool);
      console.error(`generated ${n} documents in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    }
    const mb = statSync(input).size / 1e6;
    // Other jobs on a shared machine slow single runs by up to a third: the fastest of `repeat`
    // counts, with the highest peak RSS of them all.
    if (!(repeat >= 1)) throw new Error('--repeat must be at least 1');
    const runs: RunResult[] = [];
    for (let r = 0; r < repeat; r++) {
      const run = await runPipeline(input, memoryMB, `${n}-spill`);
      if (runs.length && run.sha !== runs[0].sha) throw new Error(`two spilled runs of ${n} documents gave different outputs`);
      console.error(`${m}x (${n} docs): spilled run ${run.wallS.toFixed(1)} s, peak RSS ${run.maxRssMB.toFixed(0)} MB, spills ${run.counters.index_spills ?? 0}`);
      runs.push(run);
    }
    const walls = runs.map((r) => r.wallS);
    const peak = (key: 'maxRssMB' | 'anonMB' | 'fileMB') => Math.max(...runs.map((r) => r[key]));
    const fastest = runs.reduce((a, b) => (b.wallS < a.wallS ? b : a));
    const spill: RunResult = { ...fastest, maxRssMB: peak('maxRssMB'), anonMB: peak('anonMB'), fileMB: peak('fileMB') };
    const ram = ramCheck.has(m) ? await runPipeline(input, 16384, `${n}-ram`) : undefined;
    if (ram) console.error(`${m}x: in-RAM run ${ram.wallS.toFixed(1)} s, peak RSS ${ram.maxRssMB.toFixed(0)} MB, identical: ${ram.sha === spill.sha}`);
    if (ram && ram.sha !== spill.sha) process.exitCode = 1;
    results.push({ m, n, mb, spill, walls, ram });
    // Written after every size, so a long run leaves its finished rows behind.
    writeTable();
  }

  function writeTable(): void {
    const rows: string[] = [];
    const diskRows: string[] = [];
    for (const { m, n, mb, spill, walls, ram } of results) {
      const c = spill.counters;
      const perDoc = (k: string) => ((c[k] ?? 0) / n).toFixed(3);
      diskRows.push(
        `| ${m}x | ${spill.joinS.toFixed(1)} | ${((1e6 * spill.joinS) / n).toFixed(1)} | ${c.index_spills ?? 0} / ${c.index_merges ?? 0} / ${c.index_segments ?? 0} | ${perDoc('index_block_reads')} | ${perDoc('index_block_hits')} | ${perDoc('index_doc_reads')} | ${spill.diskReadMB.toFixed(0)} |`,
      );
      rows.push(
        `| ${m}x | ${n.toLocaleString('en-US')} | ${mb.toFixed(0)} | ${spill.wallS.toFixed(1)}${walls.length > 1 ? ` (${walls.map((w) => w.toFixed(1)).join(', ')})` : ''} | ${spill.cpuS.toFixed(1)} | ${Math.round(n / spill.wallS).toLocaleString('en-US')} | ${spill.maxRssMB.toFixed(0)} | ${spill.anonMB.toFixed(0)} | ${spill.fileMB.toFixed(0)} | ${spill.counters.index_spills ?? 0} | ${(spill.counters.near_duplicates ?? 0).toLocaleString('en-US')} | ${ram ? `${ram.maxRssMB.toFixed(0)} MB, ${ram.sha === spill.sha ? 'identical' : '**DIFFERENT**'}` : 'not run'} |`,
      );
    }
    const first = results[0];
    const last = results[results.length - 1];
    const steps = results.slice(1).map((r, i) => {
      const prev = results[i];
      return `from ${prev.m}x to ${r.m}x (input x${(r.n / prev.n).toFixed(0)}): wall time x${(r.spill.wallS / prev.spill.wallS).toFixed(2)}, lsh-band-join time x${(r.spill.joinS / prev.spill.joinS).toFixed(2)}`;
    });
    const load = os.loadavg();
    const md = [
      `## Dedup at scale: bounded memory with an on-disk index${quick ? ' (--quick)' : ''}`,
      '',
      `Command: \`npx tsx bench/dedup-scale.ts${args.length ? ' ' + args.join(' ') : ''}\` · machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), node ${process.version}, ${Math.round(os.totalmem() / 2 ** 30)} GB RAM, ${new Date().toISOString().slice(0, 10)}; 1-minute load average ${loadStart[0].toFixed(2)} at the start, ${load[0].toFixed(2)} at the end. Each spilled run ${repeat > 1 ? `ran ${repeat} times (wall times in brackets); the fastest is shown, with the highest peak RSS of the runs` : 'ran once'}.`,
      '',
      `Pipeline: normalize -> shingle (word 5-grams) -> minhash (128, oph) -> lsh-band-join (0.85, 16 x 8, verify exact, keep first), through \`mixstream run\` with both cores (shingle/minhash worker threads). Spilled runs use \`memoryMB: ${memoryMB}\` (goal: peak RSS < memoryMB + 300 = ${memoryMB + 300} MB); the in-RAM runs use memoryMB 16384 (no spill) on the same input and their output is compared byte for byte (sha256). Peak RSS by /usr/bin/time -v; its anonymous part (heaps, typed arrays) and file-backed part (the node binary and libraries) are peaks sampled from /proc every 100 ms. The spilled index is an SQLite file read with pread into a bounded page cache, so its size does not reach the RSS.`,
      '',
      '| input | documents | MB | wall s | CPU s | docs/s | peak RSS MB | of which anonymous (peak) | file-backed (peak) | index spills | removed | in-RAM run: peak RSS, output |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
      ...rows,
      '',
      results.length > 1
        ? `From ${first.m}x to ${last.m}x: input x${(last.n / first.n).toFixed(0)}, wall time x${(last.spill.wallS / first.spill.wallS).toFixed(1)}, CPU time x${(last.spill.cpuS / first.spill.cpuS).toFixed(1)}, peak RSS x${(last.spill.maxRssMB / first.spill.maxRssMB).toFixed(2)} (spilled runs); ${steps.join('; ')}.`
        : '',
      '',
      'The on-disk index in the spilled runs (the fastest run of each size): time the lsh-band-join step was busy, and what its lookups read per input document (band-entry blocks, of which held the key looked up; the rest are Bloom filter false positives; stored documents read for verification); and what the whole run read from the storage device rather than from the page cache (`/usr/bin/time` file system inputs: the input file and index pages the kernel had evicted).',
      '',
      '| input | lsh-band-join s | per document, us | spills / merges / segments | block reads per doc | of which hits | document reads per doc | read from the device, MB |',
      '|---|---:|---:|---|---:|---:|---:|---:|',
      ...diskRows,
      '',
    ].join('\n');
    writeResults(md, quick, path.join(HERE, 'results', 'dedup-scale.md'), path.join(DATA, 'dedup-scale-quick.md'));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
