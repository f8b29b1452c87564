// Thread entry of lib/parallel.ts pools: loads the worker module, runs each task through the
// chosen export and posts the result (moving the buffers named by `withTransfer`).
import { parentPort, workerData } from 'node:worker_threads';
import { isTransferring } from './parallel.ts';

const { module, fn } = workerData as { module: string; fn: string };
const mod = (await import(module)) as Record<string, unknown>;
const task = mod[fn];
if (typeof task !== 'function') throw new Error(`worker module ${module} has no exported function "${fn}"`);

parentPort!.on('message', async ({ id, input }: { id: number; input: unknown }) => {
  try {
    const out = await (task as (i: unknown) => unknown)(input);
    if (isTransferring(out)) parentPort!.postMessage({ id, ok: true, value: out.value }, out.transfer);
    else parentPort!.postMessage({ id, ok: true, value: out });
  } catch (e) {
    const err = e as Error;
    parentPort!.postMessage({ id, ok: false, error: { message: err?.message ?? String(e), stack: err?.stack } });
  }
});
