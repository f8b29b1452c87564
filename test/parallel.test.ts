import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createOrderedWindow, createWorkerPool, runnableModule } from '../lib/parallel.ts';

// A worker module in TypeScript outside the package, written where no loader configuration
// applies, to prove the threads load .ts files on their own (by registering the tsx loader).
const dir = mkdtempSync(path.join(os.tmpdir(), 'mixstream-pool-'));
const moduleFile = path.join(dir, 'tasks.mts');
writeFileSync(
  moduleFile,
  `import { withTransfer } from ${JSON.stringify(new URL('../lib/parallel.ts', import.meta.url).href)};
import { threadId } from 'node:worker_threads';
export async function whichThread(delayMs: number): Promise<number> {
  await new Promise((r) => setTimeout(r, delayMs));
  return threadId;
}
interface Job { value: number; delayMs: number; gauge?: Int32Array }
export default async function echo(job: Job): Promise<number> {
  if (job.gauge) {
    const now = Atomics.add(job.gauge, 0, 1) + 1;
    let max = Atomics.load(job.gauge, 1);
    while (now > max && Atomics.compareExchange(job.gauge, 1, max, now) !== max) max = Atomics.load(job.gauge, 1);
  }
  await new Promise((r) => setTimeout(r, job.delayMs));
  if (job.gauge) Atomics.sub(job.gauge, 0, 1);
  return job.value * 2;
}
export function squares(input: Float64Array): Float64Array {
  const out = new Float64Array(input.length);
  for (let i = 0; i < input.length; i++) out[i] = input[i] * input[i];
  return withTransfer(out, [out.buffer]);
}
export function busyFor(ms: number): { start: number; end: number } {
  const start = performance.timeOrigin + performance.now();
  while (performance.timeOrigin + performance.now() - start < ms);
  return { start, end: performance.timeOrigin + performance.now() };
}
export function fail(msg: string): never {
  throw new Error('task failed: ' + msg);
}
export function crash(): void {
  process.exit(3);
}
`,
);
const moduleUrl = pathToFileURL(moduleFile);

t.test('map keeps input order when tasks finish out of order', async (t) => {
  const pool = createWorkerPool<{ value: number; delayMs: number }, number>({ module: moduleUrl, size: 2 });
  const jobs = Array.from({ length: 40 }, (_, i) => ({ value: i, delayMs: (i * 7) % 13 }));
  const out: number[] = [];
  for await (const v of pool.map(jobs)) out.push(v);
  t.same(out, jobs.map((j) => j.value * 2));
  await pool.close();
});

t.test('map bounds the tasks in flight and threads never exceed the pool size', async (t) => {
  const pool = createWorkerPool<{ value: number; delayMs: number; gauge: Int32Array }, number>({ module: moduleUrl, size: 2 });
  const gauge = new Int32Array(new SharedArrayBuffer(8));
  let pulled = 0;
  let maxAhead = 0;
  let consumed = 0;
  function* source() {
    for (let i = 0; i < 30; i++) {
      pulled++;
      maxAhead = Math.max(maxAhead, pulled - consumed);
      yield { value: i, delayMs: 3, gauge };
    }
  }
  for await (const v of pool.map(source(), { inFlight: 3 })) {
    t.equal(v, consumed * 2);
    consumed++;
  }
  t.equal(consumed, 30);
  t.ok(maxAhead <= 3 + 1, `the source is read at most inFlight ahead (${maxAhead})`);
  t.equal(Atomics.load(gauge, 1), 2, 'both threads ran tasks at the same time, never more');
  await pool.close();
});

t.test('a thread starts its next task while the main thread is busy', async (t) => {
  const pool = createWorkerPool<number, { start: number; end: number }>({ module: moduleUrl, size: 1, fn: 'busyFor' });
  await pool.run(0); // the thread is up and has loaded the module
  const first = pool.run(100);
  const second = pool.run(100);
  // Block this thread's event loop: the first result cannot be received, nor a task sent.
  const blockedUntil = performance.timeOrigin + performance.now() + 600;
  while (performance.timeOrigin + performance.now() < blockedUntil);
  const [a, b] = await Promise.all([first, second]);
  t.ok(b.start >= a.end, 'the tasks ran one after the other');
  t.ok(b.start < blockedUntil, `the second task started ${Math.round(blockedUntil - b.start)} ms before the main thread was free`);
  await pool.close();
});

t.test('typed arrays move between threads instead of being copied', async (t) => {
  const pool = createWorkerPool<Float64Array, Float64Array>({ module: moduleUrl, size: 1, fn: 'squares' });
  const input = Float64Array.from({ length: 1000 }, (_, i) => i);
  const out = await pool.run(input, [input.buffer]);
  t.equal(input.byteLength, 0, 'the input buffer was transferred to the worker');
  t.equal(out.length, 1000);
  t.equal(out[999], 999 * 999);
  await pool.close();
});

