// The operator contract. Built-in and custom operators export the same descriptor.
import type { OptionSchema } from './options.ts';
import { hashForm, type HashFormOptions } from './text/normalize.ts';

/** One document. `id` and `text` are required; every other field is carried through untouched. */
export interface Rec {
  id: string;
  text: string;
  [field: string]: unknown;
}

/**
 * Data that operators pass to later steps but never emit (normalized text, shingles,
 * signatures). It lives under a symbol key, which JSON.stringify skips.
 */
export const INTERNAL: unique symbol = Symbol.for('mixstream.internal');

export interface Internals {
  /** The hashing form written by `normalize` (lowercased, punctuation and digits folded). */
  hashText?: string;
  /** The folding `hashText` was made with (`normalize`'s fold options, as JSON): `setText` makes it again. */
  hashFold?: string;
  /** Shingle hashes written by `shingle`. */
  shingles?: Uint32Array;
  /** MinHash signature written by `minhash`. */
  signature?: Uint32Array;
  [key: string]: unknown;
}

export function internals(rec: Rec): Internals {
  const r = rec as Rec & { [INTERNAL]?: Internals };
  return (r[INTERNAL] ??= {});
}

export function peekInternals(rec: Rec): Internals | undefined {
  return (rec as Rec & { [INTERNAL]?: Internals })[INTERNAL];
}

/**
 * Replaces a record's text (a step that edits it, such as C4's line removal). The hashing form
 * an earlier `normalize` made is made again from the new text with the same folding, so later
 * steps (exact-dedup, shingle) compare what is emitted.
 */
export function setText(rec: Rec, text: string): void {
  rec.text = text;
  const ints = peekInternals(rec);
  if (typeof ints?.hashText === 'string') ints.hashText = hashForm(text, ints.hashFold ? (JSON.parse(ints.hashFold) as HashFormOptions) : {});
}

export interface StepStats {
  /** Adds `n` to a named counter shown in the step's summary (e.g. `clusters`). */
  count(name: string, n?: number): void;
  /** Records a number in a named histogram kept for the report (e.g. score values). */
  observe(name: string, value: number): void;
}

/** A step before this one in the pipeline: its operator and resolved options. */
export interface UpstreamStep {
  readonly op: string;
  readonly options: Readonly<Record<string, unknown>>;
}

/** The last step of operator `op` in `steps`, if any. */
export function lastStep(steps: readonly UpstreamStep[], op: string): UpstreamStep | undefined {
  return steps[steps.map((s) => s.op).lastIndexOf(op)];
}

/**
 * A step's options cannot work with the data or the files it meets at run time (a persisted
 * index built with other settings, a path that does not exist): the run stops with exit status 2,
 * as for an invalid pipeline, and the message names the option.
 */
export class StepOptionError extends Error {}

/** A StepOptionError naming the step: `step 2 (mix): option sources[0].paths: no file matches ...`. */
export function stepOptionError(ctx: Pick<StepContext, 'stepIndex' | 'op'>, message: string): StepOptionError {
  return new StepOptionError(`step ${ctx.stepIndex} (${ctx.op}): ${message}`);
}

export interface StepContext {
  /** 0-based position of the step in the pipeline. */
  readonly stepIndex: number;
  /** The steps before this one (decode excluded), in pipeline order. */
  readonly upstream: readonly UpstreamStep[];
  /** The operator name as written in the pipeline (`minhash`, `./my-op.ts`). */
  readonly op: string;
  /** Directory of the pipeline file: relative paths in options resolve against it. */
  readonly baseDir: string;
  /**
   * A private scratch directory for spill files; removed at the end of the run. With
   * `--checkpoint` it lives in the checkpoint directory and survives a crash: on resume,
   * `restore` finds the files the interrupted run left there (also those written after its
   * last checkpoint, which the step must ignore or cut back), so files that only grow or are
   * written once need not be copied into each checkpoint.
   */
  readonly tmpDir: string;
  /** Cores the step may use for worker threads. */
  readonly workers: number;
  /** True when the run resumes from a checkpoint that holds this step's state: `restore` follows `create`. */
  readonly resuming: boolean;
  /** Aborted when the run fails (a stop by signal or a closed output lets the records in flight finish instead). */
  readonly signal: AbortSignal;
  /**
   * True once the run has been stopped before the end of its input (a signal, `--max-errors`, a
   * closed output): a `flush` then covers only part of the input, so a step must not present
   * what it writes at the end (a persisted index, say) as complete.
   */
  readonly stopped: boolean;
  readonly stats: StepStats;
  /** A record leaves the stream on purpose: counted as `dropped_<reason>`, written to the rejects output if one is set. */
  drop(rec: Rec, reason: string): void;
  /**
   * A record cannot be processed: counted per reason as an error, written to the errors output, the run exits non-zero.
   * `where` adds what names the bad input when there is no record (a source step's file, line and raw line).
   */
  error(rec: Rec | undefined, reason: string, message: string, where?: { input?: string; line?: number; raw?: unknown; [key: string]: unknown }): void;
  /**
   * Sets an output field. Writing over a field the record came with is never silent: it is
   * counted (`overwrote_<field>`) and warned about once per step.
   */
  annotate(rec: Rec, field: string, value: unknown): void;
  /** A message on stderr, prefixed by the step. */
  log(message: string): void;
}

