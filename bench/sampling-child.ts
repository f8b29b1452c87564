// Child process of bench/sampling.ts: drives one sampling operator over an NDJSON file in
// batches of 512 and streams its output (`flushBatches`) to /dev/null, so the parent can read
// this process's peak RSS. Imports only what the operator needs.
//   npx tsx bench/sampling-child.ts reservoir|samplemix <file.jsonl> '<json options>'
import { closeSync, createReadStream, openSync, writeSync } from 'node:fs';
import readline from 'node:readline';
import { createStepContext } from '../lib/context.ts';
import type { OperatorDescriptor, Rec } from '../lib/operator.ts';
import { validateOptions } from '../lib/options.ts';
import reservoirOp from '../operators/reservoir-weighted-sample.ts';
import samplemixOp from '../operators/samplemix.ts';

const [, , opName, file, optsJson] = process.argv;
const op = (opName === 'samplemix' ? samplemixOp : reservoirOp) as OperatorDescriptor;
const ctx = createStepContext({ op: op.name, onDrop: () => {}, log: () => {} });
const errors: { path: string; message: string }[] = [];
const opts = validateOptions(JSON.parse(optsJson), op.options, errors);
if (errors.length) throw new Error(errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
const step = (await op.create(opts, ctx)) as { process(b: Rec[]): Rec[] | Promise<Rec[]>; flushBatches(): Generator<Rec[]>; close?(): void };
const devnull = openSync('/dev/null', 'w');
let batch: Rec[] = [];
let outRecs = 0;
let batches = 0;
// Live heap: heapUsed right after a full GC (needs --expose-gc), sampled every 8 batches.
const gc = (globalThis as { gc?: () => void }).gc;
let liveHeap = 0;
const sample = () => {
  if (!gc || ++batches % 8 !== 0) return;
  gc();
  liveHeap = Math.max(liveHeap, process.memoryUsage().heapUsed);
};
for await (const line of readline.createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
  if (!line) continue;
  batch.push(JSON.parse(line));
  if (batch.length === 512) {
    await step.process(batch);
    batch = [];
    sample();
  }
}
if (batch.length) await step.process(batch);
for (const out of step.flushBatches()) {
  outRecs += out.length;
  writeSync(devnull, out.map((r) => JSON.stringify(r)).join('\n') + '\n');
  sample();
}
step.close?.();
closeSync(devnull);
process.stdout.write(JSON.stringify({ outRecs, liveHeapMB: liveHeap / 2 ** 20, counters: ctx.counters.counters }) + '\n');
