// Keep the top fraction of a stream by a score.
//
// "stream": one pass. The first `warmup` records are buffered and the exact top fraction of
// them is kept; after that a record is kept when its score is above the running estimate
// (t-digest) of the (1 - fraction) quantile of every score seen so far. With `correct`, the
// quantile aimed at moves by the running error of the kept share, so the kept share converges
// to the target even when ties or a drifting score distribution would bias a fixed threshold.
// Scores within a narrow quantile band around the threshold (ties, and the digest's own error)
// are kept only while the kept share is below the target.
//
// "exact": two passes. Records are held in memory up to `memoryBytes` and spilled to an NDJSON
// file beyond it; scores stay in memory (8 bytes per record). At the end the exact top
// round(fraction·n) records are kept (ties broken by input order) and emitted in input order,
// batch by batch.
//
// Checkpoints (`save`/`load`): stream mode writes its small state (counts, thresholds, digest,
// warm-up buffer) into the checkpoint directory. Exact mode writes the records held in memory,
// and keeps the spill file and a file of scores (appended at each checkpoint) by hard link with
// their lengths, so a checkpoint does not copy what earlier ones already hold.
import { closeSync, mkdirSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Rec } from '../operator.ts';
import { decodeRecord, encodeRecord } from '../record-codec.ts';
import { emptyDir, keepInCheckpoint, LineWriter, readFileLines, resumeFromCheckpoint } from '../sketch/spill-file.ts';
import { SpillLog } from '../sketch/spill-log.ts';
import { TDigest } from '../sketch/tdigest.ts';

export type KeepTopMode = 'stream' | 'exact';

export interface TopFractionOptions {
  /** Share of records to keep, in (0, 1]. */
  fraction: number;
  mode?: KeepTopMode;
  /** Records buffered before the first decision (stream mode). Default 2000. */
  warmup?: number;
  /** Directory for the spill file (exact mode). */
  tmpDir?: string;
  /** Bytes of records held in memory before spilling (exact mode). Default 256 MiB. */
  memoryBytes?: number;
  /** t-digest compression (stream mode). Default 200. */
  compression?: number;
  /** Steer the quantile by the running error of the kept share (stream mode). Default true. */
  correct?: boolean;
  /**
   * Half-width, in quantile units, of the band around the threshold where records are kept
   * only while the kept share is below the target (stream mode). It absorbs ties and the
   * digest's error at the threshold. Default 0.005.
   */
  band?: number;
  /**
   * With `correct`, records above the band are still rejected once the kept share exceeds the
   * target by this much, and records below it are kept while the kept share is this much under
   * the target: a bound on the error for drifting input (scores rising or falling through the
   * stream), at the price of keeping by arrival rather than by score while it binds.
   * Default 0.005.
   */
  slack?: number;
  /** How strongly the running error of the kept share moves the quantile aimed at (stream mode). Default 4. */
  gain?: number;
  /** Receives every record that is not kept. */
  onReject?: (rec: Rec, score: number) => void;
}

export class TopFractionSelector {
  readonly fraction: number;
  readonly mode: KeepTopMode;
  private readonly warmup: number;
  private readonly correct: boolean;
  private readonly onReject: (rec: Rec, score: number) => void;
  private digest: TDigest;
  private seen = 0;
  private kept = 0;
  private warm: { rec: Rec; score: number }[] | null = [];
  private threshold = NaN;
  private lo = NaN;
  private hi = NaN;
  private readonly band: number;
  private readonly gain: number;
  private readonly slack: number;
  private sinceRefresh = 0;
  // exact mode
  private scores = new Float64Array(1024);
  /** The records, in memory up to `memoryBytes`, then in a spill file. */
  private readonly records: SpillLog<Rec>;
  private readonly memoryBytes: number;
  private readonly tmpDir?: string;
  /** With checkpoints: the scores, appended at each checkpoint. */
  private scoreFile?: { file: string; fd: number; bytes: number };

