import t from 'tap';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { compress as zstdCompress } from 'zstd-napi';
import type { Readable } from 'node:stream';
import { backoffDelay, httpInput, HttpInputError, openHttpInput, parseContentRange, parseRetryAfter, redactUrl, type RetryInfo } from '../../lib/io/http.ts';
import { detectCompression } from '../../lib/io/compression.ts';
import { decodeInput, DEFAULT_DECODE, fileInput, type InputProgress } from '../../lib/io/decode.ts';
import type { ErrorEntry } from '../../lib/context.ts';
import type { Rec } from '../../lib/operator.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
// Real text, gzip-compressed: binary bytes whose every offset matters.
const KJV = zlib.gzipSync(readFileSync(path.join(here, '../../samples/kjv.jsonl')));
const HANDBOOK = zlib.gzipSync(readFileSync(path.join(here, '../../samples/handbook.jsonl')));

interface Seen {
  url: string;
  range?: string;
  ifRange?: string;
  auth?: string;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void;

/** An HTTP server on 127.0.0.1 (random port) recording every request. */
async function serve(t: { teardown(fn: () => void): void }, handler: Handler): Promise<{ url: string; origin: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ url: req.url!, range: req.headers.range, ifRange: req.headers['if-range'] as string | undefined, auth: req.headers.authorization });
    handler(req, res, seen.length - 1);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url: `${origin}/shard-00000.jsonl.gz`, origin, seen };
}

interface SendOpts {
  etag?: string;
  lastModified?: string;
  /** Send only this many body bytes of the response, then drop the connection. */
  dropAfter?: number;
  ignoreRange?: boolean;
}

/** Answers like a static file server: 200, or 206 for `Range: bytes=N-` (honouring If-Range). */
function send(req: http.IncomingMessage, res: http.ServerResponse, data: Buffer, o: SendOpts = {}): void {
  const headers: Record<string, string | number> = { 'content-type': 'application/gzip', 'accept-ranges': 'bytes' };
  if (o.etag) headers.etag = o.etag;
  if (o.lastModified) headers['last-modified'] = o.lastModified;
  let start = 0;
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const ifr = req.headers['if-range'] as string | undefined;
  const ifRangeOk = !ifr || ifr === o.etag || ifr === o.lastModified;
  if (m && !o.ignoreRange && ifRangeOk) {
    start = Number(m[1]);
    headers['content-range'] = `bytes ${start}-${data.length - 1}/${data.length}`;
  }
  const body = data.subarray(start);
  headers['content-length'] = body.length;
  res.writeHead(start > 0 ? 206 : 200, headers);
  if (o.dropAfter !== undefined && o.dropAfter < body.length) {
    res.write(body.subarray(0, o.dropAfter), () => res.socket?.destroy());
  } else res.end(body);
}

