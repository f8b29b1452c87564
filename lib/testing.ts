// Helpers for driving one operator in tests and in library use, without the CLI.
import { readFileSync } from 'node:fs';
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

/** Reads an NDJSON sample file into records (for tests). */
export function readJsonl(file: string | URL): Rec[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}
