// Text helpers shared by the heuristic rule sets: a fast Unicode-aware word tokenizer,
// Python-compatible line splitting and lengths, punctuation classes and sentence counting.
// Kernels only: no stream code.

/**
 * Sentence-ending punctuation: the Unicode `Sentence_Terminal` property (`.`, `?`, `!`, `。`,
 * `؟`, `।`, ...). FineWeb's line-ending rule uses this set.
 */
export const TERMINAL_PUNCT = /\p{Sentence_Terminal}/u;
const TERMINAL_AT_END = /\p{Sentence_Terminal}$/u;

/** True when `line` ends with a sentence terminal character. */
export function endsWithTerminal(line: string): boolean {
  return TERMINAL_AT_END.test(line);
}

/**
 * A character that is punctuation or a symbol (Unicode P* and S* categories), a control
 * character, or a sentence terminal. A token made only of these is a "symbol word".
 */
const SYMBOL_ONLY = /^[\p{P}\p{S}\p{Cc}\p{Sentence_Terminal}]+$/u;
const ALPHA = /\p{L}/u;

export function isSymbolWord(w: string): boolean {
  // ASCII fast path: any letter or digit means it is not a symbol word.
  for (let i = 0; i < w.length; i++) {
    const c = w.charCodeAt(i);
    if ((c >= 48 && c <= 57) || ((c | 32) >= 97 && (c | 32) <= 122)) return false;
    if (c >= 128) return SYMBOL_ONLY.test(w);
  }
  return SYMBOL_ONLY.test(w);
}

/** Python `any(c.isalpha() for c in w)`: the word holds a Unicode letter. */
export function hasAlpha(w: string): boolean {
  for (let i = 0; i < w.length; i++) {
    const c = w.charCodeAt(i);
    if ((c | 32) >= 97 && (c | 32) <= 122) return true;
    if (c >= 128) return ALPHA.test(w.slice(i));
  }
  return false;
}

const SURROGATE = /[\uD800-\uDBFF]/;

/** Length in code points (Python `len`), not UTF-16 units. */
export function cpLength(s: string): number {
  if (!SURROGATE.test(s)) return s.length;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff) n++;
  }
  return n;
}

/** Python `str.splitlines()`: splits on \n, \r, \r\n, \v, \f, \x1c-\x1e, \x85, \u2028, \u2029; no trailing empty line. */
export function splitLines(text: string): string[] {
  if (text.length === 0) return [];
  const lines = text.split(/\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]/);
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

// Python's str.strip()/split() whitespace: \s in JS plus \x1c-\x1f and \x85 (JS \s lacks them,
// and JS \s has \ufeff, which Python does not strip).
const PY_WS = '[\\s\\x1c-\\x1f\\x85]';
const PY_STRIP = new RegExp(`^${PY_WS}+|${PY_WS}+$`, 'g');
const PY_SPLIT = new RegExp(`${PY_WS}+`);

function isPyWs(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f) || (c >= 0x80 && (c === 0x85 || /\s/.test(String.fromCharCode(c)) && c !== 0xfeff));
}

/** Python `str.strip()`. */
export function pyStrip(s: string): string {
  if (s.length === 0 || (!isPyWs(s.charCodeAt(0)) && !isPyWs(s.charCodeAt(s.length - 1)))) return s;
  return s.replace(PY_STRIP, '');
}

/** Python `str.split()` with no arguments. */
export function pySplit(s: string): string[] {
  const t = pyStrip(s);
  return t ? t.split(PY_SPLIT) : [];
}

// ---------------------------------------------------------------------------------------------
// Word tokenizer

// Characters that are always tokens of their own (Treebank/spaCy split them wherever they are).
const ALWAYS_SPLIT_CHARS = '()[]{}<>?!;@#$%&*`"“”„«»‘’¿¡';
const ALWAYS_SPLIT = new Set(ALWAYS_SPLIT_CHARS.split(''));
const ALWAYS_SPLIT_ASCII = new Uint8Array(128);
for (const ch of ALWAYS_SPLIT_CHARS) if (ch.charCodeAt(0) < 128) ALWAYS_SPLIT_ASCII[ch.charCodeAt(0)] = 1;

