// The heuristic rule sets by name, and option resolution for them.
import { validateOptions, type OptionError } from '../options.ts';
import { c4 } from './c4.ts';
import { fineweb } from './fineweb.ts';
import { gopherQuality } from './gopher-quality.ts';
import { gopherRepetition } from './gopher-repetition.ts';
import type { RuleSet } from './rule-set.ts';

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
