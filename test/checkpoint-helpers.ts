// Drives one operator's step as `mixstream run --checkpoint` does across a crash: records up to
// a cut, a checkpoint, optionally more records that the "crashed" run processes after it (their
// output is lost, their spill-file appends stay behind in the scratch directory), then a NEW
// step restored from the checkpoint in the same scratch directory, the rest, and the flush.
import type { Test } from 'tap';
import { createStepContext, StepCounters } from '../lib/context.ts';
import type { OperatorDescriptor, Rec, Step } from '../lib/operator.ts';
import { validateOptions, type OptionError } from '../lib/options.ts';
import { decodeRecord, encodeRecord } from '../lib/record-codec.ts';
import { tmpdir } from './helpers.ts';

export interface ResumedRun {
  /** The output as the sink would write it. */
  output: string;
  /** The output with what later steps would see besides the fields (internals, step-written fields). */
  encoded: string;
  /** `id reason` of every drop, in order. */
  dropped: string[];
  counters: StepCounters;
}

export interface ResumeOptions {
  /** Records processed before the checkpoint; none: one uninterrupted run. */
  cut?: number;
  /** Records the crashed run processes after the checkpoint (thrown away on resume); Infinity: it reaches the end of input and emits. */
  lost?: number;
  batchSize?: number;
  /** Checkpoints taken before the one at `cut` (the engine takes one every interval). */
  checkpointsBefore?: number;
  /** The crashed run also takes a checkpoint after the cut that is never committed. */
  checkpointAfter?: boolean;
  /**
   * Close the crashed step before the resumed one starts, releasing its file locks as the death
   * of its process would (for steps holding an exclusive lock on a file they reopen on resume).
   */
  releaseCrashed?: boolean;
}

function copyCounters(from: StepCounters): StepCounters {
  const c = new StepCounters();
  const s = structuredClone(from);
  Object.assign(c, { recordsIn: s.recordsIn, recordsOut: s.recordsOut, tokensIn: s.tokensIn, tokensOut: s.tokensOut, bytesIn: s.bytesIn, timeMs: s.timeMs });
  Object.assign(c.dropped, s.dropped);
  Object.assign(c.errors, s.errors);
  Object.assign(c.counters, s.counters);
  Object.assign(c.histograms, s.histograms);
  return c;
}

export async function resumedRun(descriptor: OperatorDescriptor, options: Record<string, unknown>, recs: Rec[], { cut, lost = 0, batchSize = 100, checkpointsBefore = 0, checkpointAfter = false, releaseCrashed = false }: ResumeOptions = {}): Promise<ResumedRun> {
  const errors: OptionError[] = [];
  const opts = validateOptions(options, descriptor.options, errors);
  if (errors.length) throw new Error(errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  // Each record is handed over as a fresh object, with the internals an earlier step left on it.
  const fresh = (from: number, to: number) => recs.slice(from, to).map((r) => decodeRecord(encodeRecord(r)));
  const tmpDir = tmpdir('mixstream-step-');
  let dropped: string[] = [];
  let output: Rec[] = [];
  const start = async (counters: StepCounters, drops: string[], resuming = false) => {
    const ctx = createStepContext({ op: descriptor.name, tmpDir, counters, resuming, onDrop: (r, reason) => drops.push(`${r.id} ${reason}`), log: () => {} });
    return { step: await descriptor.create(opts, ctx), counters };
  };
  const feed = async (step: Step, from: number, to: number, out: Rec[]) => {
    for (let i = from; i < to; i += batchSize) out.push(...(await step.process(fresh(i, Math.min(i + batchSize, to)))));
  };
  let { step, counters } = await start(new StepCounters(), dropped);
  const crashed: Step[] = [];
  const barrier = async (s: Step) => {
    // At a barrier the engine first takes the records a step still holds back (drain).
    if (s.drain) output.push(...(await s.drain()));
    const dir = tmpdir('mixstream-state-');
    await s.checkpoint?.(dir);
    return dir;
  };
  if (cut !== undefined) {
    // Earlier checkpoints (`checkpointsBefore`, evenly spaced), then the one the rerun resumes from.
    let at = 0;
    for (let k = 1; k <= checkpointsBefore; k++) {
      const next = Math.floor((cut * k) / (checkpointsBefore + 1));
      await feed(step, at, next, output);
      await barrier(step);
      at = next;
    }
    await feed(step, at, cut, output);
    const dir = await barrier(step);
    // What the engine commits with the checkpoint, and the crashed run's work after it.
    const saved = { counters: copyCounters(counters), dropped: dropped.slice(), output: output.slice() };
    const lostEnd = Math.min(recs.length, cut + lost);
    if (checkpointAfter) {
      // A checkpoint the crashed run wrote but did not commit.
      const mid = cut + ((lostEnd - cut) >> 1);
      await feed(step, cut, mid, output);
      await barrier(step);
      await feed(step, mid, lostEnd, output);
    } else await feed(step, cut, lostEnd, output);
    // Lost through the end of input: the crashed run also emitted (and removed its spill files).
    if (cut + lost >= recs.length && step.flushBatches) for await (const b of step.flushBatches()) output.push(...b);
    if (releaseCrashed) await step.close?.();
    else crashed.push(step);
    dropped = saved.dropped;
    output = saved.output;
    ({ step, counters } = await start(saved.counters, dropped, true));
    await step.restore?.(dir);
  }
  try {
    await feed(step, cut ?? 0, recs.length, output);
    if (step.flushBatches) for await (const b of step.flushBatches()) output.push(...b);
    else if (step.flush) output.push(...(await step.flush()));
  } finally {
    await step.close?.();
    for (const s of crashed) await s.close?.();
  }
  return { output: output.map((r) => JSON.stringify(r) + '\n').join(''), encoded: output.map(encodeRecord).join('\n'), dropped, counters };
}

/** Asserts that a resumed run equals the uninterrupted one: output, internals, drops and counters. */
export function sameAsWhole(t: Test, resumed: ResumedRun, whole: ResumedRun, name: string): void {
  t.ok(resumed.output === whole.output, `${name}: output identical`);
  t.ok(resumed.encoded === whole.encoded, `${name}: internals and step-written fields identical`);
  t.same(resumed.dropped, whole.dropped, `${name}: drops`);
  t.same(resumed.counters.counters, whole.counters.counters, `${name}: counters`);
}
