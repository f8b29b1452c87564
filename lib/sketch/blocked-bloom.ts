// Blocked Bloom filter over the 64-bit band keys of an LSH index (lib/sketch/lsh.ts), and the
// batch probe a worker thread runs over the filters of the spilled segments. No stream code.
import { fmix32 as mix32 } from '../text/shingle.ts';
import { withTransfer } from '../parallel.ts';

// Blocked Bloom filter over 64-bit band keys: one 512-bit block per key, K bits set in it.
// The block is chosen by the key's place in key order (band, then hash), not by a hash of it:
// the keys are uniform within a band, so blocks fill as evenly as with a hash, and a filter
// built from sorted entries (a spill, a merge) is written front to back instead of at random
// places of a filter far larger than the CPU caches.

const BLOOM_K = 6;

/**
 * A band key's place in key order, in [0, groups): its group (the top 16 bits of `hi`, the band)
 * plus the next 32 bits of the key as a fraction. Keys are uniform within a group, so scaling it
 * spreads them evenly over the blocks of a filter or the cells of a table.
 */
export function keyPlace(hi: number, lo: number): number {
  return (hi >>> 16) + ((hi & 0xffff) * 65536 + (lo >>> 16)) / 4294967296;
}

export class BlockedBloom {
  readonly words: Uint32Array;
  private readonly blocks: number;
  private readonly blocksPerGroup: number;

  /** `groups`: the values the top 16 bits of `hi` take (the bands), 0 .. groups - 1. */
  constructor(words: Uint32Array, groups = 65536) {
    this.words = words;
    this.blocks = words.length >>> 4;
    this.blocksPerGroup = this.blocks / groups;
  }

  /** First word of the key's block: by its place in key order. */
  private base(hi: number, lo: number): number {
    return (Math.floor(keyPlace(hi, lo) * this.blocksPerGroup) % this.blocks) << 4;
  }

  /** Words of a filter for `n` keys at `bitsPerKey`. */
  static wordsFor(n: number, bitsPerKey: number): number {
    return Math.max(1, Math.ceil((n * bitsPerKey) / 512)) * 16;
  }

  static forKeys(n: number, bitsPerKey: number, groups?: number): BlockedBloom {
    return new BlockedBloom(new Uint32Array(BlockedBloom.wordsFor(n, bitsPerKey)), groups);
  }

  add(hi: number, lo: number): void {
    const base = this.base(hi, lo);
    let h = mix32(lo ^ 0x5bd1e995) | 0;
    const step = mix32(hi + 0x632be5ab) | 1;
    for (let i = 0; i < BLOOM_K; i++) {
      const bit = h & 511;
      this.words[base + (bit >>> 5)] |= 1 << (bit & 31);
      h = (h + step) | 0;
      h = (h >>> 9) | (h << 23);
    }
  }

  has(hi: number, lo: number): boolean {
    const base = this.base(hi, lo);
    let h = mix32(lo ^ 0x5bd1e995) | 0;
    const step = mix32(hi + 0x632be5ab) | 1;
    for (let i = 0; i < BLOOM_K; i++) {
      const bit = h & 511;
      if ((this.words[base + (bit >>> 5)] & (1 << (bit & 31))) === 0) return false;
      h = (h + step) | 0;
      h = (h >>> 9) | (h << 23);
    }
    return true;
  }
}

/** Bloom filters to probe, in segment order (at most 32), and the band keys of a batch of documents. */
export interface ProbeTask {
  /** The filters' words: views of shared memory, so they are not copied to the worker. */
  filters: Uint32Array[];
  /** Bands of the index (the filters place keys by band). */
  groups: number;
  /** Band keys as (hi, lo) pairs: document after document, band after band. */
  keys: Uint32Array;
}

/**
 * For every band key of `task.keys`, the filters that pass it, as bits (bit s: filter s): what
 * the index's lookups would compute one key at a time. Run in a worker thread while the main
 * thread joins the batch before (a probe is a cache miss in a filter far larger than the caches).
 */
export function probeSegments(task: ProbeTask): Uint32Array<ArrayBuffer> {
  const blooms = task.filters.map((w) => new BlockedBloom(w, task.groups));
  const n = task.keys.length >>> 1;
  const maybe = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const hi = task.keys[2 * i], lo = task.keys[2 * i + 1];
    let bits = 0;
    for (let s = 0; s < blooms.length; s++) if (blooms[s].has(hi, lo)) bits |= 1 << s;
    maybe[i] = bits;
  }
  return maybe;
}

/** Worker-pool entry of `probeSegments`: the result's buffer moves back instead of being copied. */
export function probeTask(task: ProbeTask): Uint32Array {
  const maybe = probeSegments(task);
  return withTransfer(maybe, [maybe.buffer]);
}
