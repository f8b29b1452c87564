// `filter`: drops (or annotates) records by heuristic rule sets (Gopher quality, Gopher
// repetition, C4, FineWeb) and/or by a numeric field's range, with a named reason per drop.
import { defineOperator, setText, type Rec } from '../lib/operator.ts';
import type { OptionError } from '../lib/options.ts';
import { C4_LINE_DROPS } from '../lib/quality/c4.ts';
import { createWorkerPool, inCallOrder, orderedTextStep, type WorkerPool } from '../lib/parallel.ts';
import type { RulesTask } from '../lib/quality/rules-task.ts';
import { checkRuleOptions, evaluateSets, isRuleSetName, resolveRuleOptions, RULE_SET_NAMES, type ResolvedSet, type RuleSetName, type SetsOutcome } from '../lib/quality/rules.ts';

type RuleRef = RuleSetName | ({ set: RuleSetName } & Record<string, unknown>);

export interface FilterOptions {
  rules: RuleRef[];
  mode: 'drop' | 'annotate';
  annotate: boolean;
  annotateField: string;
  metrics: boolean;
  applyEdits: boolean;
  field?: string;
  min?: number;
  max?: number;
  missing: 'error' | 'drop' | 'keep';
  workers?: number;
  parallelAfterDocs: number;
}

/** Fewest documents per worker task. */
const MIN_CHUNK = 64;

/** The annotation written for each rule set under `annotateField`. */
export interface RuleAnnotation {
  pass: boolean;
  reasons: string[];
  metrics?: Record<string, number>;
}

function splitRef(ref: RuleRef): { name: RuleSetName; overrides: Record<string, unknown> } {
  if (typeof ref === 'string') return { name: ref, overrides: {} };
  const { set, ...overrides } = ref;
  return { name: set, overrides };
}

const round = (x: number) => (Number.isFinite(x) ? Math.round(x * 1e4) / 1e4 : x);

