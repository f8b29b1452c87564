// An ordered worker-thread pool: tasks go through a function exported by a worker module, on
// threads with room (a running task and one waiting), results come back to the caller's promise
// (so awaiting them in submission order keeps output order). `map` runs a stream of inputs with at most `inFlight` tasks
// outstanding (backpressure) and yields results in input order. The threads themselves are
// shared by every pool of the process (see ThreadGroup); a pool uses at most `size` threads at once.
//
// Worker modules may be TypeScript. The threads run plain JavaScript (lib/parallel-worker.mjs):
// a TypeScript worker module of this package is bundled into one ES module first (see
// runnableModule); any other TypeScript module makes its thread register the tsx loader.
// A worker module exports plain functions `(input) => output` (or a promise of it); return
// `withTransfer(value, [buffers])` to move ArrayBuffers back instead of copying them.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, type TransferListItem } from 'node:worker_threads';
import type { Rec, Step, StepContext } from './operator.ts';

export interface WorkerPoolOptions {
  /** The worker module (a file URL or absolute path; .ts or .js). */
  module: URL | string;
  /** Threads (>= 1; default: available cores). */
  size?: number;
  /** Name of the exported function tasks run through (default "default"). */
  fn?: string;
  /** Thread name prefix shown in diagnostics. */
  name?: string;
}

export interface MapOptions<I> {
  /** Tasks outstanding at once (default: 2 x size). */
  inFlight?: number;
  /** Buffers of an input to move to the worker instead of copying. */
  transfer?(input: I): TransferListItem[];
}

export interface WorkerPool<I = unknown, O = unknown> {
  readonly size: number;
  /** Runs one task on the next thread with room. Tasks start in submission order. */
  run(input: I, transfer?: TransferListItem[]): Promise<O>;
  /** Runs every input, at most `inFlight` at a time, yielding outputs in input order. */
  map(inputs: Iterable<I> | AsyncIterable<I>, options?: MapOptions<I>): AsyncGenerator<O>;
  /** Tasks submitted and not yet finished. */
  readonly pending: number;
  /** Waits for submitted tasks, then stops every thread. */
  close(): Promise<void>;
  /** Stops every thread now; unfinished tasks reject. */
  destroy(): Promise<void>;
}

const TRANSFER = Symbol.for('mixstream.transfer');

export type { TransferListItem };

export interface Transferring<T> {
  [TRANSFER]: true;
  value: T;
  transfer: TransferListItem[];
}

/** In a worker function: return the value and move these buffers instead of copying them. */
export function withTransfer<T>(value: T, transfer: TransferListItem[]): T {
  return { [TRANSFER]: true, value, transfer } as unknown as T;
}

export function isTransferring(v: unknown): v is Transferring<unknown> {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[TRANSFER] === true;
}

interface Task {
  id: number;
  /** The pool that submitted it: its tasks occupy at most `size` threads at once. */
  owner: Owner;
  module: string;
  fn: string;
  input: unknown;
  transfer: TransferListItem[];
  resolve(v: unknown): void;
  reject(e: Error): void;
}

interface Owner {
  size: number;
  /** Threads holding at least one of its tasks. */
  threads: number;
}

interface Slot {
  worker: Worker;
  /** Tasks sent to this thread, oldest (running) first. */
  tasks: Task[];
}

/**
 * Tasks sent to a thread at once: the running one and the next, which waits in the thread's own
 * message queue. A thread that finishes a task starts the next at once instead of idling for a
 * round trip through the main thread, which may be busy handing on results (MinHash of short
 * documents in batches of 512, threads warm: 5-7% more throughput with one thread, 2-3% with two).
 */
const THREAD_DEPTH = 2;

const BOOTSTRAP = new URL('./parallel-worker.mjs', import.meta.url);

/**
 * The threads of the process, shared by every pool: each idle thread costs ~10 MB (~40 MB once
 * it registers the TypeScript loader), so a pipeline with several parallel steps keeps as many
 * threads as its largest pool asks for, not the sum. A thread loads the worker modules its tasks
 * name. Tasks of all pools wait in one queue, in submission order.
 */
class ThreadGroup {
  readonly slots: Slot[] = [];
  readonly queue: Task[] = [];
  failure: Error | undefined;
  closed = false;
  users = 0;
  private nextId = 0;
  private readonly failHandlers = new Set<(e: Error) => void>();

