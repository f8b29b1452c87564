// `mix`: a source step that interleaves several sources (files or globs each) to target token
// shares or weights, repeating sources that are too small.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import type { ErrorEntry } from '../lib/context.ts';
import { decodeInput, DEFAULT_DECODE, fileInput, POSITION, type InputProgress, type PositionedBatch } from '../lib/io/decode.ts';
import { expandGlob } from '../lib/io/glob.ts';
import { nextSource, passOffset, planTargets, selected, type SourcePlan } from '../lib/mix/plan.ts';
import { defineOperator, stepOptionError, type Rec } from '../lib/operator.ts';
import { estimateTokens } from '../lib/text/tokenizer.ts';

export interface MixSource {
  name: string;
  paths: string[];
  share?: number;
  weight?: number;
  tokens?: number;
}

export interface MixOptions {
  sources: MixSource[];
  totalTokens?: number;
  seed: number;
  upsample: boolean;
  tokenField: string;
  field: string;
  batchSize: number;
}

/** Tokens of a record: its `tokenField` when it is a number, else the calibrated estimate of lib/text/tokenizer.ts. */
export function recordTokens(rec: Rec, tokenField: string): number {
  const v = rec[tokenField];
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : estimateTokens(rec.text);
}

interface ErrorsMark {
  read: number;
  seen: [string, { line: number; unlined: number }][];
}
interface ErrorsState {
  read: string[];
  seen: ErrorsMark['seen'];
}

/**
 * Bad lines of every file are reported once, on its first complete read (later passes skip them).
 * Within that read, an error is reported only past the furthest line already reported for the
 * file, so a read resumed from a checkpoint does not report the lines it decodes again.
 */
class FileErrors {
  /** Files read to their end once. */
  readonly read = new Set<string>();
  /** Per file not yet read to its end: furthest error line reported, and errors without a line. */
  readonly seen = new Map<string, { line: number; unlined: number }>();

  constructor(private readonly sink: (e: ErrorEntry) => void) {}

  report(file: string, e: ErrorEntry, resumedUnlined?: { n: number }): void {
    if (this.read.has(file)) return;
    let s = this.seen.get(file);
    if (!s) this.seen.set(file, (s = { line: 0, unlined: 0 }));
    if (e.line === undefined) {
      // Errors without a line (a file that cannot be opened, a truncated end): the first `n` of a resumed read were reported before.
      if (resumedUnlined && resumedUnlined.n > 0) {
        resumedUnlined.n--;
        return;
      }
      s.unlined++;
    } else {
      if (e.line <= s.line) return;
      s.line = e.line;
    }
    this.sink(e);
  }

  /** The state now, cheaply: `read` only grows, so its first `read` entries are the files read then. */
  mark(): ErrorsMark {
    return { read: this.read.size, seen: [...this.seen].map(([f, v]) => [f, { ...v }]) };
  }

  save(mark: ErrorsMark): ErrorsState {
    return { read: [...this.read].slice(0, mark.read), seen: mark.seen };
  }

  load(state: ErrorsState): void {
    this.read.clear();
    for (const f of state.read) this.read.add(f);
    this.seen.clear();
    for (const [f, v] of state.seen) this.seen.set(f, { ...v });
  }
}

/**
 * Where a reader of a list of files is: the next record is the `taken`-th record (0-based) after
 * line (row) `line` of file `file`. Lines up to `line` are skipped unparsed on resume.
 */
export interface FilePosition {
  file: number;
  line: number;
  taken: number;
}

/** Reads the records of a list of files in order, one at a time (bounded: one decoded batch in memory). */
class FileRecords {
  private batches: AsyncGenerator<{ k: number; batch: PositionedBatch }>;
  private batch: PositionedBatch = [];
  private pos = 0;
  private readonly at: FilePosition;
  /** Records of a resumed position still to be passed over before the next one is returned. */
  private skip: number;

  /** `resume`: continue a read from a checkpointed position instead of starting at the first file. */
  constructor(files: string[], errors: FileErrors, resume?: FilePosition) {
    const start = resume ?? { file: 0, line: 0, taken: 0 };
    this.at = { file: start.file, line: start.line, taken: 0 };
    this.skip = start.taken;
    // On resume, errors without a line number that the interrupted read of this file already reported.
    const unlined = { n: resume ? (errors.seen.get(files[start.file])?.unlined ?? 0) : 0 };
    this.batches = (async function* () {
      for (let k = start.file; k < files.length; k++) {
        const file = files[k];
        const progress: InputProgress = { bytes: 0, records: 0, complete: false };
        const opts = { ...DEFAULT_DECODE, skipLines: k === start.file ? start.line : 0 };
        for await (const batch of decodeInput(fileInput(file), opts, { error: (e) => errors.report(file, e, k === start.file ? unlined : undefined) }, progress)) {
          yield { k, batch };
        }
        errors.read.add(file);
        errors.seen.delete(file);
      }
    })();
  }

