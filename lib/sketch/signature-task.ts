// Shingling and MinHash over a chunk of documents, as one task: the function the `shingle` and
// `minhash` operators run in worker threads (lib/parallel.ts) or inline. Inputs and outputs are
// packed into a few typed arrays so they move between threads without per-record copies.
import { createMinHasher, type MinHasher, type MinHashScheme } from './minhash.ts';
import { shingleHashes, shingleText, type ShingleOptions } from '../text/shingle.ts';
import { withTransfer } from '../parallel.ts';

/** How each document of a chunk arrives. */
export const DocForm = {
  /** Shingles given in `shingles` (packed). */
  Shingles: 0,
  /** Text in the hashing form (`internals(rec).hashText`). */
  HashText: 1,
  /** Raw text: folded to the hashing form first. */
  RawText: 2,
} as const;

/** Many Uint32Arrays in one: item i is data[offsets[i] .. offsets[i + 1]). */
export interface Packed {
  data: Uint32Array;
  offsets: Uint32Array;
}

export interface SignatureTask {
  forms: Uint8Array;
  /** Text per document ('' for DocForm.Shingles). */
  texts: string[];
  /** Shingles of the DocForm.Shingles documents (empty items for the others). */
  shingles?: Packed;
  shingle: ShingleOptions;
  /** Absent: shingles only. */
  minhash?: { perms: number; seed: number; scheme: MinHashScheme };
}

export interface SignatureResult {
  /** Shingles computed from text (empty items for documents that came with shingles). */
  shingles: Packed;
  /** count x perms signature values, when the task asked for MinHash. */
  signatures?: Uint32Array;
}

export function pack(items: Uint32Array[]): Packed {
  const offsets = new Uint32Array(items.length + 1);
  let total = 0;
  for (let i = 0; i < items.length; i++) {
    total += items[i].length;
    offsets[i + 1] = total;
  }
  const data = new Uint32Array(total);
  for (let i = 0; i < items.length; i++) data.set(items[i], offsets[i]);
  return { data, offsets };
}

export function unpackItem(p: Packed, i: number): Uint32Array {
  return p.data.subarray(p.offsets[i], p.offsets[i + 1]);
}

let cached: { key: string; hasher: MinHasher } | undefined;

function hasherFor(o: NonNullable<SignatureTask['minhash']>): MinHasher {
  const key = `${o.perms}/${o.seed}/${o.scheme}`;
  if (cached?.key !== key) cached = { key, hasher: createMinHasher(o) };
  return cached.hasher;
}

/** Computes shingles (where text is given) and signatures for one chunk. */
export function computeSignatures(task: SignatureTask): SignatureResult {
  const n = task.forms.length;
  const computed: Uint32Array[] = new Array(n);
  const empty = new Uint32Array(0);
  const hasher = task.minhash ? hasherFor(task.minhash) : undefined;
  const perms = hasher?.perms ?? 0;
  const signatures = hasher ? new Uint32Array(n * perms) : undefined;
  for (let i = 0; i < n; i++) {
    const form = task.forms[i];
    let set: Uint32Array;
    if (form === DocForm.Shingles) {
      if (!task.shingles) throw new Error('shingle-form documents need packed shingles');
      set = unpackItem(task.shingles, i);
      computed[i] = empty;
    } else {
      set = form === DocForm.HashText ? shingleHashes(task.texts[i], task.shingle) : shingleText(task.texts[i], task.shingle);
      computed[i] = set;
    }
    if (hasher) signatures!.set(hasher.signature(set), i * perms);
  }
  return { shingles: pack(computed), signatures };
}

/** Worker entry: the same, moving the result buffers back to the caller. */
export default function signatureWorker(task: SignatureTask): SignatureResult {
  const out = computeSignatures(task);
  const transfer: ArrayBuffer[] = [out.shingles.data.buffer as ArrayBuffer, out.shingles.offsets.buffer as ArrayBuffer];
  if (out.signatures) transfer.push(out.signatures.buffer as ArrayBuffer);
  return withTransfer(out, transfer);
}