  grow(size: number, name: string): void {
    while (this.slots.length < size) this.spawn(`${name}-${this.slots.length}`);
  }

  private spawn(name: string): void {
    const i = this.slots.length;
    const worker = new Worker(BOOTSTRAP, { execArgv: [], name });
    const slot: Slot = { worker, tasks: [] };
    worker.unref();
    worker.on('message', (msg: { id: number; ok: boolean; value?: unknown; error?: { message: string; stack?: string } }) => {
      const task = slot.tasks.find((t) => t.id === msg.id);
      if (!task) return;
      this.withdraw(slot, task);
      if (msg.ok) task.resolve(msg.value);
      else {
        const e = new Error(msg.error?.message ?? 'worker task failed');
        if (msg.error?.stack) e.stack = msg.error.stack;
        task.reject(e);
      }
      // A task of a pool that was at its limit may run now, on any thread with room.
      this.dispatchAll();
    });
    worker.on('error', (e) => this.fail(e instanceof Error ? e : new Error(String(e))));
    worker.on('exit', (code) => {
      if (!this.closed) this.fail(new Error(`worker thread ${i} (${slot.tasks[0]?.module ?? 'idle'}) exited with code ${code}`));
    });
    this.slots.push(slot);
  }

  onFail(handler: (e: Error) => void): () => void {
    this.failHandlers.add(handler);
    return () => this.failHandlers.delete(handler);
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    if (group === this) group = undefined; // later pools start fresh threads
    for (const slot of this.slots) for (const t of slot.tasks.splice(0)) t.reject(err);
    for (const t of this.queue.splice(0)) t.reject(err);
    for (const h of this.failHandlers) h(err);
    void this.terminate();
  }

  submit(task: Omit<Task, 'id'>): void {
    this.queue.push({ ...task, id: this.nextId++ });
    this.dispatchAll();
  }

  /** Removes queued tasks matching `drop` (the caller rejects them). */
  unqueue(drop: (t: Task) => boolean): void {
    for (let k = this.queue.length - 1; k >= 0; k--) if (drop(this.queue[k])) this.queue.splice(k, 1);
  }

  /** Sends queued tasks to threads, one at a time to the thread with the fewest, until none fits. */
  private dispatchAll(): void {
    for (;;) {
      let best: Slot | undefined;
      let k = -1;
      for (const slot of this.slots) {
        if (slot.tasks.length >= THREAD_DEPTH || (best && best.tasks.length <= slot.tasks.length)) continue;
        // The oldest task whose pool already uses this thread or may take one more.
        const at = this.queue.findIndex((t) => t.owner.threads < t.owner.size || slot.tasks.some((s) => s.owner === t.owner));
        if (at >= 0) [best, k] = [slot, at];
      }
      if (!best) break;
      this.send(best, this.queue.splice(k, 1)[0]);
    }
    for (const slot of this.slots) {
      // An idle thread does not keep the process alive.
      if (slot.tasks.length) slot.worker.ref();
      else slot.worker.unref();
    }
  }

  private send(slot: Slot, task: Task): void {
    if (!slot.tasks.some((t) => t.owner === task.owner)) task.owner.threads++;
    slot.tasks.push(task);
    try {
      slot.worker.postMessage({ id: task.id, module: task.module, fn: task.fn, input: task.input }, task.transfer);
    } catch (e) {
      this.withdraw(slot, task);
      task.reject(e as Error);
    }
  }

  /** Takes a task off its thread (finished, or never sent); its pool may use one thread less. */
  private withdraw(slot: Slot, task: Task): void {
    slot.tasks.splice(slot.tasks.indexOf(task), 1);
    if (!slot.tasks.some((t) => t.owner === task.owner)) task.owner.threads--;
  }

  release(): Promise<void> | undefined {
    if (--this.users > 0) return undefined;
    if (group === this) group = undefined;
    return this.terminate();
  }

