// Checkpoints for exactly-once resume. A checkpoint is taken at a barrier that flows through
// the pipeline behind the records: when it reaches the sink, every record before it has been
// processed by every step and written, and none after. The sink then closes the current output
// part, and the checkpoint (input positions, step counters, side-output sizes, step states) is
// committed by an atomic rename. A rerun of the same command continues from it.
import { createHash } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, truncateSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { ResolvedPipeline } from './pipeline.ts';
import { syncPath } from './io/durable.ts';
import { claimLock, releaseLock } from './io/lock.ts';

export interface SerializedCounters {
  recordsIn: number;
  recordsOut: number;
  tokensIn: number;
  tokensOut: number;
  bytesIn: number;
  timeMs: number;
  dropped: Record<string, number>;
  errors: Record<string, number>;
  counters: Record<string, number>;
  histograms: Record<string, { count: number; sum: number; min: number; max: number; sample: number[] }>;
}

export interface InputPosition {
  name: string;
  /** Lines (rows) consumed. */
  line: number;
  complete: boolean;
  bytes: number;
  records: number;
  error?: string;
}

export interface CheckpointState {
  version: 1;
  fingerprint: string;
  seq: number;
  inputs: InputPosition[];
  /** Output parts finished (part-000000 .. part-<parts-1>). */
  parts: number;
  /** Byte sizes of the side outputs at the checkpoint. */
  side: { errors?: number; rejects?: number };
  /** The side outputs' files (absolute paths): a resumed run must write the same ones. Absent in older checkpoints. */
  sidePaths?: { errors?: string; rejects?: string };
  decode: SerializedCounters;
  steps: SerializedCounters[];
  errorCount: number;
  /** Directory (relative to the checkpoint directory) holding step states, if any step has state. */
  stateDir?: string;
  /** The run reached the end of every input and flushed every step. */
  finished: boolean;
  updatedAt: string;
}

/** Identifies a pipeline + inputs: a checkpoint only resumes the run that wrote it. */
export function fingerprint(p: ResolvedPipeline, inputs: string[], output: string): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ decode: p.decode.options, steps: p.steps.map((s) => [s.op, s.options]), inputs, output: path.resolve(output) }));
  return h.digest('hex').slice(0, 32);
}

export class CheckpointStore {
  readonly file: string;
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.file = path.join(dir, 'checkpoint.json');
  }

  private get lockFile(): string {
    return path.join(this.dir, 'lock');
  }

  /**
   * Claims the directory for this process (a `lock` file holding its pid and host): two runs
   * resuming one checkpoint would overwrite each other's parts and step files. Returns who holds
   * it when another running process may (see lib/io/lock.ts); the lock of a run killed outright
   * is taken over.
   */
  claim(): string | undefined {
    return claimLock(this.lockFile);
  }

  /** Gives up the claim of `claim`. */
  release(): void {
    releaseLock(this.lockFile);
  }

  load(): CheckpointState | undefined {
    if (!existsSync(this.file)) return undefined;
    return JSON.parse(readFileSync(this.file, 'utf8')) as CheckpointState;
  }

  /** Scratch directories of the steps (spill files, on-disk indexes), kept across a crash. */
  get workDir(): string {
    return path.join(this.dir, 'work');
  }

  clearWork(): void {
    rmSync(this.workDir, { recursive: true, force: true });
  }

  stateDirFor(seq: number): string {
    return path.join(this.dir, `state-${String(seq).padStart(8, '0')}`);
  }

  /** Atomically replaces the checkpoint, then removes step-state directories it no longer needs. */
  commit(state: CheckpointState): void {
    // Step states (and spill files hard-linked into them) reach the disk before the checkpoint names them.
    if (state.stateDir) syncTree(path.join(this.dir, state.stateDir));
    const tmp = `${this.file}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, JSON.stringify(state, null, 1));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
    // A one-line history of commits: what a resumed run started from, for people and for debugging.
    appendFileSync(path.join(this.dir, 'history.jsonl'), JSON.stringify({ seq: state.seq, parts: state.parts, finished: state.finished, pid: process.pid, at: state.updatedAt, inputs: state.inputs.map((i) => [i.line, i.complete]) }) + '\n');
    syncPath(this.dir);
    for (const entry of readdirSync(this.dir)) {
      if (entry.startsWith('state-') && entry !== state.stateDir) rmSync(path.join(this.dir, entry), { recursive: true, force: true });
    }
  }
}

function syncTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) syncTree(p);
    else if (entry.isFile()) syncPath(p);
  }
  syncPath(dir);
}

export const PART_PREFIX = 'part-';

export function partName(index: number, extension: string): string {
  return `${PART_PREFIX}${String(index).padStart(6, '0')}${extension}`;
}

/**
 * Makes an output directory match a checkpoint: removes parts written after it and partial
 * files of the interrupted run, so the resumed run writes them again exactly once.
 */
export function trimOutputDir(dir: string, parts: number): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir)) {
    if (entry.includes('.partial-')) {
      rmSync(path.join(dir, entry), { force: true });
      continue;
    }
    const m = /^part-(\d+)\./.exec(entry);
    if (m && Number(m[1]) >= parts) rmSync(path.join(dir, entry), { force: true });
  }
}

/** Cuts a side output back to its size at the checkpoint (or creates it empty). */
export function trimSideOutput(file: string, size: number | undefined): void {
  if (!existsSync(file)) return;
  truncateSync(file, size ?? 0);
}
