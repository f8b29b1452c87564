// lsh-band-join: near-duplicate removal with MinHash LSH (Zyda-2 cross-dedup, Ziya2 content dedup).
// Joins each document against the kept documents seen before it (and against persisted indexes
// of other datasets), verifies candidates, and keeps one document per cluster.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { isPathReference } from '../lib/registry.ts';
import { realTarget } from '../lib/pipeline.ts';
import { defineOperator, internals, lastStep, peekInternals, stepOptionError, type Rec, type StepContext, type UpstreamStep } from '../lib/operator.ts';
import { LshIndex, LshIndexReader, readIndexParams, balancedBands, bandKeys, candidateProbability, chooseBands, configureConnection, existingIndexState, claimIndexDir, indexCheckpoint, markIndexCheckpointed, releaseIndexDir, removeIndexFiles, storeCacheBytes, type IndexParams, type IndexedDoc, type ProbeTask } from '../lib/sketch/lsh.ts';
import { createWorkerPool, type WorkerPool } from '../lib/parallel.ts';
import { estimateJaccard } from '../lib/sketch/minhash.ts';
import { syncPath } from '../lib/io/durable.ts';
import { cannotWrite } from '../lib/io/output.ts';
import { exactJaccard } from '../lib/text/shingle.ts';

export interface LshBandJoinOptions {
  threshold: number;
  bands?: number;
  rows?: number;
  verify: 'signature' | 'exact' | 'none';
  keep: 'first' | 'priority';
  priorityField: string;
  priority?: string[];
  against: string[];
  writeIndex?: string;
  emit: 'kept' | 'removed' | 'all';
  memoryMB: number;
}

/** Perms assumed by `explain` (the signature length is only known from the data): Zyda-2's 128. */
const EXPLAIN_PERMS = 128;

export function resolveBands(o: Pick<LshBandJoinOptions, 'threshold' | 'bands' | 'rows'>, perms: number): { bands: number; rows: number } {
  if (o.bands !== undefined && o.rows !== undefined) return { bands: o.bands, rows: o.rows };
  if (o.rows !== undefined) return { bands: Math.floor(perms / o.rows), rows: o.rows };
  if (o.bands !== undefined) return { bands: o.bands, rows: Math.floor(perms / o.bands) };
  const c = chooseBands(o.threshold, perms);
  return { bands: c.bands, rows: c.rows };
}

/**
 * A warning when bands/rows given in the options leave many pairs at the threshold uncaught (a
 * pair never becomes a candidate, so no verification can find it); undefined otherwise.
 */
function lowCatchWarning(o: Pick<LshBandJoinOptions, 'threshold' | 'bands' | 'rows'>, bands: number, rows: number): string | undefined {
  const p = candidateProbability(o.threshold, bands, rows);
  if (p >= 0.9) return undefined;
  // Chosen here: even one row per band over every perm cannot reach the target at this threshold.
  if (o.bands === undefined && o.rows === undefined) {
    return `warning: the signature is too short for this threshold: the best choice, ${bands} bands x ${rows} rows, makes only ${(p * 100).toFixed(1)}% of the pairs at Jaccard ${o.threshold} candidates; more minhash perms catch more of them`;
  }
  return `warning: ${bands} bands x ${rows} rows make only ${(p * 100).toFixed(1)}% of the pairs at Jaccard ${o.threshold} candidates: the rest are never compared; fewer rows per band (or no bands/rows, to have them chosen) catch them`;
}

/** Why bands x rows do not fit `perms` (`bandsFit` false), naming the option given alone when it is the one too large. */
function bandsMisfit(o: Pick<LshBandJoinOptions, 'bands' | 'rows'>, bands: number, rows: number, perms: number, of: string): string {
  const alone = o.bands === undefined ? 'rows' : o.rows === undefined ? 'bands' : undefined;
  if (alone && (alone === 'rows' ? rows : bands) > perms) return `${alone} ${alone === 'rows' ? rows : bands} is more than the ${perms} perms of ${of}: at most ${perms}`;
  return `bands x rows (${bands} x ${rows}) must be >= 1 and at most the ${perms} perms of ${of}`;
}

/** Whether `bands` x `rows` can be taken from a signature of `perms` values. */
function bandsFit(bands: number, rows: number, perms: number): boolean {
  return bands >= 1 && rows >= 1 && bands * rows <= perms;
}

/** The signature length the last `minhash` step of `upstream` gives, if there is one. */
function upstreamPerms(upstream: readonly UpstreamStep[] | undefined): number | undefined {
  const m = lastStep(upstream ?? [], 'minhash');
  const perms = m ? Number(m.options.perms) : NaN;
  // A value the minhash step refuses is reported there, once.
  return Number.isInteger(perms) && perms >= 1 ? perms : undefined;
}

// The options that decide what signature a document gets: the folding of the hashing form
// (normalize's cleaning options do not change it: the hashing form applies NFKC, drops controls
// and collapses whitespace itself), the shingles and the MinHash family. Two runs whose signatures
// differ in any of them share no band keys except by accident, so an `against` index of the one
// is useless to the other.
const SIGNATURE_OPTIONS: Record<string, string[]> = {
  normalize: ['lowercase', 'foldPunctuation', 'foldDigits'],
  shingle: ['unit', 'n', 'seed'],
  minhash: ['perms', 'seed', 'scheme'],
};
/** Without a normalize step, shingles are taken over the text folded as normalize does by default. */
const DEFAULT_FOLD: UpstreamStep = { op: 'normalize', options: { lowercase: true, foldPunctuation: true, foldDigits: true } };

/**
 * What makes the signatures this step joins, from the steps before it: the last `minhash` step,
 * the last `shingle` and `normalize` steps before that (or the minhash step's own shingle options,
 * and the default folding), as "op{option=value,...}" parts. Undefined when no `minhash` step comes before (signatures made
 * by a custom operator).
 */
