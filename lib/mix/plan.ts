// Planning a mix of sources: token targets from shares or weights, repeat factors, systematic
// selection of a fraction of a pass, and the deficit rule that interleaves sources so every prefix
// of the output has the target shares. Pure functions, no I/O.
import { fmix32 } from '../text/shingle.ts';

export interface MixSourceSpec {
  name: string;
  /** Target fraction of the output's tokens (all sources give a share, summing to 1). */
  share?: number;
  /** Multiplier on the source's own size (1: as is, 2: every document twice, 0.5: half). */
  weight?: number;
}

export interface MixPlanOptions {
  /** Output size in tokens; without it, the output is sized from the sources (see planTargets). */
  totalTokens?: number;
  /** Repeat sources that are too small for their target (default true). */
  upsample: boolean;
}

export interface SourcePlan {
  name: string;
  /** Tokens in the source (one pass). */
  size: number;
  /** Tokens the output takes from it. */
  target: number;
  /** target / size: passes over the source (2.5 = two full passes and half of a third). */
  factor: number;
  /** target / total target. */
  share: number;
}

/**
 * Token targets of each source.
 * - shares + totalTokens: target = share x totalTokens.
 * - shares only, upsample: the largest source is used once at its share (total = size / share of
 *   the largest source); smaller sources are repeated or cut to their shares.
 * - shares only, no upsample: the largest total no source has to repeat for
 *   (total = min over sources of size / share).
 * - weights: target = weight x size; with totalTokens, scaled so the targets sum to it.
 * Throws when a target cannot be met without repeating and upsample is off, or a source is empty.
 */
export function planTargets(sources: MixSourceSpec[], sizes: number[], o: MixPlanOptions): SourcePlan[] {
  sources.forEach((s, i) => {
    if (!(sizes[i] > 0)) throw new Error(`sources[${i}] (${s.name}): no tokens in its files; a mix needs every source to have data`);
  });
  const byShare = sources[0].share !== undefined;
  let targets: number[];
  if (byShare) {
    let total = o.totalTokens;
    if (total === undefined) {
      if (o.upsample) {
        let largest = 0;
        sizes.forEach((s, i) => {
          if (s > sizes[largest]) largest = i;
        });
        total = sizes[largest] / sources[largest].share!;
      } else {
        total = Math.min(...sizes.map((s, i) => s / sources[i].share!));
      }
    }
    targets = sources.map((s) => s.share! * total!);
  } else {
    targets = sources.map((s, i) => (s.weight ?? 1) * sizes[i]);
    if (o.totalTokens !== undefined) {
      const sum = targets.reduce((a, b) => a + b, 0);
      targets = targets.map((t) => (t * o.totalTokens!) / sum);
    }
  }
  const sum = targets.reduce((a, b) => a + b, 0);
  return sources.map((s, i) => {
    const factor = targets[i] / sizes[i];
    if (!o.upsample && factor > 1 + 1e-9) {
      throw new Error(
        `sources[${i}] (${s.name}) has ${Math.round(sizes[i])} tokens but its target is ${Math.round(targets[i])}: set upsample: true to repeat it, or lower ${byShare ? 'totalTokens' : 'its weight'}`,
      );
    }
    return { name: s.name, size: sizes[i], target: targets[i], factor, share: targets[i] / sum };
  });
}

/** A seeded offset in [0, 1) for the systematic selection of one pass of one source. */
export function passOffset(seed: number, sourceIndex: number, pass: number): number {
  return fmix32(fmix32((seed ^ 0x5f356495) + sourceIndex * 0x9e3779b9) + pass * 0x85ebca6b) / 2 ** 32;
}

/** Documents per block of the stratified selection. */
export const SELECT_BLOCK = 1024;

/** A seeded bijection of 0..SELECT_BLOCK-1 (odd multiplies and xor-shifts modulo 2^10). */
function permuteInBlock(x: number, key: number): number {
  const mask = SELECT_BLOCK - 1;
  x = (Math.imul(x, key | 1) + (key >>> 10)) & mask;
  x ^= x >>> 5;
  x = (Math.imul(x, (key >>> 16) | 1) + (key >>> 20)) & mask;
  x ^= x >>> 4;
  return x;
}

/**
 * Stratified selection of a fraction `rate` of a pass: documents come in blocks of 1,024; in
 * every block exactly floor or ceil(rate x 1024) documents are selected, at positions a seeded
 * permutation of the block chooses, and the grid offset `u` spreads the rounding over blocks.
 * So the count is exact (within one document per partial block), the sample covers the whole
 * source evenly, and which documents are taken changes with the seed.
 */
export function selected(j: number, rate: number, u: number, seed = 0): boolean {
  const block = Math.floor(j / SELECT_BLOCK);
  const key = fmix32(fmix32(seed ^ 0x2c1b3c6d) + block * 0x9e3779b9);
  const k = block * SELECT_BLOCK + permuteInBlock(j - block * SELECT_BLOCK, key);
  return Math.floor(rate * (k + 1) + u) > Math.floor(rate * k + u);
}

/**
 * The deficit rule: the next document comes from the unfinished source that is furthest behind
 * its target, measured as emitted / target. Ties go to the earlier source. Returns -1 when every
 * source is finished. Emitting one document moves a source's ratio by at most (its tokens /
 * target), so at every prefix each source's token share is within one document of its target.
 */
export function nextSource(emitted: Float64Array, targets: Float64Array, finished: Uint8Array): number {
  let best = -1;
  let bestRatio = Infinity;
  for (let i = 0; i < emitted.length; i++) {
    if (finished[i]) continue;
    const r = emitted[i] / targets[i];
    if (r < bestRatio) {
      bestRatio = r;
      best = i;
    }
  }
  return best;
}
