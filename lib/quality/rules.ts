// The heuristic rule sets by name, and option resolution for them.
import { validateOptions, type OptionError } from '../options.ts';
import { c4 } from './c4.ts';
import { fineweb } from './fineweb.ts';
import { gopherQuality } from './gopher-quality.ts';
import { gopherRepetition } from './gopher-repetition.ts';
import type { RuleResult, RuleSet } from './rule-set.ts';

export type { RuleResult, RuleSet, EvaluateHow } from './rule-set.ts';

export type RuleSetName = 'gopher-quality' | 'gopher-repetition' | 'c4' | 'fineweb';

export const RULE_SETS: Record<RuleSetName, RuleSet> = {
  'gopher-quality': gopherQuality,
  'gopher-repetition': gopherRepetition,
  c4,
  fineweb,
};

export const RULE_SET_NAMES = Object.keys(RULE_SETS) as RuleSetName[];

export function isRuleSetName(name: string): name is RuleSetName {
  return Object.prototype.hasOwnProperty.call(RULE_SETS, name);
}

/**
 * Threshold overrides -> the full options of a rule set (published defaults filled in).
 * Throws one error listing every bad override, prefixed by `path`.
 */
export function resolveRuleOptions(name: RuleSetName, overrides: Record<string, unknown> = {}, path: string = name): Record<string, unknown> {
  const errors: OptionError[] = [];
  const opts = validateOptions(overrides, RULE_SETS[name].options, errors, path);
  if (errors.length) throw new Error(errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  return opts;
}

/** Errors of threshold overrides, without throwing (for descriptor `check`). */
export function checkRuleOptions(name: RuleSetName, overrides: Record<string, unknown>, path: string): OptionError[] {
  const errors: OptionError[] = [];
  validateOptions(overrides, RULE_SETS[name].options, errors, path);
  return errors;
}

export interface ResolvedSet {
  name: RuleSetName;
  opts: Record<string, unknown>;
}

export interface SetsOutcome {
  /** The first failing rule (the drop reason), if any. */
  reason?: string;
  /** The text after C4's line edits (edits are applied only in drop mode). */
  text: string;
  /** Per rule set results, in order (in drop mode, up to the first failing set). */
  results: { name: RuleSetName; result: RuleResult }[];
}

/**
 * Applies rule sets in order to one text. In drop mode evaluation stops at the first failing
 * set and later sets see the text as C4 edited it; otherwise every set sees the original text.
 */
export function evaluateSets(text: string, sets: ResolvedSet[], drop: boolean, firstFailure: boolean): SetsOutcome {
  const out: SetsOutcome = { text, results: [] };
  for (const { name, opts } of sets) {
    const result = RULE_SETS[name].evaluate(out.text, opts, { firstFailure });
    out.results.push({ name, result });
    if (!result.pass) {
      out.reason ??= result.reasons[0];
      if (drop) break;
    } else if (drop && result.text !== undefined) out.text = result.text;
  }
  return out;
}