  constructor(o: TopFractionOptions) {
    if (!(o.fraction > 0 && o.fraction <= 1)) throw new Error(`keep-top: fraction must be in (0, 1], got ${o.fraction}`);
    this.fraction = o.fraction;
    this.mode = o.mode ?? 'stream';
    this.warmup = Math.max(1, o.warmup ?? 2000);
    this.correct = o.correct ?? true;
    this.band = o.band ?? 0.005;
    this.gain = o.gain ?? 4;
    this.slack = o.slack ?? 0.005;
    this.onReject = o.onReject ?? (() => {});
    this.digest = new TDigest(o.compression ?? 200);
    this.memoryBytes = o.memoryBytes ?? 256 * 2 ** 20;
    this.tmpDir = o.tmpDir;
    this.records = new SpillLog<Rec>({
      memoryBytes: this.memoryBytes,
      dir: () => this.scratchDir('spill'),
      serialize: encodeRecord,
      deserialize: decodeRecord,
      sizeOf: (rec) => rec.text.length * 2 + 200,
    });
  }

  private scratchDir(what: string): string {
    if (!this.tmpDir) throw new Error(`keep-top: exact mode needs a tmpDir to ${what}`);
    mkdirSync(this.tmpDir, { recursive: true });
    return this.tmpDir;
  }

  /** Records seen and kept so far (kept counts only decided records). */
  get stats(): { seen: number; kept: number; threshold: number } {
    return { seen: this.seen, kept: this.kept, threshold: this.threshold };
  }

  /** Adds one record; returns the records released now (kept, in input order). */
  push(rec: Rec, score: number): Rec[] {
    if (typeof score !== 'number' || Number.isNaN(score)) throw new Error(`keep-top: record ${rec.id} has no numeric score (got ${JSON.stringify(score)})`);
    this.seen++;
    if (this.mode === 'exact') {
      this.holdExact(rec, score);
      return [];
    }
    this.digest.add(score);
    if (this.warm) {
      this.warm.push({ rec, score });
      if (this.warm.length < this.warmup) return [];
      return this.releaseWarmup();
    }
    if (++this.sinceRefresh >= 32 || Number.isNaN(this.threshold)) this.refresh();
    const target = this.fraction * this.seen;
    const slack = Math.max(1, this.slack * this.seen);
    const keep = score > this.hi
      ? !this.correct || this.kept < target + slack
      : (score >= this.lo && this.kept < target) || (this.correct && this.kept < target - slack);
    if (keep) {
      this.kept++;
      return [rec];
    }
    this.onReject(rec, score);
    return [];
  }

  private refresh(): void {
    this.sinceRefresh = 0;
    let q = 1 - this.fraction;
    if (this.correct && this.seen > 0) {
      // Kept too many so far -> aim higher, and the other way round.
      q += this.gain * (this.kept / Math.max(1, this.seen) - this.fraction);
    }
    const at = (x: number) => this.digest.quantile(Math.min(1, Math.max(0, x)));
    this.threshold = at(q);
    this.lo = at(q - this.band);
    this.hi = at(q + this.band);
  }

  /** Exact top share of the warm-up buffer; releases its kept records in order. */
  private releaseWarmup(): Rec[] {
    const warm = this.warm!;
    this.warm = null;
    const keepIdx = exactTop(Float64Array.from(warm, (w) => w.score), this.fraction);
    const out: Rec[] = [];
    warm.forEach((w, i) => {
      if (keepIdx[i]) out.push(w.rec);
      else this.onReject(w.rec, w.score);
    });
    this.kept += out.length;
    this.refresh();
    return out;
  }

  private holdExact(rec: Rec, score: number): void {
    const i = this.seen - 1;
    if (i >= this.scores.length) {
      const s = new Float64Array(this.scores.length * 2);
      s.set(this.scores);
      this.scores = s;
    }
    this.scores[i] = score;
    this.records.append(rec);
  }

