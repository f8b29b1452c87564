// A uniform sample of a stream of documents' features (Algorithm R with a seeded generator),
// what SampleMix fits its clustering on, with incremental checkpoints. No stream code.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { mulberry32After, type SparseFeatures } from './kmeans.ts';
import { AppendFile, LineWriter, readRows } from './spill-file.ts';

interface FitSampleState {
  version: 1;
  size: number;
  seen: number;
  draws: number;
  slots: number;
  /** Length of features.bin that counts; -1: no file. */
  fileBytes: number;
}

export class FitSample {
  /** The sample: the first `size` documents, then each later one replaces a slot with probability size/seen. */
  readonly items: SparseFeatures[] = [];
  private seen = 0;
  private draws = 0;
  private rand: () => number;
  /**
   * Checkpoints append the features of slots filled since the previous one to an append-only
   * file; `off`/`len` say where each slot's current features are (`len` 0: not saved yet).
   */
  private file: AppendFile;
  private readonly off: Float64Array;
  private readonly len: Float64Array;

  constructor(
    private readonly size: number,
    private readonly seed: number,
    private readonly dir: () => string,
    /** Bytes of replaced features tolerated beyond the live ones before the copy is rewritten. */
    private readonly slack = 1 << 20,
  ) {
    this.rand = mulberry32After(seed, 0);
    this.file = new AppendFile(dir, 'fit-sample');
    this.off = new Float64Array(size);
    this.len = new Float64Array(size);
  }

  /** Offers the next document; `features` is only called when it enters the sample. */
  offer(features: () => SparseFeatures): void {
    this.seen++;
    let slot = this.items.length;
    if (slot >= this.size) {
      this.draws++;
      slot = Math.floor(this.rand() * this.seen);
      if (slot >= this.size) return;
    }
    this.items[slot] = features();
    this.len[slot] = 0;
  }

  /**
   * Writes the sampler into the empty directory `dir`: the features of the slots filled since
   * the previous checkpoint are appended to the scratch file, kept by hard link with its length
   * (rewritten with the live slots only when replaced ones are most of it), plus the slots'
   * positions and the counters.
   */
  save(dir: string): void {
    let live = 0;
    for (let s = 0; s < this.items.length; s++) live += this.len[s];
    if (this.file.length > 2 * live + this.slack) {
      this.file.close();
      this.file = new AppendFile(this.dir, 'fit-sample');
      this.len.fill(0);
    }
    const head = new Uint32Array(1);
    for (let s = 0; s < this.items.length; s++) {
      if (this.len[s]) continue;
      const f = this.items[s];
      head[0] = f.indices.length;
      const buf = Buffer.concat([new Uint8Array(head.buffer), new Uint8Array(f.indices.buffer, f.indices.byteOffset, f.indices.byteLength), new Uint8Array(f.values.buffer, f.values.byteOffset, f.values.byteLength)]);
      this.off[s] = this.file.append(buf);
      this.len[s] = buf.length;
    }
    const rows = new LineWriter(path.join(dir, 'slots.f64'));
    for (let s = 0; s < this.items.length; s++) rows.bytesOut(new Uint8Array(Float64Array.of(this.off[s], this.len[s]).buffer));
    rows.close();
    const state: FitSampleState = { version: 1, size: this.size, seen: this.seen, draws: this.draws, slots: this.items.length, fileBytes: this.file.save(path.join(dir, 'features.bin')) };
    writeFileSync(path.join(dir, 'state.json'), JSON.stringify(state));
  }

  /** Replaces the contents of this (empty) sampler with what `save` wrote into `dir`. */
  load(dir: string): void {
    if (this.seen) throw new Error('FitSample.load: the sample is not empty');
    const state = JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8')) as FitSampleState;
    if (state.version !== 1) throw new Error(`${dir}: fitting sample saved by an incompatible version (${state.version})`);
    if (state.size !== this.size) throw new Error(`${dir}: fitting sample of ${state.size} documents, this one holds ${this.size} (was fitDocs changed?)`);
    this.file.resume(path.join(dir, 'features.bin'), state.fileBytes);
    const count = new Uint32Array(1);
    for (const rows of readRows(path.join(dir, 'slots.f64'), 2)) {
      for (let r = 0; r < rows.length; r += 2) {
        const s = this.items.length;
        const buf = this.file.read(rows[r], rows[r + 1]);
        new Uint8Array(count.buffer).set(buf.subarray(0, 4));
        const n = count[0];
        const indices = new Uint32Array(n);
        const values = new Float64Array(n);
        new Uint8Array(indices.buffer).set(buf.subarray(4, 4 + 4 * n));
        new Uint8Array(values.buffer).set(buf.subarray(4 + 4 * n, 4 + 12 * n));
        this.items.push({ indices, values });
        this.off[s] = rows[r];
        this.len[s] = rows[r + 1];
      }
    }
    if (this.items.length !== state.slots) throw new Error(`${dir}: slots.f64 holds ${this.items.length} slots, state.json says ${state.slots}`);
    this.seen = state.seen;
    this.draws = state.draws;
    this.rand = mulberry32After(this.seed, this.draws);
  }

  /** Releases the sample and removes the scratch file. */
  close(): void {
    this.items.length = 0;
    this.file.close();
  }
}