export function signatureFamily(upstream: readonly UpstreamStep[]): string | undefined {
  const m = upstream.map((s) => s.op).lastIndexOf('minhash');
  if (m < 0) return undefined;
  const before = upstream.slice(0, m);
  const last = (op: string) => lastStep(before, op);
  const part = (op: string, step: UpstreamStep | undefined, names: string[], rename: Record<string, string> = {}) =>
    `${op}{${step ? names.map((n) => `${rename[n] ?? n}=${JSON.stringify(step.options[n])}`).join(',') : 'none'}}`;
  const minhash = upstream[m];
  const shingle = last('shingle');
  return [
    part('normalize', last('normalize') ?? DEFAULT_FOLD, SIGNATURE_OPTIONS.normalize),
    shingle ? part('shingle', shingle, SIGNATURE_OPTIONS.shingle) : part('shingle', minhash, ['unit', 'n', 'shingleSeed'], { shingleSeed: 'seed' }),
    part('minhash', minhash, SIGNATURE_OPTIONS.minhash),
  ].join(' ');
}

/** The parts of two signature families that differ, for an error message. */
function familyDifference(a: string, b: string): string {
  const pa = a.split(' '), pb = b.split(' ');
  return pa.map((x, i) => (x === pb[i] ? '' : `${pb[i]} there, ${x} here`)).filter(Boolean).join('; ');
}

/**
 * What makes the index of `params` (listed as against[i]) unusable by this step, or undefined: no
 * shingle sets for verify "exact", signatures of other settings, or (once the signature length
 * `perms` is known) other bands and rows. Checked by the pipeline check (`lint`) and as the step
 * starts.
 */
function againstProblem(o: LshBandJoinOptions, i: number, params: IndexParams, family: string | undefined, perms: number | undefined): string | undefined {
  const p = o.against[i];
  if (o.verify === 'exact' && !params.shingles) {
    return `${p} was written without shingle sets (verify "signature" or "none"); use verify "signature" or rebuild it with verify "exact"`;
  }
  const theirs = params.family;
  if (family && theirs && theirs !== family) {
    return `${p} holds signatures made with other settings (${familyDifference(family, theirs)}), so no document here could match one there: use the normalize, shingle and minhash options of the run that wrote it`;
  }
  if (perms === undefined) return undefined;
  if (params.perms !== perms) return `${p} holds signatures of ${params.perms} perms, this step's have ${perms}: use minhash perms ${params.perms}`;
  const { bands, rows } = resolveBands(o, perms);
  if (params.bands === bands && params.rows === rows) return undefined;
  const ours = o.bands === undefined && o.rows === undefined ? `this step's threshold ${o.threshold} chooses ${bands} x ${rows}` : `this step sets ${bands} x ${rows}`;
  return `${p} was built with ${params.bands} bands x ${params.rows} rows (threshold ${params.threshold}), ${ours}: set bands: ${params.bands} and rows: ${params.rows} to join against it (P(candidate) at ${o.threshold} = ${candidateProbability(o.threshold, params.bands, params.rows).toFixed(4)})`;
}

interface Match {
  id: string;
  similarity: number;
  /** Where the kept document is: -1 = this run's index, i >= 0 = against[i]; and its slot there. */
  source: number;
  slot: number;
}

interface Decision {
  dupOf: string;
  similarity: number;
}

/** A batch waiting to be joined, with the Bloom probes of its band keys running in a worker thread. */
interface Ahead {
  batch: Rec[];
  /** Per record of the batch: where its bands' answers start in `maybe`, or -1 (not probed). */
  at?: Int32Array;
  maybe?: Promise<Uint32Array>;
  /** The index's generation the probes were made in (a spill since makes them stale). */
  generation: number;
}

/** A document's Bloom answers for the spilled segments, probed ahead. */
interface Probes {
  maybe: Uint32Array;
  at: number;
}

const FLUSH_BATCH = 1024;

// ---------------------------------------------------------------------------------------------
// Record spool for keep: "priority": records wait until the end of input in an SQLite file.
// Internals that are strings or Uint32Arrays (hashText, shingles, signature) survive.

const enc = new TextEncoder();
const dec = new TextDecoder();

function packRecord(rec: Rec): Buffer {
  const ints = peekInternals(rec) ?? {};
  const strings: Record<string, string> = {};
  const arrays: [string, number][] = [];
  const data: Uint32Array[] = [];
  for (const [k, v] of Object.entries(ints)) {
    if (typeof v === 'string') strings[k] = v;
    else if (v instanceof Uint32Array) {
      arrays.push([k, v.length]);
      data.push(v);
    }
  }
  const head = enc.encode(JSON.stringify([rec, strings, arrays]));
  const words = data.reduce((n, a) => n + a.length, 0);
  const pad = (4 - ((4 + head.length) % 4)) % 4;
  const buf = Buffer.alloc(4 + head.length + pad + words * 4);
  buf.writeUInt32LE(head.length, 0);
  buf.set(head, 4);
  let at = 4 + head.length + pad;
  for (const a of data) {
    buf.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
    at += a.byteLength;
  }
  return buf;
}

function unpackRecord(buf: Uint8Array): Rec {
  const len = buf[0] | (buf[1] << 8) | (buf[2] << 16) | (buf[3] << 24);
  const [rec, strings, arrays] = JSON.parse(dec.decode(buf.subarray(4, 4 + len))) as [Rec, Record<string, string>, [string, number][]];
  const ints = internals(rec);
  Object.assign(ints, strings);
  let at = 4 + len + ((4 - ((4 + len) % 4)) % 4);
  for (const [k, n] of arrays) {
    const a = new Uint32Array(n);
    new Uint8Array(a.buffer).set(buf.subarray(at, at + n * 4));
    ints[k] = a;
    at += n * 4;
  }
  return rec;
}

/** Bytes of packed records per spool transaction. */
const SPOOL_TXN_BYTES = 4 * 1024 * 1024;
/** Records read back per query. */
const SPOOL_PAGE = 256;

