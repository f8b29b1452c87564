#!/usr/bin/env node
// `npm run bench [-- --quick] [-- --only name,name]`: runs every benchmark script in bench/
// one after another (never in parallel: they measure time), then assembles BENCHMARKS.md
// from bench/results/*.md.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bench = path.join(root, 'bench');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyArg = args.find((a) => a.startsWith('--only'));
const only = onlyArg ? (onlyArg.includes('=') ? onlyArg.split('=')[1] : args[args.indexOf(onlyArg) + 1]).split(',') : undefined;
const support = new Set(['corpus.ts', 'machine.ts']);
const scripts = readdirSync(bench)
  .filter((f) => f.endsWith('.ts') && !support.has(f))
  .map((f) => f.replace(/\.ts$/, ''))
  .filter((n) => !only || only.includes(n))
  .sort((a, b) => (a === 'engine' ? -1 : b === 'engine' ? 1 : a.localeCompare(b)));

let failed = 0;
for (const name of scripts) {
  process.stderr.write(`\n== bench/${name}.ts${quick ? ' --quick' : ''}\n`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(bench, `${name}.ts`), ...(quick ? ['--quick'] : [])], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    process.stderr.write(`bench/${name}.ts failed with status ${r.status}\n`);
  }
}

const resultsDir = path.join(bench, 'results');
const sections = existsSync(resultsDir)
  ? readdirSync(resultsDir)
      .filter((f) => f.endsWith('.md'))
      // A --quick result only stands in for a section that has no full run.
      .filter((f, _, all) => !(f.endsWith('-quick.md') && all.includes(f.replace(/-quick\.md$/, '.md'))))
      .sort((a, b) => (a === 'engine.md' ? -1 : b === 'engine.md' ? 1 : a.localeCompare(b)))
      .map((f) => readFileSync(path.join(resultsDir, f), 'utf8').trim())
  : [];
const header = `# Benchmarks

Written by \`npm run bench\` (each section by its script in bench/, which states its command and
machine). Figures compare mixstream with a peer (or an exact reference) on the same data in the
same run, as ratios; several sections were measured while the 2-core machine was shared with
other jobs, which the sections say, so their absolute rates are low and their ratios are what count.
Last assembled on a machine with nproc ${os.availableParallelism()}, Node ${process.version}.
`;
writeFileSync(path.join(root, 'BENCHMARKS.md'), [header, ...sections].join('\n\n') + '\n');
process.exit(failed ? 1 : 0);