  private async terminate(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

let group: ThreadGroup | undefined;

const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Inside the package's node_modules, so the bundles' package imports resolve as the sources' do. */
const BUNDLE_DIR = path.join(PACKAGE_ROOT, 'node_modules', '.cache', 'mixstream', 'workers');
const bundles = new Map<string, string>();

/**
 * The module a thread should load for `href`: for a TypeScript module of this package, one ES
 * module bundled from it and its local imports by esbuild (packages stay imports), written once
 * under node_modules/.cache and named by a hash of its content, so it is never stale. A thread
 * that loads TypeScript itself registers the tsx loader, whose module hooks run in a thread of
 * their own: ~30 MB more RSS per worker. Where bundling is not possible (a module outside the
 * package, whose package imports would not resolve from the cache; an unwritable cache), the
 * module is loaded as it is.
 */
export function runnableModule(href: string): string {
  const known = bundles.get(href);
  if (known) return known;
  let runnable = href;
  if (/\.[cm]?tsx?$/.test(href) && href.startsWith('file:')) {
    const file = fileURLToPath(href);
    const inPackage = path.relative(PACKAGE_ROOT, file);
    if (!inPackage.startsWith('..') && !path.isAbsolute(inPackage)) {
      try {
        const esbuild = createRequire(import.meta.url)('esbuild') as typeof import('esbuild');
        const out = esbuild.buildSync({ entryPoints: [file], bundle: true, format: 'esm', platform: 'node', packages: 'external', target: 'node20', write: false, logLevel: 'silent' });
        const code = out.outputFiles[0].contents;
        const name = `${path.basename(file).replace(/\.[^.]+$/, '')}-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`;
        const target = path.join(BUNDLE_DIR, name);
        if (!existsSync(target)) {
          mkdirSync(BUNDLE_DIR, { recursive: true });
          // Written aside and renamed: a concurrent process never loads half a file.
          const tmp = `${target}.${process.pid}.tmp`;
          writeFileSync(tmp, code);
          renameSync(tmp, target);
        }
        runnable = pathToFileURL(target).href;
      } catch {
        runnable = href;
      }
    }
  }
  bundles.set(href, runnable);
  return runnable;
}

export function createWorkerPool<I = unknown, O = unknown>(options: WorkerPoolOptions): WorkerPool<I, O> {
  const size = options.size ?? Math.max(1, os.availableParallelism());
  if (!Number.isInteger(size) || size < 1) throw new Error(`worker pool size must be an integer >= 1, got ${size}`);
  const moduleUrl = runnableModule(options.module instanceof URL ? options.module.href : new URL(options.module, 'file://').href);
  const fn = options.fn ?? 'default';
  const threads = (group ??= new ThreadGroup());
  threads.users++;
  threads.grow(size, options.name ?? 'mixstream');
  let failure: Error | undefined;
  let closed = false;
  let released = false;
  const idleWaiters: (() => void)[] = [];
  // This pool's tasks that are queued or running (its pending count): destroy rejects them.
  const mine = new Set<{ reject(e: Error): void }>();
  const owner: Owner = { size, threads: 0 };
  const stopWatching = threads.onFail((e) => (failure ??= e));

  function settle(entry: { reject(e: Error): void }) {
    mine.delete(entry);
    if (mine.size === 0) for (const w of idleWaiters.splice(0)) w();
  }

  const run = (input: I, transfer: TransferListItem[] = []): Promise<O> => {
    if (failure) return Promise.reject(failure);
    if (closed) return Promise.reject(new Error('worker pool is closed'));
    return new Promise<O>((resolve, reject) => {
      let done = false;
      const entry = {
        reject(e: Error) {
          if (done) return;
          done = true;
          settle(entry);
          reject(e);
        },
      };
      mine.add(entry);
      threads.submit({
        owner,
        module: moduleUrl,
        fn,
        input,
        transfer,
        resolve(v) {
          if (done) return;
          done = true;
          settle(entry);
          resolve(v as O);
        },
        reject: (e) => entry.reject(e),
      });
    });
  };

  async function* map(inputs: Iterable<I> | AsyncIterable<I>, mapOptions: MapOptions<I> = {}): AsyncGenerator<O> {
    const limit = mapOptions.inFlight ?? 2 * size;
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`inFlight must be an integer >= 1, got ${limit}`);
    const window: Promise<O>[] = [];
    try {
      for await (const input of inputs as AsyncIterable<I>) {
        const p = run(input, mapOptions.transfer?.(input) ?? []);
        p.catch(() => {}); // observed when awaited below; avoids an unhandled rejection meanwhile
        window.push(p);
        if (window.length >= limit) yield await window.shift()!;
      }
      while (window.length) yield await window.shift()!;
    } finally {
      // On early exit the remaining results are dropped, but their tasks finish normally.
      for (const p of window) p.catch(() => {});
    }
  }

  async function leave(): Promise<void> {
    if (released) return;
    released = true;
    stopWatching();
    await threads.release();
  }

  return {
    size,
    run,
    map,
    get pending() {
      return mine.size;
    },
    async close() {
      if (closed) return leave();
      closed = true;
      if (mine.size > 0 && !failure) await new Promise<void>((r) => idleWaiters.push(r));
      await leave();
    },
    async destroy() {
      closed = true;
      const err = new Error('worker pool destroyed');
      failure ??= err;
      // Queued tasks of this pool leave the shared queue; running ones finish unobserved.
      threads.unqueue((t) => t.owner === owner);
      for (const entry of [...mine]) entry.reject(err);
      await leave();
    },
  };
}

/**
 * Keeps the order of batches whose results arrive asynchronously while letting up to `depth`
 * of them run ahead: `push` adds a batch's promise and returns the outputs of the oldest batches
 * that are finished (waiting only when more than `depth` are unfinished); `drain` returns the rest.
 * A step that pushes in `process` and drains in `flush` overlaps its workers with the steps
 * upstream of it (the runner reads and decodes the next batch while the workers compute).
 */
export function createOrderedWindow<T>(depth: number) {
  if (!Number.isInteger(depth) || depth < 0) throw new Error(`window depth must be an integer >= 0, got ${depth}`);
  const queue: { promise: Promise<T[]>; done: boolean }[] = [];
  const take = async (): Promise<T[]> => {
    const out: T[] = [];
    while (queue.length && (queue[0].done || queue.length > depth)) {
      const items = await queue.shift()!.promise;
      for (let i = 0; i < items.length; i++) out.push(items[i]);
    }
    return out;
  };
  return {
    get size() {
      return queue.length;
    },
    push(promise: Promise<T[]>): Promise<T[]> {
      const entry = { promise, done: false };
      promise.then(
        () => (entry.done = true),
        () => (entry.done = true),
      );
      queue.push(entry);
      return take();
    },
    async drain(): Promise<T[]> {
      const out: T[] = [];
      while (queue.length) {
        const items = await queue.shift()!.promise;
        for (let i = 0; i < items.length; i++) out.push(items[i]);
      }
      return out;
    },
  };
}

/**
 * Serializes the side effects of work that finishes out of order: the function returned, called
 * as `inOrder(work, apply)`, runs `apply` on each result in the order the calls were made
 * (counters, histograms, drops and their side records then follow the input order whatever order
 * worker threads finish in).
 */
export function inCallOrder() {
  let previous: Promise<unknown> = Promise.resolve();
  return <T, R>(work: Promise<T>, apply: (value: T) => R): Promise<R> => {
    const done = previous.then(() => work).then(apply);
    previous = done.catch(() => {});
    return done;
  };
}

/**
 * The step shape shared by operators that work on record texts in worker threads: records
 * without a string text become `no_text` errors, `run` computes the rest (in threads or inline),
 * and up to `ahead` batches are computed ahead while results are handed on in input order.
 * `pool` returns the worker pool once one exists (it may start lazily), so an abort or close
 * can end its threads.
 */
export function orderedTextStep(
  ctx: StepContext,
  o: { ahead: number; run: (recs: Rec[]) => Promise<Rec[]>; pool: () => { destroy(): unknown } | undefined },
): Step {
  const onAbort = () => void o.pool()?.destroy();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  const window = createOrderedWindow<Rec>(o.ahead);
  return {
    process(batch) {
      const recs: Rec[] = [];
      for (const rec of batch) {
        if (typeof rec.text !== 'string') ctx.error(rec, 'no_text', `record ${rec.id}: "text" is ${rec.text === undefined ? 'missing' : rec.text === null ? 'null' : typeof rec.text}, not a string`);
        else recs.push(rec);
      }
      const done = o.run(recs);
      done.catch(() => {});
      return window.push(done);
    },
    flush() {
      return window.drain();
    },
    drain() {
      return window.drain();
    },
    async close() {
      ctx.signal.removeEventListener('abort', onAbort);
      await o.pool()?.destroy();
    },
  };
}
