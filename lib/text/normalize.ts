// Text normalization kernels: no stream code, usable as a library.

const NON_ASCII = /[^\x00-\x7f]/;
// C0 and C1 control characters other than tab and newline, plus zero-width/format marks that
// only hide differences between copies (BOM, ZWSP, ZWNJ, ZWJ, word joiner, soft hyphen).
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u200b-\u200d\u2060\ufeff]/g;
const HSPACE_RUN = /[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+/g;
const LINE_BREAK = /\r\n?|[\u2028\u2029\u0085]/g;

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

function isAsciiPunct(c: number): boolean {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}

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

// One pass over char codes for ASCII text: the common case, and several times faster than the regex chain.
function asciiHashForm(text: string, o: Required<HashFormOptions>): string {
  const out: number[] = [];
  let pendingSpace = false;
  let parts = '';
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c <= 32 || c === 127 || (o.foldPunctuation && isAsciiPunct(c))) {
      pendingSpace = out.length > 0 || parts.length > 0;
      continue;
    }
    if (o.lowercase && c >= 65 && c <= 90) c += 32;
    else if (o.foldDigits && c >= 48 && c <= 57) c = 48;
    if (pendingSpace) {
      out.push(32);
      pendingSpace = false;
    }
    out.push(c);
    if (out.length >= 8192) {
      parts += String.fromCharCode.apply(null, out);
      out.length = 0;
    }
  }
  return parts + String.fromCharCode.apply(null, out);
}
