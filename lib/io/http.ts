// Remote inputs: one HTTP(S) resource as a byte stream that survives a flaky network.
//
// Built on undici's `request` (no content decoding, so byte offsets are offsets in the stored
// file and the decode step sees the file's own magic bytes). undici's RetryAgent is not used:
// it fails when a server answers a Range request with a full 200 body, and it only knows
// ETags; here a 200 after a drop is handled by skipping the bytes already delivered, and
// Last-Modified guards the splice when the server sends no strong ETag.
import { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import type { InputSource } from './decode.ts';

export interface RetryInfo {
  /** 1-based number of this retry within the current run of attempts without progress. */
  attempt: number;
  retries: number;
  delayMs: number;
  /** Why the previous attempt failed: `status 503`, `ECONNRESET`, `short body`, ... */
  reason: string;
  status?: number;
  /** Bytes delivered so far; the next request asks for `Range: bytes=<offset>-`. */
  offset: number;
  total?: number;
}

export interface HttpInputOptions {
  /**
   * Retries allowed in a row without receiving a new byte. An attempt that delivers new bytes
   * resets the count, so a long download survives many separate drops while a server that
   * keeps failing at the same place is given up on after `retries` more tries.
   */
  retries?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Longest wait accepted from a `Retry-After` header. */
  maxRetryAfterMs?: number;
  /** Connect timeout, time to response headers, and longest silence between body chunks. */
  timeoutMs?: number;
  /** Extra request headers (for example `authorization`); dropped on a cross-origin redirect. */
  headers?: Record<string, string>;
  maxRedirects?: number;
  signal?: AbortSignal;
  onRetry?: (info: RetryInfo) => void;
  /**
   * Start at this byte offset (resuming from a checkpoint): the first request already asks for
   * `Range: bytes=<startAt>-`. Pass the `expect` recorded with the checkpoint so a file that
   * changed since is refused instead of spliced.
   */
  startAt?: number;
  /** Validators the resource must still have (from an earlier `meta` event). */
  expect?: RemoteMeta;
  /** A caller-owned dispatcher (connection pool, proxy); by default one Agent per input, closed at the end. */
  dispatcher?: Dispatcher;
}

/** What identifies the version of a remote file: emitted as the stream's `meta` event after the first response. */
export interface RemoteMeta {
  etag?: string;
  lastModified?: string;
  /** The full length in bytes, when the server announced it. */
  total?: number;
}

export type HttpInputErrorCode =
  | 'HTTP_STATUS' // a non-retryable status (4xx other than 408/429), or retries exhausted on 5xx
  | 'HTTP_NETWORK' // retries exhausted on connection errors and timeouts
  | 'HTTP_SHORT_BODY' // retries exhausted while the body stayed shorter than announced
  | 'HTTP_LONG_BODY' // more bytes than Content-Length / Content-Range announced
  | 'HTTP_CHANGED' // the resource changed between requests: resuming would splice two versions
  | 'HTTP_BAD_RANGE' // a 206 for a range other than the one asked for, or a 416
  | 'HTTP_REDIRECT' // too many redirects or a redirect without Location
  | 'HTTP_URL'; // not an http(s) URL

export class HttpInputError extends Error {
  readonly code: HttpInputErrorCode;
  readonly url: string;
  readonly status?: number;
  readonly received: number;
  readonly total?: number;
  readonly attempts: number;
  constructor(code: HttpInputErrorCode, message: string, info: { url: string; status?: number; received: number; total?: number; attempts: number; cause?: unknown }) {
    super(message, info.cause === undefined ? undefined : { cause: info.cause });
    this.name = 'HttpInputError';
    this.code = code;
    this.url = info.url;
    this.status = info.status;
    this.received = info.received;
    this.total = info.total;
    this.attempts = info.attempts;
  }
}

/** The URL without credentials or query string (signed URLs carry secrets there), for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return '<invalid url>';
  }
}

export function isHttpUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/** Seconds or an HTTP date, as milliseconds from `now`; undefined when absent or unparseable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/** `bytes <start>-<end>/<total|*>`. */
export function parseContentRange(value: string | undefined): { start: number; end: number; total?: number } | undefined {
  const m = value && /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(value.trim());
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

/** Exponential backoff with equal jitter: a random delay in [base/2, base], base = min·2^(attempt-1) capped at max. */
export function backoffDelay(attempt: number, minMs: number, maxMs: number, random = Math.random): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(base / 2 + (random() * base) / 2);
}

const RETRYABLE_STATUS = (s: number) => s === 408 || s === 429 || (s >= 500 && s !== 501 && s !== 505);
/** Errors that will not go away by asking again. */
const FATAL_NET_CODES = new Set(['ENOTFOUND', 'UND_ERR_INVALID_ARG', 'ERR_INVALID_URL', 'UND_ERR_NOT_SUPPORTED', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'ERR_TLS_CERT_ALTNAME_INVALID', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN']);

function header(h: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

function errCode(e: unknown): string {
  const err = e as { code?: string; cause?: { code?: string }; name?: string; message?: string };
  return err?.cause?.code ?? err?.code ?? err?.name ?? String(e);
}

/** A validator usable in If-Range: a strong ETag, else Last-Modified. */
interface Validators {
  etag?: string;
  lastModified?: string;
}

function validators(h: Dispatcher.ResponseData['headers']): Validators {
  return { etag: header(h, 'etag'), lastModified: header(h, 'last-modified') };
}

function ifRange(v: Validators): string | undefined {
  if (v.etag && !v.etag.startsWith('W/')) return v.etag;
  return v.lastModified;
}

/** Describes how `now` differs from `first`, or undefined when nothing says the resource changed. */
function changed(first: Validators, now: Validators): string | undefined {
  if (first.etag && now.etag && first.etag !== now.etag) return `ETag ${first.etag} -> ${now.etag}`;
  if (first.lastModified && now.lastModified && first.lastModified !== now.lastModified) return `Last-Modified ${first.lastModified} -> ${now.lastModified}`;
  return undefined;
}

class Retryable extends Error {
  constructor(readonly reason: string, readonly status?: number, readonly retryAfterMs?: number, readonly kind: 'network' | 'status' | 'short' = 'network', cause?: unknown) {
    super(reason, cause === undefined ? undefined : { cause });
  }
}

class HttpInput extends Readable {
  private readonly url: string;
  private readonly shown: string;
  private readonly o: Required<Pick<HttpInputOptions, 'retries' | 'minBackoffMs' | 'maxBackoffMs' | 'maxRetryAfterMs' | 'timeoutMs' | 'maxRedirects'>> & HttpInputOptions;
  private readonly ac = new AbortController();
  private readonly dispatcher: Dispatcher;
  private readonly ownDispatcher: boolean;
  private started = false;
  private wake?: () => void;
  private received = 0;
  private total?: number;
  private first?: Validators;
  private announced = false;
  private attempts = 0;
  private readonly onOuterAbort = () => this.destroy(new DOMException('The operation was aborted', 'AbortError'));

  constructor(url: string, opts: HttpInputOptions) {
    super({ highWaterMark: 1 << 20 });
    this.url = url;
    this.shown = redactUrl(url);
    this.o = { retries: 8, minBackoffMs: 200, maxBackoffMs: 10_000, maxRetryAfterMs: 120_000, timeoutMs: 30_000, maxRedirects: 10, ...opts };
    if (opts.startAt !== undefined && !(Number.isInteger(opts.startAt) && opts.startAt >= 0)) throw new RangeError(`startAt: expected a byte offset >= 0, got ${opts.startAt}`);
    this.received = opts.startAt ?? 0;
    if (opts.expect) {
      this.first = { etag: opts.expect.etag, lastModified: opts.expect.lastModified };
      this.total = opts.expect.total;
    }
    this.ownDispatcher = !opts.dispatcher;
    this.dispatcher = opts.dispatcher ?? new Agent({ connect: { timeout: this.o.timeoutMs }, headersTimeout: this.o.timeoutMs, bodyTimeout: this.o.timeoutMs });
    if (opts.signal) {
      if (opts.signal.aborted) queueMicrotask(this.onOuterAbort);
      else opts.signal.addEventListener('abort', this.onOuterAbort, { once: true });
    }
  }

  override _read(): void {
    if (!this.started) {
      this.started = true;
      this.run().then(
        () => this.push(null),
        (e) => this.destroy(e),
      );
    } else {
      const w = this.wake;
      this.wake = undefined;
      w?.();
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.ac.abort();
    this.o.signal?.removeEventListener('abort', this.onOuterAbort);
    this.wake?.();
    if (this.ownDispatcher) (this.dispatcher as Agent).destroy().catch(() => {});
    cb(err);
  }

  private fail(code: HttpInputErrorCode, message: string, status?: number, cause?: unknown): HttpInputError {
    return new HttpInputError(code, `${this.shown}: ${message}`, { url: this.shown, status, received: this.received, total: this.total, attempts: this.attempts, cause });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.ac.signal.aborted) return resolve();
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.ac.signal.addEventListener('abort', done, { once: true });
    });
  }

  private async run(): Promise<void> {
    let failures = 0; // consecutive attempts without a new byte
    if (this.total !== undefined && this.received === this.total) return; // resumed at the very end
    for (;;) {
      if (this.ac.signal.aborted) return;
      const before = this.received;
      this.attempts++;
      try {
        if (await this.attempt()) return;
        // The body ended cleanly but short of the announced length.
        throw new Retryable(`short body: ${this.received} of ${this.total} bytes`, undefined, undefined, 'short');
      } catch (e) {
        if (this.ac.signal.aborted) return;
        if (e instanceof HttpInputError) throw e;
        const r = e instanceof Retryable ? e : this.classify(e);
        if (this.received > before) failures = 0;
        failures++;
        if (failures > this.o.retries) throw this.exhausted(r, failures - 1);
        let delayMs = backoffDelay(failures, this.o.minBackoffMs, this.o.maxBackoffMs);
        if (r.retryAfterMs !== undefined) delayMs = Math.max(delayMs, Math.min(r.retryAfterMs, this.o.maxRetryAfterMs));
        this.o.onRetry?.({ attempt: failures, retries: this.o.retries, delayMs, reason: r.reason, status: r.status, offset: this.received, total: this.total });
        await this.sleep(delayMs);
      }
    }
  }

  private classify(e: unknown): Retryable {
    const code = errCode(e);
    if (FATAL_NET_CODES.has(code)) throw this.fail('HTTP_NETWORK', `${code}: ${(e as Error).message ?? e}`, undefined, e);
    return new Retryable(`${code}${(e as Error)?.message ? ` (${(e as Error).message})` : ''}`, undefined, undefined, 'network', e);
  }

  private exhausted(r: Retryable, retries: number): HttpInputError {
    const where = `${this.received}${this.total !== undefined ? ` of ${this.total}` : ''} bytes received`;
    const after = `after ${retries} ${retries === 1 ? 'retry' : 'retries'} without progress (${this.attempts} requests)`;
    if (r.kind === 'short') return this.fail('HTTP_SHORT_BODY', `body ended early: ${where}, ${after}`);
    if (r.kind === 'status') return this.fail('HTTP_STATUS', `server kept answering ${r.status}, ${after}; ${where}`, r.status);
    return this.fail('HTTP_NETWORK', `${r.reason}, ${after}; ${where}`, undefined, r.cause);
  }

  /** Sends one request (following redirects); resolves after the response headers. */
  private async send(): Promise<Dispatcher.ResponseData> {
    let target = this.url;
    const origin = new URL(this.url).origin;
    for (let hop = 0; ; hop++) {
      const u = new URL(target);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw this.fail('HTTP_URL', `unsupported protocol ${u.protocol} (only http: and https:)`);
      const headers: Record<string, string> = { 'accept-encoding': 'identity', ...(u.origin === origin ? this.o.headers : stripAuth(this.o.headers)) };
      if (this.received > 0) {
        headers.range = `bytes=${this.received}-`;
        const v = this.first && ifRange(this.first);
        if (v) headers['if-range'] = v;
      }
      const res = await request(target, { method: 'GET', headers, dispatcher: this.dispatcher, signal: this.ac.signal });
      if (res.statusCode >= 300 && res.statusCode < 400 && res.statusCode !== 304) {
        const loc = header(res.headers, 'location');
        res.body.resume();
        if (!loc) throw this.fail('HTTP_REDIRECT', `status ${res.statusCode} without a Location header`, res.statusCode);
        if (hop >= this.o.maxRedirects) throw this.fail('HTTP_REDIRECT', `more than ${this.o.maxRedirects} redirects`, res.statusCode);
        target = new URL(loc, target).href;
        continue;
      }
      return res;
    }
  }

  /** One request. True when the whole resource has been delivered. */
  private async attempt(): Promise<boolean> {
    const res = await this.send();
    const { statusCode: status, headers, body } = res;
    try {
      if (status !== 200 && status !== 206) {
        body.resume();
        if (status === 416) throw this.fail('HTTP_BAD_RANGE', `416 Range Not Satisfiable for bytes=${this.received}- (announced length ${this.total ?? 'unknown'})`, status);
        if (RETRYABLE_STATUS(status)) throw new Retryable(`status ${status}`, status, parseRetryAfter(header(headers, 'retry-after')), 'status');
        throw this.fail('HTTP_STATUS', `${status}${statusText(status)} (not retried)`, status);
      }
      const v = validators(headers);
      const length = header(headers, 'content-length') !== undefined ? Number(header(headers, 'content-length')) : undefined;
      let skip = 0;
      const firstResponse = !this.announced;
      if (this.first === undefined) {
        this.first = v;
      } else {
        const diff = changed(this.first, v);
        if (diff) throw this.fail('HTTP_CHANGED', `the resource changed between requests (${diff}) after ${this.received} bytes were read; restart this input from the beginning`, status);
      }
      if (status === 206) {
        const cr = parseContentRange(header(headers, 'content-range'));
        if (!cr || cr.start !== this.received) throw this.fail('HTTP_BAD_RANGE', `asked for bytes=${this.received}-, got 206 with Content-Range ${header(headers, 'content-range') ?? '(none)'}`, status);
        if (cr.total !== undefined) this.noteTotal(cr.total, status);
        if (length !== undefined && length !== cr.end - cr.start + 1) throw this.fail('HTTP_BAD_RANGE', `Content-Length ${length} does not match Content-Range ${header(headers, 'content-range')}`, status);
      } else {
        // A full body: the first request, or a server that ignored Range (or If-Range said the
        // representation changed without validators saying so). Skip what was already delivered.
        if (length !== undefined) this.noteTotal(length, status);
        skip = this.received;
      }
      if (firstResponse) {
        this.announced = true;
        this.emit('meta', { etag: v.etag ?? this.first.etag, lastModified: v.lastModified ?? this.first.lastModified, total: this.total } satisfies RemoteMeta);
      }
      try {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          if (!(await this.deliver(chunk, skip, status))) return true;
          skip = Math.max(0, skip - chunk.length);
        }
      } catch (e) {
        if (e instanceof HttpInputError || this.ac.signal.aborted) throw e;
        const of = this.total !== undefined ? ` of ${this.total}` : '';
        throw new Retryable(`connection dropped after ${this.received}${of} bytes: ${errCode(e)}`, status, undefined, 'short', e);
      }
      if (skip > 0) throw new Retryable(`body ended before the ${this.received} bytes already read`, status, undefined, 'short');
      return this.total === undefined || this.received === this.total;
    } finally {
      if (!body.destroyed) {
        body.on('error', () => {}); // the abort error of a body we chose to drop
        body.destroy();
      }
    }
  }

  /** Pushes the part of `chunk` past `skip` bytes; waits while the consumer is full. False once destroyed. */
  private async deliver(chunk: Buffer, skip: number, status: number): Promise<boolean> {
    if (skip >= chunk.length) return true;
    const c = skip > 0 ? chunk.subarray(skip) : chunk;
    if (this.total !== undefined && this.received + c.length > this.total) throw this.fail('HTTP_LONG_BODY', `more bytes than the announced length ${this.total}`, status);
    this.received += c.length;
    if (!this.push(c)) await new Promise<void>((resolve) => (this.wake = resolve));
    return !this.ac.signal.aborted;
  }

  private noteTotal(total: number, status: number): void {
    if (this.total === undefined) this.total = total;
    else if (this.total !== total) throw this.fail('HTTP_CHANGED', `the resource changed between requests (length ${this.total} -> ${total}) after ${this.received} bytes were read; restart this input from the beginning`, status);
  }
}

function stripAuth(h: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) if (!/^(authorization|cookie|proxy-authorization)$/i.test(k)) out[k] = v;
  return out;
}

function statusText(s: number): string {
  const t: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 410: 'Gone' };
  return t[s] ? ` ${t[s]}` : '';
}

/**
 * Opens an http(s) URL as a byte stream. Retries connection errors, timeouts, 5xx, 408 and 429
 * (honouring Retry-After) with exponential backoff and jitter; after a drop mid-body it resumes
 * with `Range: bytes=N-` (+ `If-Range`), accepting a 206 at exactly N or a full 200 whose first N
 * bytes it skips; verifies the total length; fails with an `HttpInputError` (see its `code`).
 */
export function openHttpInput(url: string, opts: HttpInputOptions = {}): Readable {
  if (!isHttpUrl(url) || !URL.canParse(url)) throw new HttpInputError('HTTP_URL', `${redactUrl(url)}: not an http(s) URL`, { url: redactUrl(url), received: 0, attempts: 0 });
  return new HttpInput(url, opts);
}

/** An http(s) URL as a decode input (`decodeInput(httpInput(url), ...)`): the same magic-byte rules as files. */
export function httpInput(url: string, opts: HttpInputOptions = {}): InputSource {
  // The name shows up in messages and the run report: no credentials or signed query strings.
  return { name: redactUrl(url), open: () => openHttpInput(url, opts) };
}
