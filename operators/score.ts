// `score`: a quality score per document from an ONNX model (hashed n-gram features or a
// tokenizer.json + transformer) or from heuristic rule sets, on a [0, 1] or 0-10 scale, with
// optional keep-the-top-fraction filtering.
import path from 'node:path';
import { defineOperator, stepOptionError, type Rec, type Step } from '../lib/operator.ts';
import { createOrderedWindow, createWorkerPool, type WorkerPool } from '../lib/parallel.ts';
import { TopFractionSelector, type KeepTopMode } from '../lib/quality/keep-top.ts';
import { checkRuleOptions, isRuleSetName, resolveRuleOptions, RULE_SET_NAMES, RULE_SETS, type RuleSetName } from '../lib/quality/rules.ts';
import type { OutputKind } from '../lib/quality/model-config.ts';
import type { ScoreTask, ScoreTaskResult } from '../lib/quality/score-task.ts';
// The scorer (and onnxruntime with it) is loaded when a score step is created, not when the CLI lists operators.
import type { ModelScorer as ModelScorerType, ModelScorerSpec, Scale } from '../lib/quality/scorer.ts';

export interface ScoreOptions {
  model?: string;
  tokenizer?: string;
  maxLength: number;
  inputName?: string;
  outputName?: string;
  outputKind: 'auto' | OutputKind;
  range?: [number, number];
  rules?: RuleSetName[];
  ruleOptions: Partial<Record<RuleSetName, Record<string, unknown>>>;
  field: string;
  scale: Scale;
  probabilities?: string;
  batchSize: number;
  keepTop?: number;
  keepTopMode: KeepTopMode;
  keepTopWarmup: number;
  keepTopMemoryMB: number;
  workers?: number;
  threads: number;
}

/** With the default `workers`, records scored in the step's thread before worker threads start. */
const POOL_AFTER_RECORDS = 5000;

const OUTPUT_KINDS = ['auto', 'probability', 'logit', 'probabilities', 'logits', 'regression'] as const;

/** Rule-set scoring: the share of the selected rules a document passes. */
class RuleScorer {
  private readonly sets: { name: RuleSetName; opts: Record<string, unknown>; rules: number }[];
  readonly total: number;
  constructor(names: RuleSetName[], overrides: ScoreOptions['ruleOptions']) {
    this.sets = names.map((name) => {
      let opts: Record<string, unknown>;
      try {
        opts = resolveRuleOptions(name, overrides[name] ?? {});
      } catch (e) {
        throw new Error((e as Error).message.replace(/^/gm, 'ruleOptions.'));
      }
      const disabled = new Set((opts.disable as string[] | undefined) ?? []);
      const rules = Object.keys(RULE_SETS[name].reasons).filter((r) => !disabled.has(r)).length;
      return { name, opts, rules };
    });
    this.total = this.sets.reduce((n, s) => n + s.rules, 0);
  }
  score(text: string): { score: number; failed: string[] } {
    const failed: string[] = [];
    for (const s of this.sets) {
      for (const reason of RULE_SETS[s.name].evaluate(text, s.opts).reasons) failed.push(`${s.name}:${reason}`);
    }
    return { score: this.total ? 1 - failed.length / this.total : 1, failed };
  }
}