t.test('a task that throws rejects its own promise; the pool keeps working', async (t) => {
  const pool = createWorkerPool<string, never>({ module: moduleUrl, size: 1, fn: 'fail' });
  await t.rejects(pool.run('bad input'), /task failed: bad input/);
  await t.rejects(pool.run('again'), /task failed: again/);
  await pool.close();
});

t.test('a thread that dies fails the pending and later tasks with a clear error', async (t) => {
  const pool = createWorkerPool<void, void>({ module: moduleUrl, size: 1, fn: 'crash' });
  await t.rejects(pool.run(), /exited with code 3/);
  await t.rejects(pool.run(), /exited with code 3/);
  await pool.destroy();
});

t.test('a missing export is reported', async (t) => {
  const pool = createWorkerPool<void, void>({ module: moduleUrl, size: 1, fn: 'nope' });
  await t.rejects(pool.run(), /no exported function "nope"/);
  await pool.destroy();
});

t.test('close waits for submitted tasks; destroy rejects them', async (t) => {
  const pool = createWorkerPool<{ value: number; delayMs: number }, number>({ module: moduleUrl, size: 2 });
  const results = [1, 2, 3].map((value) => pool.run({ value, delayMs: 20 }));
  await pool.close();
  t.same(await Promise.all(results), [2, 4, 6]);
  await t.rejects(pool.run({ value: 1, delayMs: 0 }), /closed/);
  const other = createWorkerPool<{ value: number; delayMs: number }, number>({ module: moduleUrl, size: 1 });
  const slow = t.rejects(other.run({ value: 1, delayMs: 5000 }), /destroyed/);
  await other.destroy();
  await slow;
});

t.test('pools share the threads of the process: as many as the largest pool asks for', async (t) => {
  const a = createWorkerPool<number, number>({ module: moduleUrl, size: 2, fn: 'whichThread' });
  const b = createWorkerPool<number, number>({ module: moduleFile, size: 2, fn: 'whichThread' });
  const c = createWorkerPool<{ value: number; delayMs: number }, number>({ module: moduleUrl, size: 1 });
  const ids = await Promise.all([...Array.from({ length: 12 }, () => a.run(5)), ...Array.from({ length: 12 }, () => b.run(5))]);
  t.same(await Promise.all([1, 2, 3].map((value) => c.run({ value, delayMs: 1 }))), [2, 4, 6], 'each pool runs its own function');
  t.equal(new Set(ids).size, 2, 'two threads serve both pools');
  // A pool runs at most its own size at once, whatever the threads of the others.
  const gauge = new Int32Array(new SharedArrayBuffer(8));
  await Promise.all(Array.from({ length: 8 }, (_, value) => c.run({ value, delayMs: 5, gauge } as { value: number; delayMs: number })));
  t.equal(gauge[1], 1, 'the 1-thread pool never ran two tasks at once');
  // Destroying one pool rejects its tasks only; the others keep working on the same threads.
  const slow = b.run(2000);
  const doomed = t.rejects(slow, /destroyed/);
  await b.destroy();
  await doomed;
  t.same(await c.run({ value: 21, delayMs: 0 }), 42);
  await a.close();
  await c.close();
});

t.test('the ordered window returns batches in order and waits only beyond its depth', async (t) => {
  const deferred = () => {
    let resolve!: (v: number[]) => void;
    const promise = new Promise<number[]>((r) => (resolve = r));
    return { promise, resolve };
  };
  const w = createOrderedWindow<number>(2);
  const [a, b, c] = [deferred(), deferred(), deferred()];
  t.same(await w.push(a.promise), [], 'first batch still running: nothing yet');
  b.resolve([3]);
  t.same(await w.push(b.promise), [], 'the second is done but waits for the first');
  setTimeout(() => a.resolve([1, 2]), 20);
  t.same(await w.push(c.promise), [1, 2, 3], 'beyond the depth the oldest is awaited, then every finished one follows');
  c.resolve([4]);
  t.same(await w.drain(), [4]);
  const failing = createOrderedWindow<number>(1);
  await failing.push(Promise.reject(new Error('boom')));
  await t.rejects(failing.push(Promise.resolve([1])), /boom/);
});

t.test("the package's TypeScript worker modules run from plain JavaScript bundles; others as they are", async (t) => {
  const source = new URL('../lib/sketch/blocked-bloom.ts', import.meta.url).href;
  const bundled = runnableModule(source);
  t.match(bundled, /^file:.*\/node_modules\/\.cache\/mixstream\/workers\/blocked-bloom-[0-9a-f]{16}\.mjs$/, 'named by a hash of its content');
  t.equal(runnableModule(source), bundled, 'bundled once per process');
  // The bundle loads in a Node process without any loader (its package imports resolve from the cache's place).
  const exported = execFileSync(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(bundled)}); console.log(typeof m.probeTask)`], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  t.equal(exported.trim(), 'function');
  t.equal(runnableModule(moduleUrl.href), moduleUrl.href, 'a module outside the package is loaded as it is');
  t.equal(runnableModule('file:///tmp/plain.mjs'), 'file:///tmp/plain.mjs', 'JavaScript is loaded as it is');
});
