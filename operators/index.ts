// The built-in operators. The CLI registers these; the core never imports this file.
import type { OperatorDescriptor } from '../lib/operator.ts';
import decode from './decode.ts';
import normalize from './normalize.ts';
import tokens from './tokens.ts';
import reservoirWeightedSample from './reservoir-weighted-sample.ts';
import samplemix from './samplemix.ts';
import shingle from './shingle.ts';
import minhash from './minhash.ts';
import decontaminate from './decontaminate.ts';
import mix from './mix.ts';
import partition from './partition.ts';
import lshBandJoin from './lsh-band-join.ts';
import filter from './filter.ts';
import keepTop from './keep-top.ts';
import score from './score.ts';
import exactDedup from './exact-dedup.ts';

export const builtins: OperatorDescriptor[] = [
  decode,
  normalize,
  tokens,
  reservoirWeightedSample,
  samplemix,
  shingle,
  minhash,
  decontaminate,
  mix,
  partition,
  lshBandJoin,
  filter,
  keepTop,
  score,
  exactDedup,
];