export default defineOperator<ScoreOptions>({
  name: 'score',
  // keepTop holds a quantile sketch and warm-up buffer (stream) or every record (exact): state the
  // step checkpoints. Without keepTop the scores depend on each record alone (records scored
  // ahead in worker threads are handed on at each barrier by `drain`).
  stateful: (o: { keepTop?: number }) => o.keepTop !== undefined,
  summary: 'Quality score per document: ONNX model (hashed n-grams or tokenizer + transformer) or heuristic rule sets; keep the top fraction',
  description:
    'Writes a quality score to `field`. With `model`, an ONNX model scores batches of documents: a model trained by ' +
    '`mixstream train-quality` (its .json beside the .onnx gives the hashed n-gram vectorizer), or with `tokenizer` an ' +
    'exported sequence classifier (input_ids/attention_mask, e.g. the FineWeb-Edu classifier). With `rules`, the score ' +
    'is the share of the selected heuristic rules the document passes. Scores are in [0, 1] or, with scale ' +
    '"ordinal10", integers 0-10 (round(10·s)). `keepTop` keeps only the best fraction of the stream.',
  options: {
    model: { type: 'string', description: 'path to an .onnx model (relative to the pipeline file); its .json config beside it gives the vectorizer unless `tokenizer` is set' },
    tokenizer: { type: 'string', description: 'path to a Hugging Face tokenizer.json (WordPiece or byte-level BPE): the model takes input_ids (+ attention_mask, token_type_ids)' },
    maxLength: { type: 'integer', min: 2, default: 512, description: 'tokens per document with `tokenizer` (special tokens included); longer texts are truncated' },
    inputName: { type: 'string', description: 'model input to feed (default: the config\'s input, or input_ids with a tokenizer)' },
    outputName: { type: 'string', description: 'model output to read (default: the config\'s output, else the first output)' },
    outputKind: {
      type: 'string',
      enum: OUTPUT_KINDS,
      default: 'auto',
      description:
        'how the output becomes a [0, 1] score: probability (one column, used as is), logit (sigmoid), probabilities / logits ' +
        '(one column per class, lowest quality first; score = expected class position / (classes - 1)), regression (mapped from ' +
        '`range`); auto = from the model\'s .json, else logit for one column and logits for several',
    },
    range: { type: 'array', items: { type: 'number', description: 'bound' }, minItems: 2, description: 'regression output range mapped onto [0, 1] (default [0, 5], the FineWeb-Edu scale)' },
    rules: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', enum: RULE_SET_NAMES, description: 'rule set' },
      description: 'score by heuristic rule sets instead of a model: score = share of their rules passed',
    },
    ruleOptions: {
      type: 'object',
      default: {},
      additional: { type: 'object', description: 'threshold overrides of one rule set' },
      description: 'threshold overrides per rule set, e.g. {"gopher-quality": {"minDocWords": 20}}',
    },
    field: { type: 'string', default: 'quality_score', description: 'output field of the score' },
    scale: { type: 'string', enum: ['unit', 'ordinal10'], default: 'unit', description: '"unit": [0, 1]; "ordinal10": integer 0-10 = round(10·score) (SampleMix)' },
    probabilities: { type: 'string', description: 'also write per-class probabilities {class: p} under this field (models with class outputs)' },
    batchSize: { type: 'integer', min: 1, default: 64, description: 'documents per model run' },
    keepTop: { type: 'number', min: 0, exclusiveMin: true, max: 1, description: 'keep only this top fraction of documents by score (e.g. 0.15); the rest are dropped as below_top_fraction' },
    keepTopMode: { type: 'string', enum: ['stream', 'exact'], default: 'stream', description: '"stream": one pass with a t-digest quantile after a warm-up; "exact": hold (and spill) all records, keep exactly the top fraction at the end' },
    keepTopWarmup: { type: 'integer', min: 1, default: 2000, description: 'records buffered before the first keep decision (stream mode)' },
    keepTopMemoryMB: { type: 'number', min: 1, default: 256, description: 'records held in memory before spilling to disk (exact mode)' },
    workers: { type: 'integer', min: 0, description: 'worker threads running the model (default: the run\'s cores, started after the first 5000 records; 0 = in the step\'s thread)' },
    threads: { type: 'integer', min: 1, default: 1, description: 'onnxruntime intra-op threads per model session' },
  },
  outputs: {
    quality_score: 'the score (renamed by `field`): [0, 1], or an integer 0-10 with scale "ordinal10"',
    '<probabilities>': 'per-class probabilities {class: p} when `probabilities` names a field',
    '<field>_failed': 'with `rules`: the failed rules as "set:reason"',
  },
  check(o) {
    const errs: { path: string; message: string }[] = [];
    if (!o.model === !o.rules) errs.push({ path: o.model ? 'rules' : 'model', message: 'set exactly one of `model` (an ONNX model) or `rules` (rule-set names)' });
    if (!o.model) {
      for (const k of ['tokenizer', 'inputName', 'outputName', 'probabilities', 'range'] as const) {
        if (o[k] !== undefined) errs.push({ path: k, message: 'only used with `model`' });
      }
    }
    if (o.range && (o.range.length !== 2 || !(o.range[0] < o.range[1]))) errs.push({ path: 'range', message: `expected [low, high] with low < high, got ${JSON.stringify(o.range)}` });
    if (o.range && o.outputKind !== 'regression' && o.outputKind !== 'auto') errs.push({ path: 'range', message: 'only used with outputKind "regression"' });
    if (o.probabilities !== undefined && o.outputKind === 'regression') errs.push({ path: 'probabilities', message: 'a regression output has no class probabilities' });
    if (o.probabilities === o.field) errs.push({ path: 'probabilities', message: `must differ from field "${o.field}"` });
    for (const [name, overrides] of Object.entries(o.ruleOptions ?? {})) {
      if (!isRuleSetName(name)) errs.push({ path: `ruleOptions.${name}`, message: `unknown rule set; one of ${RULE_SET_NAMES.join(', ')}` });
      else {
        if (!o.rules?.includes(name)) errs.push({ path: `ruleOptions.${name}`, message: `rule set "${name}" is not in \`rules\`` });
        errs.push(...checkRuleOptions(name, overrides, `ruleOptions.${name}`));
      }
    }
    if (o.keepTop === undefined) {
      if (o.keepTopMode !== 'stream') errs.push({ path: 'keepTopMode', message: 'only used with `keepTop`' });
    }
    return errs;
  },
  reads(o) {
    return [
      ...(o.model ? [{ option: 'model', path: o.model }] : []),
      ...(o.tokenizer ? [{ option: 'tokenizer', path: o.tokenizer }] : []),
    ];
  },
  explain(o) {
    const by = o.model
      ? `the ONNX model ${o.model}${o.tokenizer ? ` with tokenizer ${o.tokenizer} (max ${o.maxLength} tokens)` : ' on hashed n-gram features'}`
      : `the share of rules passed in ${o.rules!.join(', ')}`;
    const scale = o.scale === 'ordinal10' ? 'as an integer 0-10' : 'in [0, 1]';
    const keep = o.keepTop !== undefined ? `; keeps the top ${+(o.keepTop * 100).toFixed(2)}% by score (${o.keepTopMode === 'exact' ? 'exact, two passes' : 'one pass'}), dropping the rest as below_top_fraction` : '';
    return `scores each document by ${by} into "${o.field}" ${scale}${keep}`;
  },
  async create(o, ctx): Promise<Step> {
    const { applyScale, ModelScorer } = await import('../lib/quality/scorer.ts');
    const selector =
      o.keepTop !== undefined
        ? new TopFractionSelector({
            fraction: o.keepTop,
            mode: o.keepTopMode,
            warmup: o.keepTopWarmup,
            tmpDir: ctx.tmpDir,
            memoryBytes: o.keepTopMemoryMB * (1 << 20),
            onReject: (rec) => ctx.drop(rec, 'below_top_fraction'),
          })
        : undefined;
    const select = (recs: Rec[], scores: number[]): Rec[] => {
      if (!selector) return recs;
      const out: Rec[] = [];
      for (let i = 0; i < recs.length; i++) for (const r of selector.push(recs[i], scores[i])) out.push(r);
      return out;
    };
    const valid = (batch: Rec[]) =>
      batch.filter((rec) => {
        if (typeof rec.text === 'string') return true;
        ctx.error(rec, 'no_text', `record ${rec.id}: "text" is ${rec.text === undefined ? 'missing' : typeof rec.text}, not a string`);
        return false;
      });
    // The end of input: keepTop's last decisions, batch by batch (exact mode reads its spill back).
    const finish = function* (): Generator<Rec[]> {
      if (!selector) return;
      yield* selector.finishBatches();
      const s = selector.stats;
      ctx.stats.count('kept_top', s.kept);
      if (Number.isFinite(s.threshold)) ctx.log(`keepTop ${o.keepTop}: kept ${s.kept} of ${s.seen} (${((100 * s.kept) / Math.max(1, s.seen)).toFixed(2)}%), score threshold ${s.threshold.toFixed(4)}`);
    };
    // With --checkpoint: keepTop's state (the scorer itself has none).
    const checkpoint = selector && ((dir: string) => selector.save(dir));
    const restore = selector && ((dir: string) => selector.load(dir));

    if (o.rules) {
      let scorer: RuleScorer;
      try {
        scorer = new RuleScorer(o.rules, o.ruleOptions);
      } catch (e) {
        throw stepOptionError(ctx, `option ${(e as Error).message.replace(/\n/g, '\noption ')}`);
      }
      return {
        process(batch) {
          const recs = valid(batch);
          const scores = recs.map((rec) => {
            const { score, failed } = scorer.score(rec.text);
            const v = applyScale(score, o.scale);
            ctx.annotate(rec, o.field, v);
            ctx.annotate(rec, `${o.field}_failed`, failed);
            ctx.stats.observe('score', v);
            return score;
          });
          return select(recs, scores);
        },
        flushBatches: finish,
        checkpoint,
        restore,
        close: () => selector?.close(),
      };
    }

    const spec: ModelScorerSpec = {
      model: path.resolve(ctx.baseDir, o.model!),
      tokenizer: o.tokenizer ? path.resolve(ctx.baseDir, o.tokenizer) : undefined,
      maxLength: o.maxLength,
      inputName: o.inputName,
      outputName: o.outputName,
      outputKind: o.outputKind,
      range: o.range as [number, number] | undefined,
      threads: o.threads,
    };
    // Opened here even with workers: option errors (missing file, input size mismatch) surface
    // at create time, before any data is read.
    let local: ModelScorerType;
    try {
      local = await ModelScorer.open(spec);
    } catch (e) {
      const message = (e as Error).message;
      throw stepOptionError(ctx, message.startsWith('option ') ? message : `option model: ${message}`);
    }
    // Worker threads (each loads the TypeScript modules and opens its own session: a second or
    // more) start only once the input has proved long enough to repay them; an explicit
    // `workers` starts them at once.
    const workers = o.workers ?? (ctx.workers > 1 ? ctx.workers : 0);
    let pool: WorkerPool<ScoreTask, ScoreTaskResult> | undefined;
    let seen = 0;
    const startAfter = o.workers === undefined ? POOL_AFTER_RECORDS : 0;
    const onAbort = () => void pool?.destroy();
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    const window = createOrderedWindow<{ rec: Rec; score: number }>(workers > 0 ? 2 * workers : 0);

    const scoreChunk = async (recs: Rec[]): Promise<{ rec: Rec; score: number }[]> => {
      const texts = recs.map((r) => r.text);
      const res: ScoreTaskResult = pool ? await pool.run({ spec, texts }) : { ...(await local.score(texts)), classNames: local.classNames };
      const k = res.classNames.length;
      return recs.map((rec, i) => {
        const s = res.scores[i];
        ctx.annotate(rec, o.field, applyScale(s, o.scale));
        if (o.probabilities) {
          if (!res.probabilities) throw new Error(`option probabilities: the model output gives no class probabilities`);
          const probs: Record<string, number> = {};
          for (let c = 0; c < k; c++) probs[res.classNames[c]] = res.probabilities[i * k + c];
          ctx.annotate(rec, o.probabilities, probs);
        }
        return { rec, score: s };
      });
    };
    // Chunks come back in input order here (worker threads finish in any order): the score
    // histogram's sample depends on the order of its values, so they are recorded here.
    const release = (done: { rec: Rec; score: number }[]) => {
      for (const d of done) ctx.stats.observe('score', applyScale(d.score, o.scale));
      return select(
        done.map((d) => d.rec),
        done.map((d) => d.score),
      );
    };

    return {
      async process(batch) {
        const recs = valid(batch);
        seen += recs.length;
        if (!pool && workers > 0 && seen > startAfter) {
          pool = createWorkerPool({ module: new URL('../lib/quality/score-task.ts', import.meta.url), size: workers, name: ctx.op });
        }
        const out: Rec[] = [];
        for (let i = 0; i < recs.length; i += o.batchSize) {
          out.push(...release(await window.push(scoreChunk(recs.slice(i, i + o.batchSize)))));
        }
        return out;
      },
      async *flushBatches() {
        const out = release(await window.drain());
        if (out.length) yield out;
        yield* finish();
      },
      // A checkpoint barrier: the records the workers are still scoring are handed on before it.
      async drain() {
        return release(await window.drain());
      },
      checkpoint,
      restore,
      async close() {
        ctx.signal.removeEventListener('abort', onAbort);
        selector?.close();
        await pool?.close();
        await local.close();
      },
    };
  },
});
