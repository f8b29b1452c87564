// Thread bootstrap of lib/parallel.ts pools: registers the tsx loader in this thread, so worker
// modules and their imports may be TypeScript, then starts the task loop.
import { register } from 'tsx/esm/api';

register();
await import('./parallel-worker.ts');
