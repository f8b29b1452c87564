// Thread entry of lib/parallel.ts pools, in plain JavaScript: loads worker modules, runs each task
// through the chosen export and posts the result (moving the buffers named by `withTransfer`).
// Modules of this package arrive bundled to JavaScript; a TypeScript module from elsewhere makes
// the thread register the tsx loader first (resolved from this package, so it works from any
// directory).
import { parentPort } from 'node:worker_threads';

/** The marker `withTransfer` (lib/parallel.ts) puts on a result. */
const TRANSFER = Symbol.for('mixstream.transfer');

// Modules are loaded on first use: the threads are shared by every pool of the process.
const modules = new Map();
let typescript;

function load(module) {
  if (!/\.[cm]?tsx?$/.test(module)) return import(module);
  typescript ??= import('tsx/esm/api').then(({ register }) => register());
  return typescript.then(() => import(module));
}

async function taskFor(module, fn) {
  if (!modules.has(module)) modules.set(module, load(module));
  const task = (await modules.get(module))[fn];
  if (typeof task !== 'function') throw new Error(`worker module ${module} has no exported function "${fn}"`);
  return task;
}

// Two tasks may be queued here at once (see THREAD_DEPTH in lib/parallel.ts); an async task
// function still runs one task at a time, in arrival order.
let previous = Promise.resolve();

parentPort.on('message', (msg) => {
  previous = previous.then(() => runTask(msg));
});

async function runTask({ id, module, fn, input }) {
  try {
    const out = await (await taskFor(module, fn))(input);
    if (typeof out === 'object' && out !== null && out[TRANSFER] === true) parentPort.postMessage({ id, ok: true, value: out.value }, out.transfer);
    else parentPort.postMessage({ id, ok: true, value: out });
  } catch (e) {
    parentPort.postMessage({ id, ok: false, error: { message: e?.message ?? String(e), stack: e?.stack } });
  }
}
