#!/usr/bin/env node
// Entry point: registers the TypeScript loader (pipeline files and custom operators may be .ts), then runs the CLI.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../lib/cli.ts');
await main(process.argv.slice(2));
