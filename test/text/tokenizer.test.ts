import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Tiktoken } from 'js-tiktoken/lite';
import cl100k from 'js-tiktoken/ranks/cl100k_base';
import {
  byteLevelAlphabet,
  estimateTokens,
  loadEncoding,
  loadTokenizerJson,
  toJsRegexSource,
} from '../../lib/text/tokenizer.ts';
import { readJsonl } from '../../lib/testing.ts';

const samples = ['handbook', 'kjv', 'gcide', 'fortunes'].flatMap((f) => readJsonl(new URL(`../../samples/${f}.jsonl`, import.meta.url)));

t.test('cl100k_base on known strings', async (t) => {
  const enc = await loadEncoding('cl100k_base');
  t.same(enc.encode('hello world'), [15339, 1917]);
  t.equal(enc.count('hello world'), 2);
  t.equal(enc.count(''), 0);
  // Special-token strings count as ordinary text, never as one special token.
  t.ok(enc.count('<|endoftext|>') > 1);
  t.equal(enc.count('Hello, world! 你好'), 7);
});

t.test('cl100k_base and o200k_base agree with js-tiktoken on every sample document', async (t) => {
  const ref = new Tiktoken(cl100k);
  const enc = await loadEncoding('cl100k_base');
  let mismatches = 0;
  for (const r of samples) {
    const want = ref.encode(r.text, [], []);
    const got = enc.encode(r.text);
    if (got.length !== want.length || got.some((x, i) => x !== want[i]) || enc.count(r.text) !== want.length) mismatches++;
  }
  t.equal(mismatches, 0, `${samples.length} documents`);
  const o200 = await loadEncoding('o200k_base');
  const { default: o200ranks } = await import('js-tiktoken/ranks/o200k_base');
  const ref2 = new Tiktoken(o200ranks);
  const some = samples.filter((_, i) => i % 7 === 0);
  t.equal(some.filter((r) => o200.count(r.text) !== ref2.encode(r.text, [], []).length).length, 0);
});

t.test('unknown encoding is rejected', async (t) => {
  await t.rejects(loadEncoding('nope' as 'gpt2'), /unknown encoding "nope"/);
});

// A naive reference: apply the merges in rank order over the whole symbol list.
function naiveBpe(symbols: string[], merges: [string, string][]): string[] {
  let s = symbols.slice();
  for (const [a, b] of merges) {
    const out: string[] = [];
    for (let i = 0; i < s.length; i++) {
      if (i < s.length - 1 && s[i] === a && s[i + 1] === b) {
        out.push(a + b);
        i++;
      } else out.push(s[i]);
    }
    s = out;
  }
  return s;
}

const GPT2 = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
const alphabet = byteLevelAlphabet();
const toSymbols = (piece: string) => [...Buffer.from(piece, 'utf8')].map((b) => alphabet[b]);

/** Trains a small byte-level BPE (most frequent pair first) on `texts`. */
function trainBpe(texts: string[], nMerges: number): [string, string][] {
  const words = new Map<string, number>();
  for (const text of texts) for (const m of text.matchAll(GPT2)) words.set(m[0], (words.get(m[0]) ?? 0) + 1);
  let seqs = [...words].map(([w, n]) => ({ s: toSymbols(w), n }));
  const merges: [string, string][] = [];
  for (let k = 0; k < nMerges; k++) {
    const pairs = new Map<string, number>();
    for (const { s, n } of seqs) for (let i = 0; i < s.length - 1; i++) pairs.set(s[i] + ' ' + s[i + 1], (pairs.get(s[i] + ' ' + s[i + 1]) ?? 0) + n);
    let best = '';
    let bestN = 1;
    for (const [p, n] of pairs) if (n > bestN || (n === bestN && best && p < best)) [best, bestN] = [p, n];
    if (!best) break;
    const [a, b] = best.split(' ') as [string, string];
    merges.push([a, b]);
    seqs = seqs.map(({ s, n }) => ({ s: naiveBpe(s, [[a, b]]), n }));
  }
  return merges;
}

