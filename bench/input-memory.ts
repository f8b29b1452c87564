// Peak RSS by input format (issue: the engine; "memory does not grow with the input"). Builds
// two corpora of real text NDJSON (1x and 4x) from the Debian text packages, writes each also as
// zstd and gzip files, an Arrow IPC file and stream (batches of 1,000 rows) and Parquet (row
// groups of 100,000 rows), and runs `mixstream run identity.json FILE -o /dev/null` on each. The
// reference in the same run is the same NDJSON piped in (`zstdcat | mixstream run identity.json`,
// the engine benchmark's path): each format's peak RSS is compared with it, and 4x with 1x.
// Writes bench/results/input-memory.md.
//   npx tsx bench/input-memory.ts [--quick]
import { execSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Table, Utf8, tableToIPC, vectorFromArray } from 'apache-arrow';
import { parquetWriteFile } from 'hyparquet-writer';
import { all, type Doc } from './corpus.ts';
import { machine, timePipeline, writeResults } from './machine.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DATA = path.join(ROOT, 'bench', 'data');
const quick = process.argv.includes('--quick');
const baseMB = quick ? 20 : 130;
const sizes = [1, 4];
mkdirSync(DATA, { recursive: true });

/** The corpus in a fixed shuffled order, so that every size has the same mix of long and short documents. */
function shuffled(): Doc[] {
  const docs = [...all()];
  let seed = 1;
  const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  for (let i = docs.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [docs[i], docs[j]] = [docs[j], docs[i]];
  }
  return docs;
}

/** NDJSON of about `mb` MB: the shuffled corpus repeated with distinct ids. */
async function ndjson(mb: number): Promise<string> {
  const file = path.join(DATA, `input-memory-${mb}mb.jsonl`);
  if (existsSync(file)) return file;
  const docs = shuffled();
  const out = createWriteStream(file);
  let bytes = 0;
  for (let copy = 0; bytes < mb * 1e6; copy++) {
    let chunk = '';
    for (const d of docs) {
      const line = JSON.stringify({ id: `${d.id}#${copy}`, text: d.text, source: d.source }) + '\n';
      chunk += line;
      bytes += Buffer.byteLength(line);
      if (bytes >= mb * 1e6) break;
    }
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r) => out.end(() => r()));
  return file;
}

/** The columns of an NDJSON file (id, text, source), for the Arrow and Parquet writers. */
function columns(file: string): { id: string[]; text: string[]; source: string[] } {
  const cols = { id: [] as string[], text: [] as string[], source: [] as string[] };
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    const r = JSON.parse(line);
    cols.id.push(r.id);
    cols.text.push(r.text);
    cols.source.push(r.source);
  }
  return cols;
}

/** Every format of the corpus at `mb` MB: name -> path. */
async function formats(mb: number): Promise<Record<string, string>> {
  const plain = await ndjson(mb);
  const out: Record<string, string> = { 'NDJSON file': plain, 'NDJSON .zst file': `${plain}.zst`, 'NDJSON .gz file': `${plain}.gz`, 'Arrow IPC file': `${plain}.arrow`, 'Arrow IPC stream': `${plain}.arrows`, Parquet: `${plain}.parquet` };
  if (!existsSync(out['NDJSON .zst file'])) execSync(`zstd -q -T2 -3 -f "${plain}" -o "${out['NDJSON .zst file']}"`);
  if (!existsSync(out['NDJSON .gz file'])) execSync(`gzip -c -6 "${plain}" > "${out['NDJSON .gz file']}"`);
  if (!existsSync(out['Arrow IPC file']) || !existsSync(out['Arrow IPC stream']) || !existsSync(out.Parquet)) {
    const c = columns(plain);
    // Plain Utf8 columns (arrow-js would dictionary-encode strings by default), in batches of 1,000 rows.
    const whole = new Table({ id: vectorFromArray(c.id, new Utf8()), text: vectorFromArray(c.text, new Utf8()), source: vectorFromArray(c.source, new Utf8()) });
    const batch = whole.batches[0];
    const table = new Table(Array.from({ length: Math.ceil(batch.numRows / 1000) }, (_, i) => batch.slice(i * 1000, (i + 1) * 1000)));
    writeFileSync(out['Arrow IPC file'], tableToIPC(table, 'file'));
    writeFileSync(out['Arrow IPC stream'], tableToIPC(table, 'stream'));
    parquetWriteFile({ filename: out.Parquet, columnData: [{ name: 'id', data: c.id, type: 'STRING' }, { name: 'text', data: c.text, type: 'STRING' }, { name: 'source', data: c.source, type: 'STRING' }], rowGroupSize: 100_000 });
  }
  return out;
}

