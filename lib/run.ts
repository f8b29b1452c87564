// The runner: wires source -> steps -> sink with stream.pipeline. Pull-driven: each stage asks
// for the next batch only when it has handed on the previous one, so a slow sink slows the
// source and memory does not grow with the input.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createStepContext, removeTmpDir, StepCounters, type ErrorEntry, type Histogram } from './context.ts';
import { decodeInput, DEFAULT_DECODE, fileInput, stdinInput, type DecodeOptions, type InputProgress, type InputSource } from './io/decode.ts';
import { encodeBatch, openOutput, SideOutput } from './io/output.ts';
import type { Rec, Step } from './operator.ts';
import type { ResolvedPipeline } from './pipeline.ts';
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
  /** Calls `stop` on the returned handle when aborted. */
  signal?: AbortSignal;
}

export interface RunHandle {
  /** Stops reading; what is in flight is flushed and the run resolves. */
  stop(reason?: 'interrupted'): void;
  done: Promise<RunReport>;
}

function toInput(i: string | InputSource): InputSource {
  if (typeof i !== 'string') return i;
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
  const scale = h.count / h.sample.length;
  out.bins = counts.map((c, i) => ({ lo: h.min + i * width, hi: h.min + (i + 1) * width, count: Math.round(c * scale) }));
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
    stop: (reason = 'interrupted') => control.stop(reason),
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
  private current?: { destroy(): void };

  stop(reason: RunReport['status']): void {
    if (this.reason) return;
    this.reason = reason;
    this.current?.destroy();
  }

  reading(stream: { destroy(): void } | undefined): void {
    this.current = stream;
    if (stream && this.reason) stream.destroy();
  }
}

