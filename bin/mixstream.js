#!/usr/bin/env node
// Entry point: sets the heap policy, registers the TypeScript loader (pipeline files and custom
// operators may be .ts), then runs the CLI.
import v8 from 'node:v8';
import { register } from 'tsx/esm/api';

// Records in flight outlive a young-generation collection and die in the old generation, which
// V8 by default lets grow to several times the live heap before collecting it. A streaming run's
// live heap is small and steady, so the old generation is kept within 1.2x of it: less resident
// memory for a few percent more collector time. A flag given on the command line or in
// NODE_OPTIONS wins.
const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
if (!given.some((a) => /^--heap[-_]growing[-_]percent/.test(a))) v8.setFlagsFromString('--heap-growing-percent=20');

register();
const { main } = await import('../lib/cli.ts');
await main(process.argv.slice(2));