  /**
   * Ends the input: the remaining kept records, in input order, in batches of up to `batchSize`
   * (exact mode reads its spill file back one batch at a time).
   */
  *finishBatches(batchSize = 1024): Generator<Rec[]> {
    if (this.mode === 'stream') {
      const out = this.warm ? this.releaseWarmup() : [];
      for (let k = 0; k < out.length; k += batchSize) yield out.slice(k, k + batchSize);
      return;
    }
    const keep = exactTop(this.scores.subarray(0, this.seen), this.fraction);
    let i = 0;
    let kept = 0;
    for (const batch of this.records.read(batchSize)) {
      const out: Rec[] = [];
      for (const rec of batch) {
        if (keep[i]) out.push(rec);
        else this.onReject(rec, this.scores[i]);
        i++;
      }
      kept += out.length;
      if (out.length) yield out;
    }
    this.close();
    this.kept = kept;
    this.threshold = this.seen ? kthLargest(this.scores.subarray(0, this.seen), Math.max(1, Math.round(this.fraction * this.seen))) : NaN;
  }

  /** Ends the input: returns the remaining kept records, in input order. */
  async finish(): Promise<Rec[]> {
    const out: Rec[] = [];
    for (const batch of this.finishBatches()) for (const r of batch) out.push(r);
    return out;
  }

  /** Records written to the spill file (exact mode). */
  get spilledRecords(): number {
    return this.records.spilledItems;
  }

  /** Removes the spill and score files from tmpDir (also done at the end of finish); checkpoints that link them keep theirs. */
  close(): void {
    this.records.close();
    if (this.scoreFile) {
      closeSync(this.scoreFile.fd);
      rmSync(this.scoreFile.file, { force: true });
      this.scoreFile = undefined;
    }
  }

  /**
   * Writes the state into the empty directory `dir` (a checkpoint): everything pushed so far,
   * such that `load` on a new selector with the same options continues exactly.
   */
  save(dir: string): void {
    emptyDir(dir);
    const state: SavedState = { version: STATE_VERSION, mode: this.mode, fraction: this.fraction, seen: this.seen, kept: this.kept };
    if (this.mode === 'stream') {
      state.warmup = this.warmup;
      state.sinceRefresh = this.sinceRefresh;
      state.warm = this.warm ? this.warm.length : null;
      writeFileSync(path.join(dir, 'thresholds.f64'), new Float64Array([this.threshold, this.lo, this.hi]));
      writeFileSync(path.join(dir, 'digest.f64'), this.digest.state());
      if (this.warm) {
        writeFileSync(path.join(dir, 'warm-scores.f64'), Float64Array.from(this.warm, (w) => w.score));
        const out = new LineWriter(path.join(dir, 'warm.jsonl'));
        for (const w of this.warm) out.line(encodeRecord(w.rec));
        out.close();
      }
    } else {
      state.memoryBytes = this.memoryBytes;
      const records = path.join(dir, 'records');
      mkdirSync(records);
      this.records.save(records);
      // Scores only grow: append those that arrived since the last checkpoint, link the file.
      if (this.seen > 0) {
        const sf = (this.scoreFile ??= newScoreFile(this.scratchDir('keep its scores')));
        const bytes = new Uint8Array(this.scores.buffer, sf.bytes, this.seen * 8 - sf.bytes);
        for (let off = 0; off < bytes.length; ) off += writeSync(sf.fd, bytes, off, bytes.length - off, sf.bytes + off);
        sf.bytes = this.seen * 8;
        keepInCheckpoint(sf.file, path.join(dir, 'scores.f64'));
      }
    }
    writeFileSync(path.join(dir, 'state.json'), JSON.stringify(state));
  }