export default defineOperator<FilterOptions>({
  name: 'filter',
  summary: 'Drops or annotates records by heuristic rule sets (gopher-quality, gopher-repetition, c4, fineweb) or a numeric field range',
  description:
    'Each rule set applies its published thresholds (every one an override) and names the rule a document fails ' +
    '(e.g. gopher_short_doc, dup_line_frac, too_few_sentences, line_punct_ratio). Rule sets run in the order given; ' +
    'in drop mode the first failing rule is the drop reason (counted per reason, routed to the rejects output) and ' +
    'later rule sets see the text as C4 rewrote it. `field` with `min`/`max` drops by a numeric field such as a ' +
    'quality score. See docs/quality-rules.md.',
  options: {
    rules: {
      type: 'array',
      description: `rule sets to apply, in order: a name (${RULE_SET_NAMES.join(', ')}) or {"set": name, ...threshold overrides}`,
      items: {
        type: 'oneOf',
        description: 'rule set',
        variants: [
          { type: 'string', description: 'rule set name', enum: RULE_SET_NAMES },
          { type: 'object', description: 'rule set with overrides', properties: { set: { type: 'string', description: 'rule set name', enum: RULE_SET_NAMES, required: true } }, additional: { type: 'any', description: 'threshold override' } },
        ],
      },
      default: [],
    },
    mode: { type: 'string', enum: ['drop', 'annotate'], default: 'drop', description: '"drop" removes failing records; "annotate" keeps every record and writes the results' },
    annotate: { type: 'boolean', default: false, description: 'write rule results to `annotateField` (always on in annotate mode)' },
    annotateField: { type: 'string', nonEmpty: true, default: 'quality_rules', description: 'output field for rule results: {<rule set>: {pass, reasons, metrics}}' },
    metrics: { type: 'boolean', default: true, description: 'include the measured metrics in the annotation' },
    applyEdits: { type: 'boolean', default: true, description: 'in drop mode, replace text with the lines C4 keeps (as C4 and datatrove do)' },
    field: { type: 'string', description: 'numeric field to filter on (e.g. quality_score)' },
    min: { type: 'number', description: 'drop records whose `field` is below this' },
    max: { type: 'number', description: 'drop records whose `field` is above this' },
    missing: { type: 'string', enum: ['error', 'drop', 'keep'], default: 'error', description: 'what to do when `field` is missing or not a number' },
    workers: { type: 'integer', min: 0, default: 0, description: 'worker threads evaluating rule sets (0: in the step\'s own thread, the default: the kernels run at 5-17k docs/s per core and on 2 cores threads did not pay for copying texts to them)' },
    parallelAfterDocs: { type: 'integer', min: 0, default: 4000, description: 'documents evaluated in the step\'s own thread before worker threads start (starting them costs about a second)' },
  },
  outputs: {
    quality_rules: 'per rule set {pass, reasons, metrics} when annotating (renamed by `annotateField`)',
  },
  check(o) {
    const errors: OptionError[] = [];
    o.rules.forEach((ref, i) => {
      if (typeof ref === 'string' || !isRuleSetName(ref.set)) return;
      const { name, overrides } = splitRef(ref);
      errors.push(...checkRuleOptions(name, overrides, `rules[${i}]`));
    });
    if (o.rules.length === 0 && o.field === undefined) errors.push({ path: 'rules', message: 'nothing to filter on: give rule sets in `rules`, or `field` with `min`/`max`' });
    if (o.field !== undefined && o.min === undefined && o.max === undefined) errors.push({ path: 'field', message: '`field` needs `min` and/or `max`' });
    if (o.field === undefined && (o.min !== undefined || o.max !== undefined)) errors.push({ path: o.min !== undefined ? 'min' : 'max', message: '`min`/`max` need `field`' });
    if (o.min !== undefined && o.max !== undefined && o.min > o.max) errors.push({ path: 'min', message: `min (${o.min}) is above max (${o.max})` });
    return errors;
  },
  explain(o) {
    const parts: string[] = [];
    if (o.rules.length) parts.push(`${o.mode === 'drop' ? 'drops records failing' : 'annotates records with'} ${o.rules.map((r) => splitRef(r).name).join(', ')}`);
    if (o.field) parts.push(`drops records with ${[o.min !== undefined ? `${o.field} < ${o.min}` : '', o.max !== undefined ? `${o.field} > ${o.max}` : ''].filter(Boolean).join(' or ')}`);
    return parts.join('; ');
  },
  create(o, ctx) {
    const sets: ResolvedSet[] = o.rules.map((ref, i) => {
      const { name, overrides } = splitRef(ref);
      return { name, opts: resolveRuleOptions(name, overrides, `rules[${i}]`) };
    });
    const drop = o.mode === 'drop';
    const annotate = o.annotate || !drop;
    const firstFailure = drop && !annotate;
    const workers = sets.length ? (o.workers ?? 0) : 0;
    let pool: WorkerPool<RulesTask, SetsOutcome[]> | undefined;
    let inlineDocs = 0;
    // Outcomes are applied (drops, counters, annotations) in input order, batch after batch.
    const inOrder = inCallOrder();

    function byField(rec: Rec): string | undefined | null {
      const v = rec[o.field!];
      if (typeof v !== 'number' || Number.isNaN(v)) {
        if (o.missing === 'keep') return undefined;
        if (o.missing === 'drop') return `missing_${o.field}`;
        ctx.error(rec, 'missing_field', `record ${rec.id}: field "${o.field}" is ${v === undefined ? 'missing' : JSON.stringify(v)}, not a number`);
        return null;
      }
      if (o.min !== undefined && v < o.min) return `${o.field}_below_min`;
      if (o.max !== undefined && v > o.max) return `${o.field}_above_max`;
      return undefined;
    }

    /** Applies one record's outcome: counters, annotation, drop or edit. Returns whether it is kept. */
    function apply(rec: Rec, outcome: SetsOutcome | undefined, fieldReason: string | undefined): boolean {
      let reason = fieldReason;
      if (outcome) {
        const notes: Record<string, RuleAnnotation> = {};
        for (const { name, result } of outcome.results) {
          if (name === 'c4') for (const k of C4_LINE_DROPS) if (result.metrics[`lines_${k}`]) ctx.stats.count(`c4_lines_dropped_${k}`, result.metrics[`lines_${k}`]);
          if (!drop) for (const r of result.reasons) ctx.stats.count(`failed_${r}`);
          if (annotate) {
            const note: RuleAnnotation = { pass: result.pass, reasons: result.reasons };
            if (o.metrics) note.metrics = Object.fromEntries(Object.entries(result.metrics).map(([k, v]) => [k, round(v as number)]));
            notes[name] = note;
          }
        }
        reason ??= outcome.reason;
        if (annotate) ctx.annotate(rec, o.annotateField, notes);
        if (drop && !reason && o.applyEdits && outcome.text !== rec.text) {
          ctx.stats.count('texts_edited');
          setText(rec, outcome.text);
        }
      }
      if (drop && reason) {
        ctx.drop(rec, reason);
        return false;
      }
      return true;
    }

    /** The rule sets' outcomes for `texts`, in a worker thread once the input has proved long enough. */
    async function evaluate(texts: string[]): Promise<SetsOutcome[]> {
      if (workers === 0 || texts.length < MIN_CHUNK || (!pool && inlineDocs < o.parallelAfterDocs)) {
        inlineDocs += texts.length;
        return texts.map((t) => evaluateSets(t, sets, drop, firstFailure));
      }
      pool ??= createWorkerPool({ module: new URL('../lib/quality/rules-task.ts', import.meta.url), size: workers, name: ctx.op });
      const chunks = Math.max(1, Math.min(pool.size * 2, Math.floor(texts.length / MIN_CHUNK)));
      const per = Math.ceil(texts.length / chunks);
      const parts: Promise<SetsOutcome[]>[] = [];
      for (let start = 0; start < texts.length; start += per) parts.push(pool.run({ sets, drop, firstFailure, texts: texts.slice(start, start + per) }));
      return (await Promise.all(parts)).flat();
    }

    return orderedTextStep(ctx, {
      ahead: workers > 0 ? 2 : 0,
      pool: () => pool,
      run(batch) {
        const recs: Rec[] = [];
        const fieldReasons: (string | undefined)[] = [];
        for (const rec of batch) {
          let fr: string | undefined;
          if (o.field !== undefined) {
            const r = byField(rec);
            if (r === null) continue;
            fr = r;
          }
          recs.push(rec);
          fieldReasons.push(fr);
        }
        // Records already dropped by `field` skip the rules in drop mode.
        const todo = recs.map((_, i) => sets.length > 0 && !(drop && fieldReasons[i]));
        const outcomes = evaluate(recs.filter((_, i) => todo[i]).map((r) => r.text));
        return inOrder(outcomes, (done) => {
          const out: Rec[] = [];
          let j = 0;
          recs.forEach((rec, i) => {
            if (apply(rec, todo[i] ? done[j++] : undefined, fieldReasons[i])) out.push(rec);
          });
          return out;
        });
      },
    });
  },
});
