// `partition`: a terminal step that writes records into partitions by metadata fields, each split
// into base units of equal token size (the data-ablation paper's "base unit" partitions), as
// zstd-compressed NDJSON shards with a size limit, and a manifest.json describing them.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { open, rename, writeFile, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { Compressor } from 'zstd-napi';
import { syncPath } from '../lib/io/durable.ts';
import { decodeInput, DEFAULT_DECODE, fileInput, type InputProgress } from '../lib/io/decode.ts';
import { defineOperator, stepOptionError, type Rec, type Step, type StepContext } from '../lib/operator.ts';
import { recordTokens } from './mix.ts';

export interface PartitionOptions {
  dir: string;
  by: string[];
  unitTokens?: number;
  maxShardBytes: number;
  upsampleTo?: number;
  level: number;
  maxOpenPartitions: number;
  frameBytes: number;
  missing: string;
  tokenField: string;
  overwrite: boolean;
}

export interface ShardInfo {
  /** Path relative to the output directory. */
  file: string;
  unit: number;
  docs: number;
  tokens: number;
  /** Compressed bytes. */
  bytes: number;
}

export interface UnitInfo {
  index: number;
  docs: number;
  tokens: number;
  /** The last unit of a partition when it ended (at the end of input) with fewer than unitTokens tokens. */
  partial: boolean;
  /** Copies of earlier documents written by `upsampleTo`. */
  repeatedDocs: number;
  shards: string[];
}

export interface PartitionInfo {
  key: Record<string, string>;
  path: string;
  docs: number;
  tokens: number;
  bytes: number;
  repeatedDocs: number;
  units: UnitInfo[];
  shards: ShardInfo[];
}

export interface Manifest {
  format: 'mixstream-partitions/v1';
  created: string;
  by: string[];
  unitTokens: number | null;
  upsampleTo: number | null;
  maxShardBytes: number;
  tokenCount: string;
  totals: { partitions: number; docs: number; tokens: number; repeatedDocs: number; shards: number; bytes: number };
  partitions: PartitionInfo[];
}

