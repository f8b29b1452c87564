// A custom operator: the same descriptor the built-ins export. Reference it from a pipeline
// by path: {"op": "./samples/operators/word-count.ts", "minWords": 20}.
import { defineOperator } from '../../lib/operator.ts';

export default defineOperator<{ field: string; minWords: number }>({
  name: 'word-count',
  summary: 'adds the number of whitespace-separated words; drops documents with fewer than minWords',
  options: {
    field: { type: 'string', default: 'word_count', description: 'output field' },
    minWords: { type: 'integer', min: 0, default: 0, description: 'drop documents with fewer words (reason too_few_words)' },
  },
  outputs: { word_count: 'number of whitespace-separated words' },
  create(options, ctx) {
    return {
      process(batch) {
        const kept = [];
        for (const rec of batch) {
          const words = rec.text.split(/\s+/).filter(Boolean).length;
          if (words < options.minWords) {
            ctx.drop(rec, 'too_few_words');
            continue;
          }
          ctx.annotate(rec, options.field, words);
          kept.push(rec);
        }
        return kept;
      },
    };
  },
});
