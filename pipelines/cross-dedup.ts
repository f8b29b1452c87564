// Cross-deduplication of two datasets with source priority (Zyda-2): documents of both inputs
// are joined against each other at Jaccard 0.85; of each near-duplicate cluster the copy from the
// preferred dataset survives, wherever it appears in the input. Here the preferred dataset
// (debian-handbook) comes second in the input, after a mirror whose untranslated sections copy it:
//
//   npx mixstream run pipelines/cross-dedup.ts -o cross.jsonl --rejects removed.jsonl
//
// removed.jsonl then lists the 36 mirror sections and 6 handbook sections that duplicate kept
// ones, each with dup_of, dup_similarity and cluster_id.
//
// keep "priority" holds records until the end of input (spooled to an SQLite file, read back
// through a page cache of half of memoryMB). For datasets too large for that, deduplicate the preferred dataset first with
// `writeIndex: "preferred.idx"`, then run the others with `against: ["preferred.idx"]`
// (keep "first"): records stream through and the preferred dataset is never re-read.
import { definePipeline } from '../lib/pipeline.ts';

export default definePipeline({
  description: 'cross-dedup two datasets (MinHash 128, LSH at 0.85, exact verification), keeping the debian-handbook copy of each cluster',
  source: ['../samples/handbook-mirror.jsonl', '../samples/handbook.jsonl'],
  steps: [
    { op: 'normalize' },
    { op: 'shingle', unit: 'word', n: 5 },
    { op: 'minhash', perms: 128, seed: 1 },
    {
      op: 'lsh-band-join',
      threshold: 0.85,
      keep: 'priority',
      priorityField: 'source',
      priority: ['debian-handbook', 'handbook-mirror'],
      emit: 'kept',
      memoryMB: 256,
    },
  ],
});
