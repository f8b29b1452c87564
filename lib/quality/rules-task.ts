// The worker-thread task of the `filter` operator (lib/parallel.ts pools): evaluates rule sets
// on a batch of texts.
import { evaluateSets, type ResolvedSet, type SetsOutcome } from './rules.ts';

export interface RulesTask {
  sets: ResolvedSet[];
  drop: boolean;
  firstFailure: boolean;
  texts: string[];
}

export default function rulesTask({ sets, drop, firstFailure, texts }: RulesTask): SetsOutcome[] {
  return texts.map((t) => evaluateSets(t, sets, drop, firstFailure));
}
