// Builds NDJSON corpora from the real text in Debian packages (debian-handbook, bible-kjv-text,
// dict-gcide, fortunes, fortunes-de, fortunes-ru). Used for the shipped samples and, at larger
// sizes, by the benchmarks. Deterministic: the same packages give the same documents.
//
//   npx tsx bench/corpus.ts handbook|kjv|gcide|fortunes|all > corpus.jsonl
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';

export interface Doc {
  id: string;
  text: string;
  source: string;
  [k: string]: unknown;
}

const HANDBOOK = '/usr/share/doc/debian-handbook/html';
const FORTUNES = '/usr/share/games/fortunes';
const GCIDE = '/usr/share/dictd/gcide.dict.dz';

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', mdash: '—', ndash: '–', hellip: '…', copy: '©', rsquo: '’', lsquo: '‘', rdquo: '”', ldquo: '“' };

export function htmlToText(html: string): string {
  return html
    .replace(/<(script|style|head)\b[\s\S]*?<\/\1>/gi, '')
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<\/(p|div|h[1-6]|li|tr|pre|dt|dd|table|section|blockquote)>/gi, '\n\n')
    .replace(/<[^>]+>/g, '')
    .replace(/&(#x[0-9a-f]+|#\d+|\w+);/gi, (m, e: string) => {
      if (e[0] === '#') {
        const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
        return Number.isFinite(cp) && cp > 0 && cp < 0x110000 ? String.fromCodePoint(cp) : m;
      }
      return ENTITIES[e] ?? m;
    })
    .replace(/[ \t]+\n/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

export function handbookLanguages(): string[] {
  if (!existsSync(HANDBOOK)) return [];
  return readdirSync(HANDBOOK).filter((d) => /^[a-z]{2}-[A-Z]{2}$/.test(d)).sort();
}

/** One document per section of each chapter, per language edition. Untranslated sections are real near-duplicates of en-US. */
export function* handbook(languages = handbookLanguages()): Generator<Doc> {
  for (const lang of languages) {
    const dir = path.join(HANDBOOK, lang);
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.html')).sort()) {
      const html = readFileSync(path.join(dir, file), 'utf8');
      const body = html.replace(/^[\s\S]*?<body[^>]*>/i, '');
      const parts = body.split(/(?=<div class="section")/);
      parts.forEach((part, i) => {
        const text = htmlToText(part);
        if (text.length < 40) return;
        docs.push({ id: `handbook/${lang}/${file.replace(/\.html$/, '')}/${i}`, text, source: 'debian-handbook', lang, url: `file://${dir}/${file}` });
      });
      yield* docs.splice(0);
    }
  }
}
const docs: Doc[] = [];

/** One document per chapter of the King James Bible. */
export function* kjv(): Generator<Doc> {
  if (!existsSync('/usr/bin/bible')) return;
  const out = execFileSync('/usr/bin/bible', ['Gen1:1-Rev22:21'], { maxBuffer: 64 << 20, encoding: 'utf8' });
  // Output: a "Book N" header line per chapter, then verses ("  12 text") wrapped onto further lines.
  let chapter = '';
  let verses: string[] = [];
  const flush = function* () {
    if (chapter && verses.length) yield { id: `kjv/${chapter.replace(/ /g, '_')}`, text: verses.join('\n'), source: 'kjv', chapter } as Doc;
    verses = [];
  };
  for (const line of out.split('\n')) {
    if (!line.trim()) continue;
    if (/^(?:[1-3] )?[A-Z][A-Za-z ]+ \d+$/.test(line)) {
      yield* flush();
      chapter = line.trim();
      continue;
    }
    const m = /^\s+(\d+) (.*)$/.exec(line);
    if (m) verses.push(m[2].trim());
    else if (verses.length) verses[verses.length - 1] += ' ' + line.trim();
  }
  yield* flush();
}

/** One document per dictionary entry of GCIDE (dictd format: entries start at lines without indentation). */
export function* gcide(limit = Infinity): Generator<Doc> {
  if (!existsSync(GCIDE)) return;
  const text = gunzipSync(readFileSync(GCIDE)).toString('utf8');
  let n = 0;
  for (const entry of text.split(/\n(?=\S)/)) {
    const lines = entry.split('\n');
    const head = lines[0].trim();
    const body = lines.slice(1).map((l) => l.trim()).join('\n').trim();
    if (!head || head.startsWith('00-') || body.length < 20) continue;
    yield { id: `gcide/${n}`, text: `${head}\n${body}`, source: 'gcide', headword: head };
    if (++n >= limit) return;
  }
}

/** One document per fortune (quotes) in English, German and Russian collections. */
export function* fortunes(): Generator<Doc> {
  const dirs: [string, string][] = [[FORTUNES, 'en'], [path.join(FORTUNES, 'de'), 'de'], [path.join(FORTUNES, 'ru'), 'ru']];
  for (const [dir, lang] of dirs) {
    if (!existsSync(dir)) continue;
    for (const file of readdirSync(dir).sort()) {
      const full = path.join(dir, file);
      if (file.includes('.') || !statSync(full).isFile()) continue;
      const raw = readFileSync(full);
      const content = raw.toString('utf8');
      content.split(/\n%\n/).forEach((q, i) => {
        const text = q.trim();
        if (text.length >= 20 && !text.includes('\ufffd')) docs.push({ id: `fortunes/${lang}/${file}/${i}`, text, source: 'fortunes', lang });
      });
      yield* docs.splice(0);
    }
  }
}

export function* all(): Generator<Doc> {
  yield* handbook();
  yield* kjv();
  yield* gcide();
  yield* fortunes();
}

/** Every document of every source, shuffled by `random` (a [0, 1) generator), up to `targetMB` of text. */
export function shuffledSample(targetMB: number, random: () => number): Doc[] {
  const docs = [...all()];
  for (let i = docs.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [docs[i], docs[j]] = [docs[j], docs[i]];
  }
  const out: Doc[] = [];
  let bytes = 0;
  for (const d of docs) {
    if (bytes >= targetMB * 1e6) break;
    out.push(d);
    bytes += Buffer.byteLength(d.text);
  }
  return out;
}

const SOURCES: Record<string, () => Generator<Doc>> = { handbook: () => handbook(), kjv, gcide: () => gcide(), fortunes, all };

if (process.argv[1] && path.resolve(process.argv[1]) === new URL(import.meta.url).pathname) {
  const which = process.argv[2] ?? 'all';
  const make = SOURCES[which];
  if (!make) {
    process.stderr.write(`unknown corpus "${which}"; one of ${Object.keys(SOURCES).join(', ')}\n`);
    process.exit(2);
  }
  let buf = '';
  for (const d of make()) {
    buf += JSON.stringify(d) + '\n';
    if (buf.length > 1 << 20) {
      process.stdout.write(buf);
      buf = '';
    }
  }
  process.stdout.write(buf);
}
