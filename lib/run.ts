// The runner: wires source -> steps -> sink with stream.pipeline. Pull-driven: each stage asks
// for the next batch only when it has handed on the previous one, so a slow sink slows the
// source and memory does not grow with the input.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createStepContext, removeTmpDir, StepCounters, type ErrorEntry, type Histogram } from './context.ts';
import { CheckpointStore, fingerprint, partName, trimOutputDir, trimSideOutput, type CheckpointState, type InputPosition, type SerializedCounters } from './checkpoint.ts';
import { compressionForPath } from './io/compression.ts';
import { decodeInput, DEFAULT_DECODE, fileInput, POSITION, stdinInput, type DecodeOptions, type InputProgress, type InputSource } from './io/decode.ts';
import { httpInput, isHttpUrl, redactUrl } from './io/http.ts';
import { encodeBatch, openOutput, SideOutput, write, type Output } from './io/output.ts';
import { processRunning } from './io/lock.ts';
import { StepOptionError, type Rec, type Step } from './operator.ts';
import { upstreamOf, type ResolvedPipeline } from './pipeline.ts';
import type { HistogramReport, RunReport, StepReport } from './report.ts';

export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  inputErrors: 3,
  maxErrors: 4,
  interrupted: 130,
} as const;

export interface RunOptions {
  pipeline: ResolvedPipeline;
  /** Inputs (paths, `-` for stdin, or InputSource objects); default: the pipeline's source, else stdin. */
  inputs?: (string | InputSource)[];
  /** Output path (`-` or undefined: stdout), unless `outputStream` is given. */
  output?: string;
  /** Write NDJSON here instead (library use, tests). Not ended by the run. */
  outputStream?: Writable;
  errors?: string;
  rejects?: string;
  report?: string;
  /** Stop once more than this many record errors were seen. */
  maxErrors?: number;
  workers?: number;
  /** Print a throttled progress line to stderr. */
  progress?: boolean;
  /** Print the per-step summary to stderr at the end. */
  summary?: boolean;
  log?: (message: string) => void;
  /** Checkpoint directory: periodic exactly-once checkpoints, and resume from the one found there. Needs `output` to be a directory. */
  checkpoint?: string;
  /** Seconds between checkpoints (default 30). */
  checkpointIntervalSec?: number;
  /** File extension of output parts in checkpoint mode (default `.jsonl.zst`). */
  partExtension?: string;
  /** Calls `stop` on the returned handle when aborted. */
  signal?: AbortSignal;
}

export interface RunHandle {
  /** Stops reading; what is in flight is flushed and the run resolves. */
  /** Stops reading; `exitCode` is the status an interrupted run reports (143 for SIGTERM; default 130). */
  stop(reason?: 'interrupted', exitCode?: number): void;
  done: Promise<RunReport>;
}

function toInput(i: string | InputSource, log: (m: string) => void): InputSource {
  if (typeof i !== 'string') return i;
  if (isHttpUrl(i)) return httpInput(i, { onRetry: (r) => log(`mixstream: ${redactUrl(i)}: retry ${r.attempt} in ${Math.round(r.delayMs)} ms (${r.reason})`) });
  return i === '-' ? stdinInput() : fileInput(i);
}

