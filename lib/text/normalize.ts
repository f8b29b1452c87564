// Text normalization kernels: no stream code, usable as a library.

const NON_ASCII = /[^\x00-\x7f]/;
// Removed from the emitted text: C0 and C1 control characters other than the whitespace ones
// (tab, LF, VT, FF, CR, NEL: line breaks or spaces), and marks that are invisible and carry no
// meaning (BOM, zero-width space, word joiner, soft hyphen). ZWNJ and ZWJ stay (Persian and
// Indic spelling, emoji sequences), and so do the bidirectional marks (display of mixed
// scripts): the hashing form drops them.
const CONTROL = /[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u00ad\u200b\u2060\ufeff]/g;
const HSPACE_RUN = /[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+/g;
const LINE_BREAK = /\r\n?|[\u2028\u2029\u0085\x0b\x0c]/g;
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
export function normalizeText(text: string, options: NormalizeTextOptions = {}, pieceChars = PIECE_CHARS): string {
  const o = { ...DEFAULTS, ...options };
  // Most text is already clean: one scan proves it and returns it untouched.
  if (o.controls && o.whitespace && o.lines && !NEEDS_CLEANING.test(text)) return text;
  const nfkc = o.nfkc && NON_ASCII.test(text);
  // Every pass but the last acts within lines, so a long text is cleaned a piece of whole lines at a time.
  const t = text.length <= pieceChars ? cleanPiece(text, o, nfkc) : inPieces(text, pieceChars, isLineFeed, (piece) => cleanPiece(piece, o, nfkc));
  return o.lines ? t.replace(/\n{3,}/g, '\n\n').trim() : t;
}

/** `normalizeText` of whole lines but the collapse of blank lines and the final trim. */
function cleanPiece(text: string, o: Required<NormalizeTextOptions>, nfkc: boolean): string {
  let t = text;
  if (nfkc) t = t.normalize('NFKC');
  if (o.controls) t = t.replace(CONTROL, '');
  if (o.whitespace) t = t.replace(LINE_BREAK, '\n').replace(HSPACE_RUN, ' ');
  if (o.lines) t = t.split('\n').map((line) => line.trim()).join('\n');
  return t;
}

/**
 * Characters per piece a long text is transformed in: each pass over a whole text makes a copy
 * of it, and a record of tens of MB went through a dozen such passes (~1 GB of copies for 30M
 * characters). Piece by piece, only the pieces' copies are made beside the result.
 */
const PIECE_CHARS = 1 << 20;

const isLineFeed = (c: number): boolean => c === 10;
// What ANY_SPACE matches (JavaScript's \s and NEL).
const isSpace = (c: number): boolean => /[\s\u0085]/.test(String.fromCharCode(c));

/**
 * `transform` applied to `text` in pieces of about `size` characters, each cut right after a
 * character `isCut` accepts, and joined: for transformations that act within such pieces. A
 * piece grows past `size` to the next cut when there is none before.
 */
function inPieces(text: string, size: number, isCut: (code: number) => boolean, transform: (piece: string) => string, join = (a: string, b: string) => a + b): string {
  let out = '';
  for (let start = 0; start < text.length; ) {
    let end = Math.min(text.length, start + size);
    if (end < text.length) {
      let cut = end;
      while (cut > start && !isCut(text.charCodeAt(cut - 1))) cut--;
      if (cut === start) for (cut = end; cut < text.length && !isCut(text.charCodeAt(cut - 1)); cut++);
      end = cut;
    }
    out = join(out, transform(text.slice(start, end)));
    start = end;
  }
  // A flat string: the joins leave a rope of pieces that later passes would flatten one by one.
  return out.length ? flatten(out) : out;
}

function flatten(s: string): string {
  // Reading a character of a cons string makes V8 flatten it in place.
  void s.charCodeAt(0);
  return s;
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
/**
 * Dropped from the hashing form, so copies that differ only by them hash alike: control
 * characters other than whitespace, every format character (Unicode 17 category Cf: soft
 * hyphen, Arabic number signs, zero-width space/joiners, bidirectional marks and embeddings,
 * BOM, interlinear annotation, tags, ...) and the variation selectors (emoji or text
 * presentation of the character before: "❤️" and "❤" are one character). Listed as ranges, the astral ones as surrogate pairs
 * in a second pass that runs only when one of their lead surrogates occurs: a `\p{Cf}` class
 * needs the `u` flag, which made this pass twice as slow.
 */
export const HASH_INVISIBLE = /[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufe00-\ufe0f\ufeff\ufff9-\ufffb]/g;
export const HASH_INVISIBLE_ASTRAL = /\ud804[\udcbd\udccd]|\ud80d[\udc30-\udc3f]|\ud82f[\udca0-\udca3]|\ud834[\udd73-\udd7a]|\udb40[\udc01\udc20-\udc7f\udd00-\uddef]/g;
const ASTRAL_FORMAT_LEAD = /[\ud804\ud80d\ud82f\ud834\udb40]/;
const TURKIC_I = /i\u0307|\u0131/g;

/**
 * Turkish and Azerbaijani i in lowercased text: capital İ lowercases to i + combining dot above,
 * and dotless ı is the lower case of I: both fold to i, so upper- and lower-case copies match.
 */
export function foldTurkicI(lowercased: string): string {
  return lowercased.includes('\u0131') || lowercased.includes('\u0307') ? lowercased.replace(TURKIC_I, 'i') : lowercased;
}
// JavaScript's \s leaves out NEL (U+0085), a line break.
const ANY_SPACE = /[\s\u0085]+/g;

/**
 * The hashing form later operators (shingle, exact dedup) compare: NFKC, lowercase,
 * punctuation folded to spaces, digits folded to 0, invisible characters dropped, whitespace
 * collapsed to single spaces (the folds as `options` say; the rest always).
 * The emitted text is not changed.
 */
export function hashForm(text: string, options: HashFormOptions = {}, pieceChars = PIECE_CHARS): string {
  const o = { ...HASH_DEFAULTS, ...options };
  // One path for the whole text, pieces cut after whitespace: every pass acts within words,
  // and the space runs the pieces end and start with become one.
  const ascii = !NON_ASCII.test(text);
  if (text.length <= pieceChars) return (ascii ? asciiHashPiece(text, o) : hashPiece(text, o)).trim();
  return inPieces(text, pieceChars, isSpace, (piece) => (ascii ? asciiHashPiece(piece, o) : hashPiece(piece, o)), joinSpaces).trim();
}

const joinSpaces = (a: string, b: string): string => (a.endsWith(' ') && b.startsWith(' ') ? a + b.slice(1) : a + b);

/** `hashForm` of non-ASCII text but the final trim. */
function hashPiece(text: string, o: Required<HashFormOptions>): string {
  let t = text.normalize('NFKC');
  if (o.lowercase) {
    t = t.toLowerCase();
    t = foldTurkicI(t);
  }
  if (o.foldPunctuation) t = t.replace(PUNCT_SYMBOL, ' ');
  if (o.foldDigits) t = t.replace(DIGIT, '0');
  t = t.replace(HASH_INVISIBLE, '');
  if (ASTRAL_FORMAT_LEAD.test(t)) t = t.replace(HASH_INVISIBLE_ASTRAL, '');
  return t.replace(ANY_SPACE, ' ');
}

// ASCII text: a few native passes (lowercase, one replace for every run of non-alphanumerics,
// digits) run several times faster than a per-character loop in JavaScript.
const ASCII_NON_ALNUM_RUN = /[^a-zA-Z0-9]+/g;
const ASCII_SPACE_RUN = /[\x09-\x0d\x20]+/g;
const ASCII_NONZERO_DIGIT = /[1-9]/g;
// Dropped, as the general path's HASH_INVISIBLE drops them (and normalize's cleaning does): words join across them.
const ASCII_CONTROL = /[\x00-\x08\x0e-\x1f\x7f]/g;
const HAS_ASCII_CONTROL = /[\x00-\x08\x0e-\x1f\x7f]/;

/** `hashForm` of ASCII text but the final trim. */
function asciiHashPiece(text: string, o: Required<HashFormOptions>): string {
  let t = HAS_ASCII_CONTROL.test(text) ? text.replace(ASCII_CONTROL, '') : text;
  if (o.lowercase) t = t.toLowerCase();
  t = t.replace(o.foldPunctuation ? ASCII_NON_ALNUM_RUN : ASCII_SPACE_RUN, ' ');
  if (o.foldDigits) t = t.replace(ASCII_NONZERO_DIGIT, '0');
  return t;
}
