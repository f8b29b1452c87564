// Builds the labelled quality data shipped in samples/ and trains the sample model on it:
//
//   npx tsx samples/make-quality-data.ts            # writes samples/quality.jsonl, samples/quality-model.{onnx,json}
//   npx tsx samples/make-quality-data.ts --data-only
//
// Positives (label 1) are well-formed prose from real text: King James Bible passages (runs of
// verses) and Debian Administrator's Handbook paragraphs (English, German, French). Negatives
// (label 0) are machine-made junk built from the same text, the kinds of page a web crawl is
// full of: shuffled words, repeated lines, symbol noise, navigation/boilerplate menus, keyword
// lists, broken fragments, and a prose paragraph drowned in boilerplate. KJV chapters and
// handbook pages that appear in samples/kjv.jsonl and samples/handbook.jsonl are left out, so
// tests can score those files as unseen text. Deterministic: the same packages give the same
// data and the same model.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { handbook, kjv } from '../bench/corpus.ts';
import { trainQuality } from '../lib/commands/train-quality.ts';
import { mulberry32 } from '../lib/quality/train.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const int = (r: Rand, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

function shuffled<T>(r: Rand, xs: readonly T[]): T[] {
  const a = xs.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

const words = (t: string) => t.split(/\s+/).filter(Boolean);
const sentences = (t: string) => t.match(/[^.!?;:]+[.!?;:]+/g)?.map((s) => s.trim()).filter((s) => s.length > 8) ?? [t];

const NAV = ['Home', 'About us', 'Contact', 'Login', 'Sign up', 'Register', 'Search', 'Blog', 'News', 'Shop', 'Cart (0)', 'My account', 'FAQ', 'Help', 'Sitemap', 'Careers', 'Press', 'Downloads', 'Forum', 'Privacy Policy', 'Terms of Use', 'Cookie settings', 'Accept all cookies', 'Subscribe', 'Follow us', 'Share', 'Tweet', 'Next »', '« Previous', 'Back to top', 'Read more', 'Click here', 'Skip to content', 'Menu', 'Close', 'Page 1 of 12', 'Top stories', 'Latest posts', 'Categories', 'Archives', 'Tags', 'Related articles', 'Advertisement', 'Sponsored'];
const FOOT = ['© 2024 All rights reserved.', 'Copyright © 2019-2024. All Rights Reserved.', 'Powered by WordPress', 'This site uses cookies to improve your experience.', 'Terms | Privacy | Cookies', 'Designed by Theme', 'Last updated: 12/03/2023', 'Posted by admin', 'Leave a comment', '0 comments', 'Like this: Like Loading...'];
const SYMBOLS = ['#', '@', '$', '%', '^', '&', '*', '|', '~', '=', '+', '<', '>', '/', '\\', '{', '}', '[', ']', '_', '»', '«', '•', '©', '®', '™', '§', '¤', '→', '★'];

/** The junk generators: each takes a prose passage and returns a junk document made from it. */
export const JUNK: Record<string, (r: Rand, prose: string, other?: string) => string> = {
  // Every word of the passage, in random order, wrapped at random widths.
  shuffled(r, prose) {
    const ws = shuffled(r, words(prose));
    const lines: string[] = [];
    for (let i = 0; i < ws.length; ) {
      const n = int(r, 6, 16);
      lines.push(ws.slice(i, i + n).join(' '));
      i += n;
    }
    return lines.join('\n');
  },
  // A few lines of the passage repeated over and over (template pages, stuck scrapers).
  repeated(r, prose) {
    const ss = sentences(prose);
    const keep = shuffled(r, ss).slice(0, int(r, 1, 3));
    const out: string[] = [];
    const n = int(r, 6, 14);
    for (let i = 0; i < n; i++) out.push(keep[i % keep.length]);
    return out.join('\n');
  },
  // Words of the passage broken up by runs of symbols and random character strings.
  symbols(r, prose) {
    const out: string[] = [];
    for (const w of words(prose)) {
      if (r() < 0.45) {
        let s = '';
        const n = int(r, 1, 6);
        for (let i = 0; i < n; i++) s += pick(r, SYMBOLS);
        out.push(s);
      }
      if (r() < 0.15) {
        let s = '';
        const n = int(r, 4, 12);
        for (let i = 0; i < n; i++) s += String.fromCharCode(pick(r, [int(r, 48, 57), int(r, 65, 90), int(r, 97, 122)]));
        out.push(s);
      }
      out.push(w);
    }
    return out.join(r() < 0.5 ? ' ' : pick(r, [' | ', ' ', '  ']));
  },
  // A navigation menu and footer with a few capitalized words lifted from the passage.
  menu(r, prose) {
    const terms = [...new Set(words(prose).map((w) => w.replace(/[^\p{L}\p{N}-]/gu, '')).filter((w) => w.length > 3))];
    const lines: string[] = [];
    const n = int(r, 8, 20);
    for (let i = 0; i < n; i++) {
      const k = int(r, 1, 5);
      const items: string[] = [];
      for (let j = 0; j < k; j++) {
        items.push(r() < 0.5 ? pick(r, NAV) : pick(r, terms).replace(/^./, (c) => c.toUpperCase()));
      }
      lines.push(items.join(pick(r, [' | ', ' » ', ' · ', '\n', ' / '])));
    }
    lines.push(pick(r, FOOT), pick(r, FOOT));
    return lines.join('\n');
  },
  // SEO keyword stuffing: the passage's words as a tag list.
  keywords(r, prose) {
    const terms = [...new Set(words(prose.toLowerCase()).map((w) => w.replace(/[^\p{L}\p{N}-]/gu, '')).filter((w) => w.length > 2))];
    const chosen = shuffled(r, terms).slice(0, int(r, 20, 60));
    const sep = pick(r, [', ', '\n', ' ', ' | ', '; ']);
    return `${pick(r, ['Tags', 'Keywords', 'Related searches', 'Popular', 'Trending'])}: ${chosen.join(sep)}`;
  },
  // Lines cut at random points, as from a broken PDF or table extraction.
  fragments(r, prose) {
    const ws = words(prose);
    const lines: string[] = [];
    for (let i = 0; i < ws.length; ) {
      const n = int(r, 1, 4);
      lines.push(ws.slice(i, i + n).join(' ').replace(/[.!?;:,]$/, ''));
      i += n + int(r, 0, 3);
    }
    return lines.join('\n');
  },
  // One real paragraph surrounded by a much larger amount of boilerplate.
  drowned(r, prose, other) {
    const para = sentences(other ?? prose).slice(0, 2).join(' ');
    return [JUNK.menu(r, prose), para, JUNK.keywords(r, prose), pick(r, FOOT)].join('\n');
  },
};

/** Prose passages of 250-900 characters: runs of KJV verses and handbook paragraphs. */
export function* prosePassages(r: Rand, exclude: Set<string>): Generator<{ text: string; origin: string }> {
  for (const ch of kjv()) {
    if (exclude.has(ch.id)) continue;
    const verses = ch.text.split('\n');
    for (let i = 0; i < verses.length; ) {
      const n = int(r, 3, 7);
      const text = verses.slice(i, i + n).join('\n');
      i += n;
      if (text.length >= 250 && text.length <= 900) yield { text, origin: ch.id };
    }
  }
  for (const sec of handbook(['en-US', 'de-DE', 'fr-FR'])) {
    const page = sec.id.split('/').slice(0, 3).join('/');
    if (exclude.has(page)) continue;
    // Paragraphs of running text: enough words, ending like a sentence, mostly letters.
    const paras = sec.text
      .split(/\n\s*\n/)
      .map((p) => p.replace(/\s*\n\s*/g, ' ').trim())
      .filter((p) => words(p).length >= 12 && /[.!?:»"”)]$/.test(p) && (p.match(/\p{L}/gu)?.length ?? 0) / p.length > 0.7);
    let cur = '';
    for (const p of paras) {
      cur = cur ? `${cur}\n\n${p}` : p;
      if (cur.length >= 250) {
        if (cur.length <= 900) yield { text: cur, origin: sec.id };
        cur = '';
      }
    }
  }
}

export interface QualityExample {
  id: string;
  text: string;
  label: 0 | 1;
  kind: string;
  origin: string;
}

/** Balanced labelled data: `perClass` prose passages and as many junk documents, interleaved. */
export function makeQualityData(perClass: number, seed = 20240601): QualityExample[] {
  const r = mulberry32(seed);
  const excluded = new Set<string>();
  for (const f of ['kjv.jsonl', 'handbook.jsonl']) {
    for (const line of readFileSync(path.join(HERE, f), 'utf8').split('\n')) {
      if (!line) continue;
      const id = JSON.parse(line).id as string;
      excluded.add(id.startsWith('handbook/') ? id.split('/').slice(0, 3).join('/') : id);
    }
  }
  const all = [...prosePassages(r, excluded)];
  const prose = shuffled(r, all).slice(0, perClass * 2);
  const out: QualityExample[] = [];
  const kinds = Object.keys(JUNK);
  for (let i = 0; i < perClass && 2 * i + 1 < prose.length; i++) {
    const p = prose[2 * i];
    out.push({ id: `quality/hq/${i}`, text: p.text, label: 1, kind: 'prose', origin: p.origin });
    const src = prose[2 * i + 1];
    const kind = kinds[i % kinds.length];
    out.push({ id: `quality/lq/${i}`, text: JUNK[kind](r, src.text, p.text), label: 0, kind, origin: src.origin });
  }
  return out;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const data = makeQualityData(700);
  const file = path.join(HERE, 'quality.jsonl');
  writeFileSync(file, data.map((d) => JSON.stringify(d)).join('\n') + '\n');
  process.stderr.write(`wrote ${data.length} examples to ${file}\n`);
  if (!process.argv.includes('--data-only')) {
    const res = await trainQuality({ input: [file], out: path.join(HERE, 'quality-model'), dim: 1 << 16, holdout: 0.2, log: (m) => process.stderr.write(m + '\n') });
    process.stderr.write(`wrote ${res.model} and ${res.config}: held-out accuracy ${res.holdout?.accuracy.toFixed(4)}, AUC ${res.holdout?.auc.toFixed(4)} (${res.holdout?.n} examples)\n`);
  }
}
