// `mixstream train-quality`: trains a hashed n-gram logistic-regression quality classifier from
// labelled NDJSON and writes `<out>.onnx` (a real ONNX graph) plus `<out>.json` (vectorizer
// config, metadata, held-out metrics).
import { createReadStream, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { configPathFor, MODEL_FORMAT, type ModelConfig } from '../quality/model-config.ts';
import { BINARY_OUTPUT, LINEAR_INPUT, SPARSE_INDICES, writeLinearModel } from '../quality/onnx-model.ts';
import { binaryMetrics, mulberry32, predict, shuffleInPlace, trainLogistic, type BinaryMetrics, type Example } from '../quality/train.ts';
import { DEFAULT_VECTORIZER, HashedNgramVectorizer, vectorizerConfig, type VectorizerConfig } from '../quality/vectorizer.ts';

export interface TrainQualityOptions {
  /** NDJSON files (`.gz` is decompressed). */
  input: string[];
  labelField?: string;
  textField?: string;
  /** Output path without extension (`models/q` writes `models/q.onnx` and `models/q.json`); a trailing `.onnx` is ignored. */
  out: string;
  dim?: number;
  ngrams?: number;
  epochs?: number;
  lr?: number;
  l2?: number;
  /** Fraction of labelled records held out for evaluation (0 = none). */
  holdout?: number;
  seed?: number;
  weighting?: VectorizerConfig['weighting'];
  /** ONNX input layout: `dense` float [batch, dim] (default), or `sparse` indices + values [batch, k] (faster to run). */
  layout?: 'dense' | 'sparse';
  /** Progress lines (per epoch); silent when omitted. */
  log?(message: string): void;
}

export interface TrainQualityResult {
  model: string;
  config: string;
  examples: number;
  train: BinaryMetrics;
  holdout?: BinaryMetrics;
  seconds: number;
}

const POSITIVE = new Set(['1', 'true', 'hq', 'high', 'pos', 'positive', 'good']);
const NEGATIVE = new Set(['0', 'false', 'lq', 'low', 'neg', 'negative', 'bad']);

/**
 * Label values: positive (high quality) = 1, true, "1", "hq", "high", "pos", "positive",
 * "good"; negative = 0, false, "0", "lq", "low", "neg", "negative", "bad" (strings are
 * case-insensitive). Anything else is an error.
 */
export function parseLabel(v: unknown): 0 | 1 | undefined {
  const s = typeof v === 'string' ? v.trim().toLowerCase() : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
  if (s === undefined) return undefined;
  if (POSITIVE.has(s)) return 1;
  if (NEGATIVE.has(s)) return 0;
  return undefined;
}

async function* readLines(file: string): AsyncGenerator<string> {
  let stream: Readable = createReadStream(file);
  if (file.endsWith('.gz')) stream = stream.pipe(createGunzip());
  yield* createInterface({ input: stream, crlfDelay: Infinity });
}

export async function trainQuality(o: TrainQualityOptions): Promise<TrainQualityResult> {
  const t0 = performance.now();
  const labelField = o.labelField ?? 'label';
  const textField = o.textField ?? 'text';
  const holdout = o.holdout ?? 0.1;
  const seed = o.seed ?? 1;
  const epochs = o.epochs ?? 10;
  const lr = o.lr ?? 2;
  const l2 = o.l2 ?? 1e-6;
  if (!o.input.length) throw new Error('input: at least one labelled NDJSON file is required');
  if (!(holdout >= 0 && holdout < 1)) throw new Error(`holdout: expected a fraction in [0, 1), got ${holdout}`);
  if (!(Number.isInteger(epochs) && epochs >= 1)) throw new Error(`epochs: expected an integer >= 1, got ${epochs}`);
  if (!(lr > 0)) throw new Error(`lr: expected a number > 0, got ${lr}`);
  if (!(l2 >= 0)) throw new Error(`l2: expected a number >= 0, got ${l2}`);
  if (o.layout !== undefined && o.layout !== 'dense' && o.layout !== 'sparse') throw new Error(`layout: expected "dense" or "sparse", got ${JSON.stringify(o.layout)}`);
  const vconf = vectorizerConfig({
    ...DEFAULT_VECTORIZER,
    ...(o.dim !== undefined && { dim: o.dim }),
    ...(o.ngrams !== undefined && { ngrams: o.ngrams }),
    ...(o.weighting !== undefined && { weighting: o.weighting }),
  }, 'options');
  const vec = new HashedNgramVectorizer(vconf);

  const examples: Example[] = [];
  for (const file of o.input) {
    let lineNo = 0;
    for await (const line of readLines(file)) {
      lineNo++;
      if (!line.trim()) continue;
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line);
      } catch (e) {
        throw new Error(`${file}:${lineNo}: not valid JSON: ${(e as Error).message}`);
      }
      const where = `${file}:${lineNo}${rec.id !== undefined ? ` (id ${JSON.stringify(rec.id)})` : ''}`;
      const text = rec[textField];
      if (typeof text !== 'string') throw new Error(`${where}: field "${textField}" must be a string`);
      const y = parseLabel(rec[labelField]);
      if (y === undefined) {
        throw new Error(`${where}: label field "${labelField}" is ${JSON.stringify(rec[labelField])}; expected 1/0, true/false or "hq"/"lq" (also high/low, pos/neg, positive/negative, good/bad)`);
      }
      examples.push({ x: vec.transform(text), y });
    }
  }
  const positives = examples.reduce((n, e) => n + e.y, 0);
  if (positives === 0 || positives === examples.length) {
    throw new Error(`${o.input.join(', ')}: need both positive and negative labels (got ${positives} positive of ${examples.length})`);
  }

  shuffleInPlace(examples, mulberry32(seed ^ 0x9e3779b9));
  const nHold = Math.round(examples.length * holdout);
  const held = examples.slice(0, nHold);
  const train = examples.slice(nHold);
  const w = trainLogistic(train, {
    dim: vconf.dim,
    epochs,
    lr,
    l2,
    seed,
    onEpoch: (e, loss) => o.log?.(`epoch ${e + 1}/${epochs}: train log loss ${loss.toFixed(4)}`),
  });
  const evaluate = (xs: Example[]) => binaryMetrics(xs.map((e) => predict(w, e.x)), xs.map((e) => e.y));
  const trainMetrics = evaluate(train);
  const holdMetrics = held.length ? evaluate(held) : undefined;

  const base = o.out.replace(/\.onnx$/i, '');
  const modelFile = base + '.onnx';
  const configFile = configPathFor(modelFile);
  mkdirSync(path.dirname(path.resolve(modelFile)), { recursive: true });
  writeLinearModel(modelFile, {
    dim: vconf.dim,
    weights: w.weights,
    bias: Float32Array.of(w.bias),
    classes: 1,
    layout: o.layout ?? 'dense',
    metadata: { task: 'quality', vectorizer: JSON.stringify(vconf) },
  });
  const round = (m: BinaryMetrics | undefined) =>
    m && { ...m, accuracy: +m.accuracy.toFixed(4), logLoss: +m.logLoss.toFixed(4), auc: +m.auc.toFixed(4) };
  const config: ModelConfig = {
    format: MODEL_FORMAT,
    version: 1,
    model: path.basename(modelFile),
    vectorizer: vconf,
    input: o.layout === 'sparse' ? SPARSE_INDICES : LINEAR_INPUT,
    layout: o.layout ?? 'dense',
    output: BINARY_OUTPUT,
    outputKind: 'probability',
    classes: ['lq', 'hq'],
    training: {
      inputs: o.input.map((f) => path.basename(f)),
      labelField,
      textField,
      examples: examples.length,
      positives,
      trainExamples: train.length,
      holdoutExamples: held.length,
      epochs,
      lr,
      l2,
      seed,
      algorithm: 'logistic regression, per-example SGD with L2, class-balanced',
    },
    metrics: { train: round(trainMetrics), holdout: round(holdMetrics) },
  };
  writeFileSync(configFile, JSON.stringify(config, null, 2) + '\n');
  return {
    model: modelFile,
    config: configFile,
    examples: examples.length,
    train: trainMetrics,
    holdout: holdMetrics,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** The lines `mixstream train-quality` prints when it is done. */
export function summarizeTraining(r: TrainQualityResult): string {
  const fmt = (m: BinaryMetrics) =>
    `accuracy ${(m.accuracy * 100).toFixed(2)}%, AUC ${m.auc.toFixed(4)}, log loss ${m.logLoss.toFixed(4)} (${m.n} documents: ${m.positives} positive, ${m.negatives} negative)`;
  const lines = [`wrote ${r.model} and ${r.config} from ${r.examples} labelled documents in ${r.seconds.toFixed(1)} s`, `train:    ${fmt(r.train)}`];
  lines.push(r.holdout ? `held out: ${fmt(r.holdout)}` : 'held out: none (--holdout 0)');
  return lines.join('\n');
}