/** Non-ASCII characters that need the slow path: the split quotes and marks above, and ’ (clitics). */
function isSpecialNonAscii(c: number): boolean {
  return c === 0x201c || c === 0x201d || c === 0x201e || c === 0xab || c === 0xbb || c === 0x2018 || c === 0x2019 || c === 0xbf || c === 0xa1;
}
// Characters peeled off the end of a word (but kept inside it: 1,000 / 10:30 / e.g), and off its
// start (an apostrophe and a period stay at the start: 'tis, .deb).
const EDGE_SPLIT = new Set(".,:'".split(''));
const LEAD_SPLIT = new Set(',:'.split(''));
const CONTRACTIONS = ["n't", "'s", "'re", "'ve", "'ll", "'d", "'m", "N'T", "'S", "'RE", "'VE", "'LL", "'D", "'M"];

function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f) || c === 0x85 || c === 0xa0 ||
    c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f ||
    c === 0x205f || c === 0x3000;
}

function pushWord(out: string[], w: string, keepPeriod = false): void {
  // Leading edge punctuation, each its own token ('quoted -> ' quoted).
  let s = 0;
  let e = w.length;
  while (s < e && LEAD_SPLIT.has(w[s])) {
    // A leading ellipsis ("...and") stays one token.
    if (w.startsWith('...', s)) {
      out.push('...');
      s += 3;
    } else out.push(w[s++]);
  }
  const tail: string[] = [];
  while (e > s && EDGE_SPLIT.has(w[e - 1])) {
    if (e - 3 >= s && w.startsWith('...', e - 3)) {
      tail.push('...');
      e -= 3;
      continue;
    }
    // Only a word-final period can end a sentence, and not every one does (finalPeriodStays).
    if (w[e - 1] === '.' && (keepPeriod || e !== w.length)) break;
    // Contractions keep their apostrophe: "dogs'" -> dogs ', "'s" handled below.
    tail.push(w[--e]);
  }
  if (e > s) {
    let core = w.slice(s, e);
    // Clitics: don't -> do n't, it's -> it 's, we'll -> we 'll.
    if (core.length > 2 && (core.includes("'") || core.includes('’'))) {
      const norm = core.replace(/’/g, "'");
      for (const c of CONTRACTIONS) {
        if (norm.length > c.length && norm.endsWith(c)) {
          out.push(core.slice(0, core.length - c.length));
          core = core.slice(core.length - c.length);
          break;
        }
      }
    }
    out.push(core);
  }
  for (let i = tail.length - 1; i >= 0; i--) out.push(tail[i]);
}

/**
 * Splits text into words and punctuation tokens the way NLTK's `word_tokenize` (Treebank words
 * over Punkt sentences) does, which datatrove's English rules count: whitespace separates
 * tokens; brackets, double quotes (as `\`\`` opening and `''` closing), `? ! ; @ # $ % & * \``,
 * `--` and ellipses are tokens of their own; `. , : '` are split off the end of a word but kept inside it (`3.14`, `1,000`,
 * `U.S.` -> `U.S` `.`), except the period of a single-letter initial (`J.`); clitics are split
 * (`don't` -> `do` `n't`). Hyphenated words stay whole.
 */
export function splitWords(text: string): string[] {
  const out: string[] = [];
  const n = text.length;
  let start = -1;
  let simple = true; // the current chunk has only ASCII letters/digits/hyphens
  for (let i = 0; i <= n; i++) {
    const c = i < n ? text.charCodeAt(i) : 32;
    if (isSpace(c)) {
      if (start >= 0) {
        if (simple) out.push(text.slice(start, i));
        else splitChunk(out, text, start, i, nextWordStart(text, i));
        start = -1;
      }
      continue;
    }
    if (start < 0) {
      start = i;
      simple = true;
    }
    // Letters, digits, non-ASCII characters other than a few quotes and marks, and single inner
    // hyphens need no splitting; "--" and a leading "-" do.
    if (simple && !((c >= 48 && c <= 57) || ((c | 32) >= 97 && (c | 32) <= 122) || (c >= 128 && !isSpecialNonAscii(c)) || (c === 45 && i > start && text.charCodeAt(i - 1) !== 45))) simple = false;
  }
  return out;
}

const NUMBER_TOKEN = /^-?[.,]?\d[\d,.-]*\.?$/;
const INITIAL_TOKEN = /^\p{L}\.$/u;
const LOWER = /\p{Ll}/u;
const UPPER = /\p{Lu}/u;

