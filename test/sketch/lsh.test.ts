import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlockedBloom, INDEX_FILE, LshIndex, LshIndexReader, balancedBands, bandKeys, candidateProbability, chooseBands, storeCacheBytes, type IndexedDoc } from '../../lib/sketch/lsh.ts';
import { createMinHasher } from '../../lib/sketch/minhash.ts';
import { shingleText } from '../../lib/text/shingle.ts';
import { readJsonl } from '../../lib/testing.ts';

const samples = new URL('../../samples/', import.meta.url);
const docs = [...readJsonl(new URL('kjv.jsonl', samples)), ...readJsonl(new URL('fortunes.jsonl', samples)).slice(0, 600)];
const hasher = createMinHasher({ perms: 128, seed: 1, scheme: 'classic' });

/** A scratch directory removed when the test ends. */
function tmpDir(t: { teardown(f: () => void): void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lsh-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('the balanced split minimizes equal-weighted false positive and negative areas', async (t) => {
  // The splits datasketch's MinHashLSH picks for these thresholds and signature lengths.
  const cases: [number, number, [number, number]][] = [[0.85, 128, [8, 16]], [0.5, 128, [25, 5]], [0.7, 128, [14, 9]], [0.9, 256, [9, 28]], [0.8, 64, [5, 11]]];
  for (const [threshold, perms, split] of cases) {
    const b = balancedBands(threshold, perms);
    t.same([b.bands, b.rows], split, `${threshold} over ${perms} perms`);
  }
});

t.test('band choice and candidate curve', async (t) => {
  const c = chooseBands(0.85, 128);
  t.same([c.bands, c.rows], [16, 8], '128 perms at 0.85: 16 bands x 8 rows');
  t.ok(c.atThreshold >= 0.99, `candidate probability at the threshold ${c.atThreshold}`);
  // The balanced choice 8 x 16 catches under half of the pairs at the threshold.
  t.ok(candidateProbability(0.85, 8, 16) < 0.5);
  t.equal(candidateProbability(1, 16, 8), 1);
  t.equal(candidateProbability(0, 16, 8), 0);
  const low = chooseBands(0.5, 128);
  t.ok(low.bands * low.rows <= 128 && low.atThreshold >= 0.99);
  t.ok(chooseBands(0.95, 64).rows > chooseBands(0.7, 64).rows, 'higher thresholds use more rows per band');
  t.throws(() => chooseBands(1.5, 128));
});

t.test('band keys: deterministic, band-separated, equal only for equal bands', async (t) => {
  const a = hasher.signature(shingleText(docs[0].text, { unit: 'word', n: 5 }));
  const k1 = bandKeys(a, 16, 8);
  const k2 = bandKeys(a.slice(), 16, 8);
  t.same(k1, k2);
  const highs = new Set<number>();
  for (let b = 0; b < 16; b++) highs.add(k1[2 * b] >>> 16);
  t.equal(highs.size, 16, 'each band has its own key space');
  const changed = a.slice();
  changed[9] ^= 1; // row 1 of band 1
  const k3 = bandKeys(changed, 16, 8);
  for (let b = 0; b < 16; b++) {
    const same = k1[2 * b] === k3[2 * b] && k1[2 * b + 1] === k3[2 * b + 1];
    t.equal(same, b !== 1, `band ${b}`);
  }
  t.throws(() => bandKeys(a, 17, 8), /exceeds the signature length/);
});

t.test('blocked Bloom filter: no false negatives, few false positives', async (t) => {
  const n = 20000;
  const bloom = BlockedBloom.forKeys(n, 10);
  for (let i = 0; i < n; i++) bloom.add(i * 2654435761, i ^ 0x5555);
  let missing = 0;
  for (let i = 0; i < n; i++) if (!bloom.has(i * 2654435761, i ^ 0x5555)) missing++;
  t.equal(missing, 0);
  let fp = 0;
  for (let i = n; i < 3 * n; i++) if (bloom.has(i * 2654435761, i ^ 0xaaaa)) fp++;
  t.ok(fp / (2 * n) < 0.03, `false positive rate ${fp / (2 * n)}`);
});

t.test('blocked Bloom filter over band keys: blocks filled evenly, ~1% false positives at 10 bits per key', async (t) => {
  let seed = 7;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const signature = new Uint32Array(128);
  const keysOf = (count: number) => {
    const out: Uint32Array[] = [];
    for (let i = 0; i < count; i++) {
      for (let k = 0; k < 128; k++) signature[k] = next();
      out.push(bandKeys(signature, 16, 8));
    }
    return out;
  };
  const present = keysOf(20000);
  const bloom = BlockedBloom.forKeys(20000 * 16, 10, 16);
  for (const keys of present) for (let b = 0; b < 16; b++) bloom.add(keys[2 * b], keys[2 * b + 1]);
  let missing = 0;
  for (const keys of present) for (let b = 0; b < 16; b++) if (!bloom.has(keys[2 * b], keys[2 * b + 1])) missing++;
  t.equal(missing, 0);
  let fp = 0;
  const absent = keysOf(20000);
  for (const keys of absent) for (let b = 0; b < 16; b++) if (bloom.has(keys[2 * b], keys[2 * b + 1])) fp++;
  const rate = fp / (20000 * 16);
  t.ok(rate > 0.002 && rate < 0.015, `false positive rate ${rate}`);
  // Every block holds about its share of keys (bits set per block, 16 words each).
  const setBits = (w: number) => { let c = 0; for (; w; w &= w - 1) c++; return c; };
  let emptiest = Infinity, fullest = 0;
  for (let blk = 0; blk < bloom.words.length / 16; blk++) {
    let bits = 0;
    for (let k = 0; k < 16; k++) bits += setBits(bloom.words[16 * blk + k]);
    emptiest = Math.min(emptiest, bits);
    fullest = Math.max(fullest, bits);
  }
  t.ok(emptiest > 100 && fullest < 400, `bits set per 512-bit block: ${emptiest} to ${fullest}`);
});

function indexed(limit = docs.length): { doc: IndexedDoc; keys: Uint32Array }[] {
  return docs.slice(0, limit).map((d) => {
    const shingles = shingleText(d.text, { unit: 'word', n: 5 });
    const signature = hasher.signature(shingles);
    return { doc: { id: d.id, signature, shingles }, keys: bandKeys(signature, 16, 8) };
  });
}

const params = { bands: 16, rows: 8, perms: 128, threshold: 0.85, shingles: true };

t.test('merges of segments larger than a read batch keep every entry (band keys shared across segments included)', async (t) => {
  // Random signatures; every fifth document copies an earlier one with a few values changed, so
  // some band keys repeat across spills. 4 MB spills every ~2,000 documents (~125 blocks each).
  let seed = 11;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const signatures: Uint32Array[] = [];
  for (let i = 0; i < 12000; i++) {
    const sig = new Uint32Array(128);
    if (i % 5 === 4) {
      sig.set(signatures[next() % i]);
      for (let k = 0; k < 4; k++) sig[next() % 128] = next();
    } else for (let k = 0; k < 128; k++) sig[k] = next();
    signatures.push(sig);
  }
  const dir = tmpDir(t);
  const ram = new LshIndex({ ...params, signatures: true, shingles: false, memoryBytes: 1 << 30, dir: () => path.join(dir, 'ram') });
  const spilled = new LshIndex({ ...params, signatures: true, shingles: false, memoryBytes: 4 << 20, dir: () => path.join(dir, 'spill') });
  const keys = signatures.map((s) => bandKeys(s, 16, 8));
  signatures.forEach((signature, i) => {
    ram.add({ id: `d${i}`, signature }, keys[i]);
    spilled.add({ id: `d${i}`, signature }, keys[i]);
  });
  t.ok(spilled.merges > 0 && spilled.spills >= 4, `${spilled.spills} spills, ${spilled.merges} merges`);
  let differ = 0;
  for (const k of keys) if (JSON.stringify(ram.candidates(k)) !== JSON.stringify(spilled.candidates(k))) differ++;
  t.equal(differ, 0, 'every document gets the same candidates');
  ram.close();
  spilled.close();
});

t.test('spilled index answers exactly like the all-in-RAM index', async (t) => {
  const items = indexed();
  const dir = tmpDir(t);
  const ram = new LshIndex({ ...params, memoryBytes: 1 << 30, dir: () => path.join(dir, 'ram') });
  const spilled = new LshIndex({ ...params, memoryBytes: 64 * 1024, dir: () => path.join(dir, 'spill') });
  // Index every other document; query with all of them (half are present, half absent).
  for (let i = 0; i < items.length; i += 2) {
    t.equal(ram.add(items[i].doc, items[i].keys), i / 2);
    spilled.add(items[i].doc, items[i].keys);
  }
  t.equal(ram.spills, 0);
  t.ok(spilled.spills > 3, `spilled ${spilled.spills} times`);
  t.ok(spilled.merges > 0, `merged segments ${spilled.merges} times`);
  // Size-tiered merging keeps the segments logarithmic in the spills: at most MERGE_FAN_IN - 1 per tier.
  const tiers = Math.ceil(Math.log(spilled.spills) / Math.log(4)) + 1;
  t.ok(spilled.diskStats.segments <= 3 * tiers, `${spilled.diskStats.segments} segments after ${spilled.spills} spills`);
  let present = 0;
  for (let i = 0; i < items.length; i++) {
    const a = ram.candidates(items[i].keys);
    const b = spilled.candidates(items[i].keys);
    if (JSON.stringify(a) !== JSON.stringify(b)) {
      t.fail(`candidates differ for ${items[i].doc.id}: ${a} vs ${b}`);
      break;
    }
    if (i % 2 === 0) {
      if (!a.includes(i / 2)) t.fail(`indexed document ${items[i].doc.id} is not its own candidate`);
      else present++;
    }
  }
  t.equal(present, Math.ceil(items.length / 2), 'every indexed document finds itself');
  // The same lookup again is served from the block kept from the last read: neither a read nor a hit.
  const q = items[0].keys;
  spilled.bandCandidates(q, 0);
  const before = spilled.diskStats;
  t.same(spilled.bandCandidates(q, 0), ram.bandCandidates(q, 0));
  t.same([spilled.diskStats.blockReads, spilled.diskStats.blockHits], [before.blockReads, before.blockHits], 'a block served again is not counted');
  t.ok(before.blockHits <= before.blockReads, `${before.blockHits} hits of ${before.blockReads} block reads`);
  for (const slot of [0, 7, 100, Math.floor(items.length / 2) - 1]) {
    const d = spilled.getDoc(slot);
    t.equal(d.id, items[2 * slot].doc.id);
    t.same(d.signature, items[2 * slot].doc.signature);
    t.same(d.shingles, items[2 * slot].doc.shingles);
  }
  ram.close();
  spilled.close();
});

t.test('the RAM tier answers like a map of band keys to slots: runs of equal keys, both ends of key order, growth, spill, checkpoint', async (t) => {
  // The table keeps its cells in key order (home cell = place in key order); these keys crowd it:
  // 3,000 copies of the last possible key run past the cells after the home range, 3,000 of the
  // first one pile up at the start, and random keys fill the rest.
  const bands = 4;
  let seed = 17;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const last = [((bands - 1) << 16) | 0xffff, 0xffffffff];
  const docKeys: Uint32Array[] = [];
  for (let i = 0; i < 12000; i++) {
    const keys = new Uint32Array(2 * bands);
    for (let b = 0; b < bands; b++) {
      const pick = i % 4 === 1 && b === bands - 1 ? last : i % 4 === 2 && b === 0 ? [0, 0] : [(b << 16) | (next() & 0xffff), next() % 5000];
      keys[2 * b] = pick[0];
      keys[2 * b + 1] = pick[1];
    }
    docKeys.push(keys);
  }
  const expected = new Map<string, number[]>();
  const dir = tmpDir(t);
  const small = { bands, rows: 1, perms: bands, threshold: 0.85, shingles: false };
  const idx = new LshIndex({ ...small, memoryBytes: 1 << 30, dir: () => path.join(dir, 'a') });
  let misplaced = 0;
  docKeys.forEach((keys, slot) => {
    if (idx.add({ id: `d${slot}`, signature: new Uint32Array(bands) }, keys) !== slot) misplaced++;
    for (let b = 0; b < bands; b++) {
      const k = `${keys[2 * b]}:${keys[2 * b + 1]}`;
      expected.set(k, [...(expected.get(k) ?? []), slot]);
    }
  });
  t.equal(misplaced, 0, 'slots in insertion order');
  const wrongFor = (index: LshIndex): number => {
    let wrong = 0;
    for (const keys of [...docKeys, Uint32Array.of(1, 1, (1 << 16) | 7, 4999, 3 << 16, 5001, last[0], last[1] - 1)]) {
      for (let b = 0; b < bands; b++) {
        const got = JSON.stringify(index.bandCandidates(keys, b));
        if (got !== JSON.stringify(expected.get(`${keys[2 * b]}:${keys[2 * b + 1]}`) ?? [])) wrong++;
      }
    }
    return wrong;
  };
  t.equal(wrongFor(idx), 0, 'in RAM: every key finds exactly its slots, absent keys none');
  const saved = path.join(dir, 'checkpoint');
  mkdirSync(saved);
  idx.save(saved);
  const restored = LshIndex.restore({ ...small, memoryBytes: 1 << 30, dir: () => path.join(dir, 'a') }, saved);
  t.equal(wrongFor(restored), 0, 'restored from a checkpoint: the same answers');
  // A spilled segment must be in key order for its lookups to find anything.
  idx.spill();
  t.equal(idx.spills, 1);
  t.equal(wrongFor(idx), 0, 'spilled: the same answers from the segment');
  idx.close();
  restored.close();
});

t.test('spilled documents of any size, packed into rows, read back one by one and in order', async (t) => {
  // Ids of 1 to 40 characters (multi-byte ones too) and shingle sets of 0 to ~1,900 values: rows
  // of many small documents, and documents larger than a row.
  let seed = 3;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const items = indexed().map(({ doc, keys }, i) => {
    const big = i % 97 === 0 ? 1900 : next() % 60;
    const shingles = Uint32Array.from({ length: big }, (_, k) => k * 7 + i);
    return { doc: { id: `${'é'.repeat(i % 20)}d${i}`, signature: doc.signature, shingles }, keys };
  });
  const dir = tmpDir(t);
  const file = path.join(dir, 'idx');
  const w = new LshIndex({ ...params, memoryBytes: 96 * 1024, dir: () => file, persist: true });
  for (const it of items) w.add(it.doc, it.keys);
  t.ok(w.spills > 5, `${w.spills} spills`);
  let wrong = 0;
  items.forEach((it, slot) => {
    const d = w.getDoc(slot);
    if (d.id !== it.doc.id || JSON.stringify([...d.signature]) !== JSON.stringify([...it.doc.signature]) || JSON.stringify([...d.shingles!]) !== JSON.stringify([...it.doc.shingles])) wrong++;
  });
  t.equal(wrong, 0, 'every document reads back as written');
  w.finish();
  w.close();
  const r = new LshIndexReader(file);
  t.same([...r.allDocs()].map((d) => d.id), items.map((it) => it.doc.id), 'all documents, in slot order');
  t.same([...r.getDoc(97).shingles!], [...items[97].doc.shingles], 'a document larger than a row');
  t.throws(() => r.getDoc(items.length), new RegExp(`document ${items.length} is missing`));
  r.close();
});

t.test('persisted index: written, reopened read-only, same candidates and documents', async (t) => {
  const items = indexed(400);
  const dir = tmpDir(t);
  const file = path.join(dir, 'idx');
  const w = new LshIndex({ ...params, shingles: false, memoryBytes: 48 * 1024, dir: () => file, persist: true });
  for (const it of items) w.add({ id: it.doc.id, signature: it.doc.signature }, it.keys);
  const expected = items.map((it) => w.candidates(it.keys));
  w.finish();
  w.close();
  const r = new LshIndexReader(file);
  t.same(r.params, { ...params, shingles: false });
  t.equal(r.docs, items.length);
  items.forEach((it, i) => {
    const c = r.candidates(it.keys);
    if (JSON.stringify(c) !== JSON.stringify(expected[i])) t.fail(`reader candidates differ for ${it.doc.id}`);
  });
  t.equal(r.getDoc(123).id, items[123].doc.id);
  t.equal(r.getDoc(123).shingles, undefined);
  t.equal([...r.allDocs()].length, items.length);
  r.close();
  t.throws(() => new LshIndexReader(path.join(dir, 'nope')), /does not exist/);
});

t.test('a persisted segment whose filter spans several database rows reopens intact', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'idx');
  // 70,000 documents x 16 band keys at 12 bits per key: a 1.7 MB filter, stored in 1 MB rows.
  const w = new LshIndex({ ...params, shingles: false, memoryBytes: 256 * 1024 * 1024, dir: () => file, persist: true });
  let seed = 12345;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const keysOf: Uint32Array[] = [];
  const signature = new Uint32Array(128);
  for (let i = 0; i < 70_000; i++) {
    for (let k = 0; k < 128; k++) signature[k] = next();
    const keys = bandKeys(signature, 16, 8);
    if (i % 1000 === 0) keysOf.push(keys);
    w.add({ id: `d${i}`, signature }, keys);
  }
  w.finish();
  t.equal(w.diskStats.segments, 1);
  w.close();
  const r = new LshIndexReader(file);
  keysOf.forEach((keys, j) => {
    if (JSON.stringify(r.candidates(keys)) !== JSON.stringify([j * 1000])) t.fail(`document d${j * 1000} not found alone`);
  });
  // Absent keys (the band keys of other documents): the filter (read back whole) rejects nearly
  // all of them without a block read. 12 bits per key pass ~0.45% (10 bits would pass ~0.96%, ~300).
  const before = r.diskStats.blockReads;
  for (let i = 0; i < 2000; i++) {
    for (let k = 0; k < 128; k++) signature[k] = next();
    r.candidates(bandKeys(signature, 16, 8));
  }
  const falsePositives = r.diskStats.blockReads - before;
  t.ok(falsePositives > 0 && falsePositives < 2000 * 16 * 0.007, `${falsePositives} block reads for 32,000 absent keys`);
  r.close();
  const reread = new LshIndexReader(file);
  t.same(reread.candidates(keysOf[3]), [3000]);
  reread.close();
});

