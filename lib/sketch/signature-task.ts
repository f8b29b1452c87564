// Shingling and MinHash over a chunk of documents, as one task: the function the `shingle` and
// `minhash` operators run in worker threads (lib/parallel.ts) or inline. Inputs and outputs are
// packed into a few typed arrays so they move between threads without per-record copies.
//
// Results come in blocks of about BLOCK_BYTES: each document's signature followed by its computed
// shingles, documents one after the other. The caller gives each record views into the blocks,
// not copies: two fresh buffers per record on the receiving thread (allocated, filled, later
// swept by the garbage collector) cost it about twice its remaining work per record, and with 2
// workers on 2 cores that time is taken from the workers. A block is shared only by the records it
// holds (about ten short documents, or one long one: a document larger than a block gets a block
// of its own), so a record kept alone, by a sampler say, keeps at most one block alive; the same
// bargain as Node's Buffer pool. Do not transfer the buffer of such a view to another thread.
import { createMinHasher, type MinHasher, type MinHashScheme } from './minhash.ts';
import { shingleScratch, type ShingleOptions } from '../text/shingle.ts';
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
  /** Per document: its signature (perms values, when the task asked for MinHash), then its computed shingles. */
  blocks: Uint32Array[];
  /** Per document, three values: its block, its start in the block, its number of computed shingles (0 when it came with shingles). */
  index: Uint32Array;
}

/** Target size of a result block; a document larger than that gets a block of its own. */
export const BLOCK_BYTES = 8192;

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
  const hasher = task.minhash ? hasherFor(task.minhash) : undefined;
  const perms = hasher?.perms ?? 0;
  const blockWords = BLOCK_BYTES >>> 2;
  const blocks: Uint32Array[] = [];
  const index = new Uint32Array(3 * n);
  let block = new Uint32Array(0);
  let used = 0;
  for (let i = 0; i < n; i++) {
    const form = task.forms[i];
    let set: Uint32Array;
    let computed = 0;
    if (form === DocForm.Shingles) {
      if (!task.shingles) throw new Error('shingle-form documents need packed shingles');
      set = unpackItem(task.shingles, i);
    } else {
      // A view of the shingle kernel's scratch buffer, copied into the block below.
      set = shingleScratch(task.texts[i], task.shingle, form === DocForm.RawText);
      computed = set.length;
    }
    const need = perms + computed;
    if (used + need > block.length) {
      if (used > 0) blocks.push(used === block.length ? block : block.subarray(0, used));
      block = new Uint32Array(Math.max(blockWords, need));
      used = 0;
    }
    index[3 * i] = blocks.length;
    index[3 * i + 1] = used;
    index[3 * i + 2] = computed;
    if (hasher) hasher.signatureInto(set, block, used);
    if (computed) block.set(set, used + perms);
    used += need;
  }
  if (used > 0 || blocks.length === 0) blocks.push(block.subarray(0, used));
  return { blocks, index };
}

/** Worker entry: the same, moving the result buffers back to the caller. */
export default function signatureWorker(task: SignatureTask): SignatureResult {
  const out = computeSignatures(task);
  const transfer: ArrayBuffer[] = [out.index.buffer as ArrayBuffer];
  for (const b of out.blocks) transfer.push(b.buffer as ArrayBuffer);
  return withTransfer(out, transfer);
}
