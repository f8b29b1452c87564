// Resume cost (issue: long-running ingest). On the engine benchmark's corpus (520 MB of real
// text, zstd) given as several input shards (--copies N links to it, default 4: 2.08 GB),
// measures the throughput of `mixstream run` with --checkpoint at several intervals against the
// same run without checkpoints, then kills a checkpointed run half-way (SIGKILL) and times the
// rerun that resumes it, checking the output equals an uninterrupted run's.
//   npx tsx bench/resume.ts [--quick] [--copies N]
import { execSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine } from './machine.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DATA = path.join(ROOT, 'bench', 'data');
const quick = process.argv.includes('--quick');
const targetMB = quick ? 60 : 520;
const corpus = path.join(DATA, `engine-${targetMB}mb.jsonl.zst`);
if (!existsSync(corpus)) execSync(`npx tsx ${path.join(ROOT, 'bench', 'engine.ts')}${quick ? ' --quick' : ''}`, { stdio: 'inherit' });
const bin = path.join(ROOT, 'bin', 'mixstream.js');
const pipeline = path.join(DATA, 'resume-normalize.json');
writeFileSync(pipeline, JSON.stringify({ steps: [{ op: 'normalize' }] }));
const copiesAt = process.argv.indexOf('--copies');
const copies = copiesAt > 0 ? Number(process.argv[copiesAt + 1]) : quick ? 1 : 4;
// The shards: links to the corpus, so a multi-GB input costs no disk.
const shards = Array.from({ length: copies }, (_, i) => {
  const link = path.join(DATA, `resume-shard-${i}.jsonl.zst`);
  rmSync(link, { force: true });
  symlinkSync(corpus, link);
  return link;
});
const rawMB = (copies * Number(execSync(`zstdcat "${corpus}" | wc -c`, { encoding: 'utf8' }))) / 1e6;

function run(args: string[], killAfterMs?: number): Promise<{ seconds: number; code: number | null }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'ignore', 'ignore'] });
    const timer = killAfterMs ? setTimeout(() => child.kill('SIGKILL'), killAfterMs) : undefined;
    child.on('exit', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ seconds: (performance.now() - t0) / 1000, code });
    });
  });
}

function digest(dir: string): string {
  const parts = readdirSync(dir).filter((f) => /^part-\d+\.jsonl\.zst$/.test(f)).sort().map((f) => `"${path.join(dir, f)}"`).join(' ');
  return execSync(`zstdcat ${parts} | sha256sum`, { encoding: 'utf8' }).split(' ')[0];
}

const work = path.join(DATA, 'resume');
const fresh = (name: string) => {
  const dir = path.join(work, name);
  rmSync(dir, { recursive: true, force: true });
  return dir;
};

// Without checkpoints (parts written the same way, through --checkpoint with a huge interval).
const base = fresh('base');
const plain = await run(['run', pipeline, ...shards, '-o', path.join(base, 'out'), '--checkpoint', path.join(base, 'ckpt'), '--checkpoint-interval', '1e9', '-q']);
const reference = digest(path.join(base, 'out'));
const rows: string[] = [];
rows.push(`| none (one part) | ${plain.seconds.toFixed(1)} | ${(rawMB / plain.seconds).toFixed(1)} | 100% |`);
for (const interval of quick ? [1, 5] : [1, 30]) {
  const dir = fresh(`i${interval}`);
  const r = await run(['run', pipeline, ...shards, '-o', path.join(dir, 'out'), '--checkpoint', path.join(dir, 'ckpt'), '--checkpoint-interval', String(interval), '-q']);
  const same = digest(path.join(dir, 'out')) === reference;
  rows.push(`| every ${interval} s | ${r.seconds.toFixed(1)} | ${(rawMB / r.seconds).toFixed(1)} | ${((plain.seconds / r.seconds) * 100).toFixed(0)}%${same ? '' : ' (OUTPUT DIFFERS)'} |`);
}

// Kill half-way, then resume.
const killed = fresh('killed');
const args = ['run', pipeline, ...shards, '-o', path.join(killed, 'out'), '--checkpoint', path.join(killed, 'ckpt'), '--checkpoint-interval', '5', '-q'];
const first = await run(args, Math.round((plain.seconds * 1000) / 2));
const second = await run(args);
const identical = digest(path.join(killed, 'out')) === reference;

const md = `## Resume: checkpoint cost and time to resume after a kill

Machine: ${machine()}. Command: \`npx tsx bench/resume.ts${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}\`.
Input: ${copies} shard(s) of the engine benchmark's real text (zstd), ${rawMB.toFixed(0)} MB in all, pipeline \`normalize\`, output as zstd parts in a directory.

| checkpoint interval | wall s | MB/s | throughput vs no checkpoints |
|---|---:|---:|---:|
${rows.join('\n')}

Killed with SIGKILL after ${(first.seconds).toFixed(1)} s (about half of an uninterrupted run); the same command then resumed and finished in **${second.seconds.toFixed(1)} s** (an uninterrupted run: ${plain.seconds.toFixed(1)} s), so the resumed run redid at most one checkpoint interval plus the skip over the already-consumed lines. Final output ${identical ? '**identical** (sha256 of the concatenated parts)' : '**DIFFERENT**'} to the uninterrupted run's.
`;
writeFileSync(path.join(ROOT, 'bench', 'results', quick ? 'resume-quick.md' : 'resume.md'), md);
process.stdout.write(md);
