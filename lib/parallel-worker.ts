// Thread entry of lib/parallel.ts pools: loads the worker module, runs each task through the
// chosen export and posts the result (moving the buffers named by `withTransfer`).
import { parentPort } from 'node:worker_threads';
import { isTransferring } from './parallel.ts';

// Modules are loaded on first use: the threads are shared by every pool of the process.
const modules = new Map<string, Promise<Record<string, unknown>>>();

async function taskFor(module: string, fn: string): Promise<(i: unknown) => unknown> {
  let mod = modules.get(module);
  if (!mod) modules.set(module, (mod = import(module) as Promise<Record<string, unknown>>));
  const task = (await mod)[fn];
  if (typeof task !== 'function') throw new Error(`worker module ${module} has no exported function "${fn}"`);
  return task as (i: unknown) => unknown;
}

// Two tasks may be queued here at once (see THREAD_DEPTH in lib/parallel.ts); an async task
// function still runs one task at a time, in arrival order.
let previous: Promise<void> = Promise.resolve();

parentPort!.on('message', (msg: { id: number; module: string; fn: string; input: unknown }) => {
  previous = previous.then(() => runTask(msg));
});

async function runTask({ id, module, fn, input }: { id: number; module: string; fn: string; input: unknown }): Promise<void> {
  try {
    const out = await (await taskFor(module, fn))(input);
    if (isTransferring(out)) parentPort!.postMessage({ id, ok: true, value: out.value }, out.transfer);
    else parentPort!.postMessage({ id, ok: true, value: out });
  } catch (e) {
    const err = e as Error;
    parentPort!.postMessage({ id, ok: false, error: { message: err?.message ?? String(e), stack: err?.stack } });
  }
}