/**
 * Every record of a keep-"priority" join with its rank, and the decisions made at the end, in an
 * SQLite file under the step's scratch directory. SQLite reads with pread into a page cache of
 * fixed size, so holding the whole input costs that cache, not the input's size: a memory map
 * (LMDB's) keeps every page read back resident, and a write transaction's pages pile up in RAM.
 */
class RecordSpool {
  private db: Database.Database | undefined;
  private statements!: {
    insert: Database.Statement;
    byRank: Database.Statement;
    decide: Database.Statement;
    inOrder: Database.Statement;
  };
  /** Bytes written in the open transaction. */
  private pending = 0;
  count = 0;

  constructor(private readonly cacheBytes: number, private readonly dir: () => string) {}

  private open(): Database.Database {
    if (this.db) return this.db;
    const dir = this.dir();
    mkdirSync(dir, { recursive: true });
    const db = new Database(path.join(dir, 'spool.sqlite'));
    try {
      configureConnection(db, Math.max(1024 * 1024, this.cacheBytes), true, false);
      db.exec(
        'CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY, rank INTEGER NOT NULL, data BLOB NOT NULL);' +
          'CREATE INDEX IF NOT EXISTS records_by_rank ON records (rank, seq);' +
          'CREATE TABLE IF NOT EXISTS decisions (seq INTEGER PRIMARY KEY, dup_of TEXT NOT NULL, similarity REAL NOT NULL);',
      );
      this.statements = {
        insert: db.prepare('INSERT OR REPLACE INTO records (seq, rank, data) VALUES (?, ?, ?)'),
        byRank: db.prepare('SELECT seq, data FROM records WHERE rank = ? AND seq > ? ORDER BY seq LIMIT ?').raw(),
        decide: db.prepare('INSERT OR REPLACE INTO decisions (seq, dup_of, similarity) VALUES (?, ?, ?)'),
        inOrder: db.prepare('SELECT r.seq, r.data, d.dup_of, d.similarity FROM records r LEFT JOIN decisions d ON d.seq = r.seq WHERE r.seq >= ? ORDER BY r.seq LIMIT ?').raw(),
      };
      db.exec('BEGIN');
    } catch (e) {
      db.close();
      throw e;
    }
    return (this.db = db);
  }

  /** Commits every SPOOL_TXN_BYTES, so a transaction's pages never pile up in memory. */
  private wrote(bytes: number): void {
    this.pending += bytes;
    if (this.pending < SPOOL_TXN_BYTES) return;
    this.db!.exec('COMMIT');
    this.db!.exec('BEGIN');
    this.pending = 0;
  }

  push(rec: Rec, rank: number): number {
    this.open();
    const b = packRecord(rec);
    this.statements.insert.run(this.count, rank, b);
    this.wrote(b.length);
    return this.count++;
  }

  /** The records of ranks 0 .. ranks - 1 in (rank, arrival) order, with their sequence numbers. */
  *byRank(ranks: number): Generator<[number, Rec]> {
    if (this.count === 0) return;
    for (let rank = 0; rank < ranks; rank++) {
      for (let seq = -1; ; ) {
        const rows = this.statements.byRank.all(rank, seq, SPOOL_PAGE) as [number, Buffer][];
        if (rows.length === 0) break;
        for (const [s, data] of rows) yield [s, unpackRecord(data)];
        seq = rows[rows.length - 1][0];
      }
    }
  }

  /** Records the decision for record `seq`: it duplicates `d.dupOf`. */
  decide(seq: number, d: Decision): void {
    this.statements.decide.run(seq, d.dupOf, d.similarity);
    this.wrote(d.dupOf.length + 16);
  }

  /** The records in arrival order, each with its decision (undefined: kept). */
  *inOrder(): Generator<[Rec, Decision | undefined]> {
    if (this.count === 0) return;
    for (let from = 0; from < this.count; from += SPOOL_PAGE) {
      const rows = this.statements.inOrder.all(from, SPOOL_PAGE) as [number, Buffer, string | null, number | null][];
      if (rows.length !== Math.min(SPOOL_PAGE, this.count - from) || rows[0][0] !== from) throw new Error(`record spool: records from ${from} are missing`);
      for (const [, data, dupOf, similarity] of rows) yield [unpackRecord(data), dupOf === null ? undefined : { dupOf, similarity: similarity! }];
    }
  }

  /** Checkpoint: what was pushed is committed and on disk; `restore` drops what came after. */
  save(): { count: number } {
    if (this.db) {
      this.db.exec('COMMIT');
      syncPath(path.join(this.dir(), 'spool.sqlite'));
      this.db.exec('BEGIN');
      this.pending = 0;
    }
    return { count: this.count };
  }

  restore(state: { count: number }): void {
    this.count = state.count;
    if (state.count === 0 && !existsSync(path.join(this.dir(), 'spool.sqlite'))) return;
    this.open();
    this.db!.prepare('DELETE FROM records WHERE seq >= ?').run(state.count);
    this.db!.exec('DELETE FROM decisions');
    const n = this.db!.prepare('SELECT count(*) FROM records').pluck().get() as number;
    if (n !== state.count) throw new Error(`the checkpointed record spool holds ${n} records, expected ${state.count}`);
  }

  close(): void {
    if (this.db?.open) this.db.close();
    this.db = undefined;
  }
}

/**
 * A count per slot (duplicates found per kept document) at one byte per slot: counts of 255 and
 * more move to a map. Slots grow with the input, so this is the join's only per-document state
 * outside the index budget; a byte keeps it at 1 MB per million kept documents.
 */
class SlotCounts {
  private counts = new Uint8Array(1024);
  private readonly overflow = new Map<number, number>();

  add(slot: number): void {
    if (slot >= this.counts.length) {
      const grown = new Uint8Array(Math.max(slot + 1, this.counts.length * 2));
      grown.set(this.counts);
      this.counts = grown;
    }
    if (this.counts[slot] < 255) this.counts[slot]++;
    else this.overflow.set(slot, (this.overflow.get(slot) ?? 255) + 1);
  }

