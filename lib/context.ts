// Step contexts and per-step statistics, shared by the runner and by tests that drive one step.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Rec, StepContext, StepStats, UpstreamStep } from './operator.ts';
import { fmix32 } from './text/shingle.ts';

export interface ErrorEntry {
  step?: number;
  op?: string;
  input?: string;
  line?: number;
  reason: string;
  message: string;
  id?: string;
  /** The offending input: the raw line (or its start), or the record. */
  raw?: unknown;
  [key: string]: unknown;
}

export interface Histogram {
  count: number;
  sum: number;
  min: number;
  max: number;
  /** Fixed-width bins over [min, max] are computed at report time from this reservoir. */
  sample: number[];
}

const HISTOGRAM_SAMPLE = 4096;

/** Counters for one step; what the summary and `--report` show. */
export class StepCounters implements StepStats {
  recordsIn = 0;
  recordsOut = 0;
  tokensIn = 0;
  tokensOut = 0;
  bytesIn = 0;
  timeMs = 0;
  readonly dropped: Record<string, number> = {};
  readonly errors: Record<string, number> = {};
  readonly counters: Record<string, number> = {};
  readonly histograms: Record<string, Histogram> = {};

  count(name: string, n = 1): void {
    this.counters[name] = (this.counters[name] ?? 0) + n;
  }

  observe(name: string, value: number): void {
    if (!Number.isFinite(value)) return;
    const h = (this.histograms[name] ??= { count: 0, sum: 0, min: Infinity, max: -Infinity, sample: [] });
    h.count++;
    h.sum += value;
    if (value < h.min) h.min = value;
    if (value > h.max) h.max = value;
    // Reservoir sample (Algorithm R) keeps the histogram's memory fixed on any input size. Its
    // random slot is a hash of the observation's number, so the same input gives the same
    // report, and a resumed run (which restores count and sample) the uninterrupted run's.
    if (h.sample.length < HISTOGRAM_SAMPLE) h.sample.push(value);
    else {
      const j = Math.floor((fmix32(Math.imul(h.count, 0x9e3779b1) ^ (h.count / 4294967296)) / 4294967296) * h.count);
      if (j < HISTOGRAM_SAMPLE) h.sample[j] = value;
    }
  }

  droppedTotal(): number {
    return Object.values(this.dropped).reduce((a, b) => a + b, 0);
  }

  errorTotal(): number {
    return Object.values(this.errors).reduce((a, b) => a + b, 0);
  }
}

export interface ContextSinks {
  /** Receives every record an operator drops, with its reason. */
  onDrop?(rec: Rec, reason: string, step: number, op: string): void;
  /** Receives every record-level error. */
  onError?(entry: ErrorEntry): void;
  log?(message: string): void;
}

export interface ContextInit extends ContextSinks {
  stepIndex?: number;
  op: string;
  /** The steps before this one (default: none). */
  upstream?: readonly UpstreamStep[];
  baseDir?: string;
  tmpDir?: string;
  workers?: number;
  signal?: AbortSignal;
  /** Whether the run was stopped before the end of its input (default: never). */
  stopped?: () => boolean;
  counters?: StepCounters;
  resuming?: boolean;
}

export function createStepContext(init: ContextInit): StepContext & { counters: StepCounters } {
  const counters = init.counters ?? new StepCounters();
  const stepIndex = init.stepIndex ?? 0;
  const log = init.log ?? ((m: string) => process.stderr.write(m + '\n'));
  const warnedFields = new Set<string>();
  const prefix = `step ${stepIndex} (${init.op})`;
  let tmpDir = init.tmpDir;
  return {
    stepIndex,
    op: init.op,
    upstream: init.upstream ?? [],
    baseDir: init.baseDir ?? process.cwd(),
    get tmpDir() {
      return (tmpDir ??= mkdtempSync(path.join(os.tmpdir(), 'mixstream-')));
    },
    workers: init.workers ?? Math.max(1, os.availableParallelism()),
    resuming: init.resuming ?? false,
    signal: init.signal ?? new AbortController().signal,
    get stopped() {
      return init.stopped?.() ?? false;
    },
    stats: counters,
    counters,
    drop(rec, reason) {
      counters.dropped[reason] = (counters.dropped[reason] ?? 0) + 1;
      init.onDrop?.(rec, reason, stepIndex, init.op);
    },
    error(rec, reason, message, where) {
      counters.errors[reason] = (counters.errors[reason] ?? 0) + 1;
      init.onError?.({ step: stepIndex, op: init.op, ...(where ?? {}), reason, message, id: rec?.id, raw: rec ?? where?.raw });
    },
    annotate(rec, field, value) {
      if (Object.prototype.hasOwnProperty.call(rec, field) && !ownedFields(rec).has(field)) {
        counters.count(`overwrote_${field}`);
        if (!warnedFields.has(field)) {
          warnedFields.add(field);
          log(`${prefix}: warning: record ${rec.id} already has a field "${field}"; it is overwritten (warned once; the report counts each record as overwrote_${field}; rename the field before this step, or set the step's output field option where it has one, to keep it)`);
        }
      }
      ownedFields(rec).add(field);
      rec[field] = value;
    },
    log: (m) => log(`${prefix}: ${m}`),
  };
}

const OWNED = Symbol.for('mixstream.ownedFields');
/** Fields written by mixstream steps on this record (rewriting those is not an overwrite of user data). */
function ownedFields(rec: Rec): Set<string> {
  const r = rec as Rec & { [OWNED]?: Set<string> };
  return (r[OWNED] ??= new Set());
}

export function removeTmpDir(dir: string | undefined): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}