/**
 * Whether a chunk's final period stays on it (no sentence break), following Punkt without
 * trained abbreviations: a number ("1.") or an initial ("J.") keeps its period when the next
 * word starts lowercase; an initial also when it starts uppercase. Any other final period ends
 * a sentence and is split off by the Treebank rules.
 */
function finalPeriodStays(chunk: string, next: string | undefined): boolean {
  if (next === undefined) return false;
  const initial = INITIAL_TOKEN.test(chunk);
  if (!initial && !NUMBER_TOKEN.test(chunk)) return false;
  if (LOWER.test(next)) return true;
  return initial && UPPER.test(next);
}

/** The first character of the next whitespace-separated word after position i, if any. */
function nextWordStart(text: string, i: number): string | undefined {
  for (let j = i; j < text.length; j++) if (!isSpace(text.charCodeAt(j))) return text[j];
  return undefined;
}

function splitChunk(out: string[], text: string, s: number, e: number, next: string | undefined): void {
  let w = s;
  for (let i = s; i < e; i++) {
    const c = text.charCodeAt(i);
    // Letters and other ordinary characters: nothing to do.
    if (c < 128 ? c !== 44 && c !== 58 && c !== 46 && c !== 45 && ALWAYS_SPLIT_ASCII[c] === 0 : !isSpecialNonAscii(c)) continue;
    const ch = text[i];
    if (ALWAYS_SPLIT.has(ch) || ((ch === ',' || ch === ':') && i + 1 < e && !isDigit(text.charCodeAt(i + 1)))) {
      if (i > w) pushWord(out, text.slice(w, i));
      // Treebank writes an opening double quote as `` and a closing one as '' (which changes
      // n-gram lengths and identities in gopher-repetition).
      out.push(ch === '"' ? (i === s || '([{<'.includes(text[i - 1]) ? '``' : "''") : ch);
      w = i + 1;
    } else if (ch === '.' && text.startsWith('...', i) && (i > w || i + 3 < e)) {
      // An ellipsis inside a chunk ("wait...what") is a token that separates words.
      if (i > w) pushWord(out, text.slice(w, i));
      let j = i;
      while (j < e && text[j] === ch) j++;
      out.push(text.slice(i, j));
      w = j;
      i = j - 1;
    } else if (ch === '-' && text[i + 1] === '-') {
      // Dashes: "--" tokens, an odd one left over ("---" -> "--" "-").
      if (i > w) pushWord(out, text.slice(w, i));
      let j = i;
      while (j + 1 < e && text[j] === '-' && text[j + 1] === '-') {
        out.push('--');
        j += 2;
      }
      w = j;
      i = j - 1;
    }
  }
  if (e > w) {
    const last = text.slice(w, e);
    pushWord(out, last, last.endsWith('.') && finalPeriodStays(last, next));
  }
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

// ---------------------------------------------------------------------------------------------
// Sentences

// A sentence ends at ".", "?" or "!" (possibly followed by closing quotes or brackets) that is
// followed by whitespace and more text, as Punkt without trained abbreviations decides.
const SENTENCE_BREAK = /([.!?]+)['"\u2019\u201d)\]]*\s+(?=(\S))/g;

/**
 * Counts sentences in a line the way Punkt without trained parameters splits them: a break
 * after `.`, `?` or `!` followed by whitespace and more text, except after an ellipsis (`..`),
 * after a single-letter initial followed by a letter ("J. Doe"), and after a number followed by
 * a lowercase word ("1. a"). Abbreviations such as "Mr." do end a sentence, as they do there.
 */
export function countSentences(text: string): number {
  const t = text.trim();
  if (!t) return 0;
  let n = 1;
  SENTENCE_BREAK.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = SENTENCE_BREAK.exec(t))) {
    const run = m[1];
    if (run.startsWith('..')) continue;
    if (run === '.') {
      const tokStart = t.lastIndexOf(' ', m.index) + 1;
      const tok = t.slice(Math.max(tokStart, t.lastIndexOf('\t', m.index) + 1), m.index + 1);
      if (finalPeriodStays(tok, m[2])) continue;
    }
    n++;
  }
  return n;
}