  /** Calls `f` with each non-zero count. */
  forEachCounted(f: (count: number) => void): void {
    const counts = this.counts;
    for (let slot = 0; slot < counts.length; slot++) {
      const n = counts[slot];
      if (n > 0) f(n < 255 ? n : (this.overflow.get(slot) ?? 255));
    }
  }

  /** The byte counts of slots 0 .. slots - 1 (a checkpoint), with `overflowEntries`. */
  bytes(slots: number): Buffer {
    const out = Buffer.alloc(slots);
    out.set(this.counts.subarray(0, Math.min(slots, this.counts.length)));
    return out;
  }

  overflowEntries(): [number, number][] {
    return [...this.overflow];
  }

  restore(bytes: Uint8Array, overflow: [number, number][]): void {
    this.counts = new Uint8Array(Math.max(1024, bytes.length));
    this.counts.set(bytes);
    this.overflow.clear();
    for (const [slot, n] of overflow) this.overflow.set(slot, n);
  }
}

// ---------------------------------------------------------------------------------------------

const VERIFY_DOC =
  '"exact": exact Jaccard of the shingle sets (kept in the index, spilled with it) >= threshold; ' +
  '"signature": agreement of the MinHash signatures >= threshold; "none": every LSH candidate is a duplicate';

export default defineOperator<LshBandJoinOptions>({
  name: 'lsh-band-join',
  summary: 'near-duplicate removal with MinHash LSH: bands x rows from a threshold, verified candidates, keep-first or source priority, persisted indexes for cross-dataset dedup',
  description:
    'Needs `minhash` before it (and `shingle`, for verify "exact"). Each document is joined against the kept documents before it ' +
    '(and the indexes named in `against`): a candidate shares at least one band of its signature; a candidate whose verified ' +
    'similarity is >= threshold makes the document a near-duplicate of it. Candidates are verified band by band (in each band the ' +
    '`against` indexes first, then this run\'s, in arrival order) and the first that verifies is the one reported, so a duplicate ' +
    'is decided after a few reads. ' +
    'Only kept documents enter the index, so every removed document duplicates a document that is kept. ' +
    'keep "priority" holds every record until the end of input (in an SQLite spool on disk, read back through a page cache of half of memoryMB) and decides in order of ' +
    'priority, then arrival; output then starts at the end of input. The index lives in RAM up to memoryMB and spills to an SQLite file beyond it ' +
    '(same results). Deterministic: the same input in the same order gives the same output. Resumes exactly with --checkpoint ' +
    '(spilled index segments are kept in the checkpoint directory; each checkpoint saves the RAM part of the index).',
  // Keeps an index across records; checkpoints it (see checkpoint/restore in createJoin).
  stateful: true,
  options: {
    threshold: { type: 'number', default: 0.85, min: 0, exclusiveMin: true, max: 1, description: 'Jaccard similarity at or above which two documents are near-duplicates (Zyda-2: 0.85)' },
    bands: { type: 'integer', min: 1, description: 'LSH bands (default: chosen from threshold and the signature length; see explain)' },
    rows: { type: 'integer', min: 1, description: 'rows per band (default: chosen with bands; bands x rows must be <= perms)' },
    verify: { type: 'string', enum: ['exact', 'signature', 'none'], default: 'exact', description: VERIFY_DOC },
    keep: { type: 'string', enum: ['first', 'priority'], default: 'first', description: 'which copy of a cluster survives: the first seen, or the one whose priorityField value comes first in `priority`' },
    priorityField: { type: 'string', nonEmpty: true, default: 'source', description: 'record field compared against `priority` (keep "priority")' },
    priority: { type: 'array', items: { type: 'string', description: 'a value of priorityField' }, minItems: 1, unique: true, description: 'preferred values of priorityField, best first; other values (and records without the field) rank after all of them, counted as priority_unlisted; a number in the field matches its decimal form ("2")' },
    against: { type: 'array', items: { type: 'string', description: 'index directory' }, default: [], description: 'indexes written by earlier runs (writeIndex): documents duplicating them are removed; their documents always win' },
    writeIndex: { type: 'string', description: 'directory to persist the index of the kept documents into (one SQLite file, index.sqlite), for later runs\' `against`' },
    emit: { type: 'string', enum: ['kept', 'removed', 'all'], default: 'kept', description: '"kept": removed documents are dropped (reason near_duplicate; annotated, so a rejects output shows what they duplicate); "removed": only removed documents, annotated (kept ones are dropped with reason not_duplicate); "all": every document, annotated' },
    memoryMB: { type: 'number', default: 1024, min: 0, exclusiveMin: true, description: 'RAM budget of the index (and, with keep "priority", of the record spool: half each); beyond it, an SQLite file on disk' },
  },
  outputs: {
    dup_of: 'emit removed/all: id of the kept document this one duplicates, the first candidate that verified (null on kept documents)',
    dup_similarity: 'emit removed/all: verified similarity to dup_of (exact or estimated Jaccard; null on kept documents)',
    cluster_id: 'emit removed/all: id of the kept document of the cluster (a kept document: its own id)',
  },
  writes(o) {
    return o.writeIndex ? [{ option: 'writeIndex', path: o.writeIndex }] : [];
  },
  reads(o, upstream) {
    // An index's settings are read from it (a small read): lint finds one the run would refuse.
    const check = (i: number) => (at: string) => {
      try {
        return againstProblem(o, i, readIndexParams(at), upstream ? signatureFamily(upstream) : undefined, upstreamPerms(upstream));
      } catch (e) {
        return (e as Error).message;
      }
    };
    return o.against.flatMap((p, i) => (p === '' ? [] : [{ option: `against[${i}]`, path: p, hint: 'an index written by an earlier run with writeIndex', check: check(i) }]));
  },
  check(o, upstream) {
    const errors: { path: string; message: string }[] = [];
    // Signatures come from a minhash step, or from a custom operator (referenced by path).
    if (upstream && !upstream.some((s) => s.op === 'minhash' || isPathReference(s.op))) {
      errors.push({ path: 'op', message: 'lsh-band-join joins MinHash signatures: put a minhash step before it (normalize -> shingle -> minhash -> lsh-band-join)' });
    }
    // verify "exact" compares the shingle sets the records carry: those of the last shingle step,
    // which must be the one the signatures were made from.
    const ops = (upstream ?? []).map((s) => s.op);
    const minhashAt = ops.lastIndexOf('minhash');
    if (o.verify === 'exact' && minhashAt >= 0 && ops.lastIndexOf('shingle') > minhashAt) {
      errors.push({ path: 'verify', message: 'a shingle step comes after the minhash step: verify "exact" would compare other shingles than the signatures were made from; put shingle before minhash (normalize -> shingle -> minhash -> lsh-band-join)' });
    }
    const perms = upstreamPerms(upstream);
    if (perms !== undefined) {
      const { bands, rows } = resolveBands(o, perms);
      if (!bandsFit(bands, rows, perms)) {
        errors.push({ path: o.bands !== undefined ? 'bands' : 'rows', message: bandsMisfit(o, bands, rows, perms, 'the minhash step before') });
      }
    }
    if (o.writeIndex === '') errors.push({ path: 'writeIndex', message: 'must be the path of a directory to write the index into (it is empty)' });
    o.against.forEach((p, i) => {
      if (p === '') errors.push({ path: `against[${i}]`, message: 'must be the path of an index directory (it is empty)' });
    });
    if (o.keep === 'priority' && !o.priority?.length) errors.push({ path: 'priority', message: 'keep "priority" needs the ordered list of preferred values, e.g. ["dataset-a", "dataset-b"]' });
    if (o.keep !== 'priority' && o.priority) errors.push({ path: 'priority', message: 'priority is only used with keep: "priority"' });
    if (o.bands !== undefined && o.rows !== undefined && o.bands * o.rows > 4096) errors.push({ path: 'bands', message: `bands x rows = ${o.bands * o.rows} is larger than any signature` });
    return errors;
  },
  explain(o, upstream) {
    const given = upstreamPerms(upstream);
    const perms = given ?? EXPLAIN_PERMS;
    const { bands, rows } = resolveBands(o, perms);
    const sims = [0.5, 0.6, 0.7, 0.75, 0.8, o.threshold, 0.9, 0.95].filter((v, i, a) => a.indexOf(v) === i).sort((a, b) => a - b);
    // Two decimals unless they would round the point (a threshold of 0.999 is not 1.00).
    const curve = sims.map((s) => `    s = ${Number(s.toFixed(2)) === s ? s.toFixed(2) : String(s)}: P(candidate) = ${candidateProbability(s, bands, rows).toFixed(4)}`).join('\n');
    const bal = balancedBands(o.threshold, perms);
    const balanced = bal.bands !== bands || bal.rows !== rows ? ` (the "balanced" ${bal.bands} x ${bal.rows} for this threshold would catch ${(candidateProbability(o.threshold, bal.bands, bal.rows) * 100).toFixed(0)}% at the threshold)` : '';
    const low = lowCatchWarning(o, bands, rows);
    return [
      `near-duplicates at Jaccard >= ${o.threshold}: ${bands} bands x ${rows} rows${o.bands === undefined && o.rows === undefined ? ` (chosen for ${perms} perms${given === undefined ? '; the signature length of the data decides at run time' : ', the minhash step\'s'})` : ''}${balanced}`,
      `  candidate probability 1 - (1 - s^${rows})^${bands}:`,
      curve,
      low ? `  ${low}` : '',
      `  verify: ${o.verify}; keep: ${o.keep === 'priority' ? `priority by ${o.priorityField}: ${(o.priority ?? []).join(' > ')} > others (records held until end of input)` : 'first seen'}; emit: ${o.emit}`,
      o.against.length ? `  against: ${o.against.join(', ')}` : '',
      o.writeIndex ? `  writes the index of kept documents to ${o.writeIndex}` : '',
      `  index memory: ${o.memoryMB} MB, then an SQLite file on disk`,
    ]
      .filter(Boolean)
      .join('\n');
  },
  create(o, ctx) {
    return createJoin(o, ctx);
  },
});