async function collect(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

const fast = { minBackoffMs: 5, maxBackoffMs: 40, timeoutMs: 5000 };

t.test('plain download is byte exact and makes one request', async (t) => {
  const s = await serve(t, (req, res) => send(req, res, KJV, { etag: '"v1"' }));
  const got = await collect(openHttpInput(s.url, fast));
  t.ok(got.equals(KJV));
  t.equal(s.seen.length, 1);
  t.equal(detectCompression(got), 'gzip', 'magic bytes intact for the decode step');
  t.equal(zlib.gunzipSync(got).toString(), readFileSync(path.join(here, '../../samples/kjv.jsonl'), 'utf8'));
});

t.test('drops mid-body: resumes with Range + If-Range, byte exact', async (t) => {
  const drops = [70_000, 1, 50_000, 40_000];
  const s = await serve(t, (req, res, n) => send(req, res, KJV, { etag: '"kjv-1"', dropAfter: drops[n] }));
  const retries: RetryInfo[] = [];
  const got = await collect(openHttpInput(s.url, { ...fast, onRetry: (i) => retries.push(i) }));
  t.ok(got.equals(KJV), 'same bytes as the file');
  t.equal(s.seen.length, drops.length + 1);
  t.equal(s.seen[0].range, undefined);
  let offset = 0;
  for (let i = 1; i < s.seen.length; i++) {
    offset += drops[i - 1];
    t.equal(s.seen[i].range, `bytes=${offset}-`, `request ${i} resumes at ${offset}`);
    t.equal(s.seen[i].ifRange, '"kjv-1"');
  }
  t.equal(retries.length, drops.length);
  t.ok(retries.every((r) => r.attempt === 1), 'each drop after progress starts a fresh retry count');
  t.equal(retries[0].total, KJV.length);
  t.match(retries[0].reason, /connection dropped after 70000 of \d+ bytes/);
});

t.test('Last-Modified guards the resume when there is no strong ETag', async (t) => {
  const lm = 'Wed, 21 Oct 2026 07:28:00 GMT';
  const s = await serve(t, (req, res, n) => send(req, res, HANDBOOK, { etag: 'W/"weak"', lastModified: lm, dropAfter: n === 0 ? 4000 : undefined }));
  const got = await collect(openHttpInput(s.url, fast));
  t.ok(got.equals(HANDBOOK));
  t.equal(s.seen[1].ifRange, lm, 'a weak ETag is never used in If-Range');
});

t.test('503 a few times, then success; Retry-After honoured', async (t) => {
  const s = await serve(t, (req, res, n) => {
    if (n < 3) {
      res.writeHead(503, { 'retry-after': n === 2 ? '1' : '0' });
      res.end('busy');
    } else send(req, res, HANDBOOK);
  });
  const retries: RetryInfo[] = [];
  const t0 = Date.now();
  const got = await collect(openHttpInput(s.url, { ...fast, onRetry: (i) => retries.push(i) }));
  const ms = Date.now() - t0;
  t.ok(got.equals(HANDBOOK));
  t.equal(s.seen.length, 4);
  t.same(retries.map((r) => [r.attempt, r.status]), [[1, 503], [2, 503], [3, 503]]);
  t.ok(retries[2].delayMs >= 1000, 'waits at least Retry-After: 1');
  t.ok(ms >= 1000 && ms < 4000, `took ${ms} ms`);
});

t.test('429 and 408 are retried, other 4xx are not', async (t) => {
  const s = await serve(t, (req, res, n) => {
    if (n === 0) (res.writeHead(429), res.end());
    else if (n === 1) (res.writeHead(408), res.end());
    else send(req, res, HANDBOOK);
  });
  t.ok((await collect(openHttpInput(s.url, fast))).equals(HANDBOOK));
  t.equal(s.seen.length, 3);

  for (const status of [404, 403, 401, 400]) {
    const s4 = await serve(t, (_req, res) => (res.writeHead(status), res.end('no')));
    const err = await collect(openHttpInput(s4.url, fast)).catch((e) => e);
    t.type(err, HttpInputError);
    t.equal(err.code, 'HTTP_STATUS');
    t.equal(err.status, status);
    t.match(err.message, new RegExp(`${status}.*not retried`));
    t.equal(s4.seen.length, 1, `${status}: one request, no retry`);
  }
});

t.test('persistent 5xx: bounded retries and time, clear error', async (t) => {
  const s = await serve(t, (_req, res) => (res.writeHead(502), res.end()));
  const t0 = Date.now();
  const err = await collect(openHttpInput(s.url, { retries: 4, minBackoffMs: 10, maxBackoffMs: 40 })).catch((e) => e);
  const ms = Date.now() - t0;
  t.equal(err.code, 'HTTP_STATUS');
  t.match(err.message, /kept answering 502, after 4 retries without progress \(5 requests\)/);
  t.equal(s.seen.length, 5);
  // Backoff: at most 10+20+40+40 ms of sleeping.
  t.ok(ms < 2000, `gave up in ${ms} ms`);
});

t.test('server ignores Range: the full 200 body is skipped up to the offset', async (t) => {
  const s = await serve(t, (req, res, n) => send(req, res, KJV, { etag: '"same"', ignoreRange: true, dropAfter: n < 3 ? 40_000 * (n + 1) : undefined }));
  const got = await collect(openHttpInput(s.url, fast));
  t.ok(got.equals(KJV), 'no duplicated bytes');
  t.equal(s.seen.length, 4);
  t.equal(s.seen[3].range, 'bytes=120000-', 'still asks for the range');
});

t.test('the file changes between requests: error, never a splice', async (t) => {
  const v2 = Buffer.concat([KJV.subarray(0, 1000), Buffer.from('changed'), KJV.subarray(1000)]);
  // A server that honours If-Range: sends the new version as a full 200.
  const s = await serve(t, (req, res, n) => send(req, res, n === 0 ? KJV : v2, { etag: n === 0 ? '"v1"' : '"v2"', dropAfter: n === 0 ? 50_000 : undefined }));
  const got: Buffer[] = [];
  const stream = openHttpInput(s.url, fast);
  const err = await (async () => {
    for await (const c of stream) got.push(c as Buffer);
  })().catch((e) => e);
  t.equal(err.code, 'HTTP_CHANGED');
  t.match(err.message, /changed between requests \(ETag "v1" -> "v2"\) after 50000 bytes/);
  t.ok(Buffer.concat(got).equals(KJV.subarray(0, 50_000)), 'only bytes of the first version were delivered');
  t.equal(s.seen.length, 2, 'not retried');

  // A server that ignores If-Range and sends a 206 of the new version: caught by the ETag.
  const s2 = await serve(t, (req, res, n) => {
    if (n === 0) return send(req, res, KJV, { etag: '"a"', dropAfter: 10_000 });
    req.headers['if-range'] = undefined;
    send(req, res, v2, { etag: '"b"' });
  });
  const err2 = await collect(openHttpInput(s2.url, fast)).catch((e) => e);
  t.equal(err2.code, 'HTTP_CHANGED');

  // No validators at all: a different length still gives it away.
  const s3 = await serve(t, (req, res, n) => send(req, res, n === 0 ? KJV : v2, { dropAfter: n === 0 ? 10_000 : undefined }));
  const err3 = await collect(openHttpInput(s3.url, fast)).catch((e) => e);
  t.equal(err3.code, 'HTTP_CHANGED');
  t.match(err3.message, new RegExp(`length ${KJV.length} -> ${v2.length}`));
});

t.test('short bodies that never complete: bounded retries, clear error', async (t) => {
  // Every response stops at byte 30000 of the file: no progress after the first drop.
  const s = await serve(t, (req, res) => {
    const start = Number(/bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0);
    send(req, res, HANDBOOK, { etag: '"h"', dropAfter: Math.max(0, 30_000 - start) });
  });
  const retries: RetryInfo[] = [];
  const t0 = Date.now();
  const err = await collect(openHttpInput(s.url, { retries: 3, minBackoffMs: 5, maxBackoffMs: 20, onRetry: (i) => retries.push(i) })).catch((e) => e);
  t.equal(err.code, 'HTTP_SHORT_BODY');
  t.equal(err.received, 30_000);
  t.equal(err.total, HANDBOOK.length);
  t.match(err.message, new RegExp(`body ended early: 30000 of ${HANDBOOK.length} bytes received, after 3 retries without progress \\(4 requests\\)`));
  t.equal(s.seen.length, 4, 'the first request, then 3 retries without progress');
  t.same(retries.map((r) => r.attempt), [1, 2, 3]);
  t.ok(Date.now() - t0 < 3000);
});

t.test('short body that ends cleanly (no Content-Length) against a known total is resumed', async (t) => {
  const s = await serve(t, (req, res, n) => {
    if (n === 0) return send(req, res, HANDBOOK, { etag: '"x"', dropAfter: 20_000 });
    // A 206 with the right Content-Range but ended early with a clean close (no Content-Length).
    const start = Number(/bytes=(\d+)-/.exec(req.headers.range!)![1]);
    res.writeHead(206, { etag: '"x"', 'content-range': `bytes ${start}-${HANDBOOK.length - 1}/${HANDBOOK.length}`, connection: 'close' });
    res.end(HANDBOOK.subarray(start, n === 1 ? start + 5000 : undefined));
  });
  const retries: RetryInfo[] = [];
  const got = await collect(openHttpInput(s.url, { ...fast, onRetry: (i) => retries.push(i) }));
  t.ok(got.equals(HANDBOOK));
  t.equal(s.seen.length, 3);
  t.equal(s.seen[2].range, 'bytes=25000-');
  t.match(retries[1].reason, /short body: 25000 of/);
});

t.test('a 206 for the wrong range is rejected', async (t) => {
  const s = await serve(t, (req, res, n) => {
    if (n === 0) return send(req, res, HANDBOOK, { etag: '"x"', dropAfter: 1000 });
    res.writeHead(206, { etag: '"x"', 'content-range': `bytes 0-${HANDBOOK.length - 1}/${HANDBOOK.length}` });
    res.end(HANDBOOK);
  });
  const err = await collect(openHttpInput(s.url, fast)).catch((e) => e);
  t.equal(err.code, 'HTTP_BAD_RANGE');
  t.match(err.message, /asked for bytes=1000-, got 206 with Content-Range bytes 0-/);
});

t.test('stalled response: the idle timeout turns into a resume', async (t) => {
  const s = await serve(t, (req, res, n) => {
    if (n === 0) {
      res.writeHead(200, { 'content-length': HANDBOOK.length, etag: '"s"' });
      res.write(HANDBOOK.subarray(0, 8000)); // then silence
    } else send(req, res, HANDBOOK, { etag: '"s"' });
  });
  const retries: RetryInfo[] = [];
  const got = await collect(openHttpInput(s.url, { ...fast, timeoutMs: 300, onRetry: (i) => retries.push(i) }));
  t.ok(got.equals(HANDBOOK));
  t.equal(s.seen[1].range, 'bytes=8000-');
  t.match(retries[0].reason, /UND_ERR_BODY_TIMEOUT/);
});

t.test('connection refused: retried, then a clear network error', async (t) => {
  const s = await serve(t, (req, res) => send(req, res, HANDBOOK));
  const port = new URL(s.origin).port;
  // A port that was just free: bind and close a server to get one.
  const tmp = http.createServer();
  await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
  const dead = (tmp.address() as AddressInfo).port;
  await new Promise((r) => tmp.close(r));
  t.not(String(dead), port);
  const retries: RetryInfo[] = [];
  const err = await collect(openHttpInput(`http://127.0.0.1:${dead}/x.jsonl?token=secret`, { retries: 2, minBackoffMs: 5, maxBackoffMs: 10, onRetry: (i) => retries.push(i) })).catch((e) => e);
  t.equal(err.code, 'HTTP_NETWORK');
  t.match(err.message, /ECONNREFUSED/);
  t.notMatch(err.message, /secret/, 'query strings (signed URLs) stay out of messages');
  t.equal(retries.length, 2);
});

t.test('redirects are followed; credentials are not sent to another origin', async (t) => {
  const target = await serve(t, (req, res) => send(req, res, HANDBOOK));
  const s = await serve(t, (req, res, n) => {
    if (req.url === '/same') return send(req, res, HANDBOOK);
    res.writeHead(302, { location: n === 0 ? '/same' : `${target.origin}/cdn/file.gz` });
    res.end();
  });
  const a = await collect(openHttpInput(s.url, { ...fast, headers: { authorization: 'Bearer abc' } }));
  t.ok(a.equals(HANDBOOK));
  t.equal(s.seen[1].auth, 'Bearer abc', 'same origin keeps the header');
  const b = await collect(openHttpInput(s.url, { ...fast, headers: { authorization: 'Bearer abc' } }));
  t.ok(b.equals(HANDBOOK));
  t.equal(target.seen[0].auth, undefined, 'cross-origin redirect drops Authorization');
});

t.test('destroying the stream or aborting the signal stops requests', async (t) => {
  const s = await serve(t, (req, res) => {
    res.writeHead(503);
    res.end();
  });
  const ac = new AbortController();
  const stream = openHttpInput(s.url, { retries: 8, minBackoffMs: 2000, maxBackoffMs: 2000, signal: ac.signal });
  const done = collect(stream).catch((e) => e);
  await new Promise((r) => setTimeout(r, 200));
  const t0 = Date.now();
  ac.abort();
  const err = await done;
  t.equal(err.name, 'AbortError');
  t.ok(Date.now() - t0 < 500, 'abort does not wait out the backoff');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(s.seen.length, 1);

  // Reading a little of a large body, then destroying: the connection is released.
  const big = Buffer.concat(Array.from({ length: 20 }, () => KJV));
  const s2 = await serve(t, (req, res) => send(req, res, big));
  const st = openHttpInput(s2.url, fast);
  const first = await new Promise<Buffer>((r) => st.once('data', r));
  t.ok(first.length > 0);
  st.destroy();
  await new Promise((r) => st.once('close', r));
  t.equal(s2.seen.length, 1);
});

t.test('backpressure: a paused consumer stops the download at the stream buffer', async (t) => {
  const big = Buffer.concat(Array.from({ length: 40 }, () => KJV)); // ~7 MB
  const s = await serve(t, (req, res, n) => send(req, res, big, { etag: '"b"', dropAfter: n === 0 ? 700_000 : undefined }));
  const st = openHttpInput(s.url, fast);
  const parts: Buffer[] = [];
  // Listen for the end from the start: on a fast machine the download may finish early.
  const ended = new Promise((r) => st.once('end', r));
  st.on('data', (c: Buffer) => parts.push(c));
  await new Promise((r) => setTimeout(r, 100));
  st.pause();
  await new Promise((r) => setTimeout(r, 400));
  const buffered = st.readableLength;
  t.ok(buffered <= (1 << 20) + (256 << 10), `buffered ${buffered} bytes while paused`);
  st.resume();
  await ended;
  t.ok(Buffer.concat(parts).equals(big), 'every byte after resuming, across a drop');
  t.equal(s.seen.length, 2);
});

t.test('startAt + expect: resuming from a checkpoint offset', async (t) => {
  const s = await serve(t, (req, res) => send(req, res, KJV, { etag: '"k1"' }));
  const meta: unknown[] = [];
  const st = openHttpInput(s.url, fast);
  st.on('meta', (m) => meta.push(m));
  await collect(st);
  t.same(meta, [{ etag: '"k1"', lastModified: undefined, total: KJV.length }], 'meta: what a checkpoint records');

  const got = await collect(openHttpInput(s.url, { ...fast, startAt: 60_000, expect: { etag: '"k1"', total: KJV.length } }));
  t.ok(got.equals(KJV.subarray(60_000)));
  t.equal(s.seen[1].range, 'bytes=60000-');
  t.equal(s.seen[1].ifRange, '"k1"');

  const before = s.seen.length;
  t.equal((await collect(openHttpInput(s.url, { ...fast, startAt: KJV.length, expect: { total: KJV.length } }))).length, 0);
  t.equal(s.seen.length, before, 'already complete: no request');

  const err = await collect(openHttpInput(s.url, { ...fast, startAt: 1000, expect: { etag: '"k0"' } })).catch((e) => e);
  t.equal(err.code, 'HTTP_CHANGED', 'the file changed since the checkpoint');
  t.throws(() => openHttpInput(s.url, { startAt: -1 }), /startAt: expected a byte offset/);
});

async function decodeAll(source: Parameters<typeof decodeInput>[0]): Promise<{ recs: Rec[]; errors: ErrorEntry[]; progress: InputProgress }> {
  const errors: ErrorEntry[] = [];
  const progress: InputProgress = { bytes: 0, records: 0, complete: false };
  const recs: Rec[] = [];
  for await (const batch of decodeInput(source, { ...DEFAULT_DECODE, tmpDir: undefined }, { error: (e) => errors.push(e) }, progress)) recs.push(...batch);
  return { recs, errors, progress };
}

t.test('decode over HTTP: gzip and zstd detected by magic bytes, records equal the local file through drops and 503s', async (t) => {
  const file = path.join(here, '../../samples/handbook.jsonl');
  const local = await decodeAll(fileInput(file));
  t.ok(local.recs.length > 100);
  for (const [kind, data] of [['gzip', HANDBOOK], ['zstd', Buffer.from(zstdCompress(readFileSync(file)))]] as const) {
    const s = await serve(t, (req, res, n) => {
      if (n === 1) return (res.writeHead(503, { 'retry-after': '0' }), res.end());
      send(req, res, data, { etag: `"${kind}"`, dropAfter: n === 0 ? Math.floor(data.length / 3) : n === 2 ? 7777 : undefined });
    });
    const remote = await decodeAll(httpInput(`${s.url}?sig=secret`, fast));
    t.equal(remote.errors.length, 0, `${kind}: no errors`);
    t.ok(remote.progress.complete, `${kind}: complete`);
    t.equal(remote.progress.bytes, data.length, `${kind}: wire bytes counted once`);
    t.same(remote.recs, local.recs, `${kind}: same records as the local file`);
    t.equal(s.seen.length, 4);
  }
});

t.test('decode over HTTP: a body that stays short is a counted input error, not a crash', async (t) => {
  const s = await serve(t, (req, res) => {
    const start = Number(/bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0);
    send(req, res, HANDBOOK, { etag: '"h"', dropAfter: Math.max(0, 50_000 - start) });
  });
  const r = await decodeAll(httpInput(s.url, { retries: 2, minBackoffMs: 5, maxBackoffMs: 10 }));
  t.notOk(r.progress.complete);
  t.match(r.progress.error ?? '', /body ended early: 50000 of \d+ bytes/);
  t.ok(r.recs.length > 0, `the ${r.recs.length} records before the cut are kept`);
  t.ok(r.errors.length >= 1);
});

t.test('helpers', async (t) => {
  t.equal(parseRetryAfter('3'), 3000);
  t.equal(parseRetryAfter(new Date(Date.now() + 5000).toUTCString(), Date.now()) !== undefined, true);
  t.equal(parseRetryAfter('soon'), undefined);
  t.same(parseContentRange('bytes 10-99/100'), { start: 10, end: 99, total: 100 });
  t.same(parseContentRange('bytes 10-99/*'), { start: 10, end: 99, total: undefined });
  t.equal(parseContentRange('items 1-2/3'), undefined);
  for (let a = 1; a <= 10; a++) {
    const base = Math.min(10_000, 200 * 2 ** (a - 1));
    t.equal(backoffDelay(a, 200, 10_000, () => 0), base / 2);
    t.equal(backoffDelay(a, 200, 10_000, () => 1), base);
  }
  t.equal(redactUrl('https://user:pw@hub.example/a/b.parquet?X-Amz-Signature=zz'), 'https://hub.example/a/b.parquet?…');
  t.throws(() => openHttpInput('ftp://x/y'), { code: 'HTTP_URL' });
  t.throws(() => openHttpInput('http://[bad'), { code: 'HTTP_URL' });
});