t.test('tokenizer.json byte-level BPE trained on sample text', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tok-'));
  const texts = samples.filter((r) => r.source === 'kjv').map((r) => r.text).slice(0, 40);
  const merges = trainBpe(texts, 300);
  t.equal(merges.length, 300);
  const vocab: Record<string, number> = {};
  alphabet.forEach((c, i) => (vocab[c] = i));
  merges.forEach(([a, b], i) => (vocab[a + b] ??= 256 + i));
  const file = path.join(dir, 'tokenizer.json');
  writeFileSync(file, JSON.stringify({
    version: '1.0',
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', vocab, merges: merges.map(([a, b]) => `${a} ${b}`) },
  }));
  const tok = loadTokenizerJson(file);
  let checked = 0;
  for (const r of samples.filter((_, i) => i % 5 === 0)) {
    const want = [...r.text.matchAll(GPT2)].flatMap((m) => naiveBpe(toSymbols(m[0]), merges));
    const got = tok.tokenize(r.text);
    if (got.join('\u0001') !== want.join('\u0001')) t.fail(`${r.id}: tokenization differs`);
    if (tok.count(r.text) !== want.length) t.fail(`${r.id}: count differs`);
    checked++;
  }
  t.ok(checked > 500);
  // Text like the training text compresses well; other scripts fall back to bytes.
  const kjv = samples.find((r) => r.source === 'kjv')!.text;
  t.ok(tok.count(kjv) < Buffer.byteLength(kjv) / 2.2, 'trained merges compress KJV');
  t.equal(tok.count('ж'), 2, 'a Cyrillic letter outside the merges is two byte tokens');

  // Array-form merges, a Split + ByteLevel(use_regex false) sequence with (?i:) groups, and ignore_merges.
  const file2 = path.join(dir, 'tokenizer2.json');
  writeFileSync(file2, JSON.stringify({
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }] },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, use_regex: false },
      ],
    },
    model: { type: 'BPE', vocab: { ...vocab, ĠLORD: 9999 }, merges, ignore_merges: true },
  }));
  const tok2 = loadTokenizerJson(file2);
  t.same(tok2.pieces("IT'S the LORD 1234"), ['IT', "'S", ' the', ' LORD', ' ', '123', '4']);
  t.same(tok2.tokenize(' LORD'), ['ĠLORD'], 'ignore_merges takes a whole-vocabulary piece');
});

t.test('tokenizer.json errors name the file and the path', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tok-'));
  const f = path.join(dir, 'sp.json');
  writeFileSync(f, JSON.stringify({ pre_tokenizer: { type: 'Metaspace' }, model: { type: 'BPE', vocab: {}, merges: [] } }));
  t.throws(() => loadTokenizerJson(f), /sp\.json: pre_tokenizer\.type "Metaspace" is not supported/);
  writeFileSync(f, JSON.stringify({ model: { type: 'Unigram', vocab: [] } }));
  t.throws(() => loadTokenizerJson(f), /model\.type must be "BPE"/);
  t.throws(() => loadTokenizerJson(path.join(dir, 'missing.json')), /cannot read tokenizer\.json/);
});

t.test('regex dialect conversion', async (t) => {
  const re = new RegExp(toJsRegexSource("(?i:'s|'t)|\\p{L}+"), 'gu');
  t.same("IT'S it's".match(re), ['IT', "'S", 'it', "'s"]);
});

t.test('estimate stays near the exact count per source', async (t) => {
  const enc = await loadEncoding('cl100k_base');
  const by = new Map<string, { est: number; exact: number }>();
  for (const r of samples) {
    const key = `${r.source}/${r.lang ?? ''}`;
    const o = by.get(key) ?? { est: 0, exact: 0 };
    o.est += estimateTokens(r.text);
    o.exact += enc.count(r.text);
    by.set(key, o);
  }
  for (const [key, { est, exact }] of by) {
    t.ok(Math.abs(est - exact) / exact < 0.2, `${key}: estimate ${est} vs exact ${exact}`);
  }
  t.equal(estimateTokens(''), 0);
  t.equal(estimateTokens('a'), 1);
});