t.test('a budget too large to reserve the filter stack falls back to a filter array per segment', async (t) => {
  const items = indexed(200);
  const dir = tmpDir(t);
  const file = path.join(dir, 'idx');
  // 100 TB: no typed array that long can exist, so the stack's reservation fails.
  const w = new LshIndex({ ...params, memoryBytes: 1e14, dir: () => file, persist: true });
  for (const it of items) w.add(it.doc, it.keys);
  const expected = items.map((it) => w.candidates(it.keys));
  w.finish();
  t.equal(w.diskStats.segments, 1);
  w.close();
  const r = new LshIndexReader(file);
  items.forEach((it, i) => {
    if (JSON.stringify(r.candidates(it.keys)) !== JSON.stringify(expected[i])) t.fail(`candidates differ for ${it.doc.id}`);
  });
  t.equal(r.docs, 200);
  r.close();
});

t.test('an index written in another format is refused with a message to rebuild it', async (t) => {
  const items = indexed(50);
  const dir = tmpDir(t);
  const file = path.join(dir, 'idx');
  const w = new LshIndex({ ...params, memoryBytes: 1 << 20, dir: () => file, persist: true });
  for (const it of items) w.add(it.doc, it.keys);
  w.finish();
  w.close();
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(path.join(file, INDEX_FILE));
  const meta = JSON.parse(db.prepare("SELECT value FROM meta WHERE key = 'index'").pluck().get() as string);
  db.prepare("UPDATE meta SET value = ? WHERE key = 'index'").run(JSON.stringify({ ...meta, format: 'mixstream-lsh-index/1' }));
  db.close();
  t.throws(() => new LshIndexReader(file), /format "mixstream-lsh-index\/1".*rebuild it with writeIndex/);
});