  /**
   * Restores what `save` wrote into `dir`, on a new selector (same options) that has seen no
   * record. In exact mode the scratch files an interrupted run left in tmpDir are removed; the
   * checkpoint's own files are cut back to their recorded lengths.
   */
  load(dir: string): void {
    if (this.seen > 0) throw new Error('keep-top: load needs a selector that has seen no record');
    const state = JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8')) as SavedState;
    const same = (what: string, saved: unknown, now: unknown) => {
      if (saved !== now) throw new Error(`keep-top: the checkpoint in ${dir} was saved with ${what} ${JSON.stringify(saved)}, this step has ${JSON.stringify(now)}`);
    };
    same('state version', state.version, STATE_VERSION);
    same('mode', state.mode, this.mode);
    same('fraction', state.fraction, this.fraction);
    this.seen = state.seen;
    this.kept = state.kept;
    if (this.mode === 'stream') {
      same('warmup', state.warmup, this.warmup);
      this.sinceRefresh = state.sinceRefresh!;
      [this.threshold, this.lo, this.hi] = readF64(path.join(dir, 'thresholds.f64'));
      this.digest = TDigest.fromState(readF64(path.join(dir, 'digest.f64')));
      if (state.warm === null) this.warm = null;
      else if (state.warm) {
        const scores = readF64(path.join(dir, 'warm-scores.f64'));
        this.warm = [];
        for (const line of readFileLines(path.join(dir, 'warm.jsonl'))) this.warm.push({ rec: decodeRecord(line), score: scores[this.warm.length] });
        if (this.warm.length !== state.warm || scores.length !== state.warm) throw new Error(`keep-top: ${dir}: a warm-up buffer of ${state.warm} records, found ${this.warm.length} records and ${scores.length} scores`);
      }
      return;
    }
    same('memoryBytes', state.memoryBytes, this.memoryBytes);
    // What the interrupted run left in tmpDir is either linked from the checkpoint or newer than it.
    emptyDir(this.scratchDir('restore a checkpoint'));
    this.records.load(path.join(dir, 'records'));
    if (this.records.length !== this.seen) throw new Error(`keep-top: ${dir}: ${this.seen} records seen, ${this.records.length} saved`);
    this.scores = new Float64Array(Math.max(1024, 2 * this.seen));
    if (this.seen > 0) {
      const sf = newScoreFile(this.tmpDir!, path.join(dir, 'scores.f64'), this.seen * 8);
      const bytes = new Uint8Array(this.scores.buffer, 0, sf.bytes);
      for (let off = 0; off < bytes.length; ) {
        const n = readSync(sf.fd, bytes, off, bytes.length - off, off);
        if (n === 0) throw new Error(`keep-top: ${dir}/scores.f64 is shorter than the ${this.seen} scores the checkpoint recorded`);
        off += n;
      }
      this.scoreFile = sf;
    }
  }
}

const STATE_VERSION = 1;
let scoreFiles = 0;

/** A new scores file in `dir`, or (with `from`) the checkpoint's file `from` cut back to `bytes`. */
function newScoreFile(dir: string, from?: string, bytes = 0): { file: string; fd: number; bytes: number } {
  const file = path.join(dir, `keep-top-scores-${process.pid}-${++scoreFiles}.f64`);
  const fd = from ? resumeFromCheckpoint(from, file, bytes) : openSync(file, 'w+');
  return { file, fd, bytes };
}

interface SavedState {
  version: number;
  mode: KeepTopMode;
  fraction: number;
  seen: number;
  kept: number;
  // stream mode
  warmup?: number;
  sinceRefresh?: number;
  /** Records in the warm-up buffer; null once it was released. */
  warm?: number | null;
  // exact mode
  memoryBytes?: number;
}

function readF64(file: string): Float64Array {
  const b = readFileSync(file);
  return new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function kthLargest(scores: Float64Array, k: number): number {
  const sorted = Float64Array.from(scores).sort();
  return sorted[sorted.length - k];
}

/**
 * Flags the round(fraction·n) highest scores (at least one when n > 0), ties broken by position
 * (earlier first).
 */
export function exactTop(scores: Float64Array, fraction: number): Uint8Array {
  const n = scores.length;
  const keep = new Uint8Array(n);
  if (n === 0) return keep;
  const k = Math.min(n, Math.max(1, Math.round(fraction * n)));
  const t = kthLargest(scores, k);
  let above = 0;
  for (let i = 0; i < n; i++) if (scores[i] > t) above++;
  let ties = k - above;
  for (let i = 0; i < n; i++) {
    if (scores[i] > t) keep[i] = 1;
    else if (scores[i] === t && ties > 0) {
      keep[i] = 1;
      ties--;
    }
  }
  return keep;
}