  /**
   * The position of the next record. Records of a resumed position not yet passed over count as
   * taken: they were handed on before the checkpoint, whether or not this reader has read them yet.
   */
  position(): FilePosition {
    return { ...this.at, taken: this.at.taken + this.skip };
  }

  async next(): Promise<Rec | undefined> {
    for (;;) {
      while (this.pos >= this.batch.length) {
        // Every line up to a batch's position is consumed once all its records are.
        const done = this.batch[POSITION];
        if (done !== undefined) {
          this.at.line = done;
          this.at.taken = 0;
        }
        const r = await this.batches.next();
        if (r.done) return undefined;
        if (r.value.k !== this.at.file) Object.assign(this.at, { file: r.value.k, line: 0, taken: 0 });
        this.batch = r.value.batch;
        this.pos = 0;
      }
      const rec = this.batch[this.pos++];
      // `taken` and `skip` change together, so position() is right between any two awaits.
      this.at.taken++;
      if (this.skip === 0) return rec;
      this.skip--;
    }
  }

  async close(): Promise<void> {
    await this.batches.return(undefined);
  }
}

type Phase = 'full' | 'partial' | 'fill' | 'done';

/** A source reader's state at a checkpoint. */
interface SourceState {
  pass: number;
  phase: Phase;
  j: number;
  passesStarted: number[];
  at?: FilePosition;
}

/**
 * The documents one source contributes, in order: `floor(factor)` full passes over its files,
 * then a stratified sample (see `selected`) of one more pass, then (only if the mix still needs
 * tokens from it because the selected documents were shorter than average) the documents that
 * pass skipped. Every pass re-reads the files; nothing is held in memory.
 */
class SourceStream {
  pass = 0;
  private phase: Phase = 'full';
  private reader: FileRecords | undefined;
  private j = 0;
  private u = 0;
  passesStarted: number[] = [];

  constructor(
    private readonly index: number,
    private readonly files: string[],
    private readonly factor: number,
    private readonly seed: number,
    private readonly errors: FileErrors,
    from?: SourceState,
  ) {
    if (!from) {
      this.startPass(0);
      return;
    }
    this.pass = from.pass;
    this.phase = from.phase;
    this.j = from.j;
    this.passesStarted = [...from.passesStarted];
    this.u = passOffset(this.seed, this.index, this.pass);
    if (this.phase !== 'done') this.reader = new FileRecords(this.files, this.errors, from.at);
  }

  save(): SourceState {
    return { pass: this.pass, phase: this.phase, j: this.j, passesStarted: [...this.passesStarted], ...(this.reader && this.phase !== 'done' && { at: this.reader.position() }) };
  }

  private startPass(pass: number): void {
    this.pass = pass;
    const rest = this.factor - pass;
    this.phase = rest >= 1 - 1e-12 ? 'full' : rest > 1e-12 ? 'partial' : 'done';
    if (this.phase === 'done') return;
    this.u = passOffset(this.seed, this.index, pass);
    this.open();
  }

  private open(): void {
    this.reader = new FileRecords(this.files, this.errors);
    this.j = 0;
    this.passesStarted.push(this.pass);
  }

  async next(): Promise<{ rec: Rec; pass: number } | undefined> {
    for (;;) {
      if (this.phase === 'done' || !this.reader) return undefined;
      const rec = await this.reader.next();
      if (rec === undefined) {
        await this.reader.close();
        this.reader = undefined;
        if (this.phase === 'partial') {
          this.phase = 'fill';
          this.open();
        } else if (this.phase === 'fill') {
          this.phase = 'done';
        } else {
          this.startPass(this.pass + 1);
        }
        continue;
      }
      const j = this.j++;
      if (this.phase === 'full') return { rec, pass: this.pass };
      const rate = this.factor - this.pass;
      const pick = selected(j, rate, this.u, (this.seed ^ Math.imul(this.index + 1, 0x27d4eb2d) ^ Math.imul(this.pass + 1, 0x165667b1)) >>> 0);
      if ((this.phase === 'partial') === pick) return { rec, pass: this.pass };
    }
  }

