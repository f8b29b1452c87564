import t, { type Test } from 'tap';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { formatBytes, formatDuration, renderReportHtml, tickLabel, validateRunReport, writeReportHtml } from '../../lib/commands/report-html.ts';
import type { RunReport } from '../../lib/report.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const FIXTURE = path.join(here, '../fixtures/run-report.json');
const report: RunReport = JSON.parse(readFileSync(FIXTURE, 'utf8'));

interface El {
  tag: string;
  attrs: Record<string, string>;
  /** Text right after the start tag, up to the next tag. */
  text: string;
}

function unescape(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|#39|nbsp);/g, (_, e) => ({ lt: '<', gt: '>', amp: '&', quot: '"', '#39': "'", nbsp: '\u00a0' })[e as string]!);
}

/** Start tags in document order with their attributes and leading text (enough for this page's flat cells). */
function elements(html: string): El[] {
  const out: El[] = [];
  for (const m of html.matchAll(/<([a-zA-Z][\w-]*)((?:\s+[^\s=>/]+(?:="[^"]*")?)*)\s*\/?>([^<]*)/g)) {
    const attrs: Record<string, string> = {};
    for (const a of m[2].matchAll(/([^\s=]+)(?:="([^"]*)")?/g)) attrs[a[1]] = unescape(a[2] ?? '');
    out.push({ tag: m[1].toLowerCase(), attrs, text: unescape(m[3]) });
  }
  return out;
}

interface StepRow {
  step: number;
  op: string;
  cells: Record<string, { value: string; text: string }>;
  reasons: { dropped: Record<string, number>; errors: Record<string, number> };
}

function stepRows(els: El[]): StepRow[] {
  const rows: StepRow[] = [];
  let inSteps = false;
  let cell = '';
  for (const e of els) {
    if (e.tag === 'table') inSteps = e.attrs.id === 'steps';
    if (!inSteps) continue;
    if (e.tag === 'tr' && e.attrs['data-step'] !== undefined) rows.push({ step: Number(e.attrs['data-step']), op: e.attrs['data-op'], cells: {}, reasons: { dropped: {}, errors: {} } });
    const row = rows[rows.length - 1];
    if (!row) continue;
    if (e.tag === 'td' && e.attrs['data-field']) {
      cell = e.attrs['data-field'];
      row.cells[cell] = { value: e.attrs['data-value'], text: e.text.trim() };
    }
    if (e.tag === 'span' && e.attrs.class === 'total') row.cells[cell].text = e.text.trim();
    if (e.tag === 'span' && e.attrs['data-reason'] !== undefined) (row.reasons[cell as 'dropped' | 'errors'] ??= {})[e.attrs['data-reason']] = Number(e.attrs['data-value']);
  }
  return rows;
}

const readable = (text: string) => Number(text.replace(/,/g, ''));
const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);

/** The assertions checkPage uses (the same on the root test and on subtests). */
type Tap = Pick<Test, 'equal' | 'same' | 'ok'>;

/** Everything a reader sees must agree with run.json: exact attributes and the formatted text. */
function checkPage(t: Tap, html: string, r: RunReport): void {
  const els = elements(html);
  const rows = stepRows(els);
  t.equal(rows.length, r.steps.length, 'one row per step');
  r.steps.forEach((s, i) => {
    const row = rows[i];
    t.equal(row.op, s.op);
    for (const f of ['recordsIn', 'recordsOut', 'tokensIn', 'tokensOut', 'recordsPerSec'] as const) {
      t.equal(Number(row.cells[f].value), s[f], `${s.op} ${f} attribute`);
      // Token zeros before any step counted tokens read "—" (not counted), never a wrong number.
      if (row.cells[f].text === '—') t.ok(f.startsWith('tokens') && s[f] === 0 && r.steps.slice(0, i + 1).every((x) => x.tokensOut === 0), `${s.op} ${f}: dash only for not-yet-counted tokens`);
      else t.equal(readable(row.cells[f].text), s[f], `${s.op} ${f} text "${row.cells[f].text}"`);
    }
    t.equal(Number(row.cells.timeMs.value), s.timeMs);
    const kept = s.recordsIn ? (100 * s.recordsOut) / s.recordsIn : undefined;
    if (kept === undefined) t.equal(row.cells.recordsKeptPct.text, '—');
    else {
      t.equal(Number(row.cells.recordsKeptPct.value), kept);
      // Never "100.0%" when something was lost.
      t.equal(row.cells.recordsKeptPct.text, kept >= 99.95 && kept < 100 ? '99.9%' : `${kept.toFixed(1)}%`, `${s.op} % kept`);
    }
    t.equal(Number(row.cells.recordsOfDecodedPct.value), (100 * s.recordsOut) / r.totals.recordsIn);
    t.equal(Number(row.cells.dropped.value), sum(s.dropped));
    t.equal(readable(row.cells.dropped.text), sum(s.dropped));
    t.same(row.reasons.dropped, s.dropped, `${s.op} dropped by reason`);
    t.equal(Number(row.cells.errors.value), sum(s.errors));
    t.same(row.reasons.errors, s.errors, `${s.op} errors by reason`);
  });

  const byId = new Map(els.filter((e) => e.attrs.id).map((e) => [e.attrs.id, e]));
  for (const k of ['recordsIn', 'recordsOut', 'dropped', 'errors', 'bytesIn'] as const) t.equal(Number(byId.get(`totals-${k}`)!.attrs['data-value']), r.totals[k], `totals ${k}`);
  for (const k of ['recordsIn', 'recordsOut', 'dropped', 'errors'] as const) t.equal(readable(byId.get(`totals-${k}`)!.text), r.totals[k]);
  t.equal(Number(byId.get('totals-elapsedMs')!.attrs['data-value']), r.elapsedMs);
  t.equal(byId.get('status')!.text, r.status);

  // Inputs
  const inputRows = els.filter((e) => e.tag === 'tr' && e.attrs['data-input'] !== undefined);
  t.equal(inputRows.length, r.inputs.length);
  const inputCells = els.filter((e, i) => e.tag === 'td' && e.attrs['data-field'] && els.slice(0, i).reverse().find((p) => p.tag === 'tr')?.attrs['data-input'] !== undefined);
  r.inputs.forEach((inp, i) => {
    const cells = inputCells.slice(i * 3, i * 3 + 3);
    t.same(cells.map((c) => c.attrs['data-field']), ['bytes', 'records', 'complete']);
    t.equal(Number(cells[0].attrs['data-value']), inp.bytes);
    t.equal(Number(cells[1].attrs['data-value']), inp.records);
    t.equal(readable(cells[1].text), inp.records);
    t.equal(cells[2].attrs['data-value'], String(inp.complete));
  });

  // Histograms: one chart per entry, one bar per bin with the exact count; bar heights follow the counts.
  const expected = r.steps.flatMap((s, i) => Object.entries(s.histograms).map(([name, h]) => ({ i, name, h })));
  const svgs = els.filter((e) => e.tag === 'svg' && e.attrs.class === 'hist');
  t.equal(svgs.length, expected.length, 'a chart for every histogram');
  for (const { i, name, h } of expected) {
    const at = els.findIndex((e) => e.tag === 'svg' && e.attrs.id === `hist-${i}-${name}`);
    t.ok(at >= 0, `chart ${name}`);
    const end = els.findIndex((e, j) => j > at && (e.tag === 'svg' || e.tag === 'figure'));
    const part = els.slice(at, end < 0 ? undefined : end);
    const bars = part.filter((e) => e.tag === 'rect' && e.attrs.class === 'bar');
    t.same(
      bars.map((b) => [Number(b.attrs['data-lo']), Number(b.attrs['data-hi']), Number(b.attrs['data-count'])]),
      h.bins.map((b) => [b.lo, b.hi, b.count]),
      `${name} bins`,
    );
    const heights = bars.map((b) => Number(b.attrs.height));
    const top = h.bins.reduce((m, b, k) => (b.count > h.bins[m].count ? k : m), 0);
    if (svgs.find((s) => s.attrs.id === `hist-${i}-${name}`)!.attrs['data-scale'] === 'linear') {
      h.bins.forEach((b, k) => t.ok(Math.abs(heights[k] - (heights[top] * b.count) / h.bins[top].count) <= 0.11, `${name} bar ${k} height`));
    } else {
      const order = (a: number, b: number) => Math.sign(a - b);
      h.bins.forEach((b, k) => k && t.equal(order(heights[k], heights[k - 1]), order(b.count, h.bins[k - 1].count), `${name} log bars keep order`));
    }
    const texts = part.filter((e) => e.tag === 'text').map((e) => e.text);
    t.ok(texts.includes(name), `${name}: x axis title`);
    t.ok(texts.some((x) => x.startsWith('count')), `${name}: y axis title`);
  }
}

t.test('the page carries every number of run.json, exactly and readably', async (t) => {
  const html = renderReportHtml(report);
  checkPage(t, html, report);
  // A check of the check: a page with one wrong number fails it.
  const failures: string[] = [];
  const recorder = {
    equal: (a: unknown, b: unknown, m?: string) => (a === b || (failures.push(m ?? 'equal'), false)),
    same: (a: unknown, b: unknown, m?: string) => (isDeepStrictEqual(a, b) || (failures.push(m ?? 'same'), false)),
    ok: (v: unknown, m?: string) => (!!v || (failures.push(m ?? 'ok'), false)),
  } as unknown as Tap;
  checkPage(recorder, html, report);
  t.same(failures, [], 'the recorder agrees with tap on the real page');
  checkPage(recorder, html.replace('data-value="1101736">1,101,736<', 'data-value="1101737">1,101,737<'), report);
  t.ok(failures.length >= 2 && failures.some((f) => /filter recordsOut/.test(f)), `caught: ${failures.join('; ')}`);
});

t.test('a real report written by `mixstream run` on samples/ renders as well', async (t) => {
  // test/fixtures/run-report-samples.json comes from:
  //   node bin/mixstream.js run test/fixtures/report-pipeline.json samples/{handbook,kjv,fortunes,gcide}.jsonl -o /tmp/out.jsonl --report test/fixtures/run-report-samples.json
  const real: RunReport = JSON.parse(readFileSync(path.join(here, '../fixtures/run-report-samples.json'), 'utf8'));
  t.same(validateRunReport(real), []);
  const html = renderReportHtml(real);
  checkPage(t, html, real);
  t.notMatch(html, /NaN|undefined|Infinity/);
  const rows = stepRows(elements(html));
  const firstTokens = real.steps.findIndex((s) => s.tokensOut > 0);
  t.ok(firstTokens > 0, 'tokens are counted by a later step');
  t.equal(rows[0].cells.tokensOut.text, '—', 'before the tokens step: not counted');
  t.equal(rows[firstTokens].cells.tokensOfFirstPct.text, '100.0%');
});

t.test('self-contained: no scripts, no external resources', async (t) => {
  const html = renderReportHtml(report);
  t.notMatch(html, /<script|<link|<img|<iframe|@import|url\(|\bsrc=|\bhref=/i);
  t.match(html, /<meta charset="utf-8">/);
  t.match(html, /^<!doctype html>/);
});

t.test('strings from the report are escaped', async (t) => {
  const evil = structuredClone(report) as RunReport & { error?: string };
  evil.pipeline = '<script>alert(1)</script>.json';
  evil.steps[2].op = 'x"><img src=y>';
  evil.steps[2].dropped = { '<b>bold</b>': 5 };
  evil.inputs[0].name = 'a&b<c>.jsonl';
  evil.status = 'failed';
  evil.error = 'Error: <boom> & "quotes"';
  const html = renderReportHtml(evil);
  t.notMatch(html, /<script>|<img|<b>bold/);
  t.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;\.json/);
  t.match(html, /a&amp;b&lt;c&gt;\.jsonl/);
  t.match(html, /<pre class="failure" id="failure">Error: &lt;boom&gt; &amp; &quot;quotes&quot;<\/pre>/);
  const rows = stepRows(elements(html));
  t.equal(rows[2].op, 'x"><img src=y>');
  t.same(rows[2].reasons.dropped, { '<b>bold</b>': 5 });
});

t.test('a small run without tokens, histograms or inputs still renders sensibly', async (t) => {
  const r: RunReport = {
    version: 1,
    pipeline: 'p.json',
    startedAt: '2026-11-27T10:00:00.000Z',
    finishedAt: '2026-11-27T10:00:00.250Z',
    elapsedMs: 250,
    status: 'ok',
    exitCode: 0,
    inputs: [],
    steps: [
      { index: -1, op: 'decode', recordsIn: 0, recordsOut: 0, tokensIn: 0, tokensOut: 0, dropped: {}, errors: {}, counters: {}, histograms: {}, timeMs: 0, recordsPerSec: 0, mbPerSec: 0 },
      // An operator that observed nothing: JSON turns ±Infinity into null.
      { index: 0, op: 'score', recordsIn: 0, recordsOut: 0, tokensIn: 0, tokensOut: 0, dropped: {}, errors: {}, counters: {}, histograms: { score: { count: 0, sum: 0, min: null as unknown as number, max: null as unknown as number, bins: [] } }, timeMs: 0.4, recordsPerSec: 0, mbPerSec: 0 },
    ],
    totals: { recordsIn: 0, recordsOut: 0, bytesIn: 0, errors: 0, dropped: 0 },
    machine: { nproc: 2, node: 'v20.20.2', platform: 'linux-x64' },
  };
  t.same(validateRunReport(r), []);
  const html = renderReportHtml(r);
  t.notMatch(html, /NaN|undefined|Infinity|>null</);
  t.match(html, /No step reported tokens/);
  t.match(html, /no values/);
  t.notMatch(html, /id="inputs"/);
  const rows = stepRows(elements(html));
  t.equal(rows[0].cells.recordsKeptPct.text, '—');
});

t.test('formatting helpers', async (t) => {
  t.equal(formatBytes(999), '999 B');
  t.equal(formatBytes(2801719010), '2.80 GB');
  t.equal(formatBytes(1048576), '1.05 MB');
  t.equal(formatDuration(412118.4), '6 min 52 s');
  t.equal(formatDuration(5410233), '1 h 30 min 10 s');
  t.equal(formatDuration(1500), '1.50 s');
  t.equal(formatDuration(0.4), '0.4 ms');
  t.same([0, 0.0012, 22.5, 999, 12345, 250000, 999874102, 1.5e9].map(tickLabel), ['0', '0.0012', '22.5', '999', '12.3k', '250k', '1G', '1.5G']);
});

t.test('writeReportHtml: validates, names the file and every problem, writes atomically', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'report-html-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'report.html');
  const { bytes } = await writeReportHtml(FIXTURE, out);
  t.equal(readFileSync(out).length, bytes);
  t.same(readdirSync(dir), ['report.html'], 'no temporary file left');
  checkPage(t, readFileSync(out, 'utf8'), report);

  const bad = path.join(dir, 'bad.json');
  const broken = structuredClone(report) as unknown as Record<string, unknown> & { steps: Record<string, unknown>[] };
  broken.version = 2;
  broken.steps[1].recordsOut = '12';
  delete broken.steps[3].histograms;
  writeFileSync(bad, JSON.stringify(broken));
  await t.rejects(writeReportHtml(bad, out), /bad\.json: not a mixstream run report \(3 problems\):\n {2}version: expected 1, got 2\n {2}steps\[1\]\.recordsOut: expected a number, got "12"\n {2}steps\[3\]\.histograms: expected an object/);
  writeFileSync(bad, '{"version": 1,');
  await t.rejects(writeReportHtml(bad, out), /bad\.json: cannot read the run report/);
  await t.rejects(writeReportHtml(path.join(dir, 'missing.json'), out), /missing\.json: cannot read the run report: ENOENT/);
});

function findChromium(): string | undefined {
  for (const c of ['chromium', 'chromium-browser']) {
    try {
      return execFileSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).trim() || undefined;
    } catch {
      // not installed under this name
    }
  }
  return undefined;
}

const chromium = findChromium();

t.test('headless Chromium renders the numbers of run.json', { skip: chromium ? false : 'chromium is not installed (apt-get install -y chromium)' }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'report-chromium-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const page = path.join(dir, 'report.html');
  await writeReportHtml(FIXTURE, page);
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    // No network at all: any external resource would fail to load.
    '--host-resolver-rules=MAP * ~NOTFOUND',
    `--user-data-dir=${path.join(dir, 'profile')}`,
    '--dump-dom',
    pathToFileURL(page).href,
  ];
  const dom = await new Promise<string>((resolve, reject) =>
    execFile(chromium!, args, { encoding: 'utf8', timeout: 90_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr.slice(-2000)}`)) : resolve(stdout))),
  );
  t.match(dom, /<html lang="en">/, 'Chromium serialized the DOM');
  t.match(dom, /<title>mixstream run: pipelines\/zyda2-samplemix\.json<\/title>/);
  checkPage(t, dom, report);
});
