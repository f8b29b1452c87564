// Exactly-once resume of a fuzzy-dedup pipeline whose LSH index spills to disk: killed at random
// moments and rerun, it writes the same output and rejects as an uninterrupted run.
import t from 'tap';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cli, killRepeatedly, lines, partsOutput, SAMPLES, tmpdir } from './helpers.ts';

const dir = tmpdir();
const pipeline = path.join(dir, 'dedup.json');
writeFileSync(
  pipeline,
  JSON.stringify({
    steps: [
      { op: 'normalize' },
      { op: 'shingle', unit: 'word', n: 5 },
      { op: 'minhash', perms: 128, seed: 1 },
      // A tiny index budget: the index spills (and merges its segments) many times during the run.
      { op: 'lsh-band-join', threshold: 0.85, memoryMB: 0.25 },
    ],
  }),
);

// Real text, each document followed later by edited copies (some near-duplicates, some not).
const input = path.join(dir, 'in.jsonl');
{
  const docs = ['kjv.jsonl', 'handbook.jsonl', 'fortunes.jsonl'].flatMap((f) => lines(readFileSync(path.join(SAMPLES, f), 'utf8')));
  const out: string[] = docs.map((d) => JSON.stringify(d));
  // Four rounds of edited copies: enough input for several kills to land before the run ends,
  // also on an idle machine (with two rounds, the clean-clone CI once finished after 2 kills).
  for (const [round, rates] of [[1, [50, 25, 8]], [2, [40, 20, 10]], [3, [30, 15, 6]], [4, [60, 12, 9]]] as const) {
    docs.forEach((d, i) => {
      const words = String(d.text).split(' ');
      const every = rates[i % 3];
      for (let k = every - 1; k < words.length; k += every) words[k] = `edit${round}x${k}`;
      out.push(JSON.stringify({ ...d, id: `${d.id}~edit${round}`, text: words.join(' ') }));
    });
  }
  writeFileSync(input, out.join('\n') + '\n');
}

function args(name: string, interval = 0.05): string[] {
  const base = path.join(dir, name);
  return ['run', pipeline, input, '-o', path.join(base, 'out'), '--checkpoint', path.join(base, 'ckpt'), '--checkpoint-interval', String(interval), '--rejects', path.join(base, 'rejects.jsonl'), '--report', path.join(base, 'report.json')];
}

t.test('kill -9 during a spilling dedup run, rerun until done: output and rejects equal an uninterrupted run', async (t) => {
  const r = cli(args('reference', 3600));
  t.equal(r.code, 0, r.stderr);
  const refOut = partsOutput(path.join(dir, 'reference', 'out'));
  const refRejects = readFileSync(path.join(dir, 'reference', 'rejects.jsonl'), 'utf8');
  const refReport = JSON.parse(readFileSync(path.join(dir, 'reference', 'report.json'), 'utf8'));
  const join = refReport.steps.find((s: any) => s.op === 'lsh-band-join');
  t.ok(join.dropped.near_duplicate > 100, `${join.dropped.near_duplicate} near-duplicates removed`);
  t.ok(join.counters.index_spills > 3, `the index spilled ${join.counters.index_spills} times`);
  t.ok(join.counters.index_merges > 0, `the index merged segments ${join.counters.index_merges} times`);

  const { kills, code } = await killRepeatedly(args('killed'), path.join(dir, 'killed', 'ckpt'), { kills: 5, maxDelayMs: 80 });
  t.ok(kills >= 3, `killed ${kills} times before it finished`);
  t.equal(code, 0);
  t.ok(partsOutput(path.join(dir, 'killed', 'out')) === refOut, 'output identical to the uninterrupted run');
  t.equal(readFileSync(path.join(dir, 'killed', 'rejects.jsonl'), 'utf8'), refRejects, 'rejects written exactly once');
  const report = JSON.parse(readFileSync(path.join(dir, 'killed', 'report.json'), 'utf8'));
  t.same(
    report.steps.map((x: any) => [x.op, x.recordsIn, x.recordsOut, x.dropped]),
    refReport.steps.map((x: any) => [x.op, x.recordsIn, x.recordsOut, x.dropped]),
    'every record counted once across the resumed runs',
  );
  t.same(report.steps.at(-1).counters.clusters, join.counters.clusters, 'cluster statistics carried across the resumes');
  t.notOk(existsSync(path.join(dir, 'killed', 'ckpt', 'work')), 'scratch state removed once the run finished');
});

t.test('a failure before the first checkpoint does not promise a resume', async (t) => {
  const p = path.join(dir, 'write-index.json');
  const taken = path.join(dir, 'taken.idx');
  writeFileSync(p, JSON.stringify({ steps: [{ op: 'shingle' }, { op: 'minhash' }, { op: 'lsh-band-join', writeIndex: taken }] }));
  mkdirSync(taken);
  writeFileSync(path.join(taken, 'something'), 'x');
  const r = cli(['run', p, input, '-o', path.join(dir, 'fail', 'out'), '--checkpoint', path.join(dir, 'fail', 'ckpt')]);
  t.equal(r.code, 2, 'a usage error: the option cannot work with what is on disk');
  t.match(r.stderr, /writeIndex: .*taken\.idx already exists and is not empty/);
  t.match(r.stderr, /no checkpoint was written yet; the same command starts over/);
});
