// The samplers under `run --checkpoint`: killed with SIGKILL at random points (and once while
// emitting the sample at the end of input), rerun until done, their output and rejects equal an
// uninterrupted run's (without --checkpoint) byte for byte.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { defaultRegistry } from '../lib/cli.ts';
import { resolvePipeline } from '../lib/pipeline.ts';
import { runPipeline } from '../lib/run.ts';
import { BIN, cli, lines, partsOutput, runUntilKilled, SAMPLES, tmpdir } from './helpers.ts';

const dir = tmpdir();

// Two copies of the real-text samples (ids made unique), in two input files.
const inputs: string[] = [];
{
  const all: string[] = [];
  for (let copy = 0; copy < 2; copy++) {
    for (const f of ['kjv.jsonl', 'handbook.jsonl', 'fortunes.jsonl', 'gcide.jsonl']) {
      for (const l of readFileSync(path.join(SAMPLES, f), 'utf8').trim().split('\n')) {
        const r = JSON.parse(l);
        all.push(JSON.stringify({ ...r, id: `${r.id}#${copy}` }));
      }
    }
  }
  const half = all.length >> 1;
  for (const [k, part] of [all.slice(0, half), all.slice(half)].entries()) {
    const file = path.join(dir, `in-${k}.jsonl`);
    writeFileSync(file, part.join('\n') + '\n');
    inputs.push(file);
  }
}

const pipelines = {
  // Spills (memoryMB 0.05): sampled bodies beyond it go to the spill file kept across kills.
  reservoir: [
    { op: 'tokens', mode: 'estimate' },
    { op: 'reservoir-weighted-sample', budgetTokens: 150000, weight: 'log(token_count + 1)', seed: 5, memoryMB: 0.05 },
  ],
  samplemix: [
    { op: 'tokens', mode: 'estimate' },
    { op: 'samplemix', quality: 'log(token_count + 1)', budgetRatio: 0.5, clusters: 8, features: 1024, fitDocs: 500, iterations: 3, memoryMB: 0.5, seed: 1 },
  ],
};

for (const [op, steps] of Object.entries(pipelines)) writeFileSync(path.join(dir, `${op}.json`), JSON.stringify({ steps }));

function args(op: keyof typeof pipelines, name: string, interval = 0.02): string[] {
  const p = path.join(dir, `${op}.json`);
  const base = path.join(dir, op, name);
  return ['run', p, ...inputs, '-o', path.join(base, 'out'), '--checkpoint', path.join(base, 'ckpt'), '--checkpoint-interval', String(interval), '--rejects', path.join(base, 'rejects.jsonl'), '--report', path.join(base, 'report.json')];
}

function result(op: keyof typeof pipelines, name: string) {
  const base = path.join(dir, op, name);
  return { out: partsOutput(path.join(base, 'out')), rejects: readFileSync(path.join(base, 'rejects.jsonl'), 'utf8'), report: JSON.parse(readFileSync(path.join(base, 'report.json'), 'utf8')) };
}

/** Starts the run and kills it with SIGKILL as soon as an output part is being written (the sample is being emitted). */
function killWhileEmitting(a: string[], outDir: string): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...a], { stdio: 'ignore' });
    const poll = setInterval(() => {
      if (existsSync(outDir) && readdirSync(outDir).some((f) => f.includes('.partial-'))) child.kill('SIGKILL');
    }, 2);
    child.on('exit', (code) => {
      clearInterval(poll);
      resolve(code);
    });
  });
}

const steps = (report: any) => report.steps.map((x: any) => [x.op, x.recordsIn, x.recordsOut, x.dropped, x.errors, x.counters]);

// Each CLI run starts a Node process (seconds on a loaded machine), so they are few: three kills
// at seeded random moments after a checkpoint, one kill while the sample is written at the end
// of input, and the run that finishes.
for (const [op, seed] of [['reservoir', 7], ['samplemix', 8]] as const) {
  t.test(`${op}: killed at random points and while emitting, rerun until done: output and rejects equal an uninterrupted run`, async (t) => {
    const base = path.join(dir, op);
    // The reference runs in this process (the same engine, without --checkpoint and without a Node start).
    mkdirSync(base, { recursive: true });
    const pipeline = await resolvePipeline({ steps: pipelines[op] }, defaultRegistry());
    const ref = await runPipeline({ pipeline, inputs, output: path.join(base, 'reference.jsonl'), rejects: path.join(base, 'reference-rejects.jsonl'), report: path.join(base, 'reference-report.json'), log: () => {} });
    t.equal(ref.exitCode, 0);
    const reference = { out: readFileSync(path.join(base, 'reference.jsonl'), 'utf8'), rejects: readFileSync(path.join(base, 'reference-rejects.jsonl'), 'utf8'), report: JSON.parse(readFileSync(path.join(base, 'reference-report.json'), 'utf8')) };
    const sampled = lines(reference.out).length;
    t.ok(sampled > 300 && lines(reference.rejects).length > 1000, `${sampled} records out, ${lines(reference.rejects).length} left out`);
    t.ok(reference.report.steps[2].counters.spilled_records > 100, `${reference.report.steps[2].counters.spilled_records} records spilled`);

    let s = seed;
    const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const a = args(op, 'killed');
    const ckpt = path.join(base, 'killed', 'ckpt');
    let kills = 0;
    for (let attempt = 0; attempt < 10 && kills < 3; attempt++) {
      const code = await runUntilKilled(a, ckpt, Math.floor(rand() * 30));
      t.not(code, 0, 'not finished before three kills');
      if (code === null) kills++;
    }
    t.equal(kills, 3, 'killed three times at random points');
    t.equal(await killWhileEmitting(a, path.join(base, 'killed', 'out')), null, 'killed while emitting the sample at the end of input');
    const final = cli(a);
    t.equal(final.code, 0, final.stderr);
    t.match(final.stderr, /resuming from/);

    const killed = result(op, 'killed');
    t.ok(killed.out === reference.out, 'output identical to the uninterrupted run');
    t.ok(killed.rejects === reference.rejects, 'every record left out written to the rejects exactly once');
    t.same(steps(killed.report), steps(reference.report), 'the report counts every record once across the resumed runs');
    const pids = new Set(lines(readFileSync(path.join(ckpt, 'history.jsonl'), 'utf8')).map((h) => h.pid));
    t.ok(pids.size >= 4, `checkpoints committed by ${pids.size} processes`);
    t.notOk(existsSync(path.join(ckpt, 'work')), 'a finished run leaves no scratch state behind');
  });
}
