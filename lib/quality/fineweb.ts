// FineWeb quality rules (Penedo et al. 2024): line-ending punctuation, short lines, duplicated
// line characters, newlines per word; datatrove's FineWebQualityFilter semantics and order.
import { findDuplicates } from './gopher-repetition.ts';
import { disableOption, Verdict, type RuleSet } from './rule-set.ts';
import { cpLength, endsWithTerminal, pyStrip, splitWords } from './text.ts';

export interface FineWebOptions {
  lineEndPunctRatio: number;
  lineEndPunctExcludeZero: boolean;
  stopChars?: string[];
  shortLineRatio: number;
  shortLineLength: number;
  charDuplicatesRatio: number;
  newLineRatio: number;
  disable?: string[];
}

export const FINEWEB_REASONS: Record<string, string> = {
  empty: 'no non-blank line',
  line_punct_ratio: 'share of lines ending in terminal punctuation below lineEndPunctRatio',
  short_line_ratio: 'share of lines of at most shortLineLength characters above shortLineRatio',
  char_dup_ratio: 'characters in repeated lines, over all non-newline characters, above charDuplicatesRatio',
  list_ratio: 'newlines per word above newLineRatio',
};

export const fineweb: RuleSet<FineWebOptions> = {
  name: 'fineweb',
  summary: 'FineWeb heuristics: line-ending punctuation, short lines, duplicated line characters, newlines per word',
  options: {
    lineEndPunctRatio: { type: 'number', description: 'Lowest share of (non-blank) lines ending in terminal punctuation.', default: 0.12, min: 0, max: 1 },
    lineEndPunctExcludeZero: { type: 'boolean', description: 'Do not apply lineEndPunctRatio to documents with no punctuated line at all.', default: false },
    stopChars: { type: 'array', description: 'Line-ending characters that count as terminal punctuation (default: every Unicode Sentence_Terminal character).', items: { type: 'string', description: 'a string' } },
    shortLineRatio: { type: 'number', description: 'Highest share of short lines.', default: 0.67, min: 0, max: 1 },
    shortLineLength: { type: 'integer', description: 'A line of at most this many characters is short.', default: 30, min: 0 },
    charDuplicatesRatio: { type: 'number', description: 'Highest share of characters in repeated lines.', default: 0.01, min: 0, max: 1 },
    newLineRatio: { type: 'number', description: 'Highest count of newlines per word.', default: 0.3, min: 0 },
    disable: disableOption(FINEWEB_REASONS),
  },
  reasons: FINEWEB_REASONS,
  evaluate(text, o, how = {}) {
    const v = new Verdict(o.disable, !!how.firstFailure);
    const m = v.metrics;
    const lines = text.split('\n').filter((l) => pyStrip(l) !== '');
    if (lines.length === 0) {
      if (v.on('empty')) v.fail('empty');
      return v.result();
    }
    const stop = o.stopChars;
    const ends = stop ? (l: string) => stop.some((c) => l.endsWith(c)) : endsWithTerminal;
    let punct = 0;
    let short = 0;
    for (const l of lines) {
      if (ends(l)) punct++;
      if (cpLength(l) <= o.shortLineLength) short++;
    }
    m.line_punct_ratio = punct / lines.length;
    if (v.on('line_punct_ratio') && m.line_punct_ratio < o.lineEndPunctRatio && !(m.line_punct_ratio === 0 && o.lineEndPunctExcludeZero) && v.fail('line_punct_ratio')) return v.result();
    m.short_line_ratio = short / lines.length;
    if (v.on('short_line_ratio') && m.short_line_ratio > o.shortLineRatio && v.fail('short_line_ratio')) return v.result();
    const nonNewline = cpLength(text) - (text.length - text.replaceAll('\n', '').length);
    m.char_dup_ratio = findDuplicates(lines).chars / nonNewline;
    if (v.on('char_dup_ratio') && m.char_dup_ratio > o.charDuplicatesRatio && v.fail('char_dup_ratio')) return v.result();
    if (v.on('list_ratio')) {
      const words = splitWords(text).length;
      let newlines = 0;
      for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) newlines++;
      m.list_ratio = words ? newlines / words : newlines ? Infinity : 0;
      if (m.list_ratio > o.newLineRatio) v.fail('list_ratio');
    }
    return v.result();
  },
};
