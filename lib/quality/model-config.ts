// The JSON file written beside a hashed n-gram ONNX model (`model.onnx` + `model.json`): how
// to turn text into the model's input, and how to read its output. No stream code.
import { existsSync, readFileSync } from 'node:fs';
import { vectorizerConfig, type VectorizerConfig } from './vectorizer.ts';

export const MODEL_FORMAT = 'mixstream-quality-model';

/** How a model's output becomes a score in [0, 1]. */
export type OutputKind = 'probability' | 'logit' | 'probabilities' | 'logits' | 'regression';

export interface ModelConfig {
  format: typeof MODEL_FORMAT;
  version: 1;
  vectorizer: VectorizerConfig;
  /** Input and output tensor names in the ONNX graph. */
  input: string;
  output: string;
  outputKind: OutputKind;
  /** Class names, lowest quality first (for `probabilities` output and per-class fields). */
  classes: string[];
  /** For `regression`: the output range mapped onto [0, 1]. */
  range?: [number, number];
  [key: string]: unknown;
}

/** `model.onnx` -> `model.json` */
export function configPathFor(modelPath: string): string {
  return modelPath.replace(/\.onnx$/i, '') + '.json';
}

/** Reads and checks the config beside a model; undefined when there is none. Errors name the file and field. */
export function readModelConfig(modelPath: string): ModelConfig | undefined {
  const file = configPathFor(modelPath);
  if (!existsSync(file)) return undefined;
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  if (raw.format !== MODEL_FORMAT) throw new Error(`${file}: "format" must be "${MODEL_FORMAT}", got ${JSON.stringify(raw.format)}`);
  const vectorizer = vectorizerConfig(raw.vectorizer as Partial<VectorizerConfig>, `${file}: vectorizer`);
  const kinds: OutputKind[] = ['probability', 'logit', 'probabilities', 'logits', 'regression'];
  if (!kinds.includes(raw.outputKind as OutputKind)) throw new Error(`${file}: "outputKind" must be one of ${kinds.join(', ')}, got ${JSON.stringify(raw.outputKind)}`);
  if (typeof raw.input !== 'string' || typeof raw.output !== 'string') throw new Error(`${file}: "input" and "output" must name the model's tensors`);
  return { ...(raw as object), vectorizer } as ModelConfig;
}
