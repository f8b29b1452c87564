// Facts about the machine a benchmark ran on, and small shared helpers for benchmark scripts.
import { execSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `nproc ${os.availableParallelism()}, ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, ${os.platform()} ${os.release()}`;
}

export interface Timed {
  seconds: number;
  peakRssMB: number;
  stderr: string;
  status: number | null;
}

/**
 * Runs a shell pipeline; `measured` is the command whose peak RSS is recorded (wrapped in
 * /usr/bin/time), `before` and `after` are the rest of the pipe.
 */
export function timePipeline(before: string, measured: string, after: string): Timed {
  const timeFile = `/tmp/mixstream-bench-time-${process.pid}`;
  const cmd = `set -o pipefail; ${before ? before + ' | ' : ''}/usr/bin/time -f '%M' -o ${timeFile} ${measured}${after ? ' | ' + after : ''}`;
  const t0 = performance.now();
  const r = spawnSync('bash', ['-c', cmd], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const seconds = (performance.now() - t0) / 1000;
  const rss = Number(execSync(`cat ${timeFile}`, { encoding: 'utf8' }).trim().split('\n').pop());
  return { seconds, peakRssMB: rss / 1024, stderr: r.stderr, status: r.status };
}

/** Whether other jobs kept the machine busy: a 1-minute load average above its cores. */
export function machineLoaded(): boolean {
  return os.loadavg()[0] > os.availableParallelism();
}

/** Runs `run` `times` times and returns the result with the least `cost` (short runs on a shared machine get stretched). */
export async function leastOf<T>(times: number, run: () => T | Promise<T>, cost: (r: T) => number): Promise<T> {
  let best = await run();
  for (let r = 1; r < times; r++) {
    const again = await run();
    if (cost(again) < cost(best)) best = again;
  }
  return best;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Writes a benchmark's results (markdown) and echoes them to stdout. A --quick run goes to
 * `quickFile` so that it does not replace the committed full results in `file`.
 */
export function writeResults(md: string, quick: boolean, file: string, quickFile: string): void {
  const out = quick ? quickFile : file;
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, md);
  process.stdout.write(md);
}
