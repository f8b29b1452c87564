// Gopher quality rules (Rae et al. 2021, "Scaling Language Models", appendix A), with the
// thresholds and the order of checks datatrove's GopherQualityFilter uses.
import { disableOption, Verdict, type RuleSet } from './rule-set.ts';
import { cpLength, hasAlpha, isSymbolWord, splitLines, splitWords } from './text.ts';

export interface GopherQualityOptions {
  minDocWords: number;
  maxDocWords: number;
  minAvgWordLength: number;
  maxAvgWordLength: number;
  maxSymbolWordRatio: number;
  maxBulletLinesRatio: number;
  maxEllipsisLinesRatio: number;
  minAlphaWordsRatio: number;
  minStopWords: number;
  stopWords: string[];
  disable?: string[];
}

export const GOPHER_STOP_WORDS = ['the', 'be', 'to', 'of', 'and', 'that', 'have', 'with'];

export const GOPHER_QUALITY_REASONS: Record<string, string> = {
  gopher_short_doc: 'fewer than minDocWords words (punctuation-only tokens not counted)',
  gopher_long_doc: 'more than maxDocWords words',
  gopher_below_avg_threshold: 'mean word length below minAvgWordLength',
  gopher_above_avg_threshold: 'mean word length above maxAvgWordLength',
  gopher_too_many_hashes: '"#" count per word above maxSymbolWordRatio',
  gopher_too_many_ellipsis: '"..." and "…" count per word above maxSymbolWordRatio',
  gopher_too_many_bullets: 'share of lines starting with a bullet ("•" or "-") above maxBulletLinesRatio',
  gopher_too_many_end_ellipsis: 'share of lines ending with an ellipsis above maxEllipsisLinesRatio',
  gopher_below_alpha_threshold: 'share of tokens with an alphabetic character below minAlphaWordsRatio',
  gopher_enough_stop_words: 'fewer than minStopWords distinct stop words (the name is datatrove\'s)',
};

function countOf(text: string, needle: string): number {
  let n = 0;
  for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + needle.length)) n++;
  return n;
}

const LEAD_WS = /^[\s\x1c-\x1f\x85]+/;
const TRAIL_WS = /[\s\x1c-\x1f\x85]+$/;

export const gopherQuality: RuleSet<GopherQualityOptions> = {
  name: 'gopher-quality',
  summary: 'Gopher quality heuristics: document length, word length, symbols, bullets, ellipses, alphabetic words, stop words',
  options: {
    minDocWords: { type: 'integer', description: 'Fewest words (tokens with a letter or digit).', default: 50, min: 0 },
    maxDocWords: { type: 'integer', description: 'Most words.', default: 100000, min: 0 },
    minAvgWordLength: { type: 'number', description: 'Lowest mean word length (characters).', default: 3, min: 0 },
    maxAvgWordLength: { type: 'number', description: 'Highest mean word length (characters).', default: 10, min: 0 },
    maxSymbolWordRatio: { type: 'number', description: 'Highest count of "#" (and, separately, of ellipses) per token.', default: 0.1, min: 0 },
    maxBulletLinesRatio: { type: 'number', description: 'Highest share of lines starting with "•" or "-".', default: 0.9, min: 0, max: 1 },
    maxEllipsisLinesRatio: { type: 'number', description: 'Highest share of lines ending with "..." or "…".', default: 0.3, min: 0, max: 1 },
    minAlphaWordsRatio: { type: 'number', description: 'Lowest share of tokens that contain an alphabetic character.', default: 0.8, min: 0, max: 1 },
    minStopWords: { type: 'integer', description: 'Fewest distinct stop words present (case-sensitive).', default: 2, min: 0 },
    stopWords: { type: 'array', description: 'The stop words.', items: { type: 'string', description: 'a string' }, default: GOPHER_STOP_WORDS },
    disable: disableOption(GOPHER_QUALITY_REASONS),
  },
  reasons: GOPHER_QUALITY_REASONS,
  evaluate(text, o, how = {}) {
    const v = new Verdict(o.disable, !!how.firstFailure);
    const m = v.metrics;
    const words = splitWords(text);
    const nWords = words.length;
    let nContent = 0;
    let contentChars = 0;
    let nAlpha = 0;
    for (const w of words) {
      if (!isSymbolWord(w)) {
        nContent++;
        contentChars += cpLength(w);
      }
      if (hasAlpha(w)) nAlpha++;
    }
    m.words = nContent;
    if (v.on('gopher_short_doc') && nContent < o.minDocWords && v.fail('gopher_short_doc')) return v.result();
    if (v.on('gopher_long_doc') && nContent > o.maxDocWords && v.fail('gopher_long_doc')) return v.result();

    const avg = nContent ? contentChars / nContent : NaN;
    m.avg_word_length = avg;
    if (v.on('gopher_below_avg_threshold') && avg < o.minAvgWordLength && v.fail('gopher_below_avg_threshold')) return v.result();
    if (v.on('gopher_above_avg_threshold') && avg > o.maxAvgWordLength && v.fail('gopher_above_avg_threshold')) return v.result();

    const hashRatio = countOf(text, '#') / nWords;
    m.hash_ratio = hashRatio;
    if (v.on('gopher_too_many_hashes') && hashRatio > o.maxSymbolWordRatio && v.fail('gopher_too_many_hashes')) return v.result();
    const ellipsisRatio = (countOf(text, '...') + countOf(text, '…')) / nWords;
    m.ellipsis_ratio = ellipsisRatio;
    if (v.on('gopher_too_many_ellipsis') && ellipsisRatio > o.maxSymbolWordRatio && v.fail('gopher_too_many_ellipsis')) return v.result();

    const lines = splitLines(text);
    let bullets = 0;
    let ellipsisLines = 0;
    for (const line of lines) {
      const l = line.replace(LEAD_WS, '');
      if (l.startsWith('•') || l.startsWith('-')) bullets++;
      const r = line.replace(TRAIL_WS, '');
      if (r.endsWith('...') || r.endsWith('…')) ellipsisLines++;
    }
    m.bullet_lines_ratio = bullets / lines.length;
    m.ellipsis_lines_ratio = ellipsisLines / lines.length;
    if (v.on('gopher_too_many_bullets') && m.bullet_lines_ratio > o.maxBulletLinesRatio && v.fail('gopher_too_many_bullets')) return v.result();
    if (v.on('gopher_too_many_end_ellipsis') && m.ellipsis_lines_ratio > o.maxEllipsisLinesRatio && v.fail('gopher_too_many_end_ellipsis')) return v.result();

    m.alpha_words_ratio = nAlpha / nWords;
    if (v.on('gopher_below_alpha_threshold') && m.alpha_words_ratio < o.minAlphaWordsRatio && v.fail('gopher_below_alpha_threshold')) return v.result();

    const stop = new Set(o.stopWords);
    const found = new Set<string>();
    for (const w of words) if (stop.has(w)) found.add(w);
    m.stop_words = found.size;
    if (v.on('gopher_enough_stop_words') && found.size < o.minStopWords) v.fail('gopher_enough_stop_words');
    return v.result();
  },
};
