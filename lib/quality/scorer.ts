// Quality scores for batches of texts: ONNX models fed by the hashed n-gram vectorizer or by a
// tokenizer.json, and heuristic rule sets. Every scorer returns scores in [0, 1]. No stream
// code: the `score` operator and its worker threads both use this.
import { configPathFor, readModelConfig, type ModelConfig, type OutputKind } from './model-config.ts';
import { floatRows, OnnxModel, ort, SPARSE_INDICES, SPARSE_VALUES } from './onnx-model.ts';
import { SequenceTokenizer } from './hf-tokenizer.ts';
import { HashedNgramVectorizer, densify, padSparse } from './vectorizer.ts';

/** Everything needed to open a model scorer: plain data, so worker threads can open their own. */
export interface ModelScorerSpec {
  /** Absolute path of the .onnx file. */
  model: string;
  /** Absolute path of a tokenizer.json: the model takes `input_ids` (and `attention_mask`). */
  tokenizer?: string;
  /** Tokens per document with the tokenizer, special tokens included. */
  maxLength?: number;
  inputName?: string;
  outputName?: string;
  /** `auto`: from the model's .json; without one, 1 output column = logit, several = logits. */
  outputKind?: 'auto' | OutputKind;
  /** For `regression`: output values mapped linearly onto [0, 1] (clamped). */
  range?: [number, number];
  /** onnxruntime intra-op threads. */
  threads?: number;
}

export interface ScoreBatch {
  /** One score in [0, 1] per text. */
  scores: Float64Array;
  /** Per-class probabilities, row-major [texts, classes] (not for regression outputs). */
  probabilities?: Float32Array;
}

const sigmoid = (z: number) => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));

/**
 * Score in [0, 1] from class probabilities: the expected class position, classes ordered from
 * lowest to highest quality (C = 2: the probability of the second class).
 */
export function expectedPosition(p: ArrayLike<number>, offset: number, classes: number): number {
  let s = 0;
  for (let c = 1; c < classes; c++) s += p[offset + c] * c;
  return s / (classes - 1);
}

/** An error about the model option, naming it. */
function modelError(message: string): Error {
  return new Error(`option model: ${message}`);
}

export class ModelScorer {
  readonly classNames: string[] = [];
  private outputKind: 'auto' | OutputKind;

  private constructor(
    readonly spec: ModelScorerSpec,
    private readonly model: OnnxModel,
    private readonly feed: (texts: readonly string[]) => Record<string, ort.Tensor>,
    private readonly outputName: string,
    config: ModelConfig | undefined,
    private readonly release?: (feeds: Record<string, ort.Tensor>) => void,
  ) {
    this.outputKind = spec.outputKind && spec.outputKind !== 'auto' ? spec.outputKind : (config?.outputKind ?? 'auto');
    if (config?.classes) this.classNames = config.classes;
    if (config?.range && !spec.range) this.spec = { ...spec, range: config.range };
  }

