// The worker-thread task of the `score` operator (lib/parallel.ts pools): each thread opens its
// own model scorer once per spec and scores batches of texts.
import { withTransfer } from '../parallel.ts';
import { ModelScorer, type ModelScorerSpec, type ScoreBatch } from './scorer.ts';

export interface ScoreTask {
  spec: ModelScorerSpec;
  texts: string[];
}

export interface ScoreTaskResult extends ScoreBatch {
  classNames: string[];
}

const scorers = new Map<string, Promise<ModelScorer>>();

export function openScorer(spec: ModelScorerSpec): Promise<ModelScorer> {
  const key = JSON.stringify(spec);
  let s = scorers.get(key);
  if (!s) {
    s = ModelScorer.open(spec);
    scorers.set(key, s);
    s.catch(() => scorers.delete(key));
  }
  return s;
}

export default async function scoreTask({ spec, texts }: ScoreTask): Promise<ScoreTaskResult> {
  const scorer = await openScorer(spec);
  const res = await scorer.score(texts);
  const transfer: ArrayBuffer[] = [res.scores.buffer as ArrayBuffer];
  if (res.probabilities) transfer.push(res.probabilities.buffer as ArrayBuffer);
  return withTransfer({ ...res, classNames: scorer.classNames.slice() }, transfer);
}
