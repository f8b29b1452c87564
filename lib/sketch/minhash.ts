// MinHash signatures over sets of 32-bit shingle hashes. No stream code; usable as a library.
//
// Determinism: every parameter derives from `seed` through SplitMix32 (state += 0x9e3779b9, then
// the MurmurHash3 finalizer of the state), with 32-bit integer arithmetic only (Math.imul), so a
// seed gives the same signatures in every run, process and machine.
//
// Schemes:
// - `classic`: `perms` independent hash functions h_i(x) = (a_i * x + b_i) mod 2^32, with a_i
//   odd (each h_i is a permutation of the 32-bit values) and (a_i, b_i) the SplitMix32 outputs
//   of the seed; signature[i] = min over the set of h_i(x). The inputs are shingle hashes that
//   already went through the murmur3 finalizer, so the multiply-add only has to re-order
//   uniformly random values. Cost: perms multiply-adds per shingle.
// - `oph`: one-permutation hashing with optimal densification (Li, Owen & Zhang 2012;
//   Shrivastava 2017). One hash per shingle, h(x) = fmix32(x ^ s); the 32-bit range is cut
//   into `perms` equal bins and signature[j] = the smallest h falling into bin j. An empty bin
//   j copies the value of the first non-empty bin along its own fixed pseudo-random order of
//   the bins (a Fisher-Yates permutation per bin drawn from the seed's SplitMix32 stream), which
//   keeps the estimator unbiased. Cost: one hash per shingle plus the densification of empty
//   bins (only short documents have them). Signatures up to 2048 long.
//
// Both give signatures whose agreement rate estimates Jaccard similarity: `estimateJaccard`.
// An empty set has the all-0xffffffff signature (shingleHashes never returns an empty set).
import { fmix32 } from '../text/shingle.ts';

export type MinHashScheme = 'classic' | 'oph';

export interface MinHasherOptions {
  /** Signature length (>= 1; default 128). */
  perms?: number;
  /** Unsigned 32-bit seed (default 1). */
  seed?: number;
  /** `classic` (default) or `oph` (one-permutation hashing with densification). */
  scheme?: MinHashScheme;
}

export interface MinHasher {
  readonly perms: number;
  readonly scheme: MinHashScheme;
  readonly seed: number;
  /** The signature of a set of 32-bit hashes (duplicates in the input do not matter). */
  signature(shingles: Uint32Array): Uint32Array;
  /** The same signature written to out[offset .. offset + perms) (no allocation). */
  signatureInto(shingles: Uint32Array, out: Uint32Array, offset: number): void;
}

/** SplitMix32: a deterministic stream of unsigned 32-bit values from a seed. */
export function splitmix32(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state + 0x9e3779b9) | 0;
    return fmix32(state);
  };
}

const SIGN = 0x80000000 | 0;

