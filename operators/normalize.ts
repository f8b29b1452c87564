import { internals, defineOperator } from '../lib/operator.ts';
import { hashForm, normalizeText } from '../lib/text/normalize.ts';

export interface NormalizeOptions {
  nfkc: boolean;
  controls: boolean;
  whitespace: boolean;
  lines: boolean;
  lowercase: boolean;
  foldPunctuation: boolean;
  foldDigits: boolean;
  rewrite: 'clean' | 'hash' | 'none';
  hashField?: string;
}

export default defineOperator<NormalizeOptions>({
  name: 'normalize',
  summary: 'Unicode NFKC, control characters, whitespace runs, line cleanup; a separate hashing form (lowercase, punctuation and digits folded) for later steps',
  description:
    'Cleans the emitted text (NFKC, control and invisible characters removed, CR/CRLF to LF, runs of spaces collapsed, lines trimmed, ' +
    'three or more newlines collapsed to one blank line) and computes a hashing form that shingle/minhash/exact dedup use ' +
    'without changing the emitted text. A record whose text is empty after cleaning is dropped as empty_after_normalize.',
  options: {
    nfkc: { type: 'boolean', default: true, description: 'Unicode NFKC normalization (only non-ASCII text is touched)' },
    controls: { type: 'boolean', default: true, description: 'remove control characters and invisible marks without meaning (BOM, zero-width space, word joiner, soft hyphen); ZWNJ, ZWJ and bidirectional marks stay in the text (the hashing form drops them)' },
    whitespace: { type: 'boolean', default: true, description: 'CR/CRLF, vertical tab, form feed and NEL to LF, and runs of horizontal whitespace to one space' },
    lines: { type: 'boolean', default: true, description: 'trim every line and collapse 3+ newlines into one blank line' },
    lowercase: { type: 'boolean', default: true, description: 'hashing form: lowercase' },
    foldPunctuation: { type: 'boolean', default: true, description: 'hashing form: punctuation and symbols become word boundaries' },
    foldDigits: { type: 'boolean', default: true, description: 'hashing form: every digit becomes 0' },
    rewrite: { type: 'string', enum: ['clean', 'hash', 'none'], default: 'clean', description: 'what the emitted "text" becomes: the cleaned text, the hashing form, or unchanged' },
    hashField: { type: 'string', nonEmpty: true, description: 'also write the hashing form to this output field (off by default: it stays internal)' },
  },
  outputs: { text: 'rewritten per `rewrite`', '<hashField>': 'the hashing form, when hashField is set' },
  create(o, ctx) {
    const clean = { nfkc: o.nfkc, controls: o.controls, whitespace: o.whitespace, lines: o.lines };
    const fold = { lowercase: o.lowercase, foldPunctuation: o.foldPunctuation, foldDigits: o.foldDigits };
    const foldJson = JSON.stringify(fold);
    return {
      process(batch) {
        const out = [];
        for (const rec of batch) {
          const cleaned = normalizeText(rec.text, clean);
          if (cleaned === '') {
            ctx.drop(rec, 'empty_after_normalize');
            continue;
          }
          const hashed = hashForm(cleaned, fold);
          const ints = internals(rec);
          ints.hashText = hashed;
          ints.hashFold = foldJson;
          if (o.rewrite === 'clean') rec.text = cleaned;
          else if (o.rewrite === 'hash') rec.text = hashed;
          if (o.hashField) ctx.annotate(rec, o.hashField, hashed);
          out.push(rec);
        }
        return out;
      },
    };
  },
});