function histogramReport(h: Histogram, bins = 20): HistogramReport {
  const out: HistogramReport = { count: h.count, sum: h.sum, min: h.min, max: h.max, bins: [] };
  if (!h.count) return out;
  const integers = h.sample.every((v) => Number.isInteger(v));
  let width = (h.max - h.min) / bins || 1;
  let n = bins;
  if (integers && h.max - h.min + 1 <= 50) {
    width = 1;
    n = h.max - h.min + 1;
  }
  const counts = new Array(n).fill(0);
  for (const v of h.sample) counts[Math.min(n - 1, Math.floor((v - h.min) / width))]++;
  // Scaled from the sample to the count, rounded so that the bins add up to the count exactly
  // (largest remainders get the units rounding down left over).
  const scale = h.count / h.sample.length;
  const scaled = counts.map((c) => c * scale);
  const rounded = scaled.map(Math.floor);
  let left = h.count - rounded.reduce((a, b) => a + b, 0);
  const byRemainder = scaled.map((v, i) => [v - rounded[i], i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let k = 0; left > 0 && k < byRemainder.length; k++, left--) rounded[byRemainder[k][1]]++;
  out.bins = counts.map((_, i) => ({ lo: h.min + i * width, hi: h.min + (i + 1) * width, count: rounded[i] }));
  return out;
}

function tokenSum(batch: Rec[]): number {
  let t = 0;
  for (let i = 0; i < batch.length; i++) {
    const v = batch[i].token_count;
    if (typeof v === 'number') t += v;
  }
  return t;
}

/** Starts a run; `done` resolves with the report (it never rejects for bad data, only for bugs). */
export function startRun(opts: RunOptions): RunHandle {
  const control = new StopControl();
  const handle: RunHandle = {
    stop: (reason = 'interrupted', exitCode?: number) => control.stop(reason, exitCode),
    done: undefined as unknown as Promise<RunReport>,
  };
  opts.signal?.addEventListener('abort', () => handle.stop('interrupted'), { once: true });
  handle.done = execute(opts, control);
  return handle;
}

export async function runPipeline(opts: RunOptions): Promise<RunReport> {
  return startRun(opts).done;
}

/** Why and whether a run was asked to stop; stopping also ends the input being read (it may be blocked on stdin). */
class StopControl {
  reason: RunReport['status'] | undefined;
  /** The exit status of an interrupted run (the signal's). */
  interruptedExit: number = EXIT.interrupted;
  private current?: { destroy(): void };

  stop(reason: RunReport['status'], exitCode?: number): void {
    if (this.reason) return;
    this.reason = reason;
    if (exitCode !== undefined) this.interruptedExit = exitCode;
    this.current?.destroy();
  }

  reading(stream: { destroy(): void } | undefined): void {
    this.current = stream;
    if (stream && this.reason) stream.destroy();
  }
}

/** Records a batch carries to the side outputs, in stream order: bad records and dropped ones. */
const SIDE: unique symbol = Symbol.for('mixstream.side');
/** A checkpoint barrier: an empty batch that carries what the checkpoint must record. */
const BARRIER: unique symbol = Symbol.for('mixstream.barrier');

interface SideRecord {
  to: 'errors' | 'rejects';
  value: unknown;
}

interface Barrier {
  seq: number;
  inputs: InputPosition[];
  decode: SerializedCounters;
  steps: SerializedCounters[];
  stateDir?: string;
  finished: boolean;
}

type Batch = Rec[] & { [SIDE]?: SideRecord[]; [BARRIER]?: Barrier; [POSITION]?: number };

function errorsIn(c: SerializedCounters): number {
  return Object.values(c.errors).reduce((a, b) => a + b, 0);
}

function serialize(c: StepCounters): SerializedCounters {
  return structuredClone({
    recordsIn: c.recordsIn,
    recordsOut: c.recordsOut,
    tokensIn: c.tokensIn,
    tokensOut: c.tokensOut,
    bytesIn: c.bytesIn,
    timeMs: c.timeMs,
    dropped: c.dropped,
    errors: c.errors,
    counters: c.counters,
    histograms: c.histograms,
  });
}

function restoreCounters(c: StepCounters, s: SerializedCounters): void {
  Object.assign(c, { recordsIn: s.recordsIn, recordsOut: s.recordsOut, tokensIn: s.tokensIn, tokensOut: s.tokensOut, bytesIn: s.bytesIn, timeMs: s.timeMs });
  Object.assign(c.dropped, s.dropped);
  Object.assign(c.errors, s.errors);
  Object.assign(c.counters, s.counters);
  Object.assign(c.histograms, s.histograms);
}

/**
 * Scratch directories of runs (spilled indexes, sort runs) in the system's temporary directory:
 * `mixstream-run-<host>-<pid>-XXXXXX` (the host, so that runs of machines sharing the directory
 * never take each other's for stale).
 */
const RUN_DIR_PREFIX = `mixstream-run-${os.hostname().replace(/[^A-Za-z0-9.]/g, '_')}-`;

/**
 * Removes the scratch directories of this host's runs whose process is gone (killed outright: a
 * run that ends removes its own), which may hold gigabytes of spilled index.
 */
function removeStaleRunDirs(): void {
  let entries: string[];
  try {
    entries = readdirSync(os.tmpdir());
  } catch {
    return;
  }
  for (const name of entries) {
    if (!name.startsWith(RUN_DIR_PREFIX)) continue;
    const m = /^(\d+)-/.exec(name.slice(RUN_DIR_PREFIX.length));
    if (!m || Number(m[1]) === process.pid || processRunning(Number(m[1]))) continue;
    try {
      rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
    } catch {
      // Another user's, or removed meanwhile.
    }
  }
}

/** Run options that cannot work together or with the checkpoint met (exit status 2, nothing is read). */
export class RunSetupError extends Error {}

async function execute(opts: RunOptions, control: StopControl): Promise<RunReport> {
  const stopped = () => control.reason;
  const stop = (r: RunReport['status']) => control.stop(r);
  const p = opts.pipeline;
  const log = opts.log ?? ((m: string) => process.stderr.write(m + '\n'));
  // Quiet runs (-q: no summary) leave out the steps' notes too; their warnings still print.
  const stepLog = opts.summary === false ? (m: string) => void (m.includes(': warning: ') && log(m)) : log;
  const startedAt = new Date();
  const t0 = performance.now();
  removeStaleRunDirs();
  const tmpDir = mkdtempSync(path.join(os.tmpdir(), `${RUN_DIR_PREFIX}${process.pid}-`));
  const abort = new AbortController();
  const checkpointing = opts.checkpoint !== undefined;
  const errorsPath = opts.errors ?? (p.spec.errors ? path.resolve(p.baseDir, p.spec.errors) : undefined);
  const rejectsPath = opts.rejects ?? (p.spec.rejects ? path.resolve(p.baseDir, p.spec.rejects) : undefined);
  const sidePaths = { errors: errorsPath && path.resolve(errorsPath), rejects: rejectsPath && path.resolve(rejectsPath) };
  const outputPath = opts.output ?? p.sink;
  let errorCount = 0;

  const decodeCounters = new StepCounters();
  const counters = p.steps.map(() => new StepCounters());
  const steps: Step[] = [];
  const inputsReport: InputPosition[] = [];
  let progressTimer: NodeJS.Timeout | undefined;
  let failure: Error | undefined;
  let outputClosed = false;
  let alreadyFinished = false;
  let finishedCommitted = false;

  // Side records wait here until the batch they belong to is handed on.
  const decodeSide: SideRecord[] = [];
  const stepSide: SideRecord[][] = p.steps.map(() => []);
  const overErrorLimit = () => opts.maxErrors !== undefined && errorCount > opts.maxErrors;
  const countError = () => {
    errorCount++;
    if (overErrorLimit()) stop('max-errors');
  };
  const decodeOptions: DecodeOptions = { ...DEFAULT_DECODE, ...(p.decode.options as Partial<DecodeOptions>), tmpDir };
  const decodeSink = {
    error: (e: ErrorEntry) => {
      decodeCounters.errors[e.reason] = (decodeCounters.errors[e.reason] ?? 0) + 1;
      // A bad line was read as much as a good one: decode's records in = out + errors.
      if (e.line !== undefined) decodeCounters.recordsIn++;
      if (errorsPath) decodeSide.push({ to: 'errors', value: { ...(p.decode.index >= 0 ? { step: 0 } : {}), op: 'decode', ...e } });
      countError();
    },
    shouldStop: () => stopped() !== undefined,
    onOpen: (stream: { destroy(): void }) => control.reading(stream),
    overwrote: (field: string, from: string, input: string, line: number) => {
      decodeCounters.count(`overwrote_${field}`);
      if (decodeCounters.counters[`overwrote_${field}`] === 1) {
        stepLog(`decode: warning: the record at ${input}:${line} already has a field "${field}"; it is replaced by its "${from}" (warned once; the report counts each record as overwrote_${field})`);
      }
    },
  };

  /** Set once the steps are set up and records start to flow. */
  let reading = false;
  let errorsOut: SideOutput | undefined;
  let rejectsOut: SideOutput | undefined;
  let store: CheckpointStore | undefined;
  let resumeFrom: CheckpointState | undefined;
  let seq = 0;
  let partsDone = 0;
  let inputNames: string[] = [];

  try {
    const firstGenerates = p.steps[0]?.descriptor.source === true;
    const given = opts.inputs ?? p.inputs;
    if (firstGenerates && given.length) {
      const s = p.steps[0];
      throw new RunSetupError(`step ${s.index} (${s.op}) reads its own sources, so the inputs given (${given.join(', ')}) would not be read: name them in its sources instead`);
    }
    const inputs = (opts.inputs ?? (p.inputs.length ? p.inputs : firstGenerates ? [] : ['-'])).map((i) => toInput(i, log));
    inputNames = inputs.map((i) => i.name);

    if (checkpointing) {
      if (!outputPath || outputPath === '-') throw new RunSetupError('--checkpoint needs -o DIR/: the output is written as parts so that a resumed run continues exactly');
      if (inputs.some((i) => i.name === '<stdin>')) throw new RunSetupError('--checkpoint needs input files (stdin cannot be read again after a crash)');
      for (const [flag, file] of [['--errors', errorsPath], ['--rejects', rejectsPath]] as const) {
        if (file && compressionForPath(file) !== 'none') throw new RunSetupError(`${flag} ${file}: with --checkpoint, side outputs are plain NDJSON (they are cut back to the checkpoint on resume)`);
      }
      store = new CheckpointStore(opts.checkpoint!);
      const holder = store.claim();
      if (holder !== undefined) {
        store = undefined;
        throw new RunSetupError(`${opts.checkpoint} is in use by another run (${holder}); wait for it to end (if no run is using it, remove ${path.join(opts.checkpoint!, 'lock')})`);
      }
      const fp = fingerprint(p, inputNames, outputPath);
      resumeFrom = store.load();
      if (resumeFrom && resumeFrom.fingerprint !== fp) {
        throw new RunSetupError(`${store.file} was written by a different pipeline, inputs or output; remove it or choose another --checkpoint directory`);
      }
      if (resumeFrom?.sidePaths) {
        // A side output left out, or given another file, on resume would lose what was written
        // to it before (or cut a file it never held back to the checkpoint's size).
        for (const [flag, key] of [['--errors', 'errors'], ['--rejects', 'rejects']] as const) {
          const was = resumeFrom.sidePaths[key];
          if (was !== sidePaths[key]) {
            throw new RunSetupError(`${store.file} was written by a run with ${was ? `${flag} ${was}` : `no ${flag}`}; resume with the same ${flag} (this run: ${sidePaths[key] ? `${flag} ${sidePaths[key]}` : `no ${flag}`})`);
          }
        }
      }
      if (resumeFrom) {
        seq = resumeFrom.seq;
        partsDone = resumeFrom.parts;
        errorCount = resumeFrom.errorCount;
        restoreCounters(decodeCounters, resumeFrom.decode);
        resumeFrom.steps.forEach((s, i) => counters[i] && restoreCounters(counters[i], s));
        inputsReport.push(...resumeFrom.inputs.map((x) => ({ ...x })));
        alreadyFinished = resumeFrom.finished;
        trimOutputDir(outputPath, partsDone);
        if (errorsPath) trimSideOutput(errorsPath, resumeFrom.side.errors);
        if (rejectsPath) trimSideOutput(rejectsPath, resumeFrom.side.rejects);
        if (!alreadyFinished) log(`mixstream: resuming from ${store.file} (checkpoint ${seq}: ${partsDone} part(s) written, ${inputsReport.filter((x) => x.complete).length} of ${inputs.length} input(s) done)`);
        // A run stopped by --max-errors stays stopped under the same limit: going on would let
        // each rerun read one more bad record.
        if (!alreadyFinished && overErrorLimit()) {
          log(`mixstream: the run of ${store.file} stopped after ${errorCount} bad records, more than --max-errors ${opts.maxErrors}; it goes on only with a larger --max-errors`);
          stop('max-errors');
        }
      } else {
        store.clearWork();
        trimOutputDir(outputPath, 0);
        if (errorsPath) trimSideOutput(errorsPath, 0);
        if (rejectsPath) trimSideOutput(rejectsPath, 0);
      }
    }
    errorsOut = errorsPath ? new SideOutput(errorsPath, checkpointing) : undefined;
    rejectsOut = rejectsPath ? new SideOutput(rejectsPath, checkpointing) : undefined;

    if (alreadyFinished) {
      log(`mixstream: ${store!.file} says this run already finished; nothing to do`);
    } else {
      for (let i = 0; i < p.steps.length; i++) {
        const s = p.steps[i];
        // With --checkpoint a step's scratch directory lives beside the checkpoint and survives a
        // crash: spill files written before a checkpoint are part of the state restore() resumes.
        const stepTmp = checkpointing ? path.join(store!.workDir, `step-${s.index}`) : path.join(tmpDir, `step-${s.index}`);
        mkdirSync(stepTmp, { recursive: true });
        const stateDir = resumeFrom?.stateDir ? path.join(store!.dir, resumeFrom.stateDir, `step-${i}`) : undefined;
        const resuming = stateDir !== undefined && existsSync(stateDir);
        const ctx = createStepContext({
          resuming,
          stepIndex: s.index,
          op: s.op,
          upstream: upstreamOf(p.steps.slice(0, i)),
          baseDir: p.baseDir,
          tmpDir: stepTmp,
          workers: opts.workers,
          signal: abort.signal,
          stopped: () => stopped() !== undefined,
          counters: counters[i],
          log: stepLog,
          onDrop: (rec, reason, step, op) => {
            if (rejectsPath) stepSide[i].push({ to: 'rejects', value: { ...rec, mixstream_reject: { step, op, reason } } });
          },
          onError: (entry) => {
            if (errorsPath) stepSide[i].push({ to: 'errors', value: entry });
            countError();
          },
        });
        const step = await s.descriptor.create(s.options, ctx);
        steps.push(step);
        const stateful = typeof s.descriptor.stateful === 'function' ? s.descriptor.stateful(s.options) : s.descriptor.stateful;
        if (checkpointing && stateful && !step.checkpoint) {
          throw new RunSetupError(`step ${s.index} (${s.op}) keeps state across records but cannot checkpoint it, so --checkpoint cannot resume this pipeline exactly`);
        }
        if (resuming && step.restore) await step.restore(stateDir!);
      }
      reading = true;
      await runStreams(inputs, firstGenerates);
    }
  } catch (e) {
    failure = e as Error;
    abort.abort();
  } finally {
    if (progressTimer) {
      clearInterval(progressTimer);
      process.stderr.write('\r\x1b[K');
    }
    for (const s of steps) {
      try {
        await s.close?.();
      } catch (e) {
        failure ??= e as Error;
      }
    }
    try {
      // A run that failed before reading anything leaves no side outputs behind.
      const leaveEmpty = reading || !failure;
      await errorsOut?.close(leaveEmpty);
      await rejectsOut?.close(leaveEmpty);
    } catch (e) {
      failure ??= e as Error;
    }
    removeTmpDir(tmpDir);
    // A finished run needs no scratch state any more; an interrupted one keeps it for the rerun.
    if (store && (alreadyFinished || finishedCommitted)) store.clearWork();
    store?.release();
  }

  async function runStreams(inputs: InputSource[], firstGenerates: boolean): Promise<void> {
    const interval = (opts.checkpointIntervalSec ?? 30) * 1000;
    // Generated ids are `<file name>:<line>`; inputs that share a file name (shards of one name
    // in different directories) use their names as given instead, so their ids stay apart.
    const fileNames = inputs.map((i) => path.basename(i.name));
    const idNames = inputs.map((i, k) => (fileNames.filter((n) => n === fileNames[k]).length > 1 ? i.name : undefined));
    let lastCheckpoint = performance.now();
    const checkpointDue = () => checkpointing && performance.now() - lastCheckpoint >= interval;

    // When every stage is synchronous (in-memory source and sink), a run could become one long
    // chain of microtasks; yielding to the event loop now and then keeps signals and timers alive.
    let lastTurn = performance.now();
    const turn = async () => {
      if (performance.now() - lastTurn < 50) return;
      await new Promise((r) => setImmediate(r));
      lastTurn = performance.now();
    };

    const takeSide = (list: SideRecord[]): SideRecord[] | undefined => (list.length ? list.splice(0) : undefined);
    let barrierTaken: (() => void) | undefined;
    // A failed run never delivers the barrier the source waits for.
    abort.signal.addEventListener('abort', () => barrierTaken?.(), { once: true });
    const makeBarrier = (finished: boolean): Batch => {
      seq++;
      lastCheckpoint = performance.now();
      const b: Batch = [];
      b[BARRIER] = {
        seq,
        inputs: inputsReport.map((x) => ({ ...x })),
        decode: serialize(decodeCounters),
        steps: [],
        stateDir: steps.some((s) => s.checkpoint) ? path.basename(store!.stateDirFor(seq)) : undefined,
        finished,
      };
      b[SIDE] = takeSide(decodeSide);
      return b;
    };

    async function* source(): AsyncGenerator<Batch> {
      if (firstGenerates) {
        // A source step's barriers sit between its batches: its checkpoint records how far it got.
        for await (const batch of steps[0].generate!()) {
          decodeCounters.recordsOut += batch.length;
          yield batch;
          if (checkpointDue()) {
            // The stream pulls ahead: the generator must not move on before it has checkpointed.
            const taken = new Promise<void>((resolve) => (barrierTaken = resolve));
            yield makeBarrier(false);
            await taken;
          }
          await turn();
          if (stopped()) break;
        }
        if (checkpointing && stopped()) yield makeBarrier(false);
        return;
      }
      for (let k = 0; k < inputs.length; k++) {
        if (stopped()) break;
        const input = inputs[k];
        const position: InputPosition = (inputsReport[k] ??= { name: input.name, line: 0, complete: false, bytes: 0, records: 0 });
        if (position.complete) continue; // finished by an earlier run
        const progress: InputProgress = { bytes: 0, records: 0, complete: false };
        const bytesBefore = position.bytes;
        const recordsBefore = position.records;
        let tIn = performance.now();
        for await (const b of decodeInput(input, { ...decodeOptions, skipLines: position.line, idName: idNames[k] }, decodeSink, progress)) {
          const batch = b as Batch;
          decodeCounters.timeMs += performance.now() - tIn;
          decodeCounters.recordsOut += batch.length;
          decodeCounters.recordsIn += batch.length;
          decodeCounters.tokensOut += tokenSum(batch);
          // A resumed input is read again from its start (lines before the position are skipped unparsed).
          position.bytes = Math.max(bytesBefore, progress.bytes);
          position.records = recordsBefore + progress.records;
          const side = takeSide(decodeSide);
          if (side) batch[SIDE] = side;
          if (batch.length || side) yield batch;
          if (batch[POSITION] !== undefined && batch[POSITION]! >= position.line) {
            position.line = batch[POSITION]!;
            if (checkpointDue()) yield makeBarrier(false);
          }
          await turn();
          tIn = performance.now();
          // A read's lines may come as several batches, and only the last carries the position:
          // stopping before it would checkpoint a position behind records already handed on.
          if (stopped() && batch[POSITION] !== undefined) break;
        }
        position.bytes = Math.max(bytesBefore, progress.bytes);
        position.records = recordsBefore + progress.records;
        position.complete = progress.complete;
        if (progress.error) position.error = progress.error;
        decodeCounters.bytesIn = inputsReport.reduce((a, x) => a + x.bytes, 0);
        const side = takeSide(decodeSide);
        if (side) yield Object.assign([], { [SIDE]: side }) as Batch;
      }
      // Interrupted with --checkpoint: record where reading stopped; steps are not flushed, the rerun continues.
      if (checkpointing && stopped()) yield makeBarrier(false);
    }

    const stages = p.steps.map((s, i) => {
      const step = steps[i];
      const c = counters[i];
      const isGenerator = i === 0 && firstGenerates;
      const withSide = (out: Batch, carried: SideRecord[] | undefined): Batch => {
        const own = takeSide(stepSide[i]);
        if (carried || own) out[SIDE] = carried && own ? carried.concat(own) : (carried ?? own);
        return out;
      };
      /** Counts records a step hands on, and the time since `since`. */
      const counted = <B extends Rec[]>(out: B, since: number): B => {
        c.timeMs += performance.now() - since;
        c.recordsOut += out.length;
        c.tokensOut += tokenSum(out);
        return out;
      };
      return async function* (src: AsyncIterable<Batch>): AsyncGenerator<Batch> {
        for await (const batch of src) {
          const barrier = batch[BARRIER];
          if (barrier) {
            if (step.drain && !isGenerator) {
              const t = performance.now();
              const out = counted((await step.drain()) as Batch, t);
              if (out.length) yield withSide(out, undefined);
            }
            if (step.checkpoint && barrier.stateDir) {
              // A run killed between writing step states and committing leaves this directory behind.
              const dir = path.join(store!.dir, barrier.stateDir, `step-${i}`);
              rmSync(dir, { recursive: true, force: true });
              mkdirSync(dir, { recursive: true });
              await step.checkpoint(dir);
            }
            if (isGenerator) barrierTaken?.();
            barrier.steps[i] = serialize(c);
            yield withSide(batch, batch[SIDE]);
            continue;
          }
          if (isGenerator) {
            // The generator step's own records arrive here; they are its output, not its input.
            c.recordsOut += batch.length;
            c.tokensOut += tokenSum(batch);
            yield withSide(batch, batch[SIDE]);
            continue;
          }
          const carried = batch[SIDE];
          c.recordsIn += batch.length;
          c.tokensIn += tokenSum(batch);
          const t = performance.now();
          const out = counted((batch.length ? await step.process(batch) : batch) as Batch, t);
          const result = withSide(out, carried);
          if (result.length || result[SIDE]) yield result;
        }
        // An interrupted checkpointed run keeps its state for the rerun instead of flushing it.
        if (step.flushBatches && !(checkpointing && stopped())) {
          let t = performance.now();
          for await (const out of step.flushBatches()) {
            yield withSide(counted(out as Batch, t), undefined);
            t = performance.now();
          }
          c.timeMs += performance.now() - t;
          const rest = takeSide(stepSide[i]);
          if (rest) yield Object.assign([], { [SIDE]: rest }) as Batch;
        } else if (step.flush && !(checkpointing && stopped())) {
          const t = performance.now();
          const out = counted(await step.flush(), t);
          // Hand large flushes on in bounded batches.
          for (let k = 0; k < out.length; k += 1024) yield withSide(out.slice(k, k + 1024) as Batch, undefined);
          const rest = takeSide(stepSide[i]);
          if (rest) yield Object.assign([], { [SIDE]: rest }) as Batch;
        }
      };
    });

    // The final barrier follows every flush, so a finished run's checkpoint covers everything.
    async function* finalBarrier(src: AsyncIterable<Batch>): AsyncGenerator<Batch> {
      for await (const b of src) yield b;
      if (checkpointing && !stopped()) {
        const b = makeBarrier(true);
        b[BARRIER]!.steps = counters.map(serialize);
        b[BARRIER]!.stateDir = undefined;
        yield b;
      }
    }

    if (opts.progress) {
      const started = performance.now();
      progressTimer = setInterval(() => {
        const bytes = inputsReport.reduce((a, x) => a + x.bytes, 0);
        const records = decodeCounters.recordsOut;
        const secs = (performance.now() - started) / 1000;
        process.stderr.write(`\r\x1b[K${records.toLocaleString('en-US')} records  ${(bytes / 1e6).toFixed(1)} MB  ${(bytes / 1e6 / secs).toFixed(1)} MB/s  ${Math.round(records / secs).toLocaleString('en-US')} rec/s`);
      }, 1000);
      progressTimer.unref();
    }

    const writeSide = async (side: SideRecord[] | undefined) => {
      if (!side) return;
      for (const r of side) (r.to === 'errors' ? errorsOut : rejectsOut)?.push(r.value);
      const wait = rejectsOut?.drained() ?? errorsOut?.drained();
      if (wait) await wait;
    };

    const readable = Readable.from(source(), { objectMode: true, highWaterMark: 1 });
    if (checkpointing) {
      // Output as parts: each checkpoint closes the current part, so a resumed run continues exactly.
      const dir = outputPath!;
      mkdirSync(dir, { recursive: true });
      const extension = opts.partExtension ?? '.jsonl.zst';
      let part: Output | undefined;
      const sink = async (src: AsyncIterable<Batch>) => {
        for await (const batch of src) {
          await writeSide(batch[SIDE]);
          const barrier = batch[BARRIER];
          if (barrier) {
            if (part) {
              part.stream.end();
              await part.done;
              part = undefined;
              partsDone++;
            }
            await errorsOut?.flushed();
            await rejectsOut?.flushed();
            store!.commit({
              version: 1,
              fingerprint: fingerprint(p, inputNames, dir),
              seq: barrier.seq,
              inputs: barrier.inputs,
              parts: partsDone,
              side: { errors: errorsOut?.bytes, rejects: rejectsOut?.bytes },
              sidePaths,
              decode: barrier.decode,
              steps: barrier.steps,
              // As of the barrier (the live count includes bad records read ahead of it).
              errorCount: errorsIn(barrier.decode) + barrier.steps.reduce((n, c) => n + errorsIn(c), 0),
              stateDir: barrier.stateDir,
              finished: barrier.finished,
              updatedAt: new Date().toISOString(),
            });
            if (barrier.finished) finishedCommitted = true;
            continue;
          }
          if (!batch.length) continue;
          part ??= openOutput(path.join(dir, partName(partsDone, extension)));
          for (const piece of encodeBatch(batch)) {
            const wait = write(part.stream, piece);
            if (wait) await wait;
          }
        }
        if (part) {
          // Records after the last barrier of an interrupted run: the rerun writes them again.
          part.stream.destroy();
        }
      };
      await pipeline([readable, ...stages, finalBarrier, sink] as unknown as Parameters<typeof pipeline>, { signal: abort.signal } as never);
      return;
    }

    const output: Output = opts.outputStream ? { stream: opts.outputStream, done: Promise.resolve(), name: '<stream>', discard: () => {} } : openOutput(outputPath);
    const toStdout = output.stream === process.stdout;
    const onOutputError = (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') {
        outputClosed = true;
        stop('ok');
      }
    };
    output.stream.on('error', onOutputError);
    async function* encode(src: AsyncIterable<Batch>): AsyncGenerator<string> {
      for await (const batch of src) {
        await writeSide(batch[SIDE]);
        if (batch.length) yield* encodeBatch(batch);
      }
    }
    try {
      await pipeline([readable, ...stages, encode, output.stream] as unknown as Parameters<typeof pipeline>, {
        signal: abort.signal,
        end: !(toStdout || opts.outputStream),
      } as never);
      await output.done;
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (outputClosed || err.code === 'EPIPE') outputClosed = true;
      else {
        // A failed run leaves no unfinished output file behind (the report says what happened).
        output.discard();
        throw e;
      }
    } finally {
      output.stream.off('error', onOutputError);
    }
  }

  const elapsedMs = performance.now() - t0;
  const allComplete = inputsReport.every((x) => x.complete);
  const usageFailure = failure instanceof RunSetupError || failure instanceof StepOptionError;
  if (failure instanceof RunSetupError || (failure instanceof StepOptionError && !checkpointing)) log(`mixstream: ${failure.message}`);
  else if (failure && !checkpointing && opts.summary) {
    log(`mixstream: the run failed: ${failure.message}${process.env.MIXSTREAM_DEBUG ? `\n${failure.stack}` : ''}`);
  } else if (failure && checkpointing) {
    const code = (failure as NodeJS.ErrnoException).code;
    const hint = store?.load() ? `the checkpoint in ${opts.checkpoint} is intact; run the same command again to resume` : 'no checkpoint was written yet; the same command starts over';
    log(`mixstream: the run failed${code === 'ENOSPC' ? ' (no space left on device)' : ''}: ${failure.message}\nmixstream: ${hint}`);
  }
  let status: RunReport['status'];
  const s = stopped();
  if (failure) status = 'failed';
  else if (outputClosed) status = 'ok';
  else if (s === 'interrupted') status = 'interrupted';
  else if (s === 'max-errors') status = 'max-errors';
  else if (errorCount > 0 || !allComplete) status = 'input-errors';
  else status = 'ok';
  // Options that cannot work with the data or files met at run time, and run options that cannot
  // work together (--checkpoint without -o DIR/), are usage errors, like an invalid pipeline.
  const exitCode = usageFailure ? EXIT.usage : { ok: EXIT.ok, failed: EXIT.failed, interrupted: control.interruptedExit, 'max-errors': EXIT.maxErrors, 'input-errors': EXIT.inputErrors }[status];

  const stepReport = (index: number, op: string, c: StepCounters, bytes = 0): StepReport => ({
    index,
    op,
    recordsIn: c.recordsIn,
    recordsOut: c.recordsOut,
    tokensIn: c.tokensIn,
    tokensOut: c.tokensOut,
    dropped: { ...c.dropped },
    errors: { ...c.errors },
    counters: { ...c.counters },
    histograms: Object.fromEntries(Object.entries(c.histograms).map(([k, h]) => [k, histogramReport(h)])),
    timeMs: Math.round(c.timeMs * 10) / 10,
    recordsPerSec: c.timeMs > 0 ? Math.round((c.recordsIn || c.recordsOut) / (c.timeMs / 1000)) : 0,
    mbPerSec: c.timeMs > 0 && bytes ? Math.round((bytes / 1e6 / (c.timeMs / 1000)) * 10) / 10 : 0,
  });
  const bytesIn = inputsReport.reduce((a, x) => a + x.bytes, 0);
  const report: RunReport = {
    version: 1,
    pipeline: p.file,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    elapsedMs: Math.round(elapsedMs),
    status,
    exitCode,
    inputs: inputsReport.map((x) => ({ name: x.name, bytes: x.bytes, records: x.records, complete: x.complete, ...(x.error && { error: x.error }) })),
    // Indexes are positions in the pipeline file's steps; an implicit decode is -1.
    steps: [stepReport(p.decode.index, 'decode', decodeCounters, bytesIn), ...p.steps.map((s, i) => stepReport(s.index, s.op, counters[i]))],
    totals: {
      recordsIn: decodeCounters.recordsOut,
      recordsOut: counters.length ? counters[counters.length - 1].recordsOut : decodeCounters.recordsOut,
      bytesIn,
      errors: errorCount,
      dropped: counters.reduce((a, c) => a + c.droppedTotal(), 0),
    },
    machine: { nproc: os.availableParallelism(), node: process.version, platform: `${process.platform}-${process.arch}` },
  };
  if (failure) (report as RunReport & { error?: string }).error = failure.stack ?? failure.message;
  if (opts.report) {
    mkdirSync(path.dirname(path.resolve(opts.report)), { recursive: true });
    writeFileSync(opts.report, JSON.stringify(report, null, 2) + '\n');
  }
  // A usage error read nothing: its message is the whole story, as for an invalid pipeline.
  if (opts.summary && !usageFailure) {
    log(formatSummary(report));
    if (report.totals.errors > 0 && !errorsPath) log('  (--errors FILE writes each bad record with its input, line, reason and raw text)');
  }
  if (failure && !opts.summary && !usageFailure && !checkpointing) throw failure;
  return report;
}