function createJoin(o: LshBandJoinOptions, ctx: StepContext) {
  const resolve = (p: string) => path.resolve(ctx.baseDir, p);
  const memory = o.memoryMB * 1024 * 1024;
  const indexBudget = o.keep === 'priority' ? memory / 2 : memory;
  const writePath = o.writeIndex ? resolve(o.writeIndex) : undefined;
  const invalid = (message: string) => stepOptionError(ctx, message);
  const checkWritePath = () => {
    if (!writePath) return;
    const problem = cannotWrite(writePath, 'dir');
    if (problem) throw invalid(`writeIndex: cannot write ${writePath}: ${problem}`);
    if (!existsSync(writePath) || readdirSync(writePath).length === 0) return;
    const state = existingIndexState(writePath);
    const resumable = state === 'unfinished' ? indexCheckpoint(writePath) : undefined;
    if (resumable) {
      throw invalid(
        `writeIndex: ${writePath} holds the unfinished index of a --checkpoint run (its checkpoint: ${path.dirname(path.dirname(resumable))}): run that command again to resume and finish it, or remove ${writePath} and that checkpoint to start over`,
      );
    }
    if (state === 'unfinished') {
      // A run stopped before it finished the index (and, with --checkpoint, before its first
      // checkpoint): the rerun starts over, so it starts the index over too.
      removeIndexFiles(writePath);
      ctx.log(`warning: writeIndex: ${writePath} held an unfinished index left by a stopped run; it is written again from the start`);
      return;
    }
    const why = state === 'finished' ? 'holds a finished index' : state === 'in-use' ? 'holds an index another running process is writing' : 'is not empty';
    throw invalid(`writeIndex: ${writePath} already exists and ${why}; remove it or choose another path`);
  };
  // Checked as the step starts, before anything is read; a resumed run finds its own partly
  // written index there and continues it.
  if (!ctx.resuming) checkWritePath();
  const family = signatureFamily(ctx.upstream);
  const readers: LshIndexReader[] = [];
  // Where each index really is: the same index twice (by any spelling, through symbolic links)
  // would be opened, held in RAM and searched twice for nothing.
  const againstAt = o.against.map((p) => realTarget(resolve(p)));
  try {
    o.against.forEach((p, i) => {
      const first = againstAt.indexOf(againstAt[i]);
      if (first < i) throw invalid(`against[${i}]: ${p} is the index of against[${first}] (${o.against[first]}) again; list each index once`);
      let r: LshIndexReader;
      try {
        r = new LshIndexReader(resolve(p), storeCacheBytes(memory / 2));
      } catch (e) {
        throw invalid(`against[${i}]: ${(e as Error).message}`);
      }
      readers.push(r);
      const problem = againstProblem(o, i, r.params, family, undefined);
      if (problem) throw invalid(`against[${i}]: ${problem}`);
      if (family && !r.params.family) ctx.log(`warning: against[${i}]: ${p} does not record the normalize, shingle and minhash options it was built with; they must be this pipeline's for its documents to match`);
    });
  } catch (e) {
    for (const r of readers) r.close();
    throw e;
  }

  /** The `against` indexes must have this step's bands and rows (band keys are compared as they are). */
  function checkAgainstBands(perms: number): void {
    readers.forEach((r, i) => {
      const problem = againstProblem(o, i, r.params, undefined, perms);
      if (problem) throw invalid(`against[${i}]: ${problem}`);
    });
  }
  // Known from the pipeline: checked as the step starts, before anything is read.
  const pipelinePerms = upstreamPerms(ctx.upstream);
  try {
    if (pipelinePerms !== undefined) checkAgainstBands(pipelinePerms);
    // Claimed once the options are known to work (the database appears only when the index
    // first spills): a second run starting on the same path now finds it in use.
    const holder = writePath ? claimIndexDir(writePath) : undefined;
    if (holder !== undefined) throw invalid(`writeIndex: ${writePath} already exists and holds an index another running process is writing (${holder}); remove it or choose another path`);
  } catch (e) {
    for (const r of readers) r.close();
    throw e;
  }

  let perms = 0;
  let bands = 0;
  let rows = 0;
  let index: LshIndex | undefined;
  let keys = new Uint32Array(0);
  // Duplicates found per kept document: by slot for this run's index, sparse for the `against` indexes.
  const ownDuplicates = new SlotCounts();
  const againstDuplicates = readers.map(() => new Map<number, number>());
  let candidatesSeen = 0;
  let rejected = 0;
  /** Documents joined with Bloom probes made ahead in a worker thread (like the disk counters, per process). */
  let probedAhead = 0;

  function setup(len: number, state?: string): void {
    perms = len;
    ({ bands, rows } = resolveBands(o, perms));
    if (!bandsFit(bands, rows, perms)) {
      throw invalid(bandsMisfit(o, bands, rows, perms, 'the signatures'));
    }
    checkAgainstBands(perms);
    ctx.log(`${bands} bands x ${rows} rows over ${perms} perms; P(candidate) at ${o.threshold} = ${candidateProbability(o.threshold, bands, rows).toFixed(4)}`);
    const low = lowCatchWarning(o, bands, rows);
    if (low) ctx.log(low);
    keys = new Uint32Array(2 * bands);
    const indexOptions = {
      bands,
      rows,
      perms,
      threshold: o.threshold,
      family,
      shingles: o.verify === 'exact',
      memoryBytes: Math.max(64 * 1024, indexBudget - readers.reduce((n, r) => n + r.ramBytes(), 0)),
      dir: () => writePath ?? path.join(ctx.tmpDir, 'lsh-index'),
      persist: !!writePath,
      // A scratch index verified exactly never reads signatures: not keeping them saves RAM and spill I/O.
      signatures: !!writePath || o.verify !== 'exact',
      warn: (m: string) => ctx.log(`warning: ${m}`),
    };
    index = state ? LshIndex.restore(indexOptions, state) : new LshIndex(indexOptions);
  }

  /** Validates a record's sketch data; returns false (after reporting) when it cannot be joined. */
  function usable(rec: Rec): boolean {
    const ints = peekInternals(rec);
    const sig = ints?.signature;
    if (!(sig instanceof Uint32Array)) {
      ctx.error(rec, 'missing_signature', `record ${rec.id} has no MinHash signature: put a minhash step before lsh-band-join`);
      return false;
    }
    if (o.verify === 'exact' && !(ints!.shingles instanceof Uint32Array)) {
      ctx.error(rec, 'missing_shingles', `record ${rec.id} has no shingle set, which verify "exact" needs: put a shingle step before minhash (or use verify "signature")`);
      return false;
    }
    if (!index) setup(sig.length);
    if (sig.length !== perms) {
      ctx.error(rec, 'signature_length', `record ${rec.id} has a signature of ${sig.length} values, earlier records ${perms}`);
      return false;
    }
    return true;
  }

  function similarity(sig: Uint32Array, shingles: Uint32Array | undefined, doc: IndexedDoc): number {
    if (o.verify === 'exact') return exactJaccard(shingles!, doc.shingles!);
    return estimateJaccard(sig, doc.signature);
  }

  /**
   * The first verified match of a document, or undefined. Bands are searched in order (in each
   * band the `against` indexes first, then this run's, candidates in arrival order) and the
   * search stops at the first candidate that verifies: a duplicate costs a few reads instead of
   * every band's. The order depends only on the documents, never on what spilled.
   */
  function join(sig: Uint32Array, shingles: Uint32Array | undefined, probes?: Probes): Match | undefined {
    bandKeys(sig, bands, rows, keys);
    const sources = [...readers, index!];
    const seen = sources.map((): number[] => []);
    for (let b = 0; b < bands; b++) {
      for (let source = 0; source < sources.length; source++) {
        const done = seen[source];
        const slots = source < readers.length ? readers[source].bandCandidates(keys, b) : index!.bandCandidates(keys, b, probes ? probes.maybe[probes.at + b] : -1);
        for (const slot of slots) {
          // A candidate found in an earlier band was verified then.
          if (done.includes(slot)) continue;
          done.push(slot);
          candidatesSeen++;
          const doc = sources[source].getDoc(slot);
          const sim = similarity(sig, shingles, doc);
          if (o.verify !== 'none' && sim < o.threshold) {
            rejected++;
            continue;
          }
          return { id: doc.id, similarity: sim, source: source === readers.length ? -1 : source, slot };
        }
      }
    }
    return undefined;
  }

  function keepDoc(rec: Rec, sig: Uint32Array, shingles: Uint32Array | undefined): void {
    index!.add({ id: rec.id, signature: sig, shingles: o.verify === 'exact' ? shingles : undefined }, keys);
    ctx.stats.count('kept');
  }

  function markDuplicate(m: Match): void {
    if (m.source >= 0) {
      const counts = againstDuplicates[m.source];
      counts.set(m.slot, (counts.get(m.slot) ?? 0) + 1);
    } else {
      ownDuplicates.add(m.slot);
    }
    ctx.stats.count('near_duplicates');
  }

  /** Applies a decision to a record: undefined = kept. Returns the record to emit, if any. */
  function emit(rec: Rec, d: Decision | undefined): Rec | undefined {
    if (!d) {
      if (o.emit === 'removed') {
        // Accounted for like any record a step takes out of the stream (and in the rejects output).
        ctx.drop(rec, 'not_duplicate');
        return undefined;
      }
      if (o.emit === 'all') annotate(rec, null, null, rec.id);
      return rec;
    }
    // Annotated also when dropped: the rejects output then says what each removed record duplicates.
    annotate(rec, d.dupOf, Math.round(d.similarity * 1e4) / 1e4, d.dupOf);
    if (o.emit === 'kept') {
      ctx.drop(rec, 'near_duplicate');
      return undefined;
    }
    return rec;
  }

  function annotate(rec: Rec, dupOf: string | null, sim: number | null, cluster: string): void {
    // Ids as strings on every record (the index stores them so): a numeric id must not give a
    // cluster's kept record a number and its duplicates a string.
    ctx.annotate(rec, 'dup_of', dupOf === null ? null : String(dupOf));
    ctx.annotate(rec, 'dup_similarity', sim);
    ctx.annotate(rec, 'cluster_id', String(cluster));
  }

  /** Decides one document against everything kept so far. */
  function decide(rec: Rec, probes?: Probes): Decision | undefined {
    const ints = internals(rec);
    const sig = ints.signature!;
    const shingles = ints.shingles;
    const m = join(sig, shingles, probes);
    if (m) {
      markDuplicate(m);
      return { dupOf: m.id, similarity: m.similarity };
    }
    keepDoc(rec, sig, shingles);
    return undefined;
  }

  function finishStats(): void {
    let clusters = 0;
    const observe = (duplicates: number) => {
      clusters++;
      ctx.stats.observe('cluster_size', duplicates + 1);
    };
    for (const counts of againstDuplicates) for (const n of counts.values()) observe(n);
    ownDuplicates.forEachCounted(observe);
    // Every documented counter is in the report, zero or not.
    ctx.stats.count('kept', 0);
    ctx.stats.count('near_duplicates', 0);
    ctx.stats.count('clusters', clusters);
    ctx.stats.count('candidates', candidatesSeen);
    ctx.stats.count('rejected_candidates', rejected);
    if (index?.spills) {
      ctx.stats.count('index_spills', index.spills);
      ctx.stats.count('index_merges', index.merges);
      const d = index.diskStats;
      ctx.stats.count('index_segments', d.segments);
      ctx.stats.count('index_block_reads', d.blockReads);
      ctx.stats.count('index_block_hits', d.blockHits);
      ctx.stats.count('index_doc_reads', d.docReads);
      ctx.stats.count('index_probed_ahead', probedAhead);
    }
    // A run stopped before the end of its input has indexed only part of it: the index stays
    // unfinished (`against` refuses it; the same command run again writes it from the start).
    if (writePath && ctx.stopped) {
      ctx.log(`warning: writeIndex: ${writePath} is left unfinished: the run was stopped before the end of its input`);
      return;
    }
    // No record reached the step (an empty shard of a chain): an empty index, so that runs
    // `against` it work; the signature length comes from the pipeline's minhash step.
    if (writePath && !index && pipelinePerms !== undefined) setup(pipelinePerms);
    else if (writePath && !index) ctx.log(`warning: writeIndex: no index written to ${writePath}: no record reached the step, and no minhash step before it gives the signature length`);
    index?.finish();
  }

  const close = () => {
    index?.close();
    for (const r of readers) r.close();
    // A run that ends before its first record (another step refused to start, say) leaves nothing.
    if (writePath && !index) releaseIndexDir(writePath);
  };

  /** The join's state (the spool's, with keep "priority", is added by the caller). */
  function saveJoin(dir: string, extra: object = {}): void {
    if (index) index.save(dir);
    // From now on the index belongs to this checkpoint: a resume continues it, another run may not start it over.
    if (writePath) markIndexCheckpointed(writePath, path.resolve(ctx.tmpDir));
    writeFileSync(path.join(dir, 'own-duplicates.bin'), ownDuplicates.bytes(index?.size ?? 0));
    const state = { perms, candidatesSeen, rejected, against: againstDuplicates.map((m) => [...m]), ownOverflow: ownDuplicates.overflowEntries(), ...extra };
    writeFileSync(path.join(dir, 'lsh-band-join.json'), JSON.stringify(state));
  }

  function restoreJoin(dir: string): any {
    const state = JSON.parse(readFileSync(path.join(dir, 'lsh-band-join.json'), 'utf8'));
    if (state.perms) setup(state.perms, dir);
    ownDuplicates.restore(readFileSync(path.join(dir, 'own-duplicates.bin')), state.ownOverflow ?? []);
    candidatesSeen = state.candidatesSeen;
    rejected = state.rejected;
    (state.against as [number, number][][]).forEach((entries, i) => againstDuplicates[i] && entries.forEach(([k, v]) => againstDuplicates[i].set(k, v)));
    return state;
  }

  // keep "first" joins each batch while a worker thread probes the spilled segments' Bloom
  // filters (in shared memory) for the next one: a probe is a cache miss in a filter far larger
  // than the CPU caches, and a document makes bands x segments of them. Every batch is held
  // until the next arrives. The answers are the filters' own, so the decisions are the same;
  // after a spill they are stale and the join probes for itself.
  let probePool: WorkerPool<ProbeTask, Uint32Array> | undefined;
  let held: Ahead | undefined;

  function probeAhead(batch: Rec[]): Ahead {
    const ahead: Ahead = { batch, generation: -1 };
    if (!index?.spills || ctx.workers === 0) return ahead;
    // Records the join will reject (no signature, another length) are not probed.
    const sigs = batch.map((rec) => {
      const sig = peekInternals(rec)?.signature;
      return sig instanceof Uint32Array && sig.length === perms ? sig : undefined;
    });
    const at = new Int32Array(batch.length).fill(-1);
    let n = 0;
    sigs.forEach((sig, i) => sig && (at[i] = bands * n++));
    const all = new Uint32Array(2 * bands * n);
    sigs.forEach((sig, i) => sig && bandKeys(sig, bands, rows, all.subarray(2 * at[i], 2 * at[i] + 2 * bands)));
    const task = n ? index.probeTask(all) : undefined;
    if (!task) return ahead;
    probePool ??= createWorkerPool<ProbeTask, Uint32Array>({ module: new URL('../lib/sketch/blocked-bloom.ts', import.meta.url), fn: 'probeTask', size: 1, name: ctx.op });
    const maybe = probePool.run(task, [all.buffer]);
    // Awaited when the batch is joined; a run that stops before must not report it as unhandled.
    maybe.catch(() => {});
    return { batch, at, maybe, generation: index.generation };
  }

  async function joinBatch(a: Ahead): Promise<Rec[]> {
    const maybe = a.maybe ? await a.maybe : undefined;
    const out: Rec[] = [];
    a.batch.forEach((rec, i) => {
      if (!usable(rec)) return;
      const fresh = maybe && a.generation === index!.generation && a.at![i] >= 0;
      if (fresh) probedAhead++;
      const r = emit(rec, decide(rec, fresh ? { maybe, at: a.at![i] } : undefined));
      if (r) out.push(r);
    });
    return out;
  }

  async function drainHeld(): Promise<Rec[]> {
    const a = held;
    held = undefined;
    return a ? joinBatch(a) : [];
  }

  if (o.keep === 'first') {
    return {
      async process(batch: Rec[]): Promise<Rec[]> {
        const next = probeAhead(batch);
        const out = await drainHeld();
        held = next;
        return out;
      },
      drain: drainHeld,
      async flush(): Promise<Rec[]> {
        const out = await drainHeld();
        finishStats();
        return out;
      },
      checkpoint: (dir: string) => saveJoin(dir),
      restore(dir: string) {
        restoreJoin(dir);
      },
      async close() {
        held = undefined;
        close();
        await probePool?.close();
      },
    };
  }

  // keep: "priority": spool every record; at the end decide in (priority rank, arrival) order,
  // then emit in arrival order.
  const ranks = new Map((o.priority ?? []).map((v, i) => [v, i]));
  const spool = new RecordSpool(memory / 2, () => path.join(ctx.tmpDir, 'lsh-spool'));
  // A few of the values that matched no entry of the list, for the warning (a misspelt name
  // would otherwise turn the run into keep-first without a word).
  const unlistedExamples = new Set<string>();
  let unlisted = 0;
  const rankOf = (v: unknown): number => {
    const key = typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
    const rank = key === undefined ? undefined : ranks.get(key);
    if (rank !== undefined) return rank;
    ctx.stats.count('priority_unlisted');
    unlisted++;
    if (unlistedExamples.size < 5) unlistedExamples.add(v === undefined ? '(missing)' : JSON.stringify(v).slice(0, 60));
    return ranks.size;
  };
  return {
    process(batch: Rec[]): Rec[] {
      for (const rec of batch) {
        if (!usable(rec)) continue;
        spool.push(rec, rankOf(rec[o.priorityField]));
      }
      return [];
    },
    // Output is pulled batch by batch from the spool, so the end of input stays within the budget.
    *flushBatches(): Generator<Rec[]> {
      ctx.stats.count('priority_unlisted', 0);
      if (unlisted) {
        const examples = unlistedExamples.size ? ` (${[...unlistedExamples].join(', ')})` : '';
        ctx.log(`warning: ${unlisted === 1 ? '1 record has' : `${unlisted} records have`} a ${o.priorityField} value that is missing or not in priority${examples}; ${unlisted === 1 ? 'it ranks' : 'they rank'} after every listed value`);
      }
      for (const [seq, rec] of spool.byRank(ranks.size + 1)) {
        const d = decide(rec);
        if (d) spool.decide(seq, d);
      }
      finishStats();
      let out: Rec[] = [];
      for (const [rec, d] of spool.inOrder()) {
        const r = emit(rec, d);
        if (r) out.push(r);
        if (out.length >= FLUSH_BATCH) {
          yield out;
          out = [];
        }
      }
      if (out.length) yield out;
    },
    checkpoint(dir: string) {
      saveJoin(dir, { spool: spool.save(), ranks: ranks.size + 1, unlisted, unlistedExamples: [...unlistedExamples] });
    },
    restore(dir: string) {
      const state = restoreJoin(dir);
      if (state.ranks !== ranks.size + 1) throw new Error(`${dir}: checkpoint of a different priority list`);
      spool.restore(state.spool);
      unlisted = state.unlisted ?? 0;
      for (const v of state.unlistedExamples ?? []) unlistedExamples.add(v);
    },
    close() {
      spool.close();
      close();
    },
  };
}
