// ONNX models: writing small graphs (logistic regression over hashed features, a mean-pooled
// embedding classifier) with onnx-proto, and running any ONNX model over batches with
// onnxruntime-node. No stream code.
import { readFileSync, writeFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';

const { onnx } = onnxProto;
type Attr = number | number[] | string;

const OPSET = 13;
const IR_VERSION = 7;

function tensorProto(name: string, dims: number[], data: Float32Array | BigInt64Array | Int32Array): InstanceType<typeof onnx.TensorProto> {
  const type =
    data instanceof Float32Array ? onnx.TensorProto.DataType.FLOAT : data instanceof BigInt64Array ? onnx.TensorProto.DataType.INT64 : onnx.TensorProto.DataType.INT32;
  // raw_data is little-endian; every platform onnxruntime-node ships for is little-endian.
  const rawData = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return onnx.TensorProto.create({ name, dims, dataType: type, rawData });
}

function valueInfo(name: string, elemType: number, dims: (number | string)[]): InstanceType<typeof onnx.ValueInfoProto> {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

function node(opType: string, input: string[], output: string[], attrs: Record<string, Attr> = {}): InstanceType<typeof onnx.NodeProto> {
  const attribute = Object.entries(attrs).map(([name, v]) => {
    if (typeof v === 'string') return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(v) });
    if (Array.isArray(v)) return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: v });
    if (Number.isInteger(v)) return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i: v });
    return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.FLOAT, f: v });
  });
  return onnx.NodeProto.create({ opType, input, output, attribute, name: `${opType}_${output[0]}` });
}

interface GraphSpec {
  name: string;
  nodes: InstanceType<typeof onnx.NodeProto>[];
  initializers: InstanceType<typeof onnx.TensorProto>[];
  inputs: InstanceType<typeof onnx.ValueInfoProto>[];
  outputs: InstanceType<typeof onnx.ValueInfoProto>[];
  metadata?: Record<string, string>;
}

function encodeModel(g: GraphSpec): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: 'mixstream',
    producerVersion: '0.1.0',
    opsetImport: [{ domain: '', version: OPSET }],
    metadataProps: Object.entries(g.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: { name: g.name, node: g.nodes, initializer: g.initializers, input: g.inputs, output: g.outputs },
  });
  return onnx.ModelProto.encode(model).finish();
}

export interface LinearModelSpec {
  /** Input width (the vectorizer's dim). */
  dim: number;
  /** Row-major weights [dim, classes]. */
  weights: Float32Array;
  /** [classes] */
  bias: Float32Array;
  /** 1 = binary logistic regression (output `score` = sigmoid), >= 2 = softmax (output `probabilities`). */
  classes: number;
  /**
   * `dense`: one input `input` float [batch, dim] (what any feature-vector model takes).
   * `sparse`: inputs `indices` int32 and `values` float, both [batch, k] (each row's non-zero
   * features, padded with index 0 / value 0): the same model, with cost proportional to the
   * number of features instead of `dim`.
   */
  layout?: 'dense' | 'sparse';
  metadata?: Record<string, string>;
}

/** Names used by the graphs this module writes. */
export const LINEAR_INPUT = 'input';
export const SPARSE_INDICES = 'indices';
export const SPARSE_VALUES = 'values';
export const BINARY_OUTPUT = 'score';
export const MULTICLASS_OUTPUT = 'probabilities';

/**
 * A logistic-regression graph: features x [batch, dim] -> x·W + B = `logits`, then Sigmoid ->
 * `score` [batch, 1] (binary) or Softmax(axis 1) -> `probabilities` [batch, C]. Dense layout:
 * Gemm over `input`; sparse layout: Gather(W, indices) · values, summed over the row.
 */
export function linearModelBytes(spec: LinearModelSpec): Uint8Array {
  const { dim, weights, bias, classes } = spec;
  if (weights.length !== dim * classes) throw new Error(`weights: expected ${dim * classes} values (dim ${dim} x classes ${classes}), got ${weights.length}`);
  if (bias.length !== classes) throw new Error(`bias: expected ${classes} values, got ${bias.length}`);
  const out = classes === 1 ? BINARY_OUTPUT : MULTICLASS_OUTPUT;
  const F = onnx.TensorProto.DataType.FLOAT;
  const I32 = onnx.TensorProto.DataType.INT32;
  const sparse = spec.layout === 'sparse';
  const head = classes === 1 ? node('Sigmoid', ['logits'], [out]) : node('Softmax', ['logits'], [out], { axis: 1 });
  return encodeModel({
    name: sparse ? 'hashed_ngram_logistic_regression_sparse' : 'hashed_ngram_logistic_regression',
    nodes: sparse
      ? [
          node('Gather', ['W', SPARSE_INDICES], ['wrows'], { axis: 0 }),
          node('Unsqueeze', [SPARSE_VALUES, 'axis_last'], ['values3']),
          node('Mul', ['wrows', 'values3'], ['terms']),
          node('ReduceSum', ['terms', 'axis_feat'], ['dot'], { keepdims: 0 }),
          node('Add', ['dot', 'B'], ['logits']),
          head,
        ]
      : [node('Gemm', [LINEAR_INPUT, 'W', 'B'], ['logits']), head],
    initializers: [
      tensorProto('W', [dim, classes], weights),
      tensorProto('B', [classes], bias),
      ...(sparse ? [tensorProto('axis_last', [1], BigInt64Array.of(-1n)), tensorProto('axis_feat', [1], BigInt64Array.of(1n))] : []),
    ],
    inputs: sparse
      ? [valueInfo(SPARSE_INDICES, I32, ['batch', 'features']), valueInfo(SPARSE_VALUES, F, ['batch', 'features'])]
      : [valueInfo(LINEAR_INPUT, F, ['batch', dim])],
    outputs: [valueInfo(out, F, ['batch', classes])],
    metadata: { ...spec.metadata, layout: sparse ? 'sparse' : 'dense', dim: String(dim) },
  });
}

