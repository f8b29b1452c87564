// Cleans text for later stages: Unicode NFKC, control characters, whitespace, line cleanup,
// then drops documents too short to be useful. Run:
//   zstdcat dump.jsonl.zst | npx mixstream run pipelines/clean.ts > out.jsonl
import { definePipeline } from '../lib/pipeline.ts';

export default definePipeline({
  description: 'normalize text and drop near-empty documents',
  steps: [
    { op: 'normalize' },
    { op: '../samples/operators/word-count.ts', minWords: 3 },
  ],
});
