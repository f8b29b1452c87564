// SampleMix (Xi et al. 2025): sample-wise mixing by quality and diversity under a token budget.
// Every document is scored (the sample quality model), counted in cl100k_base tokens, clustered
// for diversity, weighted p = 0.8·diversity + 0.2·quality, and drawn 0, 1, 2, ... times so the
// output has about `budgetRatio` x the input tokens:
//
//   npx mixstream run pipelines/samplemix.ts -o mixed.jsonl --report mixed.report.json
//
// budgetRatio 1 is the paper's T_tgt = T_src (low-weight documents give way to repeats of
// high-weight ones); 0.25 keeps the best quarter of the tokens with no repeats; 3 repeats most
// documents. The report's `sampling_count` histogram and `sampling_count_<n>` counters give the
// distribution of sampling counts (the paper's Figure 6). `--rejects` receives the documents
// drawn 0 times, with their weights.
import { definePipeline } from '../lib/pipeline.ts';

const budgetRatio = Number(process.env.SAMPLEMIX_BUDGET_RATIO ?? 1);

export default definePipeline({
  description: `SampleMix weights (alpha 0.8) from the sample quality model and k-means diversity, ${budgetRatio} x the input tokens`,
  source: ['../samples/handbook.jsonl', '../samples/kjv.jsonl', '../samples/gcide.jsonl', '../samples/fortunes.jsonl'],
  steps: [
    { op: 'normalize' },
    { op: 'tokens', encoding: 'cl100k_base' },
    { op: 'score', model: '../samples/quality-model.onnx', field: 'quality_score' },
    { op: 'samplemix', alpha: 0.8, quality: 'quality_score', budgetRatio, clusters: 64, seed: 1, memoryMB: 256 },
  ],
});
