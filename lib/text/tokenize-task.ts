// The worker-thread task of the `tokens` operator (lib/parallel.ts pools): each thread loads its
// tokenizer once per spec and counts the tokens of batches of texts.
import { withTransfer } from '../parallel.ts';
import { loadEncoding, loadTokenizerJson, type EncodingName, type TokenCounter } from './tokenizer.ts';

export interface TokenizerSpec {
  /** A tiktoken encoding, or the absolute path of a tokenizer.json. */
  encoding?: EncodingName;
  tokenizerFile?: string;
}

export interface TokenizeTask {
  spec: TokenizerSpec;
  texts: string[];
}

const counters = new Map<string, Promise<TokenCounter>>();

/** The counter a spec names, loaded once per thread. */
export function openCounter(spec: TokenizerSpec): Promise<TokenCounter> {
  const key = JSON.stringify(spec);
  let c = counters.get(key);
  if (!c) {
    c = spec.tokenizerFile ? Promise.resolve().then(() => loadTokenizerJson(spec.tokenizerFile!)) : loadEncoding(spec.encoding ?? 'cl100k_base');
    counters.set(key, c);
    c.catch(() => counters.delete(key));
  }
  return c;
}

export default async function tokenizeTask({ spec, texts }: TokenizeTask): Promise<Uint32Array> {
  const counter = await openCounter(spec);
  const out = new Uint32Array(texts.length);
  for (let i = 0; i < texts.length; i++) out[i] = counter.count(texts[i]);
  return withTransfer(out, [out.buffer]);
}