  async close(): Promise<void> {
    await this.reader?.close();
    this.reader = undefined;
    this.phase = 'done';
  }
}

/** What `mix` writes at a checkpoint: enough to continue with exactly the next document. */
interface MixState {
  version: 1;
  files: string[][];
  sizes: number[];
  emitted: number[];
  docs: number[];
  repeated: number[];
  finished: number[];
  sources: SourceState[];
  errors: ErrorsState;
}

const STATE_FILE = 'mix-state.json';

function sourceFiles(src: MixSource, baseDir: string, i: number): string[] {
  const files = [...new Set(src.paths.flatMap((p) => expandGlob(p, baseDir)))];
  if (files.length === 0) throw new Error(`option sources[${i}].paths: no file matches ${src.paths.map((p) => JSON.stringify(p)).join(', ')} (relative to ${baseDir})`);
  return files;
}

const fmtTokens = (n: number) => Math.round(n).toLocaleString('en-US');

export default defineOperator<MixOptions>({
  name: 'mix',
  // Its read positions in every source are state: with --checkpoint, a run resumes with exactly the next document.
  stateful: true,
  summary: 'Source step: interleaves several sources (files or globs) to target token shares or weights, repeating small sources',
  source: true,
  description:
    'Reads each source\'s NDJSON files (plain, gzip or zstd; Parquet and Arrow too) itself and interleaves the documents so ' +
    'that the output has the target token share of every source at every prefix, not just at the end: the next document ' +
    'always comes from the source furthest behind its target (smallest emitted/target), so each share is within one ' +
    'document of its target. A first pass counts every source\'s tokens (skipped for sources that give `tokens`). A source ' +
    'whose target exceeds its size is repeated (whole passes, then a systematic sample of one more pass); a larger one is ' +
    'cut to a systematic sample spread evenly over it. Tokens come from `token_count` when records carry it, else from ' +
    'the calibrated estimate of the `tokens` operator. Must be the first step: the pipeline reads no other input. With ' +
      '--checkpoint it resumes with exactly the next document (read positions, mixing counters and the counted sizes are saved).',
  options: {
    sources: {
      type: 'array',
      minItems: 1,
      required: true,
      description: 'the sources to mix',
      items: {
        type: 'object',
        description: 'one source',
        properties: {
          name: { type: 'string', required: true, description: 'source name, written into `mix_source`' },
          paths: { type: 'array', minItems: 1, items: { type: 'string', description: 'file or glob (* ? [..] **), relative to the pipeline file' }, required: true, description: 'files or globs of this source' },
          share: { type: 'number', min: 0, exclusiveMin: true, max: 1, description: 'target fraction of the output tokens (shares of all sources sum to 1)' },
          weight: { type: 'number', min: 0, exclusiveMin: true, description: 'multiplier on the source size (2: use every document twice; 0.5: half of them)' },
          tokens: { type: 'number', min: 0, exclusiveMin: true, description: 'known token count of the source (skips its counting pass)' },
        },
      },
    },
    totalTokens: { type: 'number', min: 0, exclusiveMin: true, description: 'output size in tokens (default: with shares, the largest source used once at its share, or with upsample: false, the most no source repeats for; with weights, the weighted sizes)' },
    seed: { type: 'integer', min: 0, max: 0xffffffff, default: 0, description: 'seed of the samples (which documents a partial pass takes)' },
    upsample: { type: 'boolean', default: true, description: 'repeat a source that is too small for its target; false makes that an error' },
    tokenField: { type: 'string', nonEmpty: true, default: 'token_count', description: 'field with a record\'s token count (when absent, tokens are estimated)' },
    field: { type: 'string', default: 'mix_source', description: 'output field with the source name' },
    batchSize: { type: 'integer', min: 1, default: 1024, description: 'records per batch handed to the next step' },
  },
  outputs: {
    mix_source: 'name of the source the record came from (renamed by `field`)',
    mix_repeat: 'on repeated copies only: 1 for the second use of a document, 2 for the third, ...',
  },
  check(o) {
    const errors: { path: string; message: string }[] = [];
    const srcs = o.sources ?? [];
    const withShare = srcs.filter((s) => s.share !== undefined).length;
    const withWeight = srcs.filter((s) => s.weight !== undefined).length;
    srcs.forEach((s, i) => {
      if (s.share !== undefined && s.weight !== undefined) errors.push({ path: `sources[${i}]`, message: 'give either share or weight, not both' });
    });
    if (withShare && withShare !== srcs.length) errors.push({ path: 'sources', message: `every source needs a share when one has one (${withShare} of ${srcs.length} do)` });
    if (withShare && withWeight) errors.push({ path: 'sources', message: 'mix shares and weights in one step is ambiguous: use shares for all sources, or weights' });
    if (withShare === srcs.length && srcs.length) {
      const sum = srcs.reduce((a, s) => a + (s.share ?? 0), 0);
      if (Math.abs(sum - 1) > 1e-6) errors.push({ path: 'sources', message: `shares must sum to 1, they sum to ${sum}` });
    }
    const names = new Set<string>();
    srcs.forEach((s, i) => {
      if (names.has(s.name)) errors.push({ path: `sources[${i}].name`, message: `duplicate source name "${s.name}"` });
      names.add(s.name);
    });
    return errors;
  },
  explain(o) {
    const parts = o.sources.map((s) => `${s.name} (${s.share !== undefined ? `share ${s.share}` : `weight ${s.weight ?? 1}`}: ${s.paths.join(', ')})`);
    return `reads and interleaves ${parts.join('; ')}${o.totalTokens ? ` up to ${o.totalTokens} tokens` : ''}${o.upsample ? ', repeating small sources' : ''}`;
  },
  create(o, ctx) {
    let files: string[][];
    try {
      files = o.sources.map((s, i) => sourceFiles(s, ctx.baseDir, i));
    } catch (e) {
      throw stepOptionError(ctx, (e as Error).message);
    }
    let readers: SourceStream[] = [];
    const errors = new FileErrors(({ reason, message, step: _step, op: _op, ...where }) => ctx.error(undefined, reason, `${where.input}${where.line !== undefined ? `:${where.line}` : ''}: ${message}`, where));
    /** The state after the last batch handed on: what a checkpoint taken before the next one records. */
    let lastYield: (Omit<MixState, 'errors'> & { errors: ErrorsMark | ErrorsState }) | undefined;
    /** State to continue from (restore). */
    let resumed: MixState | undefined;

    async function countSource(i: number): Promise<number> {
      let tokens = 0;
      let docs = 0;
      const r = new FileRecords(files[i], errors);
      try {
        for (let rec = await r.next(); rec !== undefined; rec = await r.next()) {
          tokens += recordTokens(rec, o.tokenField);
          docs++;
          if (ctx.signal.aborted) break;
        }
      } finally {
        await r.close();
      }
      ctx.log(`source ${o.sources[i].name}: ${files[i].length} file(s), ${docs.toLocaleString('en-US')} documents, ${fmtTokens(tokens)} tokens`);
      return tokens;
    }

    return {
      process(batch) {
        return batch;
      },
      async *generate() {
        const from = resumed;
        const sizes: number[] = [];
        if (from) sizes.push(...from.sizes);
        else for (let i = 0; i < o.sources.length; i++) sizes.push(o.sources[i].tokens ?? (await countSource(i)));
        let plan: SourcePlan[];
        try {
          plan = planTargets(o.sources, sizes, { totalTokens: o.totalTokens, upsample: o.upsample });
        } catch (e) {
          throw stepOptionError(ctx, `option ${(e as Error).message}`);
        }
        for (const p of plan) {
          ctx.log(`source ${p.name}: target ${fmtTokens(p.target)} tokens (share ${(p.share * 100).toFixed(2)}%), ${p.factor.toFixed(3)} x its ${fmtTokens(p.size)} tokens`);
        }
        readers = plan.map((p, i) => new SourceStream(i, files[i], p.factor, o.seed, errors, from?.sources[i]));
        const k = plan.length;
        const emitted = Float64Array.from(from?.emitted ?? plan.map(() => 0));
        const docs = Float64Array.from(from?.docs ?? plan.map(() => 0));
        const repeated = Float64Array.from(from?.repeated ?? plan.map(() => 0));
        const targets = Float64Array.from(plan, (p) => p.target);
        const finished = Uint8Array.from(from?.finished ?? plan.map(() => 0));
        if (from) {
          const done = docs.reduce((a, b) => a + b, 0);
          ctx.log(`resuming after ${done.toLocaleString('en-US')} documents (${fmtTokens(emitted.reduce((a, b) => a + b, 0))} tokens)`);
        }
        const snapshot = (): typeof lastYield => ({
          version: 1,
          files,
          sizes,
          emitted: [...emitted],
          docs: [...docs],
          repeated: [...repeated],
          finished: [...finished],
          sources: readers.map((r) => r.save()),
          errors: errors.mark(),
        });
        let out: Rec[] = [];
        /**
         * Hands a batch on. The runner may take a checkpoint right after it; it may also already
         * ask for the next batch before the barrier behind this one reached this step. The state is
         * therefore recorded here, and the next batch starts only after a turn of the event loop,
         * once the barrier (handled in microtasks) has taken its checkpoint.
         */
        async function* handOn(): AsyncGenerator<Rec[]> {
          lastYield = snapshot();
          const batch = out;
          out = [];
          yield batch;
          await new Promise((r) => setImmediate(r));
        }
        try {
          for (;;) {
            if (ctx.signal.aborted) return;
            const i = nextSource(emitted, targets, finished);
            if (i < 0) break;
            const next = await readers[i].next();
            if (next === undefined) {
              finished[i] = 1;
              if (emitted[i] < targets[i] * 0.999) {
                ctx.log(`warning: source ${plan[i].name} ran out at ${fmtTokens(emitted[i])} of ${fmtTokens(targets[i])} target tokens (its files changed since they were counted?)`);
              }
              continue;
            }
            const { rec, pass } = next;
            const t = recordTokens(rec, o.tokenField);
            if (emitted[i] + t - targets[i] > targets[i] - emitted[i]) {
              // Taking this document would overshoot the target by more than leaving it out falls short.
              finished[i] = 1;
              await readers[i].close();
              continue;
            }
            emitted[i] += t;
            docs[i]++;
            ctx.annotate(rec, o.field, plan[i].name);
            if (pass > 0) {
              ctx.annotate(rec, 'mix_repeat', pass);
              repeated[i]++;
            }
            if (emitted[i] >= targets[i]) {
              finished[i] = 1;
              await readers[i].close();
            }
            out.push(rec);
            if (out.length >= o.batchSize) yield* handOn();
          }
          if (out.length) yield* handOn();
        } finally {
          await Promise.all(readers.map((r) => r.close()));
        }
        const total = emitted.reduce((a, b) => a + b, 0);
        for (let i = 0; i < k; i++) {
          const name = plan[i].name;
          ctx.stats.count(`docs_${name}`, docs[i]);
          ctx.stats.count(`tokens_${name}`, Math.round(emitted[i]));
          ctx.stats.count(`repeated_docs_${name}`, repeated[i]);
          ctx.stats.count(`passes_${name}`, readers[i].passesStarted.length ? Math.max(...readers[i].passesStarted) + 1 : 0);
          ctx.log(
            `source ${name}: ${docs[i].toLocaleString('en-US')} documents, ${fmtTokens(emitted[i])} tokens = ${((emitted[i] / total) * 100).toFixed(2)}% ` +
              `(target ${(plan[i].share * 100).toFixed(2)}%), ${repeated[i].toLocaleString('en-US')} repeated copies over ${Math.ceil(plan[i].factor - 1e-12)} pass(es)`,
          );
        }
      },
      checkpoint(dir) {
        // Nothing handed on yet: a resumed run starts from the beginning.
        if (!lastYield) return;
        const e = lastYield.errors;
        const state: MixState = { ...lastYield, errors: typeof e.read === 'number' ? errors.save(e as ErrorsMark) : (e as ErrorsState) };
        writeFileSync(path.join(dir, STATE_FILE), JSON.stringify(state));
      },
      restore(dir) {
        const file = path.join(dir, STATE_FILE);
        if (!existsSync(file)) return;
        const state = JSON.parse(readFileSync(file, 'utf8')) as MixState;
        if (state.version !== 1) throw new Error(`mix: ${file}: unknown state version ${state.version}`);
        const changed = state.files.findIndex((f, i) => JSON.stringify(f) !== JSON.stringify(files[i]));
        if (state.files.length !== files.length || changed >= 0) {
          throw new Error(`mix: the files of source ${o.sources[Math.max(0, changed)]?.name} are not the ones the checkpoint was taken with (files were added or removed); start the run again without the checkpoint`);
        }
        errors.load(state.errors);
        resumed = state;
        lastYield = state;
      },
      async close() {
        await Promise.all(readers.map((r) => r.close()));
      },
    };
  },
});
