import t from 'tap';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { compress as zstdCompress } from 'zstd-napi';
import type { ErrorEntry } from '../../lib/context.ts';
import { decodeInput, DEFAULT_DECODE, POSITION, type DecodeOptions, type InputProgress, type PositionedBatch } from '../../lib/io/decode.ts';
import type { Rec } from '../../lib/operator.ts';
import { ROOT, SAMPLES, tmpdir } from '../helpers.ts';

async function decode(bytes: Buffer, opts: Partial<DecodeOptions> = {}, chunk = 1 << 16, file?: string) {
  const errors: ErrorEntry[] = [];
  const progress: InputProgress = { bytes: 0, records: 0, complete: false };
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunk) chunks.push(bytes.subarray(i, i + chunk));
  const records: Rec[] = [];
  const source = { name: 'in.jsonl', file, open: () => Readable.from(chunks) };
  for await (const batch of decodeInput(source, { ...DEFAULT_DECODE, tmpDir: tmpdir(), ...opts }, { error: (e) => errors.push(e) }, progress)) records.push(...batch);
  return { records, errors, progress };
}

const kjv = readFileSync(path.join(SAMPLES, 'kjv.jsonl'));

t.test('real NDJSON decodes to the same records, whatever the chunking', async (t) => {
  const expected = kjv.toString('utf8').trim().split('\n').map((l) => JSON.parse(l));
  for (const size of [997, 4096, 1 << 20]) {
    const { records, errors, progress } = await decode(kjv, {}, size);
    t.same(records, expected, `chunk ${size}`);
    t.same(errors, []);
    t.ok(progress.complete);
  }
});

t.test('a batch ends at batchRecords records or once its lines reach batchBytes, whichever comes first', async (t) => {
  const lines = kjv.toString('utf8').trim().split('\n');
  const batchesOf = async (opts: Partial<DecodeOptions>): Promise<PositionedBatch[]> => {
    const out: PositionedBatch[] = [];
    const source = { name: 'in.jsonl', open: () => Readable.from([kjv]) };
    for await (const batch of decodeInput(source, { ...DEFAULT_DECODE, tmpDir: tmpdir(), ...opts }, { error: () => {} }, { bytes: 0, records: 0, complete: false })) {
      // (The end of input may add an empty batch that only carries the position.)
      if (batch.length) out.push(batch);
    }
    return out;
  };
  const lengthOf = new Map(lines.map((l) => [JSON.parse(l).id as string, l.length]));
  t.equal(lengthOf.size, lines.length, 'sample ids are unique');
  const lineChars = (b: Rec[]) => b.reduce((sum, r) => sum + lengthOf.get(r.id)!, 0);

  const bySize = await batchesOf({ batchBytes: 64 * 1024 });
  t.same(bySize.flat().map((r) => r.id), lines.map((l) => JSON.parse(l).id), 'every record once, in order');
  t.ok(bySize.length >= 10, `${bySize.length} batches from one chunk of ${kjv.length} bytes`);
  for (const b of bySize.slice(0, -1)) {
    t.ok(lineChars(b) >= 64 * 1024 && lineChars(b.slice(0, -1)) < 64 * 1024, 'cut right after the lines reach batchBytes');
  }
  t.same(bySize.map((b) => b[POSITION]), [...bySize.slice(0, -1).map(() => undefined), lines.length], 'the position rides on the last batch of the chunk');

  const byCount = await batchesOf({ batchRecords: 7 });
  t.same(byCount.map((b) => b.length), [...Array(Math.floor(lines.length / 7)).fill(7), ...(lines.length % 7 ? [lines.length % 7] : [])], 'at most batchRecords per batch');
  const defaults = await batchesOf({});
  t.ok(defaults.every((b) => lineChars(b) < DEFAULT_DECODE.batchBytes + 20000), 'default batches of long documents stay near 512 KB');
});