/** The value of a possibly nested field (`metadata.year`). */
export function fieldValue(rec: Record<string, unknown>, field: string): unknown {
  if (field in rec) return rec[field];
  let v: unknown = rec;
  for (const part of field.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/** A path segment for a partition value: safe characters kept, others %-encoded, long values cut and hashed. */
export function segmentFor(value: string): string {
  let s = value.replace(/[\x00-\x1f\x7f/\\%:*?"<>|]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`);
  if (s.startsWith('.')) s = '%2E' + s.slice(1);
  if (s === '') s = '%20';
  if (Buffer.byteLength(s) > 100) {
    const hash = createHash('sha1').update(value).digest('hex').slice(0, 10);
    s = `${Buffer.from(s).subarray(0, 80).toString('utf8').replace(/\uFFFD+$/, '')}~${hash}`;
  }
  return s;
}

function keyString(v: unknown, missing: string): string {
  if (v === undefined || v === null || v === '') return missing;
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

interface OpenShard {
  /** Undefined while the partition is evicted from the open set: the file is reopened for appending. */
  fh: FileHandle | undefined;
  tmp: string;
  info: ShardInfo;
}

class Partition {
  /** Key of the partition in the writer's map. */
  id = '';
  readonly info: PartitionInfo;
  unit: UnitInfo;
  shard: OpenShard | undefined;
  shardCount = 0;
  pending: string[] = [];
  pendingBytes = 0;
  pendingDocs = 0;
  pendingTokens = 0;
  /** Shards of the original data (before upsampling), in order. */
  originalShards: string[] = [];

  constructor(key: Record<string, string>, rel: string, info?: PartitionInfo) {
    this.info = info ?? { key, path: rel, docs: 0, tokens: 0, bytes: 0, repeatedDocs: 0, units: [], shards: [] };
    this.unit = info ? info.units[info.units.length - 1] : this.newUnit();
  }

  newUnit(): UnitInfo {
    const u: UnitInfo = { index: this.info.units.length, docs: 0, tokens: 0, partial: false, repeatedDocs: 0, shards: [] };
    this.info.units.push(u);
    return u;
  }
}

/** A partition as a checkpoint records it; its buffered records are in the checkpoint's pending file. */
interface SavedPartition {
  id: string;
  info: PartitionInfo;
  shardCount: number;
  /** The shard being written: its temporary file is cut back to `info.bytes` on restore. */
  shard: { tmp: string; info: ShardInfo } | null;
  pending: { offset: number; bytes: number; docs: number; tokens: number };
}

interface PartitionState {
  version: 1;
  parts: SavedPartition[];
  /** Paths of the partitions in the open set, least recently used first. */
  open: string[];
}

const STATE_FILE = 'partition-state.json';
const PENDING_FILE = 'pending.jsonl';
/** Written into the output directory while a run owns it; names the step's scratch directory. */
export const OWNER_FILE = '.mixstream-partition-run';

class PartitionWriter {
  private readonly parts = new Map<string, Partition>();
  /** Files written since the last checkpoint (made durable by the next one). */
  private readonly dirty = new Set<string>();
  /** Partitions with an open shard or buffered records, least recently used first. */
  private readonly open = new Map<string, Partition>();
  private readonly compressor = new Compressor();
  private readonly frameLimit: number;

  constructor(
    private readonly o: PartitionOptions,
    private readonly root: string,
    private readonly ctx: StepContext,
  ) {
    this.compressor.setParameters({ compressionLevel: o.level });
    this.frameLimit = Math.min(o.frameBytes, o.maxShardBytes);
  }

  partitionOf(rec: Rec): Partition {
    const key: Record<string, string> = {};
    const segs: string[] = [];
    for (const f of this.o.by) {
      const raw = fieldValue(rec, f);
      if (raw === undefined || raw === null || raw === '') this.ctx.stats.count(`missing_${f}`);
      const v = keyString(raw, this.o.missing);
      key[f] = v;
      segs.push(`${segmentFor(f)}=${segmentFor(v)}`);
    }
    const id = JSON.stringify(segs);
    let p = this.parts.get(id);
    if (!p) {
      p = new Partition(key, segs.length ? segs.join('/') : 'all');
      p.id = id;
      this.parts.set(id, p);
      mkdirSync(path.join(this.root, p.info.path), { recursive: true });
      this.ctx.stats.count('partitions');
    }
    return p;
  }

  private async touch(id: string, p: Partition): Promise<void> {
    if (this.open.has(id)) {
      this.open.delete(id);
      this.open.set(id, p);
      return;
    }
    this.open.set(id, p);
    while (this.open.size > this.o.maxOpenPartitions) {
      const [oldId, old] = this.open.entries().next().value as [string, Partition];
      this.open.delete(oldId);
      await this.suspend(old);
      this.ctx.stats.count('partition_evictions');
    }
  }

  /** Adds one record (as its JSON line) to partition `p`, closing units at the unit size. */
  async add(p: Partition, line: string, tokens: number, repeated: boolean): Promise<void> {
    const U = this.o.unitTokens;
    if (U !== undefined && this.shouldClose(p, tokens)) await this.closeUnit(p);
    await this.touch(p.info.path, p);
    p.pending.push(line);
    p.pendingBytes += Buffer.byteLength(line);
    p.pendingDocs++;
    p.pendingTokens += tokens;
    p.unit.docs++;
    p.unit.tokens += tokens;
    p.info.docs++;
    p.info.tokens += tokens;
    if (repeated) {
      p.unit.repeatedDocs++;
      p.info.repeatedDocs++;
    }
    if (p.pendingBytes >= this.frameLimit) await this.writeFrame(p);
  }

  /**
   * A unit closes before a document when adding it would overshoot unitTokens by more than
   * leaving it out falls short: every closed unit is within half a document of unitTokens.
   */
  shouldClose(p: Partition, tokens: number): boolean {
    const U = this.o.unitTokens!;
    const cur = p.unit.tokens;
    return cur > 0 && cur + tokens - U > U - cur;
  }

  async closeUnit(p: Partition): Promise<void> {
    await this.closeShard(p);
    this.open.delete(p.info.path);
    p.unit = p.newUnit();
  }

  private shardName(p: Partition): string {
    const n = String(p.shardCount++).padStart(5, '0');
    const file = this.o.unitTokens !== undefined ? `unit-${String(p.unit.index).padStart(5, '0')}-${n}.jsonl.zst` : `shard-${n}.jsonl.zst`;
    return path.join(p.info.path, file);
  }

  private async openShard(p: Partition): Promise<OpenShard> {
    const rel = this.shardName(p);
    const final = path.join(this.root, rel);
    const tmp = path.join(path.dirname(final), `.${path.basename(final)}.tmp`);
    const fh = await open(tmp, 'w');
    const s: OpenShard = { fh, tmp, info: { file: rel, unit: p.unit.index, docs: 0, tokens: 0, bytes: 0 } };
    p.shard = s;
    return s;
  }

  /** Compresses the buffered records of `p` into one zstd frame and appends it to its shard (a new shard when the limit would be passed). */
  async writeFrame(p: Partition): Promise<void> {
    if (p.pending.length === 0) return;
    const frame = this.compressor.compress(Buffer.from(p.pending.join(''), 'utf8'));
    let s = p.shard;
    if (s && s.info.bytes > 0 && s.info.bytes + frame.length > this.o.maxShardBytes) {
      await this.closeShard(p, false);
      s = undefined;
    }
    s ??= await this.openShard(p);
    s.fh ??= await open(s.tmp, 'a');
    await s.fh.write(frame);
    this.dirty.add(s.tmp);
    s.info.bytes += frame.length;
    s.info.docs += p.pendingDocs;
    s.info.tokens += p.pendingTokens;
    p.info.bytes += frame.length;
    p.pending = [];
    p.pendingBytes = 0;
    p.pendingDocs = 0;
    p.pendingTokens = 0;
  }

  /**
   * Writes what is buffered and closes the file of `p`'s shard without finishing the shard: zstd
   * frames concatenate, so the next record reopens it for appending. Evictions therefore cost a
   * file reopen, not a new small shard.
   */
  private async suspend(p: Partition): Promise<void> {
    await this.writeFrame(p);
    const s = p.shard;
    if (s?.fh) {
      await s.fh.close();
      s.fh = undefined;
    }
  }

  /** Writes what is buffered and closes the open shard of `p` (renamed to its final name). */
  async closeShard(p: Partition, flush = true): Promise<void> {
    if (flush) await this.writeFrame(p);
    const s = p.shard;
    if (!s) return;
    p.shard = undefined;
    await s.fh?.close();
    const final = path.join(this.root, s.info.file);
    await rename(s.tmp, final);
    if (this.dirty.delete(s.tmp)) this.dirty.add(final);
    p.info.shards.push(s.info);
    p.unit.shards.push(s.info.file);
    this.ctx.stats.count('shards');
  }

  async finish(): Promise<Manifest> {
    for (const p of this.parts.values()) {
      await this.closeShard(p);
      p.originalShards = p.info.shards.map((s) => s.file);
    }
    this.open.clear();
    if (this.o.upsampleTo !== undefined && this.o.unitTokens !== undefined) {
      for (const p of this.parts.values()) await this.upsample(p);
    }
    const partitions = [...this.parts.values()].map((p) => p.info).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    for (const info of partitions) {
      // The last unit is the one still open: dropped when empty, partial when it did not reach unitTokens.
      // Units closed before it are complete (within half a document of unitTokens).
      const last = info.units[info.units.length - 1];
      if (last.docs === 0) info.units.pop();
      else if (this.o.unitTokens !== undefined && last.tokens < this.o.unitTokens) last.partial = true;
    }
    const sum = (f: (p: PartitionInfo) => number) => partitions.reduce((a, p) => a + f(p), 0);
    const manifest: Manifest = {
      format: 'mixstream-partitions/v1',
      created: new Date().toISOString(),
      by: this.o.by,
      unitTokens: this.o.unitTokens ?? null,
      upsampleTo: this.o.upsampleTo ?? null,
      maxShardBytes: this.o.maxShardBytes,
      tokenCount: `"${this.o.tokenField}" field when present, else the tokens operator's estimate`,
      totals: {
        partitions: partitions.length,
        docs: sum((p) => p.docs),
        tokens: sum((p) => p.tokens),
        repeatedDocs: sum((p) => p.repeatedDocs),
        shards: sum((p) => p.shards.length),
        bytes: sum((p) => p.bytes),
      },
      partitions,
    };
    const file = path.join(this.root, 'manifest.json');
    await writeFile(`${file}.tmp`, JSON.stringify(manifest, null, 1) + '\n');
    await rename(`${file}.tmp`, file);
    return manifest;
  }

  /**
   * Repeats a partition's documents (in their order, pass after pass) until it has `upsampleTo`
   * complete units. Reads its own finished shards back; the copies are counted in the manifest.
   */
  private async upsample(p: Partition): Promise<void> {
    const want = this.o.upsampleTo!;
    const complete = () => p.info.units.length - 1; // units before the open one
    if (complete() >= want || p.info.tokens <= 0) return;
    const before = p.info.docs;
    let passes = 0;
    outer: for (;;) {
      passes++;
      for (const rel of p.originalShards) {
        const progress: InputProgress = { bytes: 0, records: 0, complete: false };
        const errors: string[] = [];
        for await (const batch of decodeInput(fileInput(path.join(this.root, rel)), DEFAULT_DECODE, { error: (e) => errors.push(e.message) }, progress)) {
          for (const rec of batch) {
            const t = recordTokens(rec, this.o.tokenField);
            if (this.shouldClose(p, t)) {
              await this.closeUnit(p);
              if (complete() >= want) break outer;
            }
            await this.add(p, JSON.stringify(rec) + '\n', t, true);
          }
        }
        if (errors.length) throw new Error(`partition ${p.info.path}: cannot read back ${rel}: ${errors[0]}`);
      }
    }
    await this.closeShard(p);
    this.ctx.stats.count('upsampled_partitions');
    this.ctx.stats.count('repeated_docs', p.info.docs - before);
    this.ctx.log(`upsampled ${p.info.path} from ${before} to ${p.info.docs} documents (${passes} pass(es) over its data) to reach ${want} units`);
  }

  /**
   * Checkpoint: what is written so far is made durable (fsync) and recorded with every
   * partition's counts and open shard size. Buffered records are saved as they are instead of
   * being written as a frame, so frames (and with them shard sizes and boundaries) are the same
   * however often checkpoints are taken: the output equals an uninterrupted run's byte for byte.
   */
  async save(dir: string): Promise<void> {
    const handles = new Map<string, FileHandle>();
    for (const p of this.parts.values()) if (p.shard?.fh) handles.set(p.shard.tmp, p.shard.fh);
    for (const file of this.dirty) {
      const fh = handles.get(file);
      if (fh) await fh.datasync();
      else syncPath(file);
    }
    this.dirty.clear();
    const chunks: Buffer[] = [];
    let offset = 0;
    const parts: SavedPartition[] = [...this.parts.values()].map((p) => {
      const buf = Buffer.from(p.pending.join(''), 'utf8');
      chunks.push(buf);
      const pending = { offset, bytes: buf.length, docs: p.pendingDocs, tokens: p.pendingTokens };
      offset += buf.length;
      const shard = p.shard ? { tmp: path.relative(this.root, p.shard.tmp), info: p.shard.info } : null;
      return { id: p.id, info: p.info, shardCount: p.shardCount, shard, pending };
    });
    writeFileSync(path.join(dir, PENDING_FILE), Buffer.concat(chunks));
    const state: PartitionState = { version: 1, parts, open: [...this.open.keys()] };
    writeFileSync(path.join(dir, STATE_FILE), JSON.stringify(state));
  }

  /**
   * Restore: takes the partitions back to the checkpoint and makes the directory match it: the
   * open shards are cut back to their size then (renamed back to their temporary name if they
   * were finished since), files and directories created later are removed.
   */
  load(dir: string): void {
    const state = JSON.parse(readFileSync(path.join(dir, STATE_FILE), 'utf8')) as PartitionState;
    if (state.version !== 1) throw new Error(`partition: ${dir}: unknown state version ${state.version}`);
    const pending = readFileSync(path.join(dir, PENDING_FILE));
    const keep = new Set<string>([OWNER_FILE]);
    const dirs = new Set<string>();
    for (const sp of state.parts) {
      const p = new Partition(sp.info.key, sp.info.path, sp.info);
      p.id = sp.id;
      p.shardCount = sp.shardCount;
      if (sp.pending.bytes > 0) {
        p.pending = [pending.subarray(sp.pending.offset, sp.pending.offset + sp.pending.bytes).toString('utf8')];
        p.pendingBytes = sp.pending.bytes;
        p.pendingDocs = sp.pending.docs;
        p.pendingTokens = sp.pending.tokens;
      }
      for (const shard of p.info.shards) {
        const file = path.join(this.root, shard.file);
        if (!existsSync(file) || statSync(file).size !== shard.bytes) throw new Error(`partition: ${file} is missing or changed since the checkpoint; cannot resume`);
        keep.add(shard.file);
      }
      if (sp.shard) {
        const tmp = path.join(this.root, sp.shard.tmp);
        const final = path.join(this.root, sp.shard.info.file);
        // Finished and renamed after the checkpoint: it becomes the open shard again.
        if (!existsSync(tmp) && existsSync(final)) renameSync(final, tmp);
        if (!existsSync(tmp) || statSync(tmp).size < sp.shard.info.bytes) throw new Error(`partition: ${tmp} is missing or shorter than at the checkpoint; cannot resume`);
        truncateSync(tmp, sp.shard.info.bytes);
        keep.add(sp.shard.tmp);
        p.shard = { fh: undefined, tmp, info: sp.shard.info };
      }
      this.parts.set(p.id, p);
      for (let d = p.info.path; d !== '.'; d = path.dirname(d)) dirs.add(d);
    }
    const byPath = new Map([...this.parts.values()].map((p) => [p.info.path, p]));
    for (const rel of state.open) this.open.set(rel, byPath.get(rel)!);
    // Whatever else is in the directory was written after the checkpoint.
    const clean = (rel: string): void => {
      for (const e of readdirSync(path.join(this.root, rel), { withFileTypes: true })) {
        const r = rel ? path.join(rel, e.name) : e.name;
        if (e.isDirectory()) {
          clean(r);
          if (!dirs.has(r) && readdirSync(path.join(this.root, r)).length === 0) rmdirSync(path.join(this.root, r));
        } else if (!keep.has(r)) unlinkSync(path.join(this.root, r));
      }
    };
    clean('');
    for (const d of dirs) mkdirSync(path.join(this.root, d), { recursive: true });
  }

  /** Closes the open files and leaves them for a resumed run. */
  async release(): Promise<void> {
    for (const p of this.parts.values()) {
      await p.shard?.fh?.close().catch(() => {});
      if (p.shard) p.shard.fh = undefined;
    }
  }

  /** Removes unfinished shards after a failed run. */
  async abort(): Promise<void> {
    for (const p of this.parts.values()) {
      const s = p.shard;
      if (!s) continue;
      p.shard = undefined;
      await s.fh?.close().catch(() => {});
      await unlink(s.tmp).catch(() => {});
    }
  }
}

export default defineOperator<PartitionOptions>({
  name: 'partition',
  // Partitions, open shards and buffered records are state: with --checkpoint they are saved, and cut back to the checkpoint on resume.
  stateful: true,
  terminal: true,
  summary: 'Terminal step: writes records into partitions by fields, split into equal-token base units, as size-limited .jsonl.zst shards with a manifest',
  description:
    'Each record goes to the partition named by its `by` fields (directories `field=value/...`; nested fields with dots; ' +
    'missing values become `missing`). With `unitTokens`, a partition is cut into base units of equal token size, as in ' +
    'the data-ablation paper: a unit closes before the document that would overshoot unitTokens by more than leaving it ' +
    'out falls short, so every complete unit is within half a document of unitTokens; the last unit of a partition may ' +
    'be partial (marked in the manifest). Records are written as zstd frames of up to `frameBytes` into shards ' +
    '`unit-UUUUU-SSSSS.jsonl.zst` (or `shard-SSSSS.jsonl.zst`), each closed before it would pass `maxShardBytes` ' +
    'compressed (a single record larger than that gets a shard of its own). Shards are written under a temporary name ' +
    'and renamed when complete; manifest.json is written last. At most `maxOpenPartitions` shard files are open and ' +
    'buffering (the least recently used is written out and its file closed, to be reopened for appending: zstd frames ' +
    'concatenate), so memory is bounded by maxOpenPartitions x frameBytes. `upsampleTo` repeats the ' +
    'documents of partitions smaller than that many units until they have that many (the paper upsamples small ' +
    'partitions so that mixtures give every partition roughly equal weight). Passes nothing on. With --checkpoint it ' +
    'resumes exactly (shards cut back to the checkpoint, buffered records saved with it); its dir may be the -o directory.',
  options: {
    dir: { type: 'string', required: true, description: 'output directory (relative to the pipeline file)' },
    by: { type: 'array', items: { type: 'string', description: 'field name; dots reach into objects (metadata.year)' }, default: [], description: 'fields whose values name the partition (none: one partition "all")' },
    unitTokens: { type: 'integer', min: 1, description: 'tokens per base unit; without it each partition is one unit' },
    maxShardBytes: { type: 'integer', min: 1024, default: 256 * 1024 * 1024, description: 'largest compressed shard size in bytes' },
    upsampleTo: { type: 'integer', min: 1, description: 'repeat the documents of a partition with fewer complete units until it has this many (needs unitTokens)' },
    level: { type: 'integer', min: 1, max: 19, default: 3, description: 'zstd compression level' },
    maxOpenPartitions: { type: 'integer', min: 1, default: 64, description: 'open shards at most (least recently used partitions are closed first)' },
    frameBytes: { type: 'integer', min: 1024, default: 1024 * 1024, description: 'uncompressed bytes buffered per open partition before a zstd frame is written' },
    missing: { type: 'string', default: 'NA', description: 'partition value for records without the field (the paper\'s "NA")' },
    tokenField: { type: 'string', nonEmpty: true, default: 'token_count', description: 'field with the token count (when absent, tokens are estimated)' },
    overwrite: { type: 'boolean', default: false, description: 'replace an existing output directory that has a manifest.json' },
  },
  outputs: {},
  check(o) {
    return o.upsampleTo !== undefined && o.unitTokens === undefined ? [{ path: 'upsampleTo', message: 'upsampling counts base units: set unitTokens too' }] : [];
  },
  explain(o) {
    return `writes records into ${o.dir}/${o.by.length ? o.by.map((f) => `${f}=<value>`).join('/') : 'all'}${o.unitTokens ? ` in base units of ${o.unitTokens} tokens` : ''}, zstd shards up to ${o.maxShardBytes} bytes${o.upsampleTo ? `, small partitions repeated up to ${o.upsampleTo} units` : ''}; passes nothing on`;
  },
  create(o, ctx) {
    const root = path.resolve(ctx.baseDir, o.dir);
    const ownerFile = path.join(root, OWNER_FILE);
    // With --checkpoint the scratch directory survives a crash, so it identifies the run that owns the output directory.
    const owner = path.resolve(ctx.tmpDir);
    const owned = existsSync(ownerFile) && readFileSync(ownerFile, 'utf8') === owner;
    const claim = () => {
      mkdirSync(root, { recursive: true });
      writeFileSync(ownerFile, owner);
    };
    const empty = !existsSync(root) || readdirSync(root).length === 0;
    if (empty) claim();
    const w = new PartitionWriter(o, root, ctx);
    let finished = false;
    /** A checkpoint was taken or restored: what is on disk belongs to it and stays on failure. */
    let checkpointed = false;
    /**
     * A directory with content is taken over by `restore` (the checkpoint of this pipeline
     * describes it: a resumed run, also one stopped after its manifest was written) or, at the
     * first batch, started over: when this run's mark is in it (the killed run took no
     * checkpoint) or with `overwrite`; otherwise it is refused.
     */
    let ready = empty;
    const start = () => {
      if (ready) return;
      if (!owned && !o.overwrite) {
        if (existsSync(path.join(root, 'manifest.json'))) throw stepOptionError(ctx, `option dir: ${root} already holds a partitioned dataset (manifest.json); choose another dir or set overwrite: true`);
        throw stepOptionError(ctx, `option dir: ${root} exists and is not empty; choose another dir or set overwrite: true`);
      }
      for (const e of readdirSync(root)) rmSync(path.join(root, e), { recursive: true, force: true });
      claim();
      ready = true;
    };
    const step: Step = {
      async process(batch) {
        start();
        let tokens = 0;
        let written = 0;
        for (const rec of batch) {
          if (typeof rec.text !== 'string') {
            ctx.error(rec, 'no_text', `record ${rec.id}: "text" is ${rec.text === undefined ? 'missing' : typeof rec.text}, not a string`);
            continue;
          }
          const t = recordTokens(rec, o.tokenField);
          tokens += t;
          await w.add(w.partitionOf(rec), JSON.stringify(rec) + '\n', t, false);
          written++;
        }
        // The records are in the shards, not handed on: in = docs_written + errors.
        ctx.stats.count('docs_written', written);
        ctx.stats.count('tokens_written', tokens);
        return [];
      },
      async flush() {
        start();
        const m = await w.finish();
        finished = true;
        ctx.log(`${m.totals.docs.toLocaleString('en-US')} documents, ${m.totals.tokens.toLocaleString('en-US')} tokens in ${m.totals.partitions} partition(s), ${m.totals.shards} shard(s), ${(m.totals.bytes / 2 ** 20).toFixed(2)} MiB -> ${path.join(root, 'manifest.json')}`);
        return [];
      },
      async checkpoint(dir) {
        start();
        await w.save(dir);
        checkpointed = true;
      },
      restore(dir) {
        w.load(dir);
        claim();
        ready = true;
        checkpointed = true;
      },
      async close() {
        if (finished) rmSync(ownerFile, { force: true });
        else if (checkpointed) await w.release();
        else await w.abort();
      },
    };
    // The end-of-input upsampling reads back and copies finished shards; resuming in the middle of
    // it is not exact yet, so such a pipeline is refused by --checkpoint instead of resumed wrongly.
    if (o.upsampleTo !== undefined) {
      delete step.checkpoint;
      delete step.restore;
    }
    return step;
  },
});
