import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cli, lines, SAMPLES, tmpdir } from '../helpers.ts';

const dir = tmpdir();
const pipeline = path.join(dir, 'normalize.json');
writeFileSync(pipeline, JSON.stringify({ steps: [{ op: 'normalize' }] }));
const input = path.join(SAMPLES, 'handbook.jsonl');
const maxWorkers = Math.min(256, 4 * os.availableParallelism());

/** A usage error: exit 2, the first stderr line names the problem, no usage text, no stack trace, no output. */
function usageError(t: Test, r: ReturnType<typeof cli>, problem: RegExp, what: string): void {
  t.equal(r.code, 2, `${what}: exit 2 (${r.stderr.trim()})`);
  t.match(r.stderr.split('\n')[0], problem, `${what}: names the problem`);
  t.notMatch(r.stderr, /Options:|Positionals:|\n\s+at |Warning/, `${what}: no usage text, stack trace or warning`);
  t.equal(r.stdout, '', `${what}: no output`);
}

t.test('run option values out of their range are usage errors naming the option and the value, before anything is read', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['--workers', '-1', /^mixstream: --workers must be an integer from 0 .* to \d+ .*, got "-1"$/],
    ['--workers', 'abc', /^mixstream: --workers must be an integer .*, got "abc"$/],
    ['--workers', '1.5', /^mixstream: --workers must be an integer .*, got "1\.5"$/],
    ['--workers', '1000', /^mixstream: --workers must be an integer .*, got "1000"$/],
    ['--workers', String(maxWorkers + 1), /^mixstream: --workers must be an integer from 0 .* to \d+/],
    ['--workers', '', /^mixstream: --workers must be an integer .*, got ""$/],
    ['--max-errors', '-3', /^mixstream: --max-errors must be an integer >= 0.*, got "-3"$/],
    ['--max-errors', 'abc', /^mixstream: --max-errors must be an integer >= 0.*, got "abc"$/],
    ['--max-errors', '2.5', /^mixstream: --max-errors must be an integer >= 0.*, got "2\.5"$/],
    ['--checkpoint-interval', '-1', /^mixstream: --checkpoint-interval must be a number of seconds >= 0.*, got "-1"$/],
    ['--checkpoint-interval', 'abc', /^mixstream: --checkpoint-interval must be a number .*, got "abc"$/],
    ['--checkpoint-interval', 'Infinity', /^mixstream: --checkpoint-interval must be a number .*, got "Infinity"$/],
  ];
  for (const [flag, value, message] of cases) {
    const out = path.join(dir, 'bad-value.jsonl');
    const r = cli(['run', pipeline, input, '-o', out, flag, value]);
    usageError(t, r, message, `${flag} ${JSON.stringify(value)}`);
    t.equal(r.stderr.trim().split('\n').length, 1, `${flag} ${JSON.stringify(value)}: one line`);
    t.notOk(existsSync(out), `${flag} ${JSON.stringify(value)}: nothing written`);
  }
  usageError(t, cli(['run', pipeline, input, '--workers']), /^mixstream: Not enough arguments following: workers$/, '--workers without a value');
});

t.test('run option values in their range work: --workers 0 and the most, --max-errors 0, a fractional or zero --checkpoint-interval', async (t) => {
  const expected = lines(cli(['run', pipeline, input, '-q']).stdout);
  t.equal(expected.length, 109);
  for (const args of [['--workers', '0'], ['--workers', String(maxWorkers)], ['--max-errors', '0'], ['--workers', '3', '--workers', '1']]) {
    const r = cli(['run', pipeline, input, '-q', ...args]);
    t.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    t.same(lines(r.stdout), expected, `${args.join(' ')}: same output`);
  }
  for (const interval of ['0', '0.5']) {
    const base = path.join(dir, `interval-${interval}`);
    const r = cli(['run', pipeline, input, '-q', '-o', path.join(base, 'out'), '--checkpoint', path.join(base, 'ckpt'), '--checkpoint-interval', interval]);
    t.equal(r.code, 0, `--checkpoint-interval ${interval}: ${r.stderr}`);
  }
});