const identity = path.join(DATA, 'identity.json');
writeFileSync(identity, JSON.stringify({ steps: [] }));
const bin = path.join(ROOT, 'bin', 'mixstream.js');

interface Row { name: string; mb: number[]; rss: number[]; seconds: number[] }
const rows: Row[] = [];
const piped: Row = { name: '`zstdcat FILE.zst \\| mixstream run identity.json -` (reference)', mb: [], rss: [], seconds: [] };
for (const k of sizes) {
  const files = await formats(baseMB * k);
  const ref = timePipeline(`zstdcat "${files['NDJSON .zst file']}"`, `node "${bin}" run "${identity}" - -o /dev/null -q`, '');
  if (ref.status !== 0) throw new Error(`mixstream failed: ${ref.stderr}`);
  piped.mb.push(statSync(files['NDJSON file']).size / 1e6);
  piped.rss.push(ref.peakRssMB);
  piped.seconds.push(ref.seconds);
  for (const [name, file] of Object.entries(files)) {
    const r = timePipeline('', `node "${bin}" run "${identity}" "${file}" -o /dev/null -q`, '');
    if (r.status !== 0) throw new Error(`mixstream failed on ${file}: ${r.stderr}`);
    let row = rows.find((x) => x.name === name);
    if (!row) rows.push((row = { name, mb: [], rss: [], seconds: [] }));
    row.mb.push(statSync(file).size / 1e6);
    row.rss.push(r.peakRssMB);
    row.seconds.push(r.seconds);
    process.stderr.write(`${name} ${k}x: ${r.peakRssMB.toFixed(0)} MB peak RSS, ${r.seconds.toFixed(1)} s\n`);
  }
}

/** What the ratios say: which inputs, if any, grew by more than 15% from 1x to 4x. */
function verdict(): string {
  const grew = [piped, ...rows].filter((r) => r.rss[1] / r.rss[0] > 1.15);
  const how = 'Files are read a record batch, a decompressed buffer or a Parquet row group (in slices of rows past 16 MiB uncompressed, its compressed column chunks held meanwhile) at a time, so a Parquet file\'s peak follows its row-group size, and varies with where the collector runs in it.';
  if (grew.length === 0) return `Peak RSS stays within 15% from 1x to 4x for every format. ${how}`;
  return `Peak RSS grew by more than 15% from 1x to 4x for: ${grew.map((r) => `${r.name} (x${(r.rss[1] / r.rss[0]).toFixed(2)})`).join(', ')}. ${how}`;
}

const records = sizes.map((k) => Number(execSync(`wc -l < "${path.join(DATA, `input-memory-${baseMB * k}mb.jsonl`)}"`, { encoding: 'utf8' }).trim()));
const line = (r: Row) => `| ${r.name} | ${r.mb.map((m) => m.toFixed(0)).join(' / ')} | ${r.rss.map((m) => m.toFixed(0)).join(' / ')} | ${(r.rss[1] / r.rss[0]).toFixed(2)} | ${(r.rss[1] / piped.rss[1]).toFixed(2)} | ${r.seconds.map((s) => s.toFixed(1)).join(' / ')} |`;
const md = `## Input formats: peak RSS at 1x and 4x

Machine: ${machine()}. Command: \`npx tsx bench/input-memory.ts${quick ? ' --quick' : ''}\`.

Input: real text (debian-handbook in 26 languages, the KJV, GCIDE, fortunes en/de/ru, shuffled, repeated with distinct ids), ${records.map((n) => n.toLocaleString('en-US')).join(' and ')} records (1x and 4x), as NDJSON, zstd and gzip NDJSON, an Arrow IPC file and stream (plain UTF-8 columns, batches of 1,000 rows) and Parquet (row groups of 100,000 rows, hyparquet-writer). Each read by \`mixstream run identity.json FILE -o /dev/null\`; peak RSS of the whole process by /usr/bin/time. The reference is the same NDJSON piped in from zstdcat (the engine benchmark's path), in the same run.

| input | size 1x / 4x (MB) | peak RSS 1x / 4x (MB) | 4x / 1x | vs reference at 4x | wall s 1x / 4x |
|---|---:|---:|---:|---:|---:|
${[piped, ...rows].map(line).join('\n')}

${verdict()}
`;
writeResults(md, quick, path.join(ROOT, 'bench', 'results', 'input-memory.md'), path.join(ROOT, 'bench', 'results', 'input-memory-quick.md'));
