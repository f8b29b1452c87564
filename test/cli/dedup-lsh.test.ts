import t from 'tap';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { BIN, cli, lines, ROOT, SAMPLES, tmpdir } from '../helpers.ts';

const dir = tmpdir();

t.test('pipelines/dedup.json removes the untranslated copies among handbook editions', async (t) => {
  const out = path.join(dir, 'dedup.jsonl');
  const rejects = path.join(dir, 'removed.jsonl');
  const report = path.join(dir, 'report.json');
  const r = cli(['run', 'pipelines/dedup.json', path.join(SAMPLES, 'handbook.jsonl'), '-o', out, '--rejects', rejects, '--report', report, '-q']);
  t.equal(r.code, 0, r.stderr);
  const kept = lines(readFileSync(out, 'utf8'));
  const removed = lines(readFileSync(rejects, 'utf8'));
  t.equal(kept.length + removed.length, 109);
  t.ok(removed.length > 0, `${removed.length} removed`);
  const keptIds = new Set(kept.map((k) => k.id));
  for (const rec of removed) {
    t.ok(keptIds.has(rec.dup_of), `${rec.id} duplicates kept ${rec.dup_of}`);
    t.ok(rec.dup_similarity >= 0.85);
  }
  const step = JSON.parse(readFileSync(report, 'utf8')).steps.find((s: { op: string }) => s.op === 'lsh-band-join');
  t.equal(step.dropped.near_duplicate, removed.length);
  t.ok(step.histograms.cluster_size.count >= 1);
});

t.test('pipelines/cross-dedup.ts keeps the preferred source of each cluster', async (t) => {
  const out = path.join(dir, 'cross.jsonl');
  const r = cli(['run', 'pipelines/cross-dedup.ts', '-o', out, '-q'], { cwd: ROOT });
  t.equal(r.code, 0, r.stderr);
  const kept = lines(readFileSync(out, 'utf8'));
  t.equal(kept.filter((k) => k.source === 'handbook-mirror').length, 0, 'every mirror section loses to its debian-handbook copy');
  t.equal(kept.filter((k) => k.source === 'debian-handbook').length, 103);
  t.equal(kept[0].source, 'debian-handbook');
});

t.test('explain prints the band choice', async (t) => {
  const r = cli(['explain', 'pipelines/dedup.json']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout + r.stderr, /16 bands x 8 rows/);
});

/** A dedup pipeline file in `dir` with the given minhash and join options. */
function dedupPipeline(name: string, minhash: object, join: object): string {
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify({ steps: [{ op: 'normalize' }, { op: 'shingle', unit: 'word', n: 5 }, { op: 'minhash', ...minhash }, { op: 'lsh-band-join', ...join }] }));
  return file;
}