t.test('unknown options and commands, and missing arguments, are usage errors (exit 2) naming the problem', async (t) => {
  usageError(t, cli(['run', pipeline, input, '--frobnicate']), /^mixstream: Unknown argument: frobnicate$/, 'unknown option');
  usageError(t, cli(['run']), /^mixstream: Not enough non-option arguments/, 'run without a pipeline');
  usageError(t, cli(['lint']), /^mixstream: Not enough non-option arguments/, 'lint without a pipeline');
  usageError(t, cli(['frobnicate']), /^mixstream: unknown command "frobnicate"; the commands are run, ops, lint/, 'unknown command');
  usageError(t, cli([]), /^mixstream: name a command: run, ops/, 'no command');
  usageError(t, cli(['decont', 'nope']), /^mixstream: unknown decont action "nope"/, 'unknown decont action');
  const help = cli(['run', '--help']);
  t.equal(help.code, 0, '--help still exits 0');
  t.match(help.stdout, /--workers/);
});

t.test('ops with an unknown operator is a usage error (exit 2) on stderr', async (t) => {
  usageError(t, cli(['ops', 'nope']), /^mixstream: unknown operator "nope"$/, 'ops nope');
  usageError(t, cli(['ops', 'normalise']), /^mixstream: unknown operator "normalise"; did you mean normalize\?$/, 'ops normalise');
  const ok = cli(['ops', 'normalize']);
  t.equal(ok.code, 0);
  t.match(ok.stdout, /^normalize /);
});

t.test('--checkpoint refuses an -o that is or names a file (exit 2); a directory, with or without a trailing slash, takes the parts', async (t) => {
  const base = path.join(dir, 'ckpt-output');
  mkdirSync(base);
  for (const name of ['ckfo.jsonl', 'ckfo.json', 'ckfo.jsonl.gz', 'ckfo.jsonl.zst']) {
    const r = cli(['run', pipeline, input, '--checkpoint', path.join(base, 'ck'), '-o', path.join(base, name)]);
    usageError(t, r, new RegExp(`^mixstream: --checkpoint writes the output as parts .* into a directory, and -o .*${name.replace(/\./g, '\\.')} names a file; give a directory \\(-o DIR/\\)$`), `-o ${name}`);
    t.notOk(existsSync(path.join(base, name)), `-o ${name}: not made into a directory`);
  }
  const file = path.join(base, 'existing.jsonl');
  writeFileSync(file, '');
  for (const o of [file, `${file}/`]) {
    usageError(t, cli(['run', pipeline, input, '--checkpoint', path.join(base, 'ck'), '-o', o]), /^mixstream: --checkpoint writes the output as parts .* is a file; give a directory/, `-o ${o} (an existing file)`);
  }
  t.notOk(existsSync(path.join(base, 'ck')), 'no checkpoint directory was made');
  for (const o of ['out', 'out2/']) {
    const r = cli(['run', pipeline, input, '-q', '--checkpoint', path.join(base, `ck-${o.replace('/', '')}`), '-o', path.join(base, o)]);
    t.equal(r.code, 0, `-o ${o}: ${r.stderr}`);
    t.same(readdirSync(path.join(base, o)), ['part-000000.jsonl.zst'], `-o ${o}: a directory of parts`);
  }
  // A directory that happens to have a file-like name (an earlier run's) is a directory: it is resumed into.
  mkdirSync(path.join(base, 'old.jsonl'));
  const r = cli(['run', pipeline, input, '-q', '--checkpoint', path.join(base, 'ck-old'), '-o', path.join(base, 'old.jsonl')]);
  t.equal(r.code, 0, r.stderr);
});

