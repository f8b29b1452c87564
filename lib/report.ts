// The machine-readable run report (`--report run.json`), read by `mixstream report`.

export interface HistogramReport {
  count: number;
  sum: number;
  min: number;
  max: number;
  /** Equal-width bins over [min, max], from a fixed-size uniform sample of the values. */
  bins: { lo: number; hi: number; count: number }[];
}

export interface StepReport {
  index: number;
  op: string;
  recordsIn: number;
  recordsOut: number;
  /** Sums of the `token_count` field (written by the `tokens` operator) when records carry it. */
  tokensIn: number;
  tokensOut: number;
  dropped: Record<string, number>;
  errors: Record<string, number>;
  /** Operator-specific counters (`clusters`, `duplicates`, ...). */
  counters: Record<string, number>;
  /** Operator-specific distributions: `score`, `cluster_size`, `sampling_count`, ... */
  histograms: Record<string, HistogramReport>;
  timeMs: number;
  recordsPerSec: number;
  mbPerSec: number;
}

export interface InputReport {
  name: string;
  bytes: number;
  records: number;
  /** True when the input was read to its end (false: truncated, unreadable, or the run stopped). */
  complete: boolean;
  error?: string;
}

export interface RunReport {
  version: 1;
  pipeline: string;
  startedAt: string;
  finishedAt: string;
  elapsedMs: number;
  status: 'ok' | 'input-errors' | 'max-errors' | 'interrupted' | 'failed';
  exitCode: number;
  inputs: InputReport[];
  steps: StepReport[];
  totals: { recordsIn: number; recordsOut: number; bytesIn: number; errors: number; dropped: number };
  machine: { nproc: number; node: string; platform: string };
}