async function execute(opts: RunOptions, control: StopControl): Promise<RunReport> {
  const stopped = () => control.reason;
  const stop = (r: RunReport['status']) => control.stop(r);
  const p = opts.pipeline;
  const log = opts.log ?? ((m: string) => process.stderr.write(m + '\n'));
  const startedAt = new Date();
  const t0 = performance.now();
  const tmpDir = mkdtempSync(path.join(os.tmpdir(), 'mixstream-run-'));
  const abort = new AbortController();
  const errorsOut = opts.errors ?? p.spec.errors ? new SideOutput(opts.errors ?? path.resolve(p.baseDir, p.spec.errors!)) : undefined;
  const rejectsOut = opts.rejects ?? p.spec.rejects ? new SideOutput(opts.rejects ?? path.resolve(p.baseDir, p.spec.rejects!)) : undefined;
  let errorCount = 0;

  const onError = (entry: ErrorEntry) => {
    errorCount++;
    errorsOut?.push(entry);
    if (opts.maxErrors !== undefined && errorCount > opts.maxErrors) stop('max-errors');
  };

  // Decode counters are the first row of the summary.
  const decodeCounters = new StepCounters();
  const decodeOptions: DecodeOptions = { ...DEFAULT_DECODE, ...(p.decode.options as Partial<DecodeOptions>), tmpDir };
  const decodeSink = {
    error: (e: ErrorEntry) => {
      decodeCounters.errors[e.reason] = (decodeCounters.errors[e.reason] ?? 0) + 1;
      onError({ step: p.decode.index >= 0 ? 0 : undefined, op: 'decode', ...e });
    },
    shouldStop: () => stopped() !== undefined,
    onOpen: (stream: { destroy(): void }) => control.reading(stream),
  };

  const counters = p.steps.map(() => new StepCounters());
  const steps: Step[] = [];
  const inputsReport: InputProgress[] & { name?: string }[] = [];
  const inputNames: string[] = [];
  let progressTimer: NodeJS.Timeout | undefined;
  let failure: Error | undefined;
  let outputClosed = false;

  try {
    for (let i = 0; i < p.steps.length; i++) {
      const s = p.steps[i];
      const ctx = createStepContext({
        stepIndex: s.index,
        op: s.op,
        baseDir: p.baseDir,
        tmpDir: path.join(tmpDir, `step-${s.index}`),
        workers: opts.workers,
        signal: abort.signal,
        counters: counters[i],
        log,
        onDrop: (rec, reason, step, op) => rejectsOut?.push({ ...rec, mixstream_reject: { step, op, reason } }),
        onError,
      });
      const { mkdirSync } = await import('node:fs');
      mkdirSync(path.join(tmpDir, `step-${s.index}`), { recursive: true });
      steps.push(await s.descriptor.create(s.options, ctx));
    }

    const firstGenerates = typeof steps[0]?.generate === 'function';
    const inputs = (opts.inputs ?? (p.inputs.length ? p.inputs : firstGenerates ? [] : ['-'])).map(toInput);

    // When every stage is synchronous (in-memory source and sink), a run could become one long
    // chain of microtasks; yielding to the event loop now and then keeps signals and timers alive.
    let lastTurn = performance.now();
    const turn = async () => {
      if (performance.now() - lastTurn < 50) return;
      await new Promise((r) => setImmediate(r));
      lastTurn = performance.now();
    };

    async function* source(): AsyncGenerator<Rec[]> {
      if (firstGenerates) {
        for await (const batch of steps[0].generate!()) {
          decodeCounters.recordsOut += batch.length;
          yield batch;
          await turn();
          if (stopped()) return;
        }
        return;
      }
      for (const input of inputs) {
        if (stopped()) return;
        const progress: InputProgress = { bytes: 0, records: 0, complete: false };
        inputsReport.push(progress);
        inputNames.push(input.name);
        const tStart = performance.now();
        let tIn = tStart;
        for await (const batch of decodeInput(input, decodeOptions, decodeSink, progress)) {
          decodeCounters.timeMs += performance.now() - tIn;
          decodeCounters.recordsOut += batch.length;
          decodeCounters.recordsIn += batch.length;
          decodeCounters.tokensOut += tokenSum(batch);
          yield batch;
          await turn();
          tIn = performance.now();
          if (stopped()) break;
        }
        decodeCounters.bytesIn += progress.bytes;
      }
    }

    const stages = p.steps.map((s, i) => {
      const step = steps[i];
      const c = counters[i];
      const isGenerator = i === 0 && firstGenerates;
      return async function* (src: AsyncIterable<Rec[]>): AsyncGenerator<Rec[]> {
        for await (const batch of src) {
          if (isGenerator) {
            // The generator step's own records arrive here; they are its output, not its input.
            c.recordsOut += batch.length;
            c.tokensOut += tokenSum(batch);
            yield batch;
            continue;
          }
          c.recordsIn += batch.length;
          c.tokensIn += tokenSum(batch);
          const t = performance.now();
          const out = await step.process(batch);
          c.timeMs += performance.now() - t;
          c.recordsOut += out.length;
          c.tokensOut += tokenSum(out);
          if (out.length) yield out;
          const wait = rejectsOut?.drained() ?? errorsOut?.drained();
          if (wait) await wait;
        }
        if (step.flush) {
          const t = performance.now();
          const out = await step.flush();
          c.timeMs += performance.now() - t;
          c.recordsOut += out.length;
          c.tokensOut += tokenSum(out);
          // Hand large flushes on in bounded batches.
          for (let k = 0; k < out.length; k += 1024) yield out.slice(k, k + 1024);
        }
      };
    });

    const output = opts.outputStream ? { stream: opts.outputStream, done: Promise.resolve(), name: '<stream>' } : openOutput(opts.output ?? p.sink);
    const toStdout = output.stream === process.stdout;
    const onOutputError = (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') {
        outputClosed = true;
        stop('ok');
      }
    };
    output.stream.on('error', onOutputError);

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

    async function* encode(src: AsyncIterable<Rec[]>): AsyncGenerator<string> {
      for await (const batch of src) yield encodeBatch(batch);
    }

    try {
      await pipeline([Readable.from(source(), { objectMode: true, highWaterMark: 1 }), ...stages, encode, output.stream] as unknown as Parameters<typeof pipeline>, {
        signal: abort.signal,
        end: !(toStdout || opts.outputStream),
      } as never);
      await output.done;
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (outputClosed || err.code === 'EPIPE') {
        outputClosed = true;
      } else throw e;
    } finally {
      output.stream.off('error', onOutputError);
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
      await errorsOut?.close();
      await rejectsOut?.close();
    } catch (e) {
      failure ??= e as Error;
    }
    removeTmpDir(tmpDir);
  }

  const elapsedMs = performance.now() - t0;
  const allComplete = inputsReport.every((x) => x.complete);
  let status: RunReport['status'];
  const s = stopped();
  if (failure) status = 'failed';
  else if (outputClosed) status = 'ok';
  else if (s === 'interrupted') status = 'interrupted';
  else if (s === 'max-errors') status = 'max-errors';
  else if (errorCount > 0 || !allComplete) status = 'input-errors';
  else status = 'ok';
  const exitCode = { ok: EXIT.ok, failed: EXIT.failed, interrupted: EXIT.interrupted, 'max-errors': EXIT.maxErrors, 'input-errors': EXIT.inputErrors }[status];

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
    inputs: inputsReport.map((x, i) => ({ name: inputNames[i], bytes: x.bytes, records: x.records, complete: x.complete, ...(x.error && { error: x.error }) })),
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
    const { writeFileSync } = await import('node:fs');
    writeFileSync(opts.report, JSON.stringify(report, null, 2) + '\n');
  }
  if (opts.summary) log(formatSummary(report));
  if (failure && !opts.summary) throw failure;
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