  static async open(spec: ModelScorerSpec): Promise<ModelScorer> {
    const model = await OnnxModel.load(spec.model, { threads: spec.threads ?? 1 });
    try {
      const inputs = model.inputs();
      const names = inputs.map((i) => i.name);
      const pickOutput = (fallback?: string) => {
        const name = spec.outputName ?? fallback ?? model.outputNames[0];
        if (!model.outputNames.includes(name)) {
          throw new Error(`${spec.outputName ? 'option outputName' : 'option model'}: the model has no output "${name}" (outputs: ${model.outputNames.join(', ')})`);
        }
        return name;
      };
      if (spec.tokenizer) {
        let tok: SequenceTokenizer;
        try {
          tok = SequenceTokenizer.fromFile(spec.tokenizer);
        } catch (e) {
          throw new Error(`option tokenizer: ${(e as Error).message}`);
        }
        const idsName = spec.inputName ?? 'input_ids';
        if (!names.includes(idsName)) throw new Error(`option ${spec.inputName ? 'inputName' : 'model'}: a tokenizer model needs an input "${idsName}" (inputs: ${names.join(', ')})`);
        const known = new Set([idsName, 'attention_mask', 'token_type_ids']);
        const other = names.filter((n) => !known.has(n));
        if (other.length) throw modelError(`input(s) ${other.join(', ')} cannot be fed from a tokenizer (known: input_ids, attention_mask, token_type_ids)`);
        const maxLength = spec.maxLength ?? 512;
        const int32 = inputs.find((i) => i.name === idsName)?.type === 'int32';
        const tensor = (data: BigInt64Array, rows: number, seq: number) =>
          int32 ? new ort.Tensor('int32', Int32Array.from(data, Number), [rows, seq]) : new ort.Tensor('int64', data, [rows, seq]);
        const feed = (texts: readonly string[]) => {
          const b = tok.batch(texts, maxLength);
          const f: Record<string, ort.Tensor> = { [idsName]: tensor(b.inputIds, b.rows, b.seq) };
          if (names.includes('attention_mask')) f.attention_mask = tensor(b.attentionMask, b.rows, b.seq);
          if (names.includes('token_type_ids')) f.token_type_ids = tensor(b.tokenTypeIds, b.rows, b.seq);
          return f;
        };
        return new ModelScorer(spec, model, feed, pickOutput(), undefined);
      }
      const config = readModelConfig(spec.model);
      if (!config) {
        throw modelError(`${spec.model} has no vectorizer config beside it (${configPathFor(spec.model)}, written by train-quality); for a transformer classifier set option tokenizer to its tokenizer.json`);
      }
      const vec = new HashedNgramVectorizer(config.vectorizer);
      const dim = config.vectorizer.dim;
      let feed: (texts: readonly string[]) => Record<string, ort.Tensor>;
      let release: ((feeds: Record<string, ort.Tensor>) => void) | undefined;
      if (!spec.inputName && names.includes(SPARSE_INDICES) && names.includes(SPARSE_VALUES)) {
        const int64 = inputs.find((i) => i.name === SPARSE_INDICES)?.type === 'int64';
        feed = (texts) => {
          const { indices, values, k } = padSparse(texts.map((t) => vec.transform(t)));
          return {
            [SPARSE_INDICES]: int64
              ? new ort.Tensor('int64', BigInt64Array.from(indices, BigInt), [texts.length, k])
              : new ort.Tensor('int32', indices, [texts.length, k]),
            [SPARSE_VALUES]: new ort.Tensor('float32', values, [texts.length, k]),
          };
        };
      } else {
        const inputName = spec.inputName ?? (names.includes(config.input) ? config.input : names[0]);
        const info = inputs.find((i) => i.name === inputName);
        if (!info) throw new Error(`option inputName: the model has no input "${inputName}" (inputs: ${names.join(', ')})`);
        if (info.type !== 'float32') throw modelError(`input "${inputName}" is ${info.type}; hashed n-gram features need a float32 input [batch, ${dim}]`);
        const width = info.shape[info.shape.length - 1];
        if (info.shape.length !== 2 || (typeof width === 'number' && width !== dim)) {
          throw modelError(
            `input "${inputName}" has shape [${info.shape.join(', ')}] but the vectorizer in ${configPathFor(spec.model)} gives ${dim} features; expected [batch, ${dim}] (model and config do not belong together)`,
          );
        }
        // One dense buffer reused across runs (a batch of 64 x 2^16 features is 16 MB); a
        // concurrent call while it is in use gets a fresh one.
        let spare: Float32Array<ArrayBuffer> | undefined;
        feed = (texts) => {
          const size = texts.length * dim;
          const buf = spare && spare.length >= size ? spare.subarray(0, size) : new Float32Array(size);
          spare = undefined;
          const tensor = new ort.Tensor('float32', densify(texts.map((t) => vec.transform(t)), dim, buf), [texts.length, dim]);
          return { [inputName]: tensor };
        };
        release = (feeds) => {
          const data = feeds[inputName]?.data;
          if (data instanceof Float32Array && (!spare || data.buffer.byteLength > spare.length * 4)) spare = new Float32Array(data.buffer as ArrayBuffer);
        };
      }
      return new ModelScorer(spec, model, feed, pickOutput(model.outputNames.includes(config.output) ? config.output : undefined), config, release);
    } catch (e) {
      await model.close();
      throw e;
    }
  }