function fmt(n: number): string {
  return n.toLocaleString('en-US');
}

/** The per-step table printed on stderr at the end of a run. */
export function formatSummary(r: RunReport): string {
  const rows = r.steps.map((s) => {
    const drops = Object.entries(s.dropped).map(([k, v]) => `dropped_${k}=${fmt(v)}`);
    const errs = Object.entries(s.errors).map(([k, v]) => `error_${k}=${fmt(v)}`);
    const extra = Object.entries(s.counters).map(([k, v]) => `${k}=${fmt(v)}`);
    const tokens = s.tokensIn || s.tokensOut ? `  tokens ${fmt(s.tokensIn)} -> ${fmt(s.tokensOut)}` : '';
    return `  ${(s.index < 0 ? '-' : String(s.index)).padStart(2)} ${s.op.padEnd(26)} ${fmt(s.recordsIn).padStart(12)} -> ${fmt(s.recordsOut).padStart(12)}  ${(s.timeMs / 1000).toFixed(2).padStart(8)} s${tokens}${[...drops, ...errs, ...extra].length ? '  ' + [...drops, ...errs, ...extra].join(' ') : ''}`;
  });
  const incomplete = r.inputs.filter((i) => !i.complete).map((i) => `  input not read to its end: ${i.name}${i.error ? ` (${i.error})` : ''}`);
  return [
    `mixstream: ${r.status} in ${(r.elapsedMs / 1000).toFixed(2)} s, ${fmt(r.totals.recordsIn)} records in, ${fmt(r.totals.recordsOut)} out, ${fmt(r.totals.errors)} errors, ${(r.totals.bytesIn / 1e6).toFixed(1)} MB read`,
    `  step op                          records in ->  records out      time`,
    ...rows,
    ...incomplete,
  ].join('\n');
}