export function createMinHasher({ perms = 128, seed = 1, scheme = 'classic' }: MinHasherOptions = {}): MinHasher {
  if (!Number.isInteger(perms) || perms < 1 || perms > 65536) throw new Error(`minhash perms must be an integer in [1, 65536], got ${perms}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`minhash seed must be an integer in [0, 2^32), got ${seed}`);
  if (scheme !== 'classic' && scheme !== 'oph') throw new Error(`minhash scheme must be "classic" or "oph", got ${JSON.stringify(scheme)}`);
  const next = splitmix32(seed);
  return scheme === 'classic' ? classic(perms, seed, next) : oph(perms, seed, next);
}

/** A MinHasher from its kernel, which writes one signature to out[offset .. offset + perms). */
function withSignature(perms: number, scheme: MinHashScheme, seed: number, into: (shingles: Uint32Array, out: Uint32Array, offset: number) => void): MinHasher {
  return {
    perms,
    scheme,
    seed,
    signature(shingles) {
      const sig = new Uint32Array(perms);
      into(shingles, sig, 0);
      return sig;
    },
    signatureInto(shingles, out, offset) {
      if (!(Number.isInteger(offset) && offset >= 0 && offset + perms <= out.length)) throw new RangeError(`signatureInto: ${perms} values do not fit at offset ${offset} of an array of ${out.length}`);
      into(shingles, out, offset);
    },
  };
}

function classic(perms: number, seed: number, next: () => number): MinHasher {
  const a = new Int32Array(perms);
  // b is stored with the sign bit flipped: (a*x + b) ^ 0x80000000 compares as a signed int32
  // exactly like a*x + b compares as unsigned, and int32 comparisons stay on V8's fast path.
  const b = new Int32Array(perms);
  for (let i = 0; i < perms; i++) {
    a[i] = next() | 1;
    b[i] = next() ^ SIGN;
  }
  const mins = new Int32Array(perms);
  return withSignature(perms, 'classic', seed, (shingles: Uint32Array, out: Uint32Array, offset: number): void => {
    mins.fill(0x7fffffff);
    const n = shingles.length;
    let s = 0;
    // Four shingles per pass over the parameters: a quarter of the loads and stores.
    for (; s + 3 < n; s += 4) {
      const x0 = shingles[s] | 0;
      const x1 = shingles[s + 1] | 0;
      const x2 = shingles[s + 2] | 0;
      const x3 = shingles[s + 3] | 0;
      for (let i = 0; i < perms; i++) {
        const ai = a[i];
        const bi = b[i];
        let m = mins[i];
        let v = (Math.imul(ai, x0) + bi) | 0;
        if (v < m) m = v;
        v = (Math.imul(ai, x1) + bi) | 0;
        if (v < m) m = v;
        v = (Math.imul(ai, x2) + bi) | 0;
        if (v < m) m = v;
        v = (Math.imul(ai, x3) + bi) | 0;
        if (v < m) m = v;
        mins[i] = m;
      }
    }
    for (; s < n; s++) {
      const x = shingles[s] | 0;
      for (let i = 0; i < perms; i++) {
        const v = (Math.imul(a[i], x) + b[i]) | 0;
        if (v < mins[i]) mins[i] = v;
      }
    }
    for (let i = 0; i < perms; i++) out[offset + i] = mins[i] ^ SIGN;
  });
}

// OPH supports signatures up to this length: densification keeps two perms x perms tables.
const OPH_MAX_PERMS = 2048;

function oph(perms: number, seed: number, next: () => number): MinHasher {
  if (perms > OPH_MAX_PERMS) throw new Error(`minhash perms must be <= ${OPH_MAX_PERMS} with scheme "oph", got ${perms}`);
  const s = next();
  const scale = perms / 4294967296;
  // Densification order: for each bin j a pseudo-random permutation of all bins (Fisher-Yates
  // driven by the SplitMix32 stream), fixed by the seed. An empty bin takes the value of the
  // first non-empty bin in its order. `rank` is the inverse permutation: the same choice is
  // also "the non-empty bin of smallest rank", which is cheaper when few bins are filled.
  const order = new Uint16Array(perms * perms);
  const rank = new Uint16Array(perms * perms);
  for (let j = 0; j < perms; j++) {
    const base = j * perms;
    for (let k = 0; k < perms; k++) order[base + k] = k;
    for (let k = perms - 1; k > 0; k--) {
      const r = Math.floor((next() / 4294967296) * (k + 1));
      const tmp = order[base + k];
      order[base + k] = order[base + r];
      order[base + r] = tmp;
    }
    for (let k = 0; k < perms; k++) rank[base + order[base + k]] = k;
  }
  const mins = new Int32Array(perms);
  const filled = new Uint8Array(perms);
  const filledList = new Uint16Array(perms);
  return withSignature(perms, 'oph', seed, (shingles: Uint32Array, out: Uint32Array, offset: number): void => {
    mins.fill(0x7fffffff);
    filled.fill(0);
    let nonEmpty = 0;
    for (let i = 0, n = shingles.length; i < n; i++) {
      const h = fmix32(shingles[i] ^ s);
      const bin = (h * scale) | 0;
      const v = h ^ SIGN;
      if (filled[bin] === 0) {
        filled[bin] = 1;
        filledList[nonEmpty++] = bin;
        mins[bin] = v;
      } else if (v < mins[bin]) mins[bin] = v;
    }
    if (nonEmpty === 0) {
      out.fill(0xffffffff, offset, offset + perms);
      return;
    }
    const fewFilled = nonEmpty * nonEmpty < perms;
    for (let j = 0; j < perms; j++) {
      if (filled[j] === 1) {
        out[offset + j] = mins[j] ^ SIGN;
        continue;
      }
      const base = j * perms;
      let from = 0;
      if (fewFilled) {
        let best = perms;
        for (let f = 0; f < nonEmpty; f++) {
          const r = rank[base + filledList[f]];
          if (r < best) {
            best = r;
            from = filledList[f];
          }
        }
      } else {
        let t = base;
        while (filled[order[t]] === 0) t++;
        from = order[t];
      }
      out[offset + j] = mins[from] ^ SIGN;
    }
  });
}

/** Fraction of positions where two signatures agree: the MinHash estimate of their Jaccard similarity. */
export function estimateJaccard(a: Uint32Array, b: Uint32Array): number {
  if (a.length !== b.length) throw new Error(`signatures differ in length (${a.length} vs ${b.length}): compare signatures made with the same perms`);
  if (a.length === 0) return 0;
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}