t.test('against refuses an index whose signatures were made with other minhash settings (exit 2), and still matches its own', async (t) => {
  const idx = path.join(dir, 'kjv-seed1.idx');
  const kjv = path.join(SAMPLES, 'kjv.jsonl');
  t.equal(cli(['run', dedupPipeline('write.json', { seed: 1 }, { writeIndex: idx }), kjv, '-o', path.join(dir, 'w.jsonl'), '-q']).code, 0);
  const out = path.join(dir, 'other-seed.jsonl');
  const r = cli(['run', dedupPipeline('seed2.json', { seed: 2 }, { against: [idx] }), kjv, '-o', out]);
  t.equal(r.code, 2, r.stderr);
  t.match(r.stderr, /against\[0\]: .*other settings \(minhash\{perms=128,seed=1,scheme="oph"\} there, minhash\{perms=128,seed=2,scheme="oph"\} here\)/);
  t.notOk(existsSync(out), 'no output file');
  t.same(readdirSync(dir).filter((f) => f.includes('.partial-')), [], 'no unfinished output left behind');
  const same = path.join(dir, 'same-seed.jsonl');
  const ok = cli(['run', dedupPipeline('seed1.json', { seed: 1 }, { against: [idx] }), kjv, '-o', same, '-q']);
  t.equal(ok.code, 0, ok.stderr);
  t.equal(lines(readFileSync(same, 'utf8')).length, 0, 'every document of the indexed dataset is removed');
  // One index listed twice (by two spellings of its path) is refused, naming both entries.
  const twice = cli(['run', dedupPipeline('twice.json', { seed: 1 }, { against: [idx, path.join(dir, '.', 'kjv-seed1.idx')] }), kjv, '-o', path.join(dir, 'twice.jsonl')]);
  t.equal(twice.code, 2, twice.stderr);
  t.match(twice.stderr, /against\[1\]: .*kjv-seed1\.idx is what against\[0\] names already \(.*kjv-seed1\.idx\); list it once/);
  // ... and through a symbolic link to it.
  const link = path.join(dir, 'kjv-link.idx');
  symlinkSync(idx, link);
  const linked = cli(['run', dedupPipeline('twice-link.json', { seed: 1 }, { against: [idx, link] }), kjv, '-o', path.join(dir, 'twice-link.jsonl')]);
  t.equal(linked.code, 2, linked.stderr);
  t.match(linked.stderr, /against\[1\]: .*kjv-link\.idx is what against\[0\] names already \(.*kjv-seed1\.idx\); list it once/);
  // No normalize step: shingles over the text folded by default, as normalize's defaults fold it.
  const bare = path.join(dir, 'no-normalize.json');
  writeFileSync(bare, JSON.stringify({ steps: [{ op: 'shingle', unit: 'word', n: 5 }, { op: 'minhash', seed: 1 }, { op: 'lsh-band-join', against: [idx] }] }));
  const rb = cli(['run', bare, kjv, '-o', path.join(dir, 'bare.jsonl'), '-q']);
  t.equal(rb.code, 0, rb.stderr);
  t.equal(lines(readFileSync(path.join(dir, 'bare.jsonl'), 'utf8')).length, 0, 'the same signatures without a normalize step');
  const n3 = path.join(dir, 'n3-pipeline.json');
  writeFileSync(n3, JSON.stringify({ steps: [{ op: 'normalize' }, { op: 'shingle', unit: 'word', n: 3 }, { op: 'minhash' }, { op: 'lsh-band-join', against: [idx] }] }));
  const r3 = cli(['run', n3, kjv, '-o', path.join(dir, 'n3b.jsonl')]);
  t.equal(r3.code, 2, r3.stderr);
  t.match(r3.stderr, /shingle\{unit="word",n=5,seed=0\} there, shingle\{unit="word",n=3,seed=0\} here/);
});

