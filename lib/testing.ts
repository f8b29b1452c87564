// Helpers for driving one operator in tests and in library use, without the CLI.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createStepContext, type ErrorEntry } from './context.ts';
import type { OperatorDescriptor, Rec } from './operator.ts';
import { validateOptions, type OptionError } from './options.ts';

export interface StepRun {
  output: Rec[];
  dropped: { rec: Rec; reason: string }[];
  errors: ErrorEntry[];
  counters: ReturnType<typeof createStepContext>['counters'];
  logs: string[];
}

/** Validates options, runs `records` through one operator in batches of `batchSize`, flushes and closes it. */
export async function runOperator(
  descriptor: OperatorDescriptor,
  options: Record<string, unknown>,
  records: Rec[],
  { batchSize = 256, baseDir, workers }: { batchSize?: number; baseDir?: string; workers?: number } = {},
): Promise<StepRun> {
  const optionErrors: OptionError[] = [];
  const opts = validateOptions(options, descriptor.options, optionErrors);
  optionErrors.push(...(descriptor.check?.(opts) ?? []));
  if (optionErrors.length) {
    throw new Error(optionErrors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  }
  const dropped: StepRun['dropped'] = [];
  const errors: ErrorEntry[] = [];
  const logs: string[] = [];
  const ctx = createStepContext({
    op: descriptor.name,
    baseDir,
    workers,
    onDrop: (rec, reason) => dropped.push({ rec, reason }),
    onError: (e) => errors.push(e),
    log: (m) => logs.push(m),
  });
  const step = await descriptor.create(opts, ctx);
  const output: Rec[] = [];
  try {
    for (let i = 0; i < records.length; i += batchSize) {
      output.push(...(await step.process(records.slice(i, i + batchSize))));
    }
    if (step.flushBatches) for await (const b of step.flushBatches()) output.push(...b);
    else if (step.flush) output.push(...(await step.flush()));
  } finally {
    await step.close?.();
  }
  return { output, dropped, errors, counters: ctx.counters, logs };
}

/**
 * Runs `records` through one operator the way `--checkpoint` does after a crash: the first
 * `splitAt` records through one step, a checkpoint, then a new step (same scratch directory,
 * as in checkpoint mode) restored from it for the rest, flushed and closed. The output equals
 * `runOperator`'s when checkpoint/restore are right.
 */
export async function runOperatorResumed(
  descriptor: OperatorDescriptor,
  options: Record<string, unknown>,
  records: Rec[],
  splitAt: number,
  { batchSize = 256, baseDir, workers }: { batchSize?: number; baseDir?: string; workers?: number } = {},
): Promise<StepRun> {
  const optionErrors: OptionError[] = [];
  const opts = validateOptions(options, descriptor.options, optionErrors);
  if (optionErrors.length) throw new Error(optionErrors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  const root = mkdtempSync(path.join(os.tmpdir(), 'mixstream-resume-'));
  const tmpDir = path.join(root, 'work');
  const stateDir = path.join(root, 'state');
  mkdirSync(tmpDir);
  mkdirSync(stateDir);
  const dropped: StepRun['dropped'] = [];
  const errors: ErrorEntry[] = [];
  const logs: string[] = [];
  const makeCtx = () =>
    createStepContext({ op: descriptor.name, baseDir, workers, tmpDir, onDrop: (rec, reason) => dropped.push({ rec, reason }), onError: (e) => errors.push(e), log: (m) => logs.push(m) });
  const output: Rec[] = [];
  const feed = async (step: Awaited<ReturnType<OperatorDescriptor['create']>>, from: number, to: number) => {
    for (let i = from; i < to; i += batchSize) output.push(...(await step.process(records.slice(i, Math.min(to, i + batchSize)))));
  };
  try {
    const first = await descriptor.create(opts, makeCtx());
    if (!first.checkpoint || !first.restore) throw new Error(`${descriptor.name} has no checkpoint/restore`);
    try {
      await feed(first, 0, splitAt);
      await first.checkpoint(stateDir);
    } finally {
      await first.close?.();
    }
    const ctx = makeCtx();
    const second = await descriptor.create(opts, ctx);
    try {
      await second.restore!(stateDir);
      await feed(second, splitAt, records.length);
      if (second.flushBatches) for await (const b of second.flushBatches()) output.push(...b);
      else if (second.flush) output.push(...(await second.flush()));
    } finally {
      await second.close?.();
    }
    return { output, dropped, errors, counters: ctx.counters, logs };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Reads an NDJSON sample file into records (for tests). */
export function readJsonl(file: string | URL): Rec[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}