  async score(texts: readonly string[]): Promise<ScoreBatch> {
    const n = texts.length;
    if (n === 0) return { scores: new Float64Array(0) };
    const feeds = this.feed(texts);
    const res = await this.model.run(feeds, [this.outputName]);
    this.release?.(feeds);
    const { data, cols } = floatRows(res[this.outputName], n, this.outputName);
    let kind = this.outputKind;
    if (kind === 'auto') kind = this.outputKind = cols === 1 ? 'logit' : 'logits';
    const scores = new Float64Array(n);
    if (kind === 'regression') {
      if (cols !== 1) throw new Error(`output "${this.outputName}" has ${cols} columns; outputKind "regression" needs one`);
      const [lo, hi] = this.spec.range ?? [0, 5];
      for (let i = 0; i < n; i++) scores[i] = Math.min(1, Math.max(0, (data[i] - lo) / (hi - lo)));
      return { scores };
    }
    if (kind === 'probability' || kind === 'logit') {
      if (cols !== 1) throw new Error(`output "${this.outputName}" has ${cols} columns; outputKind "${kind}" needs one`);
      const probabilities = new Float32Array(2 * n);
      for (let i = 0; i < n; i++) {
        const p = kind === 'logit' ? sigmoid(data[i]) : data[i];
        scores[i] = p;
        probabilities[2 * i] = 1 - p;
        probabilities[2 * i + 1] = p;
      }
      this.ensureClassNames(2);
      return { scores, probabilities };
    }
    if (cols < 2) throw new Error(`output "${this.outputName}" has one column; outputKind "${kind}" needs one per class`);
    const probabilities = new Float32Array(n * cols);
    for (let i = 0; i < n; i++) {
      const o = i * cols;
      if (kind === 'logits') {
        let m = -Infinity;
        for (let c = 0; c < cols; c++) m = Math.max(m, data[o + c]);
        let s = 0;
        for (let c = 0; c < cols; c++) s += probabilities[o + c] = Math.exp(data[o + c] - m);
        for (let c = 0; c < cols; c++) probabilities[o + c] /= s;
      } else {
        for (let c = 0; c < cols; c++) probabilities[o + c] = data[o + c];
      }
      scores[i] = expectedPosition(probabilities, o, cols);
    }
    this.ensureClassNames(cols);
    return { scores, probabilities };
  }

  private ensureClassNames(k: number): void {
    if (this.classNames.length !== k) this.classNames.splice(0, this.classNames.length, ...Array.from({ length: k }, (_, c) => `class_${c}`));
  }

  async close(): Promise<void> {
    await this.model.close();
  }
}

// ----------------------------------------------------------------------------------------------
// Scales

export type Scale = 'unit' | 'ordinal10';

/**
 * Unit score s in [0, 1] -> SampleMix's 0-10 ordinal scale: round(10·s), an integer 0..10
 * (each grade covers a band of width 0.1 centred on grade/10; 0 and 10 have half bands).
 */
export function toOrdinal10(s: number): number {
  return Math.min(10, Math.max(0, Math.round(s * 10)));
}

/** Ordinal grade g in 0..10 -> unit score g / 10 (the centre of its band). */
export function fromOrdinal10(g: number): number {
  return Math.min(1, Math.max(0, g / 10));
}

export function applyScale(s: number, scale: Scale): number {
  return scale === 'ordinal10' ? toOrdinal10(s) : s;
}
