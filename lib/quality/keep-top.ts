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
// round(fraction·n) records are kept (ties broken by input order) and emitted in input order.
import { once } from 'node:events';
import { createReadStream, createWriteStream, mkdirSync, rmSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Rec } from '../operator.ts';
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
  private readonly digest: TDigest;
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
  private held: Rec[] = [];
  private heldBytes = 0;
  private readonly memoryBytes: number;
  private readonly tmpDir?: string;
  private spillFile?: string;
  private spill?: WriteStream;
  private spilled = 0;

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
    if (this.spill) {
      this.writeSpill(rec);
      return;
    }
    this.held.push(rec);
    this.heldBytes += rec.text.length * 2 + 200;
    if (this.heldBytes > this.memoryBytes) {
      if (!this.tmpDir) throw new Error('keep-top: exact mode over its memory budget needs a tmpDir to spill to');
      mkdirSync(this.tmpDir, { recursive: true });
      this.spillFile = path.join(this.tmpDir, `keep-top-${process.pid}-${Date.now()}.jsonl`);
      this.spill = createWriteStream(this.spillFile);
    }
  }

  private writeSpill(rec: Rec): void {
    this.spill!.write(JSON.stringify(rec) + '\n');
    this.spilled++;
  }

  /** Ends the input: returns the remaining kept records, in input order. */
  async finish(): Promise<Rec[]> {
    if (this.mode === 'stream') {
      return this.warm ? this.releaseWarmup() : [];
    }
    const keep = exactTop(this.scores.subarray(0, this.seen), this.fraction);
    const out: Rec[] = [];
    let i = 0;
    const decide = (rec: Rec) => {
      if (keep[i]) out.push(rec);
      else this.onReject(rec, this.scores[i]);
      i++;
    };
    for (const rec of this.held) decide(rec);
    this.held = [];
    if (this.spill) {
      this.spill.end();
      await once(this.spill, 'close');
      const rl = createInterface({ input: createReadStream(this.spillFile!, 'utf8'), crlfDelay: Infinity });
      for await (const line of rl) if (line) decide(JSON.parse(line));
      this.close();
    }
    this.kept = out.length;
    this.threshold = this.seen ? kthLargest(this.scores.subarray(0, this.seen), Math.max(1, Math.round(this.fraction * this.seen))) : NaN;
    return out;
  }

  /** Records written to the spill file (exact mode). */
  get spilledRecords(): number {
    return this.spilled;
  }

  /** Removes the spill file (also called by finish). */
  close(): void {
    if (this.spillFile) rmSync(this.spillFile, { force: true });
    this.spillFile = undefined;
  }
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
