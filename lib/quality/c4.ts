// C4 rules (Raffel et al. 2020, and the TFDS c4_utils reference code), as datatrove's
// C4QualityFilter applies them: lines are kept or dropped one by one (the document text is
// rewritten with the kept lines), and a document is dropped for "lorem ipsum", a curly
// bracket, or too few sentences left.
import { disableOption, Verdict, type RuleSet } from './rule-set.ts';
import { countSentences, pySplit, pyStrip, splitLines } from './text.ts';

export interface C4Options {
  splitParagraph: boolean;
  removeCitations: boolean;
  filterNoTerminalPunct: boolean;
  minNumSentences: number;
  minWordsPerLine: number;
  maxWordLength: number;
  filterLoremIpsum: boolean;
  filterJavascript: boolean;
  filterCurlyBracket: boolean;
  filterPolicy: boolean;
  disable?: string[];
}

export const C4_REASONS: Record<string, string> = {
  lorem_ipsum: 'a kept line contains "lorem ipsum" (the whole document is dropped)',
  curly_bracket: 'a kept line contains "{" (the whole document is dropped)',
  too_few_sentences: 'fewer than minNumSentences sentences in the kept lines',
};

/** Line-level drops, reported as metrics `lines_<name>` and counted by the filter operator. */
export const C4_LINE_DROPS = ['too_long_word', 'no_terminal_punc', 'too_few_words', 'javascript', 'policy'] as const;

const CITATION = /\[\d*\]|\[edit\]|\[citation needed\]/g;
const END_PUNCT = ['.', '?', '!', '"', "'"];
const POLICY = ['terms of use', 'privacy policy', 'cookie policy', 'uses cookies', 'use of cookies', 'use cookies'];

export const c4: RuleSet<C4Options> = {
  name: 'c4',
  summary: 'C4 heuristics: keep lines ending in terminal punctuation with enough words; drop javascript/policy lines; drop lorem ipsum, curly brackets, short documents',
  options: {
    splitParagraph: { type: 'boolean', description: 'Apply the line rules to lines (true, as in C4) or to sentences (false).', default: true },
    removeCitations: { type: 'boolean', description: 'Remove Wikipedia-style citations ([1], [edit], [citation needed]) from kept lines.', default: true },
    filterNoTerminalPunct: { type: 'boolean', description: 'Drop lines that do not end in . ? ! " \' (or end in "...").', default: true },
    minNumSentences: { type: 'integer', description: 'Fewest sentences left after line filtering (-1 disables).', default: 5, min: -1 },
    minWordsPerLine: { type: 'integer', description: 'Drop lines with fewer words (-1 disables).', default: 3, min: -1 },
    maxWordLength: { type: 'integer', description: 'Drop lines with a word longer than this (-1 disables).', default: 1000, min: -1 },
    filterLoremIpsum: { type: 'boolean', description: 'Drop documents containing "lorem ipsum".', default: true },
    filterJavascript: { type: 'boolean', description: 'Drop lines mentioning "javascript".', default: true },
    filterCurlyBracket: { type: 'boolean', description: 'Drop documents containing "{".', default: true },
    filterPolicy: { type: 'boolean', description: 'Drop lines about terms of use, privacy or cookie policies.', default: true },
    disable: disableOption(C4_REASONS),
  },
  reasons: C4_REASONS,
  evaluate(text, o, how = {}) {
    const v = new Verdict(o.disable, !!how.firstFailure);
    const m = v.metrics;
    const drops: Record<(typeof C4_LINE_DROPS)[number], number> = { too_long_word: 0, no_terminal_punc: 0, too_few_words: 0, javascript: 0, policy: 0 };
    const lines = o.splitParagraph ? splitLines(text) : splitSentences(text);
    const kept: string[] = [];
    let sentences = 0;
    let docReason: string | undefined;
    for (const raw of lines) {
      let line = pyStrip(raw);
      const words = pySplit(line);
      if (o.maxWordLength !== -1 && words.some((w) => w.length > o.maxWordLength)) {
        drops.too_long_word++;
        continue;
      }
      if (o.removeCitations) line = line.replace(CITATION, '');
      if (o.filterNoTerminalPunct && (!END_PUNCT.some((p) => line.endsWith(p)) || line.endsWith('...'))) {
        drops.no_terminal_punc++;
        continue;
      }
      if (words.length < o.minWordsPerLine) {
        drops.too_few_words++;
        continue;
      }
      const lower = line.toLowerCase();
      if (o.filterLoremIpsum && lower.includes('lorem ipsum') && v.on('lorem_ipsum')) {
        docReason = 'lorem_ipsum';
        break;
      }
      if (o.filterJavascript && lower.includes('javascript')) {
        drops.javascript++;
        continue;
      }
      if (o.filterCurlyBracket && line.includes('{') && v.on('curly_bracket')) {
        docReason = 'curly_bracket';
        break;
      }
      if (o.filterPolicy && POLICY.some((p) => lower.includes(p))) {
        drops.policy++;
        continue;
      }
      if (o.minNumSentences !== -1) sentences += o.splitParagraph ? countSentences(line) : 1;
      kept.push(line);
    }
    m.lines = lines.length;
    m.lines_kept = kept.length;
    for (const k of C4_LINE_DROPS) m[`lines_${k}`] = drops[k];
    m.sentences = sentences;
    if (docReason) {
      v.fail(docReason);
      return v.result();
    }
    if (v.on('too_few_sentences') && sentences < o.minNumSentences) v.fail('too_few_sentences');
    return v.result(kept.join(o.splitParagraph ? '\n' : ' ').trim());
  },
};

/** Sentences for splitParagraph=false: split after terminal punctuation followed by whitespace. */
function splitSentences(text: string): string[] {
  return text.split(/(?<=[.!?]['"\u2019\u201d)\]]*)\s+/).filter((s) => s.trim());
}
