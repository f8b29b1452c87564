// Text normalization kernels: no stream code, usable as a library.

const NON_ASCII = /[^\x00-\x7f]/;
// C0 and C1 control characters other than tab and newline, plus zero-width/format marks that
// only hide differences between copies (BOM, ZWSP, ZWNJ, ZWJ, word joiner, soft hyphen).
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u200b-\u200d\u2060\ufeff]/g;
const HSPACE_RUN = /[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+/g;
const LINE_BREAK = /\r\n?|[\u2028\u2029\u0085]/g;
// Anything normalizeText (with its defaults) would change: non-ASCII (NFKC), controls, CR, tabs,
// space runs, spaces at line ends or starts, 3+ newlines, leading/trailing whitespace.
const NEEDS_CLEANING = /[^\x0a\x20-\x7e]|  | \n|\n |\n\n\n|^\s|\s$/;

export interface NormalizeTextOptions {
  /** Unicode NFKC (compatibility composition). */
  nfkc?: boolean;
  /** Remove control and invisible format characters. */
  controls?: boolean;
  /** Collapse runs of horizontal whitespace to one space and CR/CRLF to LF. */
  whitespace?: boolean;
  /** Trim every line, drop trailing spaces, collapse three or more newlines into one blank line, trim the text. */
  lines?: boolean;
}

const DEFAULTS: Required<NormalizeTextOptions> = { nfkc: true, controls: true, whitespace: true, lines: true };

/** The cleaned text a record is emitted with. */
export function normalizeText(text: string, options: NormalizeTextOptions = {}): string {
  const o = { ...DEFAULTS, ...options };
  // Most text is already clean: one scan proves it and returns it untouched.
  if (o.controls && o.whitespace && o.lines && !NEEDS_CLEANING.test(text)) return text;
  let t = text;
  if (o.nfkc && NON_ASCII.test(t)) t = t.normalize('NFKC');
  if (o.controls) t = t.replace(CONTROL, '');
  if (o.whitespace) t = t.replace(LINE_BREAK, '\n').replace(HSPACE_RUN, ' ');
  if (o.lines) {
    t = t
      .split('\n')
      .map((line) => line.trim())
      .join('\n')
      .replace(/\n{3,}/g, '\n\n')
      .trim();
  }
  return t;
}

export interface HashFormOptions {
  lowercase?: boolean;
  /** Punctuation and symbols become spaces (word boundaries), so "end." and "end" hash alike. */
  foldPunctuation?: boolean;
  /** Every decimal digit becomes 0, so dates and counters do not hide duplicates. */
  foldDigits?: boolean;
}

const HASH_DEFAULTS: Required<HashFormOptions> = { lowercase: true, foldPunctuation: true, foldDigits: true };
const PUNCT_SYMBOL = /[\p{P}\p{S}]/gu;
const DIGIT = /\p{Nd}/gu;
const ANY_SPACE = /\s+/g;

/**
 * The hashing form later operators (shingle, exact dedup) compare: NFKC, lowercase,
 * punctuation folded to spaces, digits folded to 0, whitespace collapsed to single spaces.
 * The emitted text is not changed.
 */
export function hashForm(text: string, options: HashFormOptions = {}): string {
  const o = { ...HASH_DEFAULTS, ...options };
  if (!NON_ASCII.test(text)) return asciiHashForm(text, o);
  let t = text.normalize('NFKC');
  if (o.lowercase) t = t.toLowerCase();
  if (o.foldPunctuation) t = t.replace(PUNCT_SYMBOL, ' ');
  if (o.foldDigits) t = t.replace(DIGIT, '0');
  t = t.replace(CONTROL, '');
  return t.replace(ANY_SPACE, ' ').trim();
}

// ASCII text: a few native passes (lowercase, one replace for every run of non-alphanumerics,
// digits) run several times faster than a per-character loop in JavaScript.
const ASCII_NON_ALNUM_RUN = /[^a-zA-Z0-9]+/g;
const ASCII_SPACE_OR_CONTROL_RUN = /[\x00-\x20\x7f]+/g;
const ASCII_NONZERO_DIGIT = /[1-9]/g;

function asciiHashForm(text: string, o: Required<HashFormOptions>): string {
  let t = o.lowercase ? text.toLowerCase() : text;
  t = t.replace(o.foldPunctuation ? ASCII_NON_ALNUM_RUN : ASCII_SPACE_OR_CONTROL_RUN, ' ');
  if (o.foldDigits) t = t.replace(ASCII_NONZERO_DIGIT, '0');
  return t.trim();
}