t.test('RAM tiers fill the budget before they spill (tables of any size, not only powers of two)', async (t) => {
  // Documents of random signatures (no shingle sets): each costs 16 band entries (16 bytes each
  // in a table filled to 3/4), its stored words and 16 bytes of slot bookkeeping. The room the
  // tiers get shrinks as the segments' filters grow (12 bits per key); with tiers that fill the
  // room, the spills stay under what the data needs over the smallest room.
  const dir = tmpDir(t);
  const n = 60000;
  for (const mb of [6, 20]) {
    const memoryBytes = mb << 20;
    const index = new LshIndex({ ...params, shingles: false, signatures: true, memoryBytes, dir: () => path.join(dir, String(mb)) });
    let seed = 7;
    const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
    for (let i = 0; i < n; i++) {
      const signature = new Uint32Array(128);
      for (let k = 0; k < 128; k++) signature[k] = next();
      index.add({ id: `d${i}`, signature }, bandKeys(signature, 16, 8));
    }
    const perDoc = 16 * (12 / 0.75) + (3 + 2 + 128) * 4 + 16;
    const smallestRoom = memoryBytes - storeCacheBytes(memoryBytes) - n * 16 * 1.5;
    const needed = Math.ceil((n * perDoc) / smallestRoom);
    t.ok(index.spills <= needed, `memoryMB ${mb}: ${index.spills} spills, at most ${needed}`);
    t.ok(index.spills >= 1);
    index.close();
  }
});

t.test('the Bloom filters keep their bits per key up to 3/4 of the budget, then warn once', async (t) => {
  // Documents without signatures or shingle sets (an id each), so the filters (24 bytes a
  // document at 16 bands) soon outweigh the RAM tier. 8 MB: 6 MB of budget beside a 2 MB page
  // cache, 4.5 MB of it for filters, ~190,000 documents' worth.
  const dir = tmpDir(t);
  const run = (n: number): string[] => {
    const warnings: string[] = [];
    const index = new LshIndex({ ...params, shingles: false, signatures: false, memoryBytes: 8 << 20, dir: () => path.join(dir, String(n)), warn: (m) => warnings.push(m) });
    let seed = 3;
    const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
    const signature = new Uint32Array(128);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < 128; k++) signature[k] = next();
      index.add({ id: `d${i}`, signature }, bandKeys(signature, 16, 8));
    }
    t.ok(index.spills > 5, `${n} documents: ${index.spills} spills`);
    index.close();
    return warnings;
  };
  t.same(run(150000), [], 'filters of 150,000 documents (3.6 MB, 60% of the budget) keep 12 bits per key');
  const warned = run(230000);
  t.equal(warned.length, 1);
  t.match(warned[0], /outgrow 75% of the memory budget/);
});
