// The running step shared by the `shingle` and `minhash` operators: records are cut into chunks,
// each chunk is shingled (and MinHashed) by lib/sketch/signature-task.ts in a worker thread, and
// the results are attached to the records in input order, as views into the result blocks.
import { internals, type Rec, type Step, type StepContext } from './operator.ts';
import { createWorkerPool, inCallOrder, type WorkerPool, orderedTextStep } from './parallel.ts';
import { computeSignatures, DocForm, pack, type SignatureResult, type SignatureTask } from './sketch/signature-task.ts';
import type { MinHashScheme } from './sketch/minhash.ts';
import type { ShingleOptions } from './text/shingle.ts';

export interface SignatureStageOptions {
  shingle: ShingleOptions;
  /** Absent: the stage only shingles. */
  minhash?: { perms: number; seed: number; scheme: MinHashScheme };
  /** Reuse `internals(rec).shingles` when an earlier step wrote them (minhash). */
  reuseShingles: boolean;
  /** Threads; 0 computes in the calling thread. */
  workers: number;
  /** Output field for the shingle hashes or the signature (an array of unsigned 32-bit integers). */
  emitField?: string;
}

/** Documents per task at least: smaller chunks cost more in messages than they gain. */
const MIN_CHUNK = 16;
/** Batches computed ahead of the one being returned. */
const WINDOW = 2;

export function createSignatureStage(o: SignatureStageOptions, ctx: StepContext): Step {
  const pool: WorkerPool<SignatureTask, SignatureResult> | undefined =
    o.workers > 0 ? createWorkerPool({ module: new URL('./sketch/signature-task.ts', import.meta.url), size: o.workers, name: ctx.op }) : undefined;
  const perms = o.minhash?.perms ?? 0;

  function buildTask(recs: Rec[]): { task: SignatureTask; transfer: ArrayBuffer[] } {
    const forms = new Uint8Array(recs.length);
    const texts: string[] = new Array(recs.length);
    const given: Uint32Array[] = new Array(recs.length);
    let anyGiven = false;
    const empty = new Uint32Array(0);
    for (let i = 0; i < recs.length; i++) {
      const inner = internals(recs[i]);
      if (o.reuseShingles && inner.shingles instanceof Uint32Array) {
        forms[i] = DocForm.Shingles;
        texts[i] = '';
        given[i] = inner.shingles;
        anyGiven = true;
      } else {
        given[i] = empty;
        if (typeof inner.hashText === 'string') {
          forms[i] = DocForm.HashText;
          texts[i] = inner.hashText;
        } else {
          forms[i] = DocForm.RawText;
          texts[i] = recs[i].text;
        }
      }
    }
    const task: SignatureTask = { forms, texts, shingle: o.shingle, minhash: o.minhash };
    const transfer: ArrayBuffer[] = [forms.buffer];
    if (anyGiven) {
      task.shingles = pack(given);
      transfer.push(task.shingles.data.buffer as ArrayBuffer, task.shingles.offsets.buffer as ArrayBuffer);
    }
    return { task, transfer };
  }

  // Records get views into the result blocks (see lib/sketch/signature-task.ts), not copies.
  function apply(recs: Rec[], res: SignatureResult): number[] {
    const { blocks, index } = res;
    const shingleCounts: number[] = [];
    for (let i = 0; i < recs.length; i++) {
      const rec = recs[i];
      const inner = internals(rec);
      const block = blocks[index[3 * i]];
      const at = index[3 * i + 1];
      const computed = index[3 * i + 2];
      if (computed > 0) inner.shingles = block.subarray(at + perms, at + perms + computed);
      if (computed > 0 || !o.minhash) shingleCounts.push(inner.shingles!.length);
      if (o.minhash) {
        inner.signature = block.subarray(at, at + perms);
        if (o.emitField) ctx.annotate(rec, o.emitField, Array.from(inner.signature));
      } else if (o.emitField) ctx.annotate(rec, o.emitField, Array.from(inner.shingles!));
    }
    return shingleCounts;
  }

  const inOrder = inCallOrder();
  async function run(recs: Rec[]): Promise<Rec[]> {
    const chunks = pool ? Math.max(1, Math.min(pool.size, Math.floor(recs.length / MIN_CHUNK))) : 1;
    const per = Math.ceil(recs.length / chunks);
    const parts: Promise<number[]>[] = [];
    for (let start = 0; start < recs.length; start += per) {
      const slice = recs.slice(start, start + per);
      const { task, transfer } = buildTask(slice);
      parts.push(pool ? pool.run(task, transfer).then((res) => apply(slice, res)) : Promise.resolve(apply(slice, computeSignatures(task))));
    }
    // The shingle-count histogram's sample follows input order: recorded batch after batch.
    return inOrder(Promise.all(parts), (counts) => {
      for (const part of counts) for (const n of part) ctx.stats.observe('shingles', n);
      return recs;
    });
  }

  return orderedTextStep(ctx, { ahead: pool ? WINDOW : 0, run, pool: () => pool });
}