t.test('against an index of another threshold: refused before reading, naming the bands to set; with them it joins', async (t) => {
  const idx = path.join(dir, 'kjv-085.idx');
  const kjv = path.join(SAMPLES, 'kjv.jsonl');
  t.equal(cli(['run', dedupPipeline('write-085.json', {}, { writeIndex: idx }), kjv, '-o', path.join(dir, 'w085.jsonl'), '-q']).code, 0);
  const input = path.join(dir, 'kjv-bad-first.jsonl');
  writeFileSync(input, 'not json\n' + readFileSync(kjv, 'utf8'));
  const sub = path.join(dir, 'thr07');
  mkdirSync(sub);
  const r = cli(['run', dedupPipeline('thr07.json', {}, { threshold: 0.7, against: [idx] }), input, '-o', path.join(sub, 'out.jsonl'), '--errors', path.join(sub, 'errors.jsonl')]);
  t.equal(r.code, 2, r.stderr);
  t.match(r.stderr, /against\[0\]: .*kjv-085\.idx was built with 16 bands x 8 rows \(threshold 0\.85\), this step's threshold 0\.7 chooses \d+ x \d+: set bands: 16 and rows: 8 to join against it/);
  t.same(readdirSync(sub), [], 'nothing read or written');
  const ok = cli(['run', dedupPipeline('thr07-bands.json', {}, { threshold: 0.7, bands: 16, rows: 8, against: [idx] }), kjv, '-o', path.join(sub, 'out.jsonl'), '-q']);
  t.equal(ok.code, 0, ok.stderr);
  t.equal(lines(readFileSync(path.join(sub, 'out.jsonl'), 'utf8')).length, 0, 'every document of the indexed dataset is removed');
});

t.test('an against path that is not a finished index says what it is', async (t) => {
  const kjv = path.join(SAMPLES, 'kjv.jsonl');
  const idx = path.join(dir, 'paths.idx');
  t.equal(cli(['run', dedupPipeline('write-paths.json', {}, { writeIndex: idx }), kjv, '-o', path.join(dir, 'wp.jsonl'), '-q']).code, 0);
  const empty = path.join(dir, 'empty.idx');
  mkdirSync(empty);
  const unfinished = path.join(dir, 'unfinished.idx');
  mkdirSync(unfinished);
  writeFileSync(path.join(unfinished, 'index.sqlite'), readFileSync(path.join(idx, 'index.sqlite')));
  writeFileSync(path.join(unfinished, 'index.sqlite-journal'), 'a journal left by a killed writer');
  const cases: [string, RegExp][] = [
    [kjv, /kjv\.jsonl is a file, not an LSH index \(writeIndex writes a directory\)/],
    [path.join(idx, 'index.sqlite'), /index\.sqlite is the database file of an LSH index: give its directory, .*paths\.idx/],
    [empty, /empty\.idx holds no LSH index \(no index\.sqlite in it/],
    [unfinished, /unfinished\.idx is an unfinished LSH index: its writer was stopped/],
  ];
  for (const [against, message] of cases) {
    const r = cli(['run', dedupPipeline('against-path.json', {}, { against: [against] }), kjv, '-o', path.join(dir, 'ap.jsonl')]);
    t.equal(r.code, 2, r.stderr);
    t.match(r.stderr, /step 3 \(lsh-band-join\) against\[0\]: /);
    t.match(r.stderr, message);
    const lint = cli(['lint', path.join(dir, 'against-path.json')]);
    t.equal(lint.code, 2, 'lint reads what the path holds too');
    t.match(lint.stderr, message);
  }
});

t.test('lint refuses what the run would: against of the wrong type, listed twice, the writeIndex of the run, other bands; pipeline outputs inside writeIndex', async (t) => {
  const kjv = path.join(SAMPLES, 'kjv.jsonl');
  const idx = path.join(dir, 'lint.idx');
  t.equal(cli(['run', dedupPipeline('lint-write.json', {}, { writeIndex: idx }), kjv, '-o', path.join(dir, 'lint-w.jsonl'), '-q']).code, 0);
  const cases: [string, object, RegExp][] = [
    ['string', { against: idx }, /step 3 \(lsh-band-join\) against: expected array of string, got string/],
    ['null', { against: null }, /step 3 \(lsh-band-join\) against: expected array of string, got null/],
    ['number', { against: [1] }, /step 3 \(lsh-band-join\) against\[0\]: expected string, got number 1/],
    ['twice', { against: [idx, `${idx}/`] }, /against\[1\]: .*lint\.idx\/ is what against\[0\] names already/],
    ['own', { against: [idx], writeIndex: idx }, /against\[0\]: .*lint\.idx is the path step 3 \(lsh-band-join\) writes as writeIndex; a step cannot read what the run writes/],
    ['bands', { threshold: 0.7, against: [idx] }, /against\[0\]: .*lint\.idx was built with 16 bands x 8 rows \(threshold 0\.85\), this step's threshold 0\.7 chooses/],
    ['priority', { keep: 'priority', priority: ['a', 'b', 'a'] }, /priority\[2\]: "a" is listed already \(priority\[0\]\)/],
  ];
  for (const [name, join, message] of cases) {
    const file = dedupPipeline(`lint-${name}.json`, {}, join);
    for (const command of ['lint', 'explain']) {
      const r = cli([command, file]);
      t.equal(r.code, 2, `${name}: ${command}`);
      t.match(r.stderr, message, `${name}: ${command}`);
      t.notMatch(r.stderr, /\n\s+at |is not a function/, 'no internal error');
    }
  }
  const indexDir = path.join(dir, 'wi');
  for (const key of ['sink', 'errors', 'rejects']) {
    const file = path.join(dir, `lint-${key}.json`);
    writeFileSync(file, JSON.stringify({ [key]: 'wi/inside.jsonl', steps: [{ op: 'normalize' }, { op: 'shingle' }, { op: 'minhash' }, { op: 'lsh-band-join', writeIndex: 'wi' }] }));
    const r = cli(['lint', file]);
    t.equal(r.code, 2, key);
    t.match(r.stderr, new RegExp(`pipeline ${key}: wi/inside\\.jsonl is inside the path step 3 \\(lsh-band-join\\) writes as writeIndex; give ${key} another path`));
    t.equal(cli(['run', file, kjv]).code, 2);
    t.notOk(existsSync(indexDir), 'nothing written');
  }
  const emptyField = path.join(dir, 'lint-emit.json');
  writeFileSync(emptyField, JSON.stringify({ steps: [{ op: 'normalize' }, { op: 'shingle' }, { op: 'minhash', emitField: '' }] }));
  t.match(cli(['lint', emptyField]), { code: 2, stderr: /step 2 \(minhash\) emitField: expected a non-empty string, got ""/ });
});

t.test('explain prints a threshold with the decimals it has', async (t) => {
  const r = cli(['explain', dedupPipeline('thr0999.json', {}, { threshold: 0.999 })]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /s = 0\.999: P\(candidate\) = 0\.9\d+/);
  t.match(r.stdout, /s = 0\.95: P\(candidate\)/);
  t.notMatch(r.stdout, /s = 1\.00/);
});

t.test('explain compares with the balanced split for the threshold and warns when given bands miss most pairs', async (t) => {
  const low = cli(['explain', dedupPipeline('low.json', {}, { threshold: 0.5, bands: 16, rows: 8 })]);
  t.equal(low.code, 0, low.stderr);
  t.match(low.stdout, /the "balanced" 25 x 5 for this threshold would catch/);
  t.match(low.stdout, /warning: 16 bands x 8 rows make only 6\.1% of the pairs at Jaccard 0\.5 candidates/);
  const chosen = cli(['explain', dedupPipeline('chosen.json', {}, { threshold: 0.5 })]);
  t.notMatch(chosen.stdout, /warning/, 'a chosen split catches the pairs at the threshold');
  const run = cli(['run', dedupPipeline('low.json', {}, { threshold: 0.5, bands: 16, rows: 8 }), path.join(SAMPLES, 'kjv.jsonl'), '-q', '-o', path.join(dir, 'low.jsonl')]);
  t.equal(run.code, 0);
  t.match(run.stderr, /step 3 \(lsh-band-join\): warning: 16 bands x 8 rows make only 6\.1%/, 'the run warns too, also with -q');
  // Too few perms for the threshold: the split chosen is the best there is, and still misses most pairs.
  const short = cli(['explain', dedupPipeline('short.json', { perms: 1 }, { threshold: 0.5 })]);
  t.equal(short.code, 0, short.stderr);
  t.match(short.stdout, /warning: the signature is too short for this threshold: the best choice, 1 bands x 1 rows, makes only 50\.0% of the pairs at Jaccard 0\.5 candidates; more minhash perms catch more of them/);
  const shortRun = cli(['run', path.join(dir, 'short.json'), path.join(SAMPLES, 'kjv.jsonl'), '-q', '-o', path.join(dir, 'short.jsonl')]);
  t.equal(shortRun.code, 0, shortRun.stderr);
  t.match(shortRun.stderr, /step 3 \(lsh-band-join\): warning: the signature is too short for this threshold/, 'the run warns too');
});

t.test('output fields the records already have are overwritten with one warning and counted per record', async (t) => {
  const text = 'And God said, Let there be light: and there was light. And God saw the light, that it was good.';
  const input = [{ id: 'x', text, dup_of: 'mine' }, { id: 'y', text, dup_of: 'mine too' }].map((x) => JSON.stringify(x)).join('\n') + '\n';
  const report = path.join(dir, 'overwrite-report.json');
  const r = cli(['run', dedupPipeline('overwrite.json', {}, { emit: 'all' }), '-q', '--report', report], { input });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stderr.match(/already has a field "dup_of"/g)?.length, 1, r.stderr);
  t.match(r.stderr, /record x already has a field "dup_of"; it is overwritten \(warned once; the report counts each record as overwrote_dup_of/);
  t.same(lines(r.stdout).map((o) => o.dup_of), [null, 'x']);
  const step = JSON.parse(readFileSync(report, 'utf8')).steps.find((s: { op: string }) => s.op === 'lsh-band-join');
  t.equal(step.counters.overwrote_dup_of, 2);
});

t.test('a missing against index and bands x rows over the perms are usage errors naming the option', async (t) => {
  const kjv = path.join(SAMPLES, 'kjv.jsonl');
  const missing = cli(['run', dedupPipeline('missing.json', {}, { against: [path.join(dir, 'nowhere.idx')] }), kjv, '-o', path.join(dir, 'm.jsonl')]);
  t.equal(missing.code, 2, missing.stderr);
  t.match(missing.stderr, /step 3 \(lsh-band-join\) against\[0\]: .*nowhere\.idx does not exist; an index written by an earlier run with writeIndex/);
  t.notMatch(missing.stderr, /Options:|\n\s+at /, 'no usage text, no stack trace');
  const big = dedupPipeline('big.json', { perms: 128 }, { bands: 64, rows: 4 });
  const lint = cli(['lint', big]);
  t.equal(lint.code, 2, lint.stderr);
  t.match(lint.stderr, /bands x rows \(64 x 4\) must be >= 1 and at most the 128 perms of the minhash step before/);
  t.equal(cli(['run', big, kjv, '-o', path.join(dir, 'b.jsonl')]).code, 2);
  t.equal(cli(['lint', dedupPipeline('fits.json', { perms: 256 }, { bands: 64, rows: 4 })]).code, 0);
  // One of them alone, larger than the perms: named with its own value (not "0 x 200").
  for (const [given, named] of [[{ rows: 200 }, /rows: rows 200 is more than the 128 perms of the minhash step before: at most 128/], [{ bands: 129 }, /bands: bands 129 is more than the 128 perms/]] as const) {
    const r = cli(['lint', dedupPipeline(`alone-${Object.keys(given)[0]}.json`, { perms: 128 }, given)]);
    t.equal(r.code, 2, r.stderr);
    t.match(r.stderr, named);
  }
});

t.test('explain chooses the bands for the perms of the minhash step before', async (t) => {
  const r = cli(['explain', dedupPipeline('perms64.json', { perms: 64 }, {})]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /lsh-band-join[\s\S]*10 bands x 6 rows \(chosen for 64 perms, the minhash step's\)/);
});

t.test('explain says which shingles minhash signs: the shingle step before it, else its own unit and n', async (t) => {
  const charFile = path.join(dir, 'char-shingles.json');
  writeFileSync(charFile, JSON.stringify({ steps: [{ op: 'normalize' }, { op: 'shingle', unit: 'char', n: 7 }, { op: 'minhash' }] }));
  const after = cli(['explain', charFile]);
  t.equal(after.code, 0, after.stderr);
  t.match(after.stdout, /minhash[\s\S]*over the shingles of the shingle step before it \(char 7-grams; unit, n and shingleSeed here are not used\)/);
  const ownFile = path.join(dir, 'own-shingles.json');
  writeFileSync(ownFile, JSON.stringify({ steps: [{ op: 'normalize' }, { op: 'minhash', unit: 'char', n: 9 }] }));
  const own = cli(['explain', ownFile]);
  t.equal(own.code, 0, own.stderr);
  t.match(own.stdout, /over the char 9-grams of the hashing form \(shingleSeed 0\), as no shingle step runs before it/);
});

t.test('a shingle step after minhash is refused before verify "exact" (it would compare other shingles than the signatures were made from)', async (t) => {
  const late = path.join(dir, 'late-shingle.json');
  writeFileSync(late, JSON.stringify({ steps: [{ op: 'normalize' }, { op: 'minhash' }, { op: 'shingle', n: 2 }, { op: 'lsh-band-join' }] }));
  const r = cli(['lint', late]);
  t.equal(r.code, 2, r.stderr);
  t.match(r.stderr, /step 3 \(lsh-band-join\) verify: a shingle step comes after the minhash step: .*put shingle before minhash/);
  const signature = path.join(dir, 'late-shingle-signature.json');
  writeFileSync(signature, JSON.stringify({ steps: [{ op: 'normalize' }, { op: 'minhash' }, { op: 'shingle', n: 2 }, { op: 'lsh-band-join', verify: 'signature' }] }));
  t.equal(cli(['lint', signature]).code, 0, 'verify "signature" does not use the shingles');
  t.equal(cli(['lint', dedupPipeline('in-order.json', {}, {})]).code, 0);
});

t.test('emit "removed" accounts for the kept documents as dropped (not_duplicate)', async (t) => {
  const out = path.join(dir, 'removed-only.jsonl');
  const rejects = path.join(dir, 'removed-only.rejects.jsonl');
  const report = path.join(dir, 'removed-only.report.json');
  const r = cli(['run', dedupPipeline('removed.json', {}, { emit: 'removed' }), path.join(SAMPLES, 'handbook.jsonl'), '-o', out, '--rejects', rejects, '--report', report, '-q']);
  t.equal(r.code, 0, r.stderr);
  const removed = lines(readFileSync(out, 'utf8'));
  const kept = lines(readFileSync(rejects, 'utf8'));
  t.ok(removed.length > 0 && removed.every((x) => typeof x.dup_of === 'string'));
  t.equal(removed.length + kept.length, 109, 'every record is in the output or the rejects');
  t.ok(kept.every((x) => x.mixstream_reject.reason === 'not_duplicate'));
  const step = JSON.parse(readFileSync(report, 'utf8')).steps.find((s: { op: string }) => s.op === 'lsh-band-join');
  t.equal(step.dropped.not_duplicate, kept.length);
  t.equal(step.recordsOut + step.dropped.not_duplicate, step.recordsIn);
});

t.test('a writeIndex over an existing index is refused before anything is read or written', async (t) => {
  const kjv = path.join(SAMPLES, 'kjv.jsonl');
  const idx = path.join(dir, 'kjv-again.idx');
  t.equal(cli(['run', dedupPipeline('write-again.json', {}, { writeIndex: idx }), kjv, '-o', path.join(dir, 'wa.jsonl'), '-q']).code, 0);
  const sub = path.join(dir, 'again');
  mkdirSync(sub);
  const out = path.join(sub, 'out.jsonl');
  // A bad first line: the refusal comes as the step starts, before decode reads (and reports) it.
  const input = path.join(dir, 'bad-first.jsonl');
  writeFileSync(input, 'not json\n' + readFileSync(kjv, 'utf8'));
  const r = cli(['run', dedupPipeline('write-again.json', {}, { writeIndex: idx }), input, '-o', out, '--errors', path.join(sub, 'errors.jsonl')]);
  t.equal(r.code, 2, r.stderr);
  t.match(r.stderr, /writeIndex: .* already exists and holds a finished index/);
  t.same(readdirSync(sub), [], 'neither the output, its unfinished file nor an errors file');
});

t.test('numeric ids: dup_of and cluster_id are strings on kept and removed records alike', async (t) => {
  const text = 'In the beginning God created the heaven and the earth, and the earth was without form and void.';
  const input = [{ id: 1, text }, { id: 2, text: text.replace('void.', 'void!') }].map((x) => JSON.stringify(x)).join('\n') + '\n';
  const r = cli(['run', dedupPipeline('numeric.json', {}, { emit: 'all' }), '-q'], { input });
  t.equal(r.code, 0, r.stderr);
  const [kept, removed] = lines(r.stdout);
  t.same([kept.id, kept.dup_of, kept.cluster_id], [1, null, '1']);
  t.same([removed.id, removed.dup_of, removed.cluster_id], [2, '1', '1']);
});

t.test('the folding normalize is told to leave out is left out by the shingles too', async (t) => {
  // A KJV chapter numbered every fourth word, and copies of it that differ only in case,
  // punctuation or digits.
  const chapter = lines(readFileSync(path.join(SAMPLES, 'kjv.jsonl'), 'utf8'))[3];
  const text = (chapter.text as string).split(' ').map((w, i) => (i % 4 === 0 ? `${i} ${w}` : w)).join(' ');
  const input = path.join(dir, 'folds.jsonl');
  const recs = [
    { id: 'orig', text },
    { id: 'upper', text: text.toUpperCase() },
    { id: 'punct', text: text.replace(/[,;:]/g, '.') },
    { id: 'digits', text: text.replace(/(\d+)/g, (d) => String(Number(d) + 7)) },
  ];
  t.ok(/\d/.test(text) && /[,;:]/.test(text), 'the chapter has digits and punctuation to change');
  writeFileSync(input, recs.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const run = (normalize: Record<string, unknown>) => {
    const p = path.join(dir, `folds-${Object.keys(normalize).join('-') || 'default'}.json`);
    writeFileSync(p, JSON.stringify({ steps: [{ op: 'normalize', ...normalize }, { op: 'shingle' }, { op: 'minhash' }, { op: 'lsh-band-join', emit: 'all' }] }));
    const r = cli(['run', p, input, '-q']);
    t.equal(r.code, 0, r.stderr);
    return Object.fromEntries(lines(r.stdout).map((o) => [o.id, o.dup_of ?? null]));
  };
  t.same(run({}), { orig: null, upper: 'orig', punct: 'orig', digits: 'orig' }, 'default folding: every copy is a duplicate');
  t.same(run({ lowercase: false }), { orig: null, upper: null, punct: 'orig', digits: 'orig' }, 'case kept');
  t.same(run({ foldPunctuation: false }), { orig: null, upper: 'orig', punct: null, digits: 'orig' }, 'punctuation kept');
  t.same(run({ foldDigits: false }), { orig: null, upper: 'orig', punct: 'orig', digits: null }, 'digits kept');
});

t.test('a copy hidden by bidirectional marks is found', async (t) => {
  const chapter = lines(readFileSync(path.join(SAMPLES, 'kjv.jsonl'), 'utf8'))[5];
  const input = path.join(dir, 'marks.jsonl');
  const marked = (mark: string) => chapter.text.split(' ').map((w: string) => mark + w).join(' ');
  writeFileSync(input, [{ id: 'orig', text: chapter.text }, { id: 'rlm', text: marked('\u200f') }, { id: 'lre', text: marked('\u202a') }].map((r) => JSON.stringify(r)).join('\n') + '\n');
  const r = cli(['run', 'pipelines/dedup.json', input, '-q']);
  t.equal(r.code, 0, r.stderr);
  t.same(lines(r.stdout).map((o) => o.id), ['orig'], 'both marked copies removed');
});

t.test('a writeIndex run killed before its first checkpoint starts over, index included, when run again', async (t) => {
  const base = path.join(dir, 'killed-index');
  const idx = path.join(base, 'kept.idx');
  const input = path.join(SAMPLES, 'kjv.jsonl');
  const p = path.join(dir, 'killed-index.json');
  writeFileSync(p, JSON.stringify({ steps: [{ op: 'normalize' }, { op: 'shingle' }, { op: 'minhash' }, { op: 'lsh-band-join', writeIndex: idx, memoryMB: 0.05 }] }));
  const args = ['run', p, input, '-o', path.join(base, 'out'), '--checkpoint', path.join(base, 'ckpt'), '--checkpoint-interval', '3600', '-q'];
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: 'ignore' });
    const poll = setInterval(() => {
      if (existsSync(path.join(idx, 'index.sqlite'))) {
        clearInterval(poll);
        child.kill('SIGKILL');
      }
    }, 2);
    child.on('exit', (c) => {
      clearInterval(poll);
      resolve(c);
    });
  });
  t.equal(code, null, 'killed while writing the index');
  t.ok(existsSync(path.join(idx, 'index.sqlite')), 'an unfinished index left behind');
  t.notOk(existsSync(path.join(base, 'ckpt', 'checkpoint.json')), 'no checkpoint yet');
  const again = cli(args);
  t.equal(again.code, 0, again.stderr);
  t.match(again.stderr, /held an unfinished index left by a stopped run/);
  // The index is whole: every KJV chapter is a duplicate of it.
  const check = cli(['run', dedupPipeline('killed-against.json', {}, { against: [idx] }), input, '-q']);
  t.equal(check.code, 0, check.stderr);
  t.equal(lines(check.stdout).length, 0, 'every document of the indexed run is found in the index');
  t.match(cli(args.slice(0, 3).concat(['-q'])).stderr, /already exists and holds a finished index/, 'a finished index is not replaced');
});

t.test('lsh-band-join without a minhash step before it is refused before any data is read', async (t) => {
  const p = path.join(dir, 'no-minhash.json');
  writeFileSync(p, JSON.stringify({ steps: [{ op: 'normalize' }, { op: 'shingle' }, { op: 'lsh-band-join' }] }));
  for (const command of ['lint', 'explain', 'run']) {
    const r = cli(command === 'run' ? [command, p, path.join(SAMPLES, 'kjv.jsonl'), '-q'] : [command, p]);
    t.equal(r.code, 2, `${command}: exit 2`);
    t.match(r.stderr, /step 2 \(lsh-band-join\) op: lsh-band-join joins MinHash signatures: put a minhash step before it/);
    t.equal(r.stdout, '', `${command}: nothing written`);
  }
});

t.test('an empty writeIndex or against path is an option error; every counter is reported, zero or not', async (t) => {
  for (const [join, option] of [[{ writeIndex: '' }, 'writeIndex'], [{ against: [''] }, 'against\\[0\\]']] as const) {
    const r = cli(['lint', dedupPipeline('empty-path.json', {}, join)]);
    t.equal(r.code, 2);
    t.match(r.stderr, new RegExp(`step 3 \\(lsh-band-join\\) ${option}: must be the path of`));
  }
  // Distinct chapters: nothing removed; a small budget: the index spills.
  const report = path.join(dir, 'zero-counters.json');
  const r = cli(['run', dedupPipeline('zero.json', {}, { memoryMB: 0.2 }), path.join(SAMPLES, 'kjv.jsonl'), '-o', path.join(dir, 'zero.jsonl'), '--report', report, '-q']);
  t.equal(r.code, 0, r.stderr);
  const counters = JSON.parse(readFileSync(report, 'utf8')).steps.at(-1).counters;
  t.equal(counters.near_duplicates, 0);
  t.ok(counters.kept > 0);
  t.equal(counters.clusters, 0);
  t.ok(counters.index_spills > 0, `${counters.index_spills} spills`);
  for (const name of ['index_merges', 'index_segments', 'index_block_reads', 'index_block_hits', 'index_doc_reads', 'index_probed_ahead']) t.type(counters[name], 'number', name);
});

t.test('-q leaves out the band choice note; without it the note is printed', async (t) => {
  const quiet = cli(['run', 'pipelines/dedup.json', path.join(SAMPLES, 'handbook.jsonl'), '-q']);
  t.equal(quiet.code, 0);
  t.equal(quiet.stderr, '', 'nothing on stderr');
  const loud = cli(['run', 'pipelines/dedup.json', path.join(SAMPLES, 'handbook.jsonl')]);
  t.match(loud.stderr, /step 3 \(lsh-band-join\): 16 bands x 8 rows over 128 perms/);
  t.equal(loud.stdout, quiet.stdout);
});

t.test('a writeIndex path through a file is a usage error naming writeIndex', async (t) => {
  const file = path.join(dir, 'plain-file');
  writeFileSync(file, 'x\n');
  for (const target of [file, path.join(file, 'sub')]) {
    const r = cli(['run', dedupPipeline('index-in-file.json', {}, { writeIndex: target }), path.join(SAMPLES, 'kjv.jsonl'), '-o', path.join(dir, 'index-in-file.jsonl')]);
    t.equal(r.code, 2, r.stderr);
    t.match(r.stderr, /step 3 \(lsh-band-join\): writeIndex: cannot write .*plain-file.*: ENOTDIR: .*plain-file is not a directory/);
  }
});
