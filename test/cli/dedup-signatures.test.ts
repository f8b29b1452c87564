import t from 'tap';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { cli, lines, SAMPLES, tmpdir } from '../helpers.ts';
import { createMinHasher } from '../../lib/sketch/minhash.ts';
import { shingleText } from '../../lib/text/shingle.ts';

// The CLI runs from another directory, so worker threads must find their TypeScript loader on their own.
const dir = tmpdir();
const pipeline = path.join(dir, 'signatures.json');
writeFileSync(
  pipeline,
  JSON.stringify({ steps: [{ op: 'normalize' }, { op: 'shingle' }, { op: 'minhash', perms: 32, seed: 5, scheme: 'classic', emitField: 'minhash' }] }),
);

t.test('normalize -> shingle -> minhash through the CLI, with 1 and 2 worker threads', async (t) => {
  const input = path.join(SAMPLES, 'fortunes.jsonl');
  const outs = [1, 2].map((workers) => {
    const r = cli(['run', pipeline, input, '--workers', String(workers)], { cwd: dir });
    t.equal(r.code, 0, r.stderr);
    return lines(r.stdout);
  });
  t.same(outs[0], outs[1], 'the thread count changes nothing in the output');
  const recs = outs[0];
  t.equal(recs.length, 2053);
  const hasher = createMinHasher({ perms: 32, seed: 5, scheme: 'classic' });
  for (const rec of recs.slice(0, 200)) {
    t.same(rec.minhash, Array.from(hasher.signature(shingleText(rec.text, { unit: 'word', n: 5 }))), rec.id);
  }
  t.notOk('shingles' in recs[0], 'shingles stay internal');
});

t.test('bad minhash options fail before any data is read, naming the option', async (t) => {
  const bad = path.join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ steps: [{ op: 'minhash', perms: 0, scheme: 'fastest' }] }));
  const r = cli(['run', bad, path.join(SAMPLES, 'kjv.jsonl')], { cwd: dir });
  t.not(r.code, 0);
  t.match(r.stderr, /perms/);
  t.match(r.stderr, /scheme/);
  t.equal(r.stdout, '');
  // A join after it is not blamed for the perms as well: the error is reported once, at minhash.
  writeFileSync(bad, JSON.stringify({ steps: [{ op: 'shingle' }, { op: 'minhash', perms: 0 }, { op: 'lsh-band-join' }] }));
  const joined = cli(['lint', bad], { cwd: dir });
  t.equal(joined.code, 2);
  t.match(joined.stderr, /1 error\(s\)\n  step 1 \(minhash\) perms: out of range/);
  t.notMatch(joined.stderr, /lsh-band-join/);
});
