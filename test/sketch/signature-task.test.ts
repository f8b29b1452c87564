import t from 'tap';
import { BLOCK_BYTES, computeSignatures, DocForm, pack, type SignatureTask } from '../../lib/sketch/signature-task.ts';
import signatureWorker from '../../lib/sketch/signature-task.ts';
import { createMinHasher } from '../../lib/sketch/minhash.ts';
import { shingleHashes, shingleText } from '../../lib/text/shingle.ts';
import { hashForm } from '../../lib/text/normalize.ts';
import { isTransferring } from '../../lib/parallel.ts';
import { readJsonl } from '../../lib/testing.ts';

const docs = ['handbook', 'kjv', 'fortunes', 'gcide'].flatMap((f) => readJsonl(new URL(`../../samples/${f}.jsonl`, import.meta.url)).slice(0, 150));
const W5 = { unit: 'word', n: 5 } as const;
const minhash = { perms: 128, seed: 1, scheme: 'oph' } as const;

// Every third document comes with its shingles, every third in the hashing form, the rest raw.
function mixedTask(withMinHash: boolean): { task: SignatureTask; sets: Uint32Array[] } {
  const forms = new Uint8Array(docs.length);
  const texts: string[] = [];
  const given: Uint32Array[] = [];
  const sets: Uint32Array[] = [];
  docs.forEach((d, i) => {
    const set = shingleText(d.text, W5);
    sets.push(set);
    forms[i] = i % 3 === 0 ? DocForm.Shingles : i % 3 === 1 ? DocForm.HashText : DocForm.RawText;
    texts.push(forms[i] === DocForm.Shingles ? '' : forms[i] === DocForm.HashText ? hashForm(d.text) : d.text);
    given.push(forms[i] === DocForm.Shingles ? set : new Uint32Array(0));
  });
  return { task: { forms, texts, shingles: pack(given), shingle: W5, minhash: withMinHash ? minhash : undefined }, sets };
}

t.test('blocks hold each document\'s signature and then its computed shingles', async (t) => {
  const { task, sets } = mixedTask(true);
  const res = computeSignatures(task);
  const hasher = createMinHasher(minhash);
  t.equal(res.index.length, 3 * docs.length);
  for (let i = 0; i < docs.length; i++) {
    const block = res.blocks[res.index[3 * i]];
    const at = res.index[3 * i + 1];
    const computed = res.index[3 * i + 2];
    t.same(block.subarray(at, at + 128), hasher.signature(sets[i]), `signature ${i}`);
    if (i % 3 === 0) t.equal(computed, 0, 'documents that came with shingles get none back');
    else t.same(block.subarray(at + 128, at + 128 + computed), sets[i], `shingles ${i}`);
  }
  t.ok(res.blocks.length > 3, `several blocks (${res.blocks.length})`);
  for (const b of res.blocks) {
    t.equal(b.byteOffset, 0);
    t.ok(b.buffer.byteLength <= BLOCK_BYTES || res.index.some((_, k) => k % 3 === 0 && res.blocks[res.index[k]] === b && res.index[k + 1] === 0 && 4 * (128 + res.index[k + 2]) === b.buffer.byteLength), 'a block is at most BLOCK_BYTES unless one document fills it alone');
  }
  t.equal(new Set(res.blocks.map((b) => b.buffer)).size, res.blocks.length, 'one buffer per block');
});

t.test('shingles only, and a document larger than a block', async (t) => {
  const long = docs.map((d) => d.text).join(' ');
  const task: SignatureTask = { forms: Uint8Array.of(DocForm.RawText, DocForm.RawText, DocForm.RawText), texts: ['a b c', long, 'the end of it all here'], shingle: W5 };
  const res = computeSignatures(task);
  const sets = task.texts.map((x) => shingleText(x, W5));
  t.ok(sets[1].length * 4 > BLOCK_BYTES);
  for (let i = 0; i < 3; i++) {
    const block = res.blocks[res.index[3 * i]];
    t.same(block.subarray(res.index[3 * i + 1], res.index[3 * i + 1] + res.index[3 * i + 2]), sets[i]);
  }
  t.equal(res.blocks[res.index[3]].buffer.byteLength, sets[1].length * 4, 'the long document has a block of its own size');
  t.same(shingleHashes(hashForm('a b c'), W5), sets[0]);
});

t.test('the worker entry moves the blocks and the index', async (t) => {
  const out = signatureWorker(mixedTask(true).task) as unknown;
  t.ok(isTransferring(out));
  const { value, transfer } = out as { value: { blocks: Uint32Array[]; index: Uint32Array }; transfer: ArrayBuffer[] };
  t.equal(transfer.length, value.blocks.length + 1);
  t.ok(transfer.includes(value.index.buffer as ArrayBuffer));
  for (const b of value.blocks) t.ok(transfer.includes(b.buffer as ArrayBuffer));
});