export function writeLinearModel(file: string, spec: LinearModelSpec): void {
  writeFileSync(file, linearModelBytes(spec));
}

export interface MeanPoolSpec {
  /** Embedding table [vocab, hidden], row-major. */
  embeddings: Float32Array;
  vocab: number;
  hidden: number;
  /** Classifier head [hidden, classes], row-major, and its bias [classes]. */
  weights: Float32Array;
  bias: Float32Array;
  classes: number;
}

/**
 * A transformer-shaped classifier small enough to build in a test: `input_ids` and
 * `attention_mask` int64 [batch, seq] -> embedding Gather -> masked mean pool -> Gemm ->
 * `logits` [batch, classes]. It has the inputs and output of a Hugging Face sequence
 * classifier exported to ONNX, so the tokenizer path is exercised end to end.
 */
export function meanPoolModelBytes(s: MeanPoolSpec): Uint8Array {
  const F = onnx.TensorProto.DataType.FLOAT;
  const I64 = onnx.TensorProto.DataType.INT64;
  return encodeModel({
    name: 'mean_pool_classifier',
    nodes: [
      node('Gather', ['E', 'input_ids'], ['emb'], { axis: 0 }),
      node('Cast', ['attention_mask'], ['maskf'], { to: F }),
      node('Unsqueeze', ['maskf', 'axis_last'], ['mask3']),
      node('Mul', ['emb', 'mask3'], ['masked']),
      node('ReduceSum', ['masked', 'axis_seq'], ['summed'], { keepdims: 0 }),
      node('ReduceSum', ['mask3', 'axis_seq'], ['count'], { keepdims: 0 }),
      node('Max', ['count', 'one'], ['count1']),
      node('Div', ['summed', 'count1'], ['pooled']),
      node('Gemm', ['pooled', 'W', 'B'], ['logits']),
    ],
    initializers: [
      tensorProto('E', [s.vocab, s.hidden], s.embeddings),
      tensorProto('W', [s.hidden, s.classes], s.weights),
      tensorProto('B', [s.classes], s.bias),
      tensorProto('axis_last', [1], BigInt64Array.of(-1n)),
      tensorProto('axis_seq', [1], BigInt64Array.of(1n)),
      tensorProto('one', [1], Float32Array.of(1)),
    ],
    inputs: [valueInfo('input_ids', I64, ['batch', 'sequence']), valueInfo('attention_mask', I64, ['batch', 'sequence'])],
    outputs: [valueInfo('logits', F, ['batch', s.classes])],
  });
}

// ----------------------------------------------------------------------------------------------
// Running models

export interface SessionOptions {
  /** Threads for one inference (onnxruntime intra-op threads). */
  threads?: number;
}

export interface InputInfo {
  name: string;
  type: string;
  shape: readonly (number | string)[];
}

/** A loaded ONNX model: input/output metadata and batched runs. */
export class OnnxModel {
  private constructor(
    readonly file: string,
    readonly session: ort.InferenceSession,
  ) {}

  static async load(file: string, options: SessionOptions = {}): Promise<OnnxModel> {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(file);
    } catch (e) {
      throw new Error(`cannot read ONNX model ${file}: ${(e as Error).message}`);
    }
    try {
      const session = await ort.InferenceSession.create(bytes, {
        intraOpNumThreads: options.threads ?? 1,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      });
      return new OnnxModel(file, session);
    } catch (e) {
      throw new Error(`cannot load ONNX model ${file}: ${(e as Error).message}`);
    }
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Name, element type and shape (numbers, or strings for symbolic dims) of each input. */
  inputs(): InputInfo[] {
    return this.session.inputMetadata.map((m) => ({
      name: m.name,
      type: m.isTensor ? m.type : 'non-tensor',
      shape: m.isTensor ? m.shape : [],
    }));
  }

  input(name: string): InputInfo | undefined {
    return this.inputs().find((i) => i.name === name);
  }

  /** Runs one batch; returns the requested outputs (all when `outputs` is omitted). */
  async run(feeds: Record<string, ort.Tensor>, outputs?: string[]): Promise<Record<string, ort.Tensor>> {
    return this.session.run(feeds, outputs ?? (this.outputNames as string[]));
  }

  /** A float matrix input [rows, cols] as one batch; returns the named output as [rows, k] rows. */
  async runDense(inputName: string, data: Float32Array, rows: number, cols: number, outputName: string): Promise<{ data: Float32Array; cols: number }> {
    const res = await this.run({ [inputName]: new ort.Tensor('float32', data, [rows, cols]) }, [outputName]);
    return floatRows(res[outputName], rows, outputName);
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/** An output tensor as float rows: [rows] or [rows, k] (any numeric type). */
export function floatRows(t: ort.Tensor, rows: number, name: string): { data: Float32Array; cols: number } {
  const size = t.dims.reduce((a, b) => a * b, 1);
  if (t.dims[0] !== rows || size % rows !== 0) {
    throw new Error(`model output "${name}" has shape [${t.dims.join(', ')}]; expected [${rows}] or [${rows}, k] for a batch of ${rows}`);
  }
  const src = t.data as ArrayLike<number | bigint>;
  const data = src instanceof Float32Array ? src : Float32Array.from(src as ArrayLike<number>, Number);
  return { data, cols: size / rows };
}

export { ort };
