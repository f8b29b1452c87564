import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { decompress as zstdDecompress } from 'zstd-napi';
import { cli, lines, SAMPLES, tmpdir } from './helpers.ts';

// A small tmpfs stands for a disk that fills up. Mounting needs root (CI and the dev machines run as root).
const dir = tmpdir();
const mnt = path.join(dir, 'disk');
mkdirSync(mnt);
const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', mnt]).status === 0;
t.teardown(() => {
  if (mounted) spawnSync('umount', [mnt]);
});

t.test('a full disk fails the run with a clear error; after freeing space the same command resumes exactly', { skip: mounted ? false : 'cannot mount a tmpfs here (needs root)' }, async (t) => {
  const input = path.join(dir, 'in.jsonl');
  const recs = ['kjv.jsonl', 'handbook.jsonl', 'gcide.jsonl', 'fortunes.jsonl'].flatMap((f) => lines(readFileSync(path.join(SAMPLES, f), 'utf8')));
  // Four copies (distinct ids): several checkpoints fit on the small disk before it fills.
  const copies = [0, 1, 2, 3].flatMap((c) => recs.map((r) => ({ ...r, id: `${r.id}#${c}` })));
  writeFileSync(input, copies.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const pipeline = path.join(dir, 'p.json');
  writeFileSync(pipeline, JSON.stringify({ steps: [{ op: 'normalize' }] }));
  const args = ['run', pipeline, input, '-o', path.join(mnt, 'out'), '--checkpoint', path.join(dir, 'ckpt'), '--checkpoint-interval', '0'];

  const full = cli(args);
  t.equal(full.code, 1, 'the run fails');
  t.ok(JSON.parse(readFileSync(path.join(dir, 'ckpt', 'checkpoint.json'), 'utf8')).parts > 0, 'checkpoints were committed before the disk filled');
  t.match(full.stderr, /no space left on device/i);
  t.match(full.stderr, /checkpoint .* is intact; run the same command again to resume/);

  execFileSync('mount', ['-o', 'remount,size=64m', mnt]);
  const again = cli(args);
  t.equal(again.code, 0, again.stderr);
  t.match(again.stderr, /resuming from/);
  const out = readdirSync(path.join(mnt, 'out'))
    .filter((f) => /^part-\d+\.jsonl\.zst$/.test(f))
    .sort()
    .map((f) => zstdDecompress(readFileSync(path.join(mnt, 'out', f))).toString())
    .join('');
  const reference = cli(['run', pipeline, input, '-q']);
  t.equal(out, reference.stdout, 'output identical to a run that never hit the full disk');
});
