// The shape shared by the heuristic rule sets (Gopher quality and repetition, C4, FineWeb).
import type { OptionSchema } from '../options.ts';

export interface RuleResult {
  /** True when no rule failed. */
  pass: boolean;
  /** Names of the failed rules, in the order they are checked (the first is the drop reason). */
  reasons: string[];
  /** The measured quantities the rules compare against their thresholds. */
  metrics: Record<string, number>;
  /** Rule sets that edit the document (C4 drops lines) return the edited text here. */
  text?: string;
}

export interface EvaluateHow {
  /**
   * Stop at the first failing rule (what a drop-only filter needs; faster). By default every
   * rule is checked so that annotations list all reasons.
   */
  firstFailure?: boolean;
}

export interface RuleSet<O = any> {
  name: string;
  summary: string;
  /** Every threshold is an option with the published default. */
  options: OptionSchema;
  /** Reason name -> what it means (documentation). */
  reasons: Record<string, string>;
  evaluate(text: string, opts: O, how?: EvaluateHow): RuleResult;
}

export const disableOption = (reasons: Record<string, string>) => ({
  type: 'array' as const,
  description: `Rules (reason names) not to check: ${Object.keys(reasons).join(', ')}.`,
  items: { type: 'string' as const, description: 'reason name', enum: Object.keys(reasons) },
  default: [] as string[],
});

/** Collects failures and stops early when asked. */
export class Verdict {
  readonly reasons: string[] = [];
  readonly metrics: Record<string, number> = {};
  private readonly skip: Set<string>;
  constructor(
    disable: readonly string[] | undefined,
    private readonly first: boolean,
  ) {
    this.skip = new Set(disable ?? []);
  }
  /** Whether the rule should be checked at all. */
  on(reason: string): boolean {
    return !this.skip.has(reason);
  }
  /** Records a failure; returns true when evaluation should stop. */
  fail(reason: string): boolean {
    this.reasons.push(reason);
    return this.first;
  }
  get done(): boolean {
    return this.first && this.reasons.length > 0;
  }
  result(text?: string): RuleResult {
    const r: RuleResult = { pass: this.reasons.length === 0, reasons: this.reasons, metrics: this.metrics };
    if (text !== undefined) r.text = text;
    return r;
  }
}
