// Engine throughput and memory (issue: the engine). Builds >= 500 MB of real text NDJSON from the
// Debian text packages, compresses it with zstd, and measures
//   zstdcat | mixstream run <identity pipeline> > /dev/null
// against the ceiling (bench/ceiling.mjs: readline + JSON.parse + JSON.stringify) on the same
// input in the same run; then pipes >= 2 GB through a deliberately slow consumer and records
// mixstream's peak RSS. Writes bench/results/engine.md.
//   npx tsx bench/engine.ts [--quick]
import { execSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { all } from './corpus.ts';
import { machine, median, timePipeline } from './machine.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DATA = path.join(ROOT, 'bench', 'data');
const quick = process.argv.includes('--quick');
const targetMB = quick ? 60 : 520;
const repeats = quick ? 1 : 3;
const slowCopies = quick ? 2 : 4; // the slow-consumer run reads the corpus this many times over

mkdirSync(DATA, { recursive: true });
const plain = path.join(DATA, `engine-${targetMB}mb.jsonl`);
const packed = `${plain}.zst`;

async function buildCorpus(): Promise<void> {
  if (existsSync(packed)) return;
  const docs = [...all()];
  const out = createWriteStream(plain);
  let bytes = 0;
  for (let copy = 0; bytes < targetMB * 1e6; copy++) {
    let chunk = '';
    for (const d of docs) {
      const line = JSON.stringify({ ...d, id: `${d.id}#${copy}` }) + '\n';
      chunk += line;
      bytes += Buffer.byteLength(line);
      if (chunk.length > 1 << 20) {
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
        chunk = '';
      }
      if (bytes >= targetMB * 1e6) break;
    }
    out.write(chunk);
  }
  await new Promise<void>((r) => out.end(() => r()));
  execSync(`zstd -q -T2 -3 --rm -f "${plain}" -o "${packed}"`);
}

await buildCorpus();
const rawBytes = Number(execSync(`zstdcat "${packed}" | wc -c`, { encoding: 'utf8' }).trim());
const records = Number(execSync(`zstdcat "${packed}" | wc -l`, { encoding: 'utf8' }).trim());
const identity = path.join(DATA, 'identity.json');
writeFileSync(identity, JSON.stringify({ steps: [] }));
const bin = path.join(ROOT, 'bin', 'mixstream.js');
const ceiling = path.join(ROOT, 'bench', 'ceiling.mjs');

const runs: { mix: number[]; ceil: number[]; mixRss: number[]; ceilRss: number[] } = { mix: [], ceil: [], mixRss: [], ceilRss: [] };
for (let i = 0; i < repeats; i++) {
  // Alternate the two so that load from anything else on the machine hits both alike.
  const m = timePipeline(`zstdcat "${packed}"`, `node "${bin}" run "${identity}" -q`, 'cat > /dev/null');
  if (m.status !== 0) throw new Error(`mixstream failed: ${m.stderr}`);
  const c = timePipeline(`zstdcat "${packed}"`, `node "${ceiling}"`, 'cat > /dev/null');
  runs.mix.push(m.seconds);
  runs.mixRss.push(m.peakRssMB);
  runs.ceil.push(c.seconds);
  runs.ceilRss.push(c.peakRssMB);
  process.stderr.write(`run ${i + 1}: mixstream ${m.seconds.toFixed(2)} s, ceiling ${c.seconds.toFixed(2)} s\n`);
}
const mixMBs = rawBytes / 1e6 / median(runs.mix);
const ceilMBs = rawBytes / 1e6 / median(runs.ceil);

// >= 2 GB through a slow consumer: memory must stay flat while the consumer sets the pace.
const cats = Array.from({ length: slowCopies }, () => `"${packed}"`).join(' ');
const slow = timePipeline(`zstdcat ${cats}`, `node "${bin}" run "${identity}" -q`, `node "${path.join(ROOT, 'bench', 'slow-consumer.mjs')}" 2`);
const slowBytes = rawBytes * slowCopies;

const md = `## Engine: identity pipeline throughput and memory

Machine: ${machine()}. Command: \`npx tsx bench/engine.ts${quick ? ' --quick' : ''}\` (median of ${repeats} alternating runs).

Input: ${(rawBytes / 1e6).toFixed(0)} MB of real text (${records.toLocaleString('en-US')} NDJSON records from debian-handbook in 26 languages, the KJV, GCIDE and fortunes en/de/ru, repeated with distinct ids), zstd-compressed (${(statSync(packed).size / 1e6).toFixed(0)} MB).

| command | MB/s of NDJSON | records/s | peak RSS |
|---|---:|---:|---:|
| \`zstdcat \\| mixstream run identity.json > /dev/null\` | ${mixMBs.toFixed(1)} | ${Math.round(records / median(runs.mix)).toLocaleString('en-US')} | ${median(runs.mixRss).toFixed(0)} MB |
| \`zstdcat \\| node bench/ceiling.mjs > /dev/null\` (readline + JSON.parse + JSON.stringify) | ${ceilMBs.toFixed(1)} | ${Math.round(records / median(runs.ceil)).toLocaleString('en-US')} | ${median(runs.ceilRss).toFixed(0)} MB |

**mixstream / ceiling = ${((mixMBs / ceilMBs) * 100).toFixed(0)}%** (goal >= 70%). mixstream also validates every line (UTF-8, JSON object, string text, size limit) and counts per-step statistics.

Slow consumer: ${(slowBytes / 1e9).toFixed(2)} GB piped through \`mixstream run identity.json\` into a reader that pauses 2 ms after every chunk: ${slow.seconds.toFixed(0)} s, **peak RSS ${slow.peakRssMB.toFixed(0)} MB** (the ${(rawBytes / 1e6).toFixed(0)} MB run above: ${median(runs.mixRss).toFixed(0)} MB): memory does not grow with input size or a slow sink.
`;
writeFileSync(path.join(ROOT, 'bench', 'results', 'engine.md'), md);
process.stdout.write(md);