t.test('an output, side output or report that cannot be written fails the run (exit 1) with one line naming the path and the system error, before anything is read', async (t) => {
  const base = path.join(dir, 'unwritable');
  mkdirSync(base);
  const file = path.join(base, 'file.jsonl');
  writeFileSync(file, 'not a directory\n');
  symlinkSync(path.join(base, 'gone'), path.join(base, 'dangling'));
  const good = path.join(base, 'good.jsonl');
  const cases: [string[], string, RegExp][] = [
    [['-o', path.join(file, 'out.jsonl')], path.join(file, 'out.jsonl'), /ENOTDIR: .*file\.jsonl is not a directory/],
    [['-o', good, '--errors', path.join(file, 'errors.jsonl')], path.join(file, 'errors.jsonl'), /ENOTDIR/],
    [['-o', good, '--rejects', path.join(file, 'a', 'rejects.jsonl')], path.join(file, 'a', 'rejects.jsonl'), /ENOTDIR/],
    [['-o', good, '--report', path.join(file, 'run.json')], path.join(file, 'run.json'), /ENOTDIR/],
    [['-o', base], base, /EISDIR/],
    [['-o', path.join(base, 'not-yet') + '/'], path.join(base, 'not-yet') + '/', /EISDIR: .* names a directory \(it ends in a slash\)/],
    [['-o', good, '--report', path.join(base, 'reports') + '/'], path.join(base, 'reports') + '/', /EISDIR/],
    [['-o', path.join(base, 'parts'), '--checkpoint', file], file, /ENOTDIR/],
    [['-o', path.join(base, 'dangling', 'out.jsonl')], path.join(base, 'dangling', 'out.jsonl'), /ENOENT: .*dangling is a symbolic link to a missing target/],
  ];
  // A directory that cannot be made where its parent exists (/proc refuses new entries even to
  // root; Node's recursive mkdir retried that forever).
  if (existsSync('/proc/self')) cases.push([['-o', '/proc/mixstream-test/sub/out.jsonl'], '/proc/mixstream-test/sub/out.jsonl', /ENOENT|EACCES|EPERM/]);
  for (const [args, named, error] of cases) {
    for (const quiet of [[], ['-q']]) {
      const what = [...args, ...quiet].join(' ');
      const r = cli(['run', pipeline, input, ...args, ...quiet]);
      t.equal(r.code, 1, `${what}: exit 1 (${r.stderr.trim()})`);
      t.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line`);
      t.ok(r.stderr.startsWith(`mixstream: cannot write ${named}: `), `${what}: names the path`);
      t.match(r.stderr, error, `${what}: the system error`);
      t.notMatch(r.stderr, /Options:|Positionals:|\n\s+at /, `${what}: no usage text, no stack trace`);
      t.notOk(existsSync(good), `${what}: nothing written`);
    }
  }
  const r = cli(['run', pipeline, input, '-q', '-o', path.join(base, 'new', 'deeper', 'out.jsonl')]);
  t.equal(r.code, 0, `missing parent directories are made: ${r.stderr}`);
  t.equal(lines(readFileSync(path.join(base, 'new', 'deeper', 'out.jsonl'), 'utf8')).length, 109);
});

t.test('an output, side output or report that is one of the inputs (by any path or link) is refused before anything is written', async (t) => {
  const base = path.join(dir, 'onto-input');
  mkdirSync(base);
  const source = path.join(base, 'in.jsonl');
  const content = readFileSync(input, 'utf8');
  writeFileSync(source, content);
  symlinkSync(source, path.join(base, 'link.jsonl'));
  const other = path.join(base, 'other.jsonl');
  writeFileSync(other, content);
  const cases: [string[], string[], string][] = [
    [[source], ['-o', source], '-o'],
    [[path.join(base, 'link.jsonl')], ['-o', path.join(base, 'out.jsonl'), '--errors', source], '--errors'],
    [[other, source], ['-o', path.join(base, 'out.jsonl'), '--rejects', path.join(base, '.', 'in.jsonl')], '--rejects'],
    [[source], ['-o', path.join(base, 'out.jsonl'), '--report', path.join(base, 'link.jsonl')], '--report'],
  ];
  for (const [inputs, flags, flag] of cases) {
    const r = cli(['run', pipeline, ...inputs, ...flags]);
    usageError(t, r, new RegExp(`${flag} .* is the input .*: the run would overwrite what it reads`), `${flags.join(' ')}`);
    t.equal(readFileSync(source, 'utf8'), content, 'the input is intact');
    t.notOk(existsSync(path.join(base, 'out.jsonl')), 'nothing written');
  }
});

t.test('an output, side output, report or checkpoint directory at or inside a path a step writes (writeIndex), or two steps writing one path, are refused before anything is read', async (t) => {
  const base = path.join(dir, 'step-writes');
  mkdirSync(base);
  const dedup = (steps: object[]) => {
    const file = path.join(base, `p${steps.length}.json`);
    writeFileSync(file, JSON.stringify({ steps: [{ op: 'normalize' }, { op: 'shingle' }, { op: 'minhash' }, ...steps] }));
    return file;
  };
  const one = dedup([{ op: 'lsh-band-join', writeIndex: 'idx' }]);
  const idx = path.join(base, 'idx');
  const cases: [string[], RegExp][] = [
    [['-o', idx], /-o .*idx is the path step 3 \(lsh-band-join\) writeIndex writes/],
    [['-o', path.join(base, 'o.jsonl'), '--rejects', path.join(idx, 'r.jsonl')], /--rejects .*r\.jsonl is inside the path step 3 \(lsh-band-join\) writeIndex writes/],
    [['-o', path.join(base, 'o.jsonl'), '--errors', idx], /--errors .*idx is the path step 3/],
    [['-o', path.join(base, 'o.jsonl'), '--report', idx], /--report .*idx is the path step 3/],
    [['-o', base + '/', '--checkpoint', path.join(base, 'ck')], /step 3 \(lsh-band-join\) writeIndex writes .*idx, inside -o/],
    [['-o', path.join(base, 'out') + '/', '--checkpoint', idx], /--checkpoint .*idx is the path step 3/],
  ];
  // Through symbolic links: to the directory holding the index, and to the index not made yet.
  symlinkSync(base, path.join(base, 'base-link'));
  symlinkSync(idx, path.join(base, 'idx-link'));
  cases.push(
    [['-o', path.join(base, 'base-link', 'idx', 'o.jsonl')], /-o .*o\.jsonl is inside the path step 3 \(lsh-band-join\) writeIndex writes/],
    [['-o', path.join(base, 'o.jsonl'), '--report', path.join(base, 'idx-link', 'r.json')], /--report .*r\.json is inside the path step 3/],
    [['-o', path.join(base, 'base-link') + '/', '--checkpoint', path.join(base, 'ck')], /writeIndex writes .*idx, inside -o/],
  );
  for (const [flags, message] of cases) usageError(t, cli(['run', one, input, ...flags]), message, flags.join(' '));
  // One path for two steps: refused by lint and run alike, naming the option.
  const two = dedup([{ op: 'lsh-band-join', writeIndex: 'twice' }, { op: 'lsh-band-join', writeIndex: './twice' }]);
  for (const args of [['lint', two], ['run', two, input, '-o', path.join(base, 'o.jsonl')]]) {
    const r = cli(args);
    t.equal(r.code, 2, `${args[0]}: exit 2`);
    t.match(r.stderr, /step 4 \(lsh-band-join\) writeIndex: \.\/twice is also written by step 3 \(lsh-band-join\) as writeIndex; give each step its own path/, `${args[0]}: names the problem`);
  }
  // The same directory through a link, and one index inside the other.
  const linked = path.join(base, 'linked.json');
  writeFileSync(linked, JSON.stringify({ steps: [{ op: 'normalize' }, { op: 'shingle' }, { op: 'minhash' }, { op: 'lsh-band-join', writeIndex: 'idx' }, { op: 'lsh-band-join', writeIndex: 'idx-link' }] }));
  t.match(cli(['lint', linked]).stderr, /writeIndex: idx-link is also written by step 3/);
  const nested = path.join(base, 'nested.json');
  writeFileSync(nested, JSON.stringify({ steps: [{ op: 'normalize' }, { op: 'shingle' }, { op: 'minhash' }, { op: 'lsh-band-join', writeIndex: 'idx' }, { op: 'lsh-band-join', writeIndex: 'idx/sub' }] }));
  t.match(cli(['lint', nested]).stderr, /writeIndex: idx\/sub is inside the path written by step 3/);
  t.same(readdirSync(base).sort(), ['base-link', 'idx-link', 'linked.json', 'nested.json', 'p1.json', 'p2.json'], 'nothing written but the pipelines and links');
});

t.test('the output, side outputs and report must be different files; an option without its value is a usage error', async (t) => {
  const base = path.join(dir, 'same');
  mkdirSync(base);
  const out = path.join(base, 'out.jsonl');
  for (const [flag, other] of [['--errors', out], ['--rejects', out], ['--report', path.join(base, '.', 'out.jsonl')]]) {
    const r = cli(['run', pipeline, input, '-o', out, flag, other]);
    usageError(t, r, new RegExp(`-o and ${flag} name the same file`), `-o and ${flag}`);
    t.notOk(existsSync(out), `-o and ${flag}: nothing written`);
  }
  usageError(t, cli(['run', pipeline, input, '--errors', path.join(base, 'e.jsonl'), '--rejects', path.join(base, 'e.jsonl')]), /--errors and --rejects name the same file/, '--errors and --rejects');
  for (const flag of ['-o', '--errors', '--rejects', '--report', '--checkpoint']) {
    usageError(t, cli(['run', pipeline, input, flag]), /Not enough arguments following/, `${flag} without a value`);
    const twice = cli(['run', pipeline, input, flag, path.join(base, 'a'), flag, path.join(base, 'b')]);
    usageError(t, twice, new RegExp(`${flag} is given 2 times \\(.*a, .*b\\); give it once`), `${flag} twice`);
  }
  t.same(readdirSync(base), [], 'nothing written');
});

t.test('a run removes the scratch directories of runs whose process is gone, and keeps those of running ones', async (t) => {
  const ended = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString());
  const host = os.hostname().replace(/[^A-Za-z0-9.]/g, '_');
  const stale = path.join(os.tmpdir(), `mixstream-run-${host}-${ended}-test01`);
  const live = path.join(os.tmpdir(), `mixstream-run-${host}-${process.pid}-test02`);
  // Another host's (a temporary directory shared between machines): its process cannot be checked.
  const otherHost = path.join(os.tmpdir(), `mixstream-run-elsewhere.example-${ended}-test03`);
  for (const d of [stale, live, otherHost]) {
    mkdirSync(path.join(d, 'step-0', 'lsh-index'), { recursive: true });
    writeFileSync(path.join(d, 'step-0', 'lsh-index', 'index.sqlite'), 'spilled');
  }
  t.teardown(() => [live, otherHost].forEach((d) => rmSync(d, { recursive: true, force: true })));
  const r = cli(['run', pipeline, input, '-q', '-o', path.join(dir, 'scratch-sweep.jsonl')]);
  t.equal(r.code, 0, r.stderr);
  t.notOk(existsSync(stale), 'the directory of an ended run is removed');
  t.ok(existsSync(path.join(live, 'step-0', 'lsh-index', 'index.sqlite')), 'the directory of a running process stays');
  t.ok(existsSync(path.join(otherHost, 'step-0', 'lsh-index', 'index.sqlite')), 'so does one of another host');
});

t.test('generated ids are <file name>:<line>, or the names as given for inputs that share a file name', async (t) => {
  const base = path.join(dir, 'ids');
  for (const d of ['a', 'b']) mkdirSync(path.join(base, d), { recursive: true });
  const text = JSON.stringify({ text: 'In the beginning God created the heaven and the earth.' });
  writeFileSync(path.join(base, 'a', 'shard.jsonl'), `${text}\n${text}\n`);
  writeFileSync(path.join(base, 'b', 'shard.jsonl'), `${text}\n`);
  writeFileSync(path.join(base, 'other.jsonl'), `${text}\n`);
  const r = cli(['run', pipeline, 'a/shard.jsonl', 'b/shard.jsonl', 'other.jsonl'], { cwd: base });
  t.equal(r.code, 0, r.stderr);
  t.same(lines(r.stdout).map((x) => x.id), ['a/shard.jsonl:1', 'a/shard.jsonl:2', 'b/shard.jsonl:1', 'other.jsonl:1']);
});
