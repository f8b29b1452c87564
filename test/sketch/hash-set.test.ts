import t from 'tap';
import path from 'node:path';
import { HashSet128, fileBackedResidentBytes, hash128 } from '../../lib/sketch/hash-set.ts';
import { readJsonl } from '../../lib/testing.ts';
import { SAMPLES, tmpdir } from '../helpers.ts';

// Lines of real text, with their natural repeats (blank lines, refrains, "[1913 Webster]").
const lines = ['kjv', 'fortunes', 'gcide'].flatMap((f) => readJsonl(path.join(SAMPLES, `${f}.jsonl`))).flatMap((r) => r.text.split('\n'));

t.test('hash128 is deterministic, word-sized and separates distinct real lines', async (t) => {
  t.same([...hash128('In the beginning')], [...hash128('In the beginning')]);
  t.notSame([...hash128('In the beginning')], [...hash128('in the beginning')]);
  t.notSame([...hash128('ab')], [...hash128('ab\u0000')], 'length is part of the hash');
  t.same([...hash128('')], [0, 0, 0, 1], 'the all-zero key (empty string) is moved off the empty-slot marker');
  const distinct = new Set(lines);
  const keys = new Set([...distinct].map((l) => [...hash128(l)].join(',')));
  t.equal(keys.size, distinct.size, `${distinct.size} distinct lines, no collision`);
  // Every 8-bit slice of the first word is used about evenly (the table indexes by it).
  const buckets = new Array(256).fill(0);
  for (const l of distinct) buckets[hash128(l)[0] & 255]++;
  const mean = distinct.size / 256;
  const chi = buckets.reduce((a, b) => a + ((b - mean) * (b - mean)) / mean, 0);
  t.ok(chi < 340, `chi-square ${chi.toFixed(0)} over 255 degrees of freedom`);
});

/** The value stored for line i: every other one with a lone surrogate, which must come back as it was. */
const valueOf = (i: number): string => (i % 2 ? `line-${i}` : `line-\udcff${i}`);

function replay(set: HashSet128, from = 0, to = lines.length, oracle = new Map<string, string>()) {
  const h = new Uint32Array(4);
  const answers: (string | undefined)[] = [];
  for (let i = from; i < to; i++) {
    answers.push(set.addIfAbsent(hash128(lines[i], h), valueOf(i)));
    if (!oracle.has(lines[i])) oracle.set(lines[i], valueOf(i));
  }
  return answers;
}

function expected(withValues: boolean) {
  const first = new Map<string, string>();
  return lines.map((l, i) => {
    const f = first.get(l);
    if (f === undefined) first.set(l, valueOf(i));
    return f === undefined ? undefined : withValues ? f : '';
  });
}

for (const values of [false, true]) {
  t.test(`first-seen answers equal a Map oracle, in RAM and spilled (values: ${values})`, async (t) => {
    const want = expected(values);
    const ram = new HashSet128({ memoryBytes: 64 << 20, values, dir: () => tmpdir() });
    t.same(replay(ram), want);
    t.equal(ram.spills, 0);
    t.ok(ram.bytes() <= 64 << 20);
    const dir = tmpdir();
    const small = new HashSet128({ memoryBytes: 16 << 10, values, dir: () => dir });
    t.same(replay(small), want, 'identical answers with a 16 KiB budget');
    t.ok(small.spills > 3, `${small.spills} spills`);
    t.ok(small.bytes() <= 16 << 10, `RAM tier ${small.bytes()} bytes`);
    t.equal(small.size, new Set(lines).size);
    ram.close();
    small.close();
  });

  t.test(`the LMDB file is reopened when its mapped pages pass their budget, with the same answers (values: ${values})`, async (t) => {
    const dir = tmpdir();
    const bounded = new HashSet128({ memoryBytes: 16 << 10, values, dir: () => dir, mappedBytes: 1 });
    t.same(replay(bounded), expected(values));
    t.ok(bounded.spills > 3);
    if (fileBackedResidentBytes() === undefined) t.equal(bounded.remaps, 0, 'no /proc: nothing to measure by');
    else t.ok(bounded.remaps > 0, `${bounded.remaps} reopenings`);
    bounded.close();
  });

  t.test(`save + load in a fresh set continues exactly (values: ${values})`, async (t) => {
    const want = expected(values);
    for (const memoryBytes of [64 << 20, 8 << 10]) {
      const half = lines.length >> 1;
      const a = new HashSet128({ memoryBytes, values, dir: () => path.join(tmpdir(), 'spill') });
      const first = replay(a, 0, half);
      const saved = tmpdir();
      await a.save(saved);
      a.close();
      const b = new HashSet128({ memoryBytes, values, dir: () => path.join(tmpdir(), 'spill') });
      b.load(saved);
      const rest = replay(b, half);
      t.same(first.concat(rest), want, `budget ${memoryBytes} bytes (${b.spills} spills)`);
      b.close();
    }
  });
}

t.test('load refuses state saved with different value settings', async (t) => {
  const a = new HashSet128({ memoryBytes: 1 << 20, values: false, dir: () => tmpdir() });
  replay(a, 0, 100);
  const saved = tmpdir();
  await a.save(saved);
  const b = new HashSet128({ memoryBytes: 1 << 20, values: true, dir: () => tmpdir() });
  t.throws(() => b.load(saved), /without ids of first copies/);
});
