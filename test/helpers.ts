// Shared test helpers: run the CLI as a user would, make temporary directories.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = path.join(ROOT, 'bin', 'mixstream.js');
export const SAMPLES = path.join(ROOT, 'samples');

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