t.test('every kind of bad line is an error with its reason and line, and good lines survive', async (t) => {
  const good = (id: string) => JSON.stringify({ id, text: 'In the beginning God created the heaven and the earth.', meta: { n: 1 } });
  const parts = [
    Buffer.from('\ufeff' + good('first') + '\r\n'), // BOM + CRLF
    Buffer.from('{"id": "broken", "text": \n'), // invalid JSON
    Buffer.concat([Buffer.from('{"id":"bad-utf8","text":"caf'), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n')]),
    Buffer.from('{"id":"no-text","body":"x"}\n'),
    Buffer.from('{"id":"num-text","text":42}\n'),
    Buffer.from('{"id":"empty","text":"   "}\n'),
    Buffer.from('[1,2,3]\n'),
    Buffer.from('\n   \n'), // blank lines are skipped, not errors
    Buffer.from(JSON.stringify({ id: 'huge', text: 'x'.repeat(5000) }) + '\n'),
    Buffer.from(good('last')), // no trailing newline
  ];
  const { records, errors, progress } = await decode(Buffer.concat(parts), { maxRecordBytes: 1000 }, 333);
  t.same(records.map((r) => r.id), ['first', 'last']);
  t.same(
    errors.map((e) => [e.reason, e.line]),
    [
      ['invalid_json', 2],
      ['invalid_utf8', 3],
      ['missing_text', 4],
      ['missing_text', 5],
      ['empty_text', 6],
      ['not_an_object', 7],
      ['record_too_large', 10],
    ],
  );
  t.ok(errors.every((e) => e.input === 'in.jsonl' && e.message));
  t.equal(errors[0].raw, '{"id": "broken", "text": ');
  t.equal(errors[1].rawEncoding, 'base64', 'invalid UTF-8 is kept as base64, not lost');
  t.equal(Buffer.from(errors[1].raw as string, 'base64').length, 32);
  t.equal(errors[6].bytes, Buffer.byteLength(JSON.stringify({ id: 'huge', text: 'x'.repeat(5000) })));
  t.equal(errors[6].offset, Buffer.concat(parts.slice(0, 8)).length, 'an over-long line within a chunk has its byte offset');
  t.equal(errors[4].message, '"text" is only whitespace');
  t.ok(progress.complete);
});

t.test('in one chunk: an invalid line spoils only itself, and an over-long one keeps a readable head', async (t) => {
  const ru = 'В начале сотворил Бог небо и землю. ';
  const parts = [
    Buffer.from(JSON.stringify({ id: 'ru', text: ru }) + '\n'),
    Buffer.concat([Buffer.from('{"id":"bad","text":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}\n')]),
    Buffer.from(JSON.stringify({ id: 'long', text: ru.repeat(400) }) + '\n'),
    Buffer.from(JSON.stringify({ id: 'de', text: 'Über allen Gipfeln ist Ruh.' }) + '\n'),
  ];
  const { records, errors } = await decode(Buffer.concat(parts), { maxRecordBytes: 10_000 }, 1 << 20);
  t.same(records.map((r) => [r.id, r.text]), [['ru', ru], ['de', 'Über allen Gipfeln ist Ruh.']], 'multi-byte text around the bad lines decodes intact');
  t.same(errors.map((e) => [e.reason, e.line]), [['invalid_utf8', 2], ['record_too_large', 3]]);
  const head = errors[1];
  t.equal(head.offset, parts[0].length + parts[1].length, 'its byte offset, as for a line spanning chunks');
  t.equal(head.rawEncoding, undefined, 'the head of an over-long line is text, not base64');
  t.ok(head.rawTruncated);
  const line = parts[2].toString('utf8');
  t.ok(line.startsWith(head.raw as string), 'the head is the start of the line, cut between characters');
  t.ok(Buffer.byteLength(head.raw as string) <= 4096 && Buffer.byteLength(head.raw as string) > 4090);
});

t.test('an over-long line is skipped without buffering it, across many chunks', async (t) => {
  const big = Buffer.concat([Buffer.from('{"id":"a","text":"ok"}\n{"id":"big","text":"'), Buffer.alloc(300_000, 0x61), Buffer.from('"}\n{"id":"b","text":"ok"}\n')]);
  const { records, errors } = await decode(big, { maxRecordBytes: 10_000 }, 4096);
  t.same(records.map((r) => r.id), ['a', 'b']);
  t.equal(errors.length, 1);
  t.equal(errors[0].reason, 'record_too_large');
  t.equal(errors[0].line, 2);
  t.equal(errors[0].offset, 23);
  t.equal(errors[0].bytes, 300_022);
});

t.test('a line spanning many chunks: whole under the limit, reported with its head and offset over it, and not again on resume', async (t) => {
  const ru = 'В начале сотворил Бог небо и землю. ';
  const under = JSON.stringify({ id: 'under', text: ru.repeat(120) }) + '\n';
  const over = JSON.stringify({ id: 'over', text: ru.repeat(160) }) + '\n';
  const limit = 10_000;
  t.ok(Buffer.byteLength(under) < limit && Buffer.byteLength(over) - 1 > limit && Buffer.byteLength(over) - 1 < limit + 997);
  const input = Buffer.from('{"id":"a","text":"ok"}\n' + under + over + '{"id":"b","text":"ok"}\n');
  // 997-byte chunks: the over-long line's end arrives in the chunk that takes it past the limit,
  // and chunk edges fall inside multi-byte characters.
  for (const chunk of [997, 333]) {
    const { records, errors } = await decode(input, { maxRecordBytes: limit }, chunk);
    t.same(records.map((r) => r.id), ['a', 'under', 'b'], `chunk ${chunk}`);
    t.equal(records[1].text, ru.repeat(120));
    t.same(errors.map((e) => [e.reason, e.line, e.offset, e.bytes]), [['record_too_large', 3, 23 + Buffer.byteLength(under), Buffer.byteLength(over) - 1]]);
    t.ok(over.startsWith(errors[0].raw as string) && Buffer.byteLength(errors[0].raw as string) > 4090, 'the head is the start of the line, cut between characters');
    const resumed = await decode(input, { maxRecordBytes: limit, skipLines: 3 }, chunk);
    t.same(resumed.records.map((r) => r.id), ['b']);
    t.same(resumed.errors, [], 'a resumed run does not report again a line an earlier run consumed');
  }
});

t.test('gzip and zstd are detected by magic bytes', async (t) => {
  for (const [name, packed] of [['gzip', gzipSync(kjv)], ['zstd', zstdCompress(kjv)]] as const) {
    const { records, errors, progress } = await decode(packed as Buffer);
    t.equal(records.length, 150, name);
    t.same(errors, []);
    t.ok(progress.complete);
    t.equal(progress.bytes, (packed as Buffer).length, 'compressed bytes are counted');
  }
});

t.test('a truncated gzip/zstd stream keeps the records read before the break and says so', async (t) => {
  for (const [name, packed] of [['gzip', gzipSync(kjv)], ['zstd', zstdCompress(kjv)]] as const) {
    const cut = (packed as Buffer).subarray(0, Math.floor((packed as Buffer).length * 0.6));
    const { records, errors, progress } = await decode(cut);
    t.ok(records.length > 30 && records.length < 150, `${name}: ${records.length} records before the break`);
    t.same(records, kjv.toString().trim().split('\n').slice(0, records.length).map((l) => JSON.parse(l)), `${name}: they are the first records, intact`);
    t.equal(errors.at(-1)?.reason, 'truncated_input');
    t.notOk(progress.complete);
  }
});

t.test('missing ids are generated from the input name and line, or are errors when asked', async (t) => {
  const data = Buffer.from('{"text":"one"}\n{"id":7,"text":"two"}\n');
  const gen = await decode(data);
  t.same(gen.records.map((r) => r.id), ['in.jsonl:1', 7]);
  const strict = await decode(data, { missingId: 'error' });
  t.same(strict.errors.map((e) => e.reason), ['missing_id']);
  const empty = await decode(Buffer.from('{"id":"","text":"one"}\n{"id":null,"text":"two"}\n'));
  t.same(empty.records.map((r) => r.id), ['in.jsonl:1', 'in.jsonl:2'], 'an empty or null id counts as missing');
  const emptyStrict = await decode(Buffer.from('{"id":"","text":"one"}\n{"id":null,"text":"two"}\n{"text":"three"}\n'), { missingId: 'error' });
  t.same(emptyStrict.errors.map((e) => e.message), ['"id" is empty', '"id" is null', 'no "id" field'], 'the message says which');
});

t.test('an id that is a number beyond a double is an error, not a null id', async (t) => {
  const { records, errors } = await decode(Buffer.from('{"id":1e400,"text":"too big"}\n{"id":-1e999,"text":"too small"}\n{"id":12345678901234567890,"text":"rounded"}\n'));
  t.same(errors.map((e) => [e.reason, e.line]), [['invalid_id', 1], ['invalid_id', 2]]);
  t.match(errors[0].message, /beyond what a double holds/);
  t.same(records.map((r) => r.text), ['rounded'], 'a large but finite number is kept (as JSON parses it)');
});

t.test('textField and idField map other schemas', async (t) => {
  const { records } = await decode(Buffer.from('{"doc_id":"x","content":"hello","lang":"en"}\n'), { textField: 'content', idField: 'doc_id' });
  t.same(records[0], { doc_id: 'x', content: 'hello', lang: 'en', text: 'hello', id: 'x' });
});

t.test('Parquet files: text column plus the others, row group by row group', async (t) => {
  // Written by test/fixtures/make-parquet.mjs: 40 KJV chapters in row groups of 16, with an INT64 column.
  const file = path.join(ROOT, 'test', 'fixtures', 'kjv.parquet');
  const buf = readFileSync(file);
  const docs = kjv.toString().trim().split('\n').slice(0, 40).map((l) => JSON.parse(l));
  const fromFile = await decode(Buffer.from(buf), {}, 1 << 16, file);
  t.equal(fromFile.records.length, 40);
  t.same(fromFile.records[3], { id: docs[3].id, text: docs[3].text, year: 1614 });
  t.ok(fromFile.progress.complete);
  const fromStream = await decode(Buffer.from(buf), {}, 5000);
  t.same(fromStream.records, fromFile.records, 'a non-seekable Parquet stream is spooled and read the same');
  // A row group larger than the slice budget is read a few rows at a time: the same rows, numbered alike.
  const sliced = await decode(Buffer.from(buf), { parquetSliceBytes: 3 * Buffer.byteLength(docs[0].text), batchRecords: 5 }, 1 << 16, file);
  t.same(sliced.records, fromFile.records, 'read in slices of rows');
  const resumed = await decode(Buffer.from(buf), { parquetSliceBytes: 3 * Buffer.byteLength(docs[0].text), skipLines: 21 }, 1 << 16, file);
  t.same(resumed.records, fromFile.records.slice(21), 'a resumed read skips rows across slices');
  const broken = Buffer.from(buf);
  broken.fill(0x55, 4, 200); // the first row group's pages
  const bad = await decode(broken, { parquetSliceBytes: 3 * Buffer.byteLength(docs[0].text) }, 1 << 16);
  t.same(bad.errors.map((e) => [e.reason, e.line]), [['invalid_parquet', 1]]);
  t.match(bad.errors[0].message, /^cannot read the row group with row 1: /);
});

t.test('Arrow IPC streams', async (t) => {
  const arrow = await import('apache-arrow');
  const docs = kjv.toString().trim().split('\n').slice(0, 50).map((l) => JSON.parse(l));
  const table = arrow.tableFromArrays({ id: docs.map((d) => d.id), text: docs.map((d) => d.text), n: Int32Array.from(docs.map((_, i) => i)) });
  const bytes = Buffer.from(arrow.tableToIPC(table, 'stream'));
  const { records, errors, progress } = await decode(bytes, {}, 1000);
  t.same(errors, []);
  t.equal(records.length, 50);
  t.same(records[5], { id: docs[5].id, text: docs[5].text, n: 5 });
  t.ok(progress.complete);
  const file = Buffer.from(arrow.tableToIPC(table, 'file'));
  t.equal((await decode(file)).records.length, 50, 'Arrow IPC file format too');
  const cut = await decode(file.subarray(0, file.length - 100));
  t.same(cut.errors.map((e) => e.reason), ['truncated_input']);
  t.match(cut.errors[0].message, /^Arrow IPC file is cut short or invalid after 0 rows: its schema is only in its footer, which is missing/, 'arrow-js writes the schema into the footer alone');
  t.notOk(cut.progress.complete);
});

t.test('Arrow IPC files are read batch by batch as the stream they hold, from a path, a pipe or zstd; cut short, the rows before the cut are kept', async (t) => {
  const arrow = await import('apache-arrow');
  const docs = kjv.toString().trim().split('\n').map((l) => JSON.parse(l));
  const whole = new arrow.Table({ id: arrow.vectorFromArray(docs.map((d) => d.id), new arrow.Utf8()), text: arrow.vectorFromArray(docs.map((d) => d.text), new arrow.Utf8()) });
  const rb = whole.batches[0];
  const table = new arrow.Table(Array.from({ length: Math.ceil(rb.numRows / 10) }, (_, i) => rb.slice(i * 10, i * 10 + 10)));
  t.ok(table.batches.length > 5);
  const expected = docs.map((d) => ({ id: d.id, text: d.text }));
  const file = Buffer.from(arrow.tableToIPC(table, 'file'));
  const stream = Buffer.from(arrow.tableToIPC(table, 'stream'));
  const dir = tmpdir();
  const onDisk = path.join(dir, 'kjv.arrow');
  writeFileSync(onDisk, file);
  for (const [name, bytes, at] of [['piped', file, undefined], ['from its path', file, onDisk], ['zstd', zstdCompress(file), undefined]] as const) {
    const { records, errors, progress } = await decode(bytes as Buffer, {}, 4096, at);
    t.same(errors, [], name);
    t.same(records, expected, name);
    t.ok(progress.complete);
  }
  // Writers other than arrow-js (pyarrow) put the schema first, as in a stream: a cut file still gives its first batches.
  const schemaFirst = Buffer.concat([Buffer.from('ARROW1\0\0'), stream]);
  for (const [what, end] of [['within a batch', Math.floor(schemaFirst.length / 2)], ['at the end of its stream part, before the footer', schemaFirst.length]] as const) {
    const { records, errors, progress } = await decode(schemaFirst.subarray(0, end), {}, 4096);
    t.ok(records.length > 0 && records.length % 10 === 0, `${what}: whole batches (${records.length} rows)`);
    t.same(records, expected.slice(0, records.length));
    t.same(errors.map((e) => [e.reason, e.line]), [['truncated_input', records.length + 1]], what);
    t.match(errors[0].message, new RegExp(`^Arrow IPC file is cut short or invalid after ${records.length} rows`));
    t.notOk(progress.complete);
  }
});

t.test('zstd input is decompressed as it is read, not a whole input chunk at once', async (t) => {
  const { decompressed } = await import('../../lib/io/compression.ts');
  // 256 MB of one repeated line compresses to a few kB: a single read of the compressed input.
  const line = Buffer.from('{"text":"' + 'a'.repeat(1000) + '"}\n');
  const packed = zstdCompress(Buffer.concat(Array.from({ length: 256 * 1024 }, () => line)));
  t.ok(packed.length < 1 << 20);
  const before = process.memoryUsage().arrayBuffers;
  const it = decompressed('zstd', Readable.from([packed]))[Symbol.asyncIterator]();
  const first = await it.next();
  t.ok(!first.done && first.value.length <= 1 << 20);
  t.ok(process.memoryUsage().arrayBuffers - before < 64 << 20, 'the first output buffer did not make all of the output');
  let total = first.value!.length;
  for (let r = await it.next(); !r.done; r = await it.next()) total += r.value.length;
  t.equal(total, 256 * 1024 * line.length);
});

t.test('Arrow struct columns keep their field names, nested in lists and structs', async (t) => {
  const arrow = await import('apache-arrow');
  const list = new arrow.List(new arrow.Field('item', new arrow.Utf8(), true));
  const inner = new arrow.Struct([new arrow.Field('z', new arrow.Int32(), true)]);
  const nested = new arrow.Struct([new arrow.Field('inner', inner, true), new arrow.Field('w', new arrow.Utf8(), true), new arrow.Field('tags', list, true)]);
  const table = new arrow.Table({
    id: arrow.vectorFromArray(['a', 'b']),
    text: arrow.vectorFromArray(['one', 'two']),
    tags: arrow.vectorFromArray([['x', 'y'], []], list),
    meta: arrow.vectorFromArray([{ inner: { z: 1 }, w: 'p', tags: ['q'] }, { inner: { z: 2 }, w: 'r', tags: [] }], nested),
  });
  for (const format of ['file', 'stream'] as const) {
    const { records, errors } = await decode(Buffer.from(arrow.tableToIPC(table, format)));
    t.same(errors, []);
    t.same(records, [
      { id: 'a', text: 'one', tags: ['x', 'y'], meta: { inner: { z: 1 }, w: 'p', tags: ['q'] } },
      { id: 'b', text: 'two', tags: [], meta: { inner: { z: 2 }, w: 'r', tags: [] } },
    ], format);
  }
});

t.test('unsupported compression is a clear error', async (t) => {
  const { errors, progress } = await decode(Buffer.from('BZh91AY&SY....'));
  t.equal(errors[0].reason, 'unsupported_compression');
  t.notOk(progress.complete);
});

t.test('a bad line of any length up to maxRecordBytes is kept whole in the errors, CRLF and BOM stripped as for good lines', async (t) => {
  const longText = 'Über allen Gipfeln ist Ruh. '.repeat(20_000);
  const brokenJson = `{"id":"j","text":"${longText}"`;
  const badUtf8 = Buffer.concat([Buffer.from(`{"id":"u","text":"${longText}`), Buffer.from([0xff]), Buffer.from('"}')]);
  const input = Buffer.concat([Buffer.from('\ufeff{"id":"first","text": \r\n'), Buffer.from(brokenJson + '\r\n'), badUtf8, Buffer.from('\n{"id":"ok","text":"fine"}\n')]);
  const { records, errors } = await decode(input, {}, 1 << 16);
  t.same(records.map((r) => r.id), ['ok']);
  t.same(errors.map((e) => [e.reason, e.line]), [['invalid_json', 1], ['invalid_json', 2], ['invalid_utf8', 3]]);
  t.equal(errors[0].raw, '{"id":"first","text": ', 'no BOM, no CR');
  t.equal(errors[1].raw, brokenJson, `the whole ${Buffer.byteLength(brokenJson)}-byte line`);
  t.notOk(errors[1].rawTruncated);
  t.equal(errors[2].rawEncoding, 'base64');
  t.same(Buffer.from(errors[2].raw as string, 'base64'), badUtf8, 'the whole line, byte for byte');
});