/** A running step. Batches flow through `process` in order; `flush` runs once at the end of input. */
export interface Step {
  process(batch: Rec[]): Rec[] | Promise<Rec[]>;
  /**
   * Source steps only (such as `mix`): when the first step of a pipeline has `generate`, the
   * runner pulls batches from it instead of reading the CLI's inputs or stdin.
   */
  generate?(): AsyncIterable<Rec[]>;
  flush?(): Rec[] | Promise<Rec[]>;
  /**
   * Instead of `flush`, for steps that emit much at the end of input (samplers): batches are
   * pulled one at a time, so the end of input stays within the step's memory budget.
   */
  flushBatches?(): AsyncIterable<Rec[]> | Iterable<Rec[]>;
  /**
   * Steps that hand a batch's records on later than the `process` call that took them (worker
   * threads computing ahead) return every record they hold back. Called at each checkpoint
   * barrier, before `checkpoint`: a checkpoint must not cover records still inside a step.
   */
  drain?(): Rec[] | Promise<Rec[]>;
  /** Releases resources; always called once, also after errors. */
  close?(): void | Promise<void>;
  /**
   * Stateful steps (`--checkpoint`): write everything needed to resume into the empty
   * directory `dir`. Called at a barrier: every record before it has been processed, none after.
   * A source step (`generate`) is called between two of its batches. `dir` is on the same file
   * system as `tmpDir`, so immutable spill files can be hard-linked into it instead of copied.
   */
  checkpoint?(dir: string): void | Promise<void>;
  /** Restores the state written by `checkpoint`; called once, before the first batch, on resume. */
  restore?(dir: string): void | Promise<void>;
}

export interface OperatorDescriptor<O = any> {
  /** kebab-case name used in pipeline files. */
  name: string;
  /** One line for `mixstream ops`. */
  summary: string;
  /** Longer help, shown by `mixstream ops <name>`. */
  description?: string;
  options: OptionSchema;
  /** True for operators that keep state across records (dedup index, sampler): with `--checkpoint` their steps must implement checkpoint/restore. */
  stateful?: boolean | ((options: O) => boolean);
  /** True for operators that generate records themselves (their step has `generate`); they must come first. */
  source?: boolean;
  /** True for operators that write every record somewhere themselves and pass none on (`partition`); they must come last. */
  terminal?: boolean;
  /** Fields the operator adds to records, with their meaning (documentation). */
  outputs?: Record<string, string>;
  /**
   * Checks between options that a schema cannot express (and against the steps before, such as
   * the signature length a `minhash` step gives); returns error messages keyed by option path.
   */
  check?(options: O, upstream?: readonly UpstreamStep[]): { path: string; message: string }[];
  /**
   * Files or directories the step writes, by option (paths as given; they resolve against the
   * pipeline file's directory): two steps writing one path, or a run's output, side output or
   * report inside one, are refused before anything is read.
   */
  writes?(options: O): { option: string; path: string }[];
  /**
   * Files or directories the step reads as it starts (a model, a filter, an index), by option
   * (paths as given): a missing one is a pipeline error, so `lint` finds it too. `hint` says how
   * to make it; `check`, given where it is, says what is wrong with one that exists (an index
   * built with other settings), if anything.
   */
  reads?(options: O, upstream?: readonly UpstreamStep[]): { option: string; path: string; hint?: string; check?: (at: string) => string | undefined }[];
  /** Text for `mixstream explain`: what the step will do with these options (after the steps `upstream`). */
  explain?(options: O, upstream?: readonly UpstreamStep[]): string;
  create(options: O, ctx: StepContext): Step | Promise<Step>;
}

/** Identity helper that gives a custom operator file its types. */
export function defineOperator<O>(descriptor: OperatorDescriptor<O>): OperatorDescriptor<O> {
  return descriptor;
}
