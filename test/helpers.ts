// Shared test helpers: run the CLI as a user would, make temporary directories.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { decompress as zstdDecompress } from 'zstd-napi';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = path.join(ROOT, 'bin', 'mixstream.js');
export const SAMPLES = path.join(ROOT, 'samples');

/**
 * `mix` options over the KJV and the fortunes with small batches: bible chapters are long and
 * quotes short, so most batches hold no bible document (a resumed run often checkpoints before
 * its bible reader has read again).
 */
export function bibleAndQuotesMix(): Record<string, unknown> {
  return {
    sources: [
      { name: 'bible', paths: [path.join(SAMPLES, 'kjv.jsonl')], share: 0.4 },
      { name: 'quotes', paths: [path.join(SAMPLES, 'fortunes.jsonl')], share: 0.6 },
    ],
    totalTokens: 12_000,
    seed: 5,
    batchSize: 4,
  };
}

export function tmpdir(prefix = 'mixstream-test-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `mixstream <args>` to completion. */
export function cli(args: string[], { input, cwd = ROOT, env }: { input?: string | Buffer; cwd?: string; env?: NodeJS.ProcessEnv } = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { input, cwd, env: { ...process.env, ...env }, maxBuffer: 1 << 30 });
  return { code: r.status, signal: r.signal, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** Starts `mixstream <args>` and returns the child for tests that steer it (signals, backpressure). */
export function cliSpawn(args: string[], { cwd = ROOT } = {}) {
  return spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
}

export function lines(text: string): any[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

/** The output of a `--checkpoint` run: its parts (part-*.jsonl.zst) decompressed and concatenated in order. */
export function partsOutput(outDir: string): string {
  return readdirSync(outDir)
    .filter((f) => /^part-\d+\.jsonl\.zst$/.test(f))
    .sort()
    .map((f) => zstdDecompress(readFileSync(path.join(outDir, f))).toString())
    .join('');
}

/** Sequence number of the committed checkpoint in `ckptDir`, or -1. */
export function checkpointSeq(ckptDir: string): number {
  try {
    return JSON.parse(readFileSync(path.join(ckptDir, 'checkpoint.json'), 'utf8')).seq;
  } catch {
    return -1;
  }
}

/** Starts `mixstream <args>` and kills it (signal) `delayMs` after it commits a new checkpoint in `ckptDir`; resolves with its exit code (null when killed). */
export function runUntilKilled(args: string[], ckptDir: string, delayMs: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
  return new Promise((resolve) => {
    const before = checkpointSeq(ckptDir);
    const child = spawn(process.execPath, [BIN, ...args], { stdio: 'ignore' });
    let timer: NodeJS.Timeout | undefined;
    const poll = setInterval(() => {
      if (checkpointSeq(ckptDir) > before) {
        clearInterval(poll);
        timer = setTimeout(() => child.kill(signal), delayMs);
      }
    }, 20);
    child.on('exit', (code) => {
      clearInterval(poll);
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/**
 * Runs the same command again and again, killing it with SIGKILL at seeded random moments
 * (`kills` times, each up to `maxDelayMs` after a checkpoint), then lets it finish.
 */
export async function killRepeatedly(args: string[], ckptDir: string, { kills = 6, maxDelayMs = 30, seed = 12345 } = {}): Promise<{ kills: number; code: number | null }> {
  let s = seed;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  let done = 0;
  let code: number | null = null;
  for (let attempt = 0; attempt < kills + 30; attempt++) {
    code = await runUntilKilled(args, ckptDir, done < kills ? Math.floor(rand() * maxDelayMs) : 1e9);
    if (code !== null) break;
    done++;
  }
  return { kills: done, code };
}
