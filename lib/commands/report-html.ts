// `mixstream report run.json -o report.html`: the run report as one self-contained HTML page
// (inline CSS and SVG, no scripts, no external resources) that can be mailed or archived.
//
// Every number shown sits in an element carrying its exact value: table cells have
// `data-field` + `data-value`, step rows `data-step` + `data-op`, totals have ids
// (`totals-recordsOut`), histogram bars `data-lo`/`data-hi`/`data-count`.
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { HistogramReport, InputReport, RunReport, StepReport } from '../report.ts';

const INT = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Integers with thousands separators; other numbers with up to `digits` decimals. */
export function formatNumber(n: number, digits = 2): string {
  if (!Number.isFinite(n)) return '—';
  if (Number.isInteger(n)) return INT.format(n);
  return new Intl.NumberFormat('en-US', { maximumFractionDigits: digits }).format(n);
}

export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB', 'PB'];
  let v = n;
  let u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[u]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${formatNumber(Math.round(ms * 10) / 10, 1)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h ? `${h} h ${String(m).padStart(2, '0')} min ${String(sec).padStart(2, '0')} s` : `${m} min ${String(sec).padStart(2, '0')} s`;
}

/** out/in as a percentage string, or undefined when there is no input. */
function ratio(out: number, inn: number): number | undefined {
  return inn > 0 ? (100 * out) / inn : undefined;
}

function pct(p: number | undefined): string {
  if (p === undefined) return '—';
  return `${p >= 99.95 && p < 100 ? '99.9' : p.toFixed(1)}%`;
}

/** A numeric cell: readable text, exact value in `data-value`. */
function numCell(field: string, value: number, text = formatNumber(value), title?: string): string {
  return `<td class="num" data-field="${esc(field)}" data-value="${value}"${title ? ` title="${esc(title)}"` : ''}>${esc(text)}</td>`;
}

function pctCell(field: string, p: number | undefined): string {
  return p === undefined ? `<td class="num na" data-field="${field}" data-value="">—</td>` : `<td class="num" data-field="${field}" data-value="${p}">${pct(p)}</td>`;
}

function sumValues(o: Record<string, number>): number {
  let s = 0;
  for (const v of Object.values(o)) s += v;
  return s;
}

/** Reasons with their counts, largest first, as a list inside a cell. */
function reasonsCell(field: string, byReason: Record<string, number>, cls: string): string {
  const total = sumValues(byReason);
  const entries = Object.entries(byReason).sort((a, b) => b[1] - a[1]);
  if (!entries.length) return `<td class="num zero" data-field="${field}" data-value="0">0</td>`;
  const items = entries.map(([r, n]) => `<li><span class="reason">${esc(r)}</span> <span class="n" data-reason="${esc(r)}" data-value="${n}">${formatNumber(n)}</span></li>`).join('');
  return `<td class="num ${cls}" data-field="${field}" data-value="${total}"><span class="total">${formatNumber(total)}</span><ul class="reasons">${items}</ul></td>`;
}

function stepLabel(s: StepReport): string {
  return s.index < 0 ? '—' : String(s.index + 1);
}

/** Position of the first step whose output carries token counts, or -1. */
function firstTokenStep(r: RunReport): number {
  return r.steps.findIndex((s) => s.tokensOut > 0);
}

function stepsTable(r: RunReport): string {
  const decoded = r.totals.recordsIn;
  const firstAt = firstTokenStep(r);
  const firstTokens = firstAt >= 0 ? r.steps[firstAt].tokensOut : 0;
  const rows = r.steps.map((s, i) => {
    // Before the first step that reports tokens, records carry no token_count: zeros mean "not counted".
    const counted = firstAt >= 0 && i >= firstAt;
    const notCounted = (field: string, v: number) => `<td class="num na" data-field="${field}" data-value="${v}" title="records carry no token_count yet">—</td>`;
    const cells = [
      `<td class="idx" title="position in the pipeline file (the implicit decode has none)">${stepLabel(s)}</td>`,
      `<td class="op"><code>${esc(s.op)}</code></td>`,
      numCell('recordsIn', s.recordsIn),
      numCell('recordsOut', s.recordsOut),
      pctCell('recordsKeptPct', ratio(s.recordsOut, s.recordsIn)),
      pctCell('recordsOfDecodedPct', ratio(s.recordsOut, decoded)),
      counted || s.tokensIn ? numCell('tokensIn', s.tokensIn) : notCounted('tokensIn', s.tokensIn),
      counted ? numCell('tokensOut', s.tokensOut) : notCounted('tokensOut', s.tokensOut),
      pctCell('tokensKeptPct', ratio(s.tokensOut, s.tokensIn)),
      pctCell('tokensOfFirstPct', counted && firstTokens ? ratio(s.tokensOut, firstTokens) : undefined),
      reasonsCell('dropped', s.dropped, 'dropped'),
      reasonsCell('errors', s.errors, 'errors'),
      numCell('timeMs', s.timeMs, formatDuration(s.timeMs), `${s.timeMs} ms`),
      numCell('recordsPerSec', s.recordsPerSec),
      s.mbPerSec ? numCell('mbPerSec', s.mbPerSec, formatNumber(s.mbPerSec, 1)) : `<td class="num na" data-field="mbPerSec" data-value="0">—</td>`,
    ];
    return `<tr data-step="${i}" data-index="${s.index}" data-op="${esc(s.op)}">${cells.join('')}</tr>`;
  });
  const noTokens = r.steps.every((s) => s.tokensIn === 0 && s.tokensOut === 0);
  return `<table class="steps" id="steps">
<caption>Documents and tokens after each step</caption>
<thead><tr><th rowspan="2">#</th><th rowspan="2">step</th><th colspan="4">documents</th><th colspan="4">tokens</th><th rowspan="2">dropped<br>by reason</th><th rowspan="2">errors</th><th rowspan="2">time</th><th rowspan="2">records/s</th><th rowspan="2">MB/s</th></tr>
<tr><th>in</th><th>out</th><th>kept</th><th>of decoded</th><th>in</th><th>out</th><th>kept</th><th>of first</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>
<p class="note">“kept” is out/in of the step (above 100% when a step repeats documents); “of decoded” is relative to the records decoded from the inputs; token “of first” is relative to the first step that reports tokens.${noTokens ? ' <strong>No step reported tokens</strong>: token sums come from the <code>token_count</code> field, written by the <code>tokens</code> operator.' : ''}</p>`;
}

function countersTable(r: RunReport): string {
  const rows = r.steps.flatMap((s, i) =>
    Object.entries(s.counters).map(([k, v]) => `<tr data-step="${i}" data-op="${esc(s.op)}"><td class="op"><code>${esc(s.op)}</code></td><td>${esc(k)}</td>${numCell(k, v)}</tr>`),
  );
  if (!rows.length) return '';
  return `<section><h2>Counters</h2><table class="counters" id="counters"><thead><tr><th>step</th><th>counter</th><th>value</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table></section>`;
}

function inputsTable(inputs: InputReport[]): string {
  if (!inputs.length) return '';
  const rows = inputs.map(
    (x, i) =>
      `<tr data-input="${i}"${x.complete ? '' : ' class="incomplete"'}><td class="name">${esc(x.name)}</td>${numCell('bytes', x.bytes, formatBytes(x.bytes), `${formatNumber(x.bytes)} bytes`)}${numCell('records', x.records)}<td data-field="complete" data-value="${x.complete}">${x.complete ? 'yes' : '<strong>no</strong>'}</td><td class="error">${x.error ? esc(x.error) : ''}</td></tr>`,
  );
  return `<section><h2>Inputs</h2><table class="inputs" id="inputs"><thead><tr><th>input</th><th>bytes</th><th>records</th><th>read to the end</th><th>error</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table></section>`;
}

function totalsBlock(r: RunReport): string {
  const items: [string, string, number, string][] = [
    ['recordsIn', 'records decoded', r.totals.recordsIn, formatNumber(r.totals.recordsIn)],
    ['recordsOut', 'records written', r.totals.recordsOut, formatNumber(r.totals.recordsOut)],
    ['dropped', 'dropped', r.totals.dropped, formatNumber(r.totals.dropped)],
    ['errors', 'errors', r.totals.errors, formatNumber(r.totals.errors)],
    ['bytesIn', 'bytes read', r.totals.bytesIn, formatBytes(r.totals.bytesIn)],
    ['elapsedMs', 'elapsed', r.elapsedMs, formatDuration(r.elapsedMs)],
  ];
  const last = r.steps[r.steps.length - 1];
  const first = r.steps.find((s) => s.tokensOut > 0);
  if (first && last) items.splice(2, 0, ['tokensOut', 'tokens written', last.tokensOut, formatNumber(last.tokensOut)]);
  return `<dl class="totals" id="totals">${items
    .map(([k, label, v, text]) => `<div><dt>${label}</dt><dd id="totals-${k}" data-value="${v}"${k === 'bytesIn' ? ` title="${formatNumber(v)} bytes"` : ''}>${esc(text)}</dd></div>`)
    .join('')}</dl>`;
}

/** Short labels for axis ticks: 0.0012 -> 0.0012, 22.5 -> 22.5, 1250000 -> 1.25M. */
export function tickLabel(v: number): string {
  const a = Math.abs(v);
  if (a < 1e4) return a === 0 ? '0' : String(+v.toPrecision(3));
  // [show from, divide by, suffix]; 999.9M rounds to 1000M and is shown as 1G.
  const units: [number, number, string][] = [
    [1e4, 1e3, 'k'],
    [1e6, 1e6, 'M'],
    [1e9, 1e9, 'G'],
    [1e12, 1e12, 'T'],
  ];
  let i = units.length - 1;
  while (a < units[i][0]) i--;
  let x = +(v / units[i][1]).toPrecision(3);
  if (Math.abs(x) >= 1000 && i < units.length - 1) x = +(v / units[++i][1]).toPrecision(3);
  return `${x}${units[i][2]}`;
}

function niceStep(range: number, target: number): number {
  const raw = range / target;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((x) => x >= raw * 0.999)!;
}

/** 0, step, 2·step, ... with step 1/2/5·10^k, covering [0, max]. */
function niceTicks(max: number, target = 5, integer = false): number[] {
  if (max <= 0) return [0];
  const step = integer ? Math.max(1, niceStep(max, target)) : niceStep(max, target);
  const out: number[] = [];
  for (let k = 0; k * step <= max * 1.0001; k++) out.push(+(k * step).toPrecision(12));
  if (out[out.length - 1] < max) out.push(+(out.length * step).toPrecision(12));
  return out;
}

/** Round values inside [lo, hi] for a linear axis. */
function niceTicksWithin(lo: number, hi: number, target = 5): number[] {
  if (!(hi > lo)) return [lo];
  const step = niceStep(hi - lo, target);
  const out: number[] = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) out.push(+(k * step).toPrecision(12));
  return out;
}

const CHART = { w: 640, h: 280, left: 72, right: 16, top: 14, bottom: 58 };

/** A histogram as an SVG bar chart with labelled axes. Skewed distributions get a log count axis. */
export function histogramSvg(name: string, h: HistogramReport, id: string): string {
  const { w, h: H, left, right, top, bottom } = CHART;
  const pw = w - left - right;
  const ph = H - top - bottom;
  const bins = h.bins;
  const maxCount = Math.max(0, ...bins.map((b) => b.count));
  const nonzero = bins.map((b) => b.count).filter((c) => c > 0);
  // Log scale when one bin dwarfs the typical bin (cluster sizes): linear bars would show one bar.
  const median = nonzero.length ? [...nonzero].sort((a, b) => a - b)[Math.floor(nonzero.length / 2)] : 0;
  const log = nonzero.length > 2 && maxCount / median > 100;
  let scale: (c: number) => number;
  let ticks: number[];
  if (log) {
    const top10 = Math.ceil(Math.log10(maxCount + 1));
    scale = (c) => (Math.log10(c + 1) / top10) * ph;
    ticks = Array.from({ length: top10 + 1 }, (_, k) => 10 ** k);
  } else {
    ticks = niceTicks(maxCount, 5, true);
    const tmax = ticks[ticks.length - 1] || 1;
    scale = (c) => (c / tmax) * ph;
  }
  const integerBins = bins.length > 0 && bins.every((b) => Number.isInteger(b.lo) && b.hi - b.lo === 1);
  const bw = bins.length ? pw / bins.length : pw;
  const parts: string[] = [];
  parts.push(`<title>${esc(name)}: ${formatNumber(h.count)} values</title>`);
  // y grid and labels
  for (const t of ticks) {
    const y = top + ph - scale(t);
    parts.push(`<line class="grid" x1="${left}" x2="${left + pw}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}"/>`);
    parts.push(`<text class="tick" x="${left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${tickLabel(t)}</text>`);
  }
  bins.forEach((b, i) => {
    const bh = scale(b.count);
    const x = left + i * bw;
    const label = integerBins ? `${formatNumber(b.lo)}` : `[${tickLabel(b.lo)}, ${tickLabel(b.hi)})`;
    parts.push(
      `<rect class="bar" x="${(x + 1).toFixed(1)}" y="${(top + ph - bh).toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${bh.toFixed(1)}" data-lo="${b.lo}" data-hi="${b.hi}" data-count="${b.count}"><title>${esc(label)}: ${formatNumber(b.count)}</title></rect>`,
    );
  });
  // x axis labels: every bin for integer bins (thinned past 25), else about 6 edges
  if (integerBins) {
    const every = Math.ceil(bins.length / 25);
    bins.forEach((b, i) => {
      if (i % every) return;
      parts.push(`<text class="tick" x="${(left + (i + 0.5) * bw).toFixed(1)}" y="${top + ph + 16}" text-anchor="middle">${tickLabel(b.lo)}</text>`);
    });
  } else if (bins.length) {
    // A linear axis from the first bin's lower edge to the last bin's upper edge, ticks at round values.
    const lo = bins[0].lo;
    const hi = bins[bins.length - 1].hi;
    const xOf = (v: number) => left + ((v - lo) / (hi - lo || 1)) * pw;
    const ticksX = niceTicksWithin(lo, hi);
    const edges = [lo, hi].filter((e) => ticksX.every((t) => Math.abs(xOf(t) - xOf(e)) > pw * 0.09));
    for (const v of [...ticksX, ...edges]) {
      const x = xOf(v).toFixed(1);
      parts.push(`<line class="axis" x1="${x}" x2="${x}" y1="${top + ph}" y2="${top + ph + 4}"/>`);
      parts.push(`<text class="tick" x="${x}" y="${top + ph + 16}" text-anchor="middle">${tickLabel(v)}</text>`);
    }
  }
  parts.push(`<line class="axis" x1="${left}" x2="${left + pw}" y1="${top + ph}" y2="${top + ph}"/>`);
  parts.push(`<line class="axis" x1="${left}" x2="${left}" y1="${top}" y2="${top + ph}"/>`);
  parts.push(`<text class="label" x="${left + pw / 2}" y="${H - 12}" text-anchor="middle">${esc(name)}</text>`);
  parts.push(`<text class="label" transform="translate(16 ${top + ph / 2}) rotate(-90)" text-anchor="middle">count${log ? ' (log scale)' : ''}</text>`);
  if (!bins.length) parts.push(`<text class="label" x="${left + pw / 2}" y="${top + ph / 2}" text-anchor="middle">no values</text>`);
  return `<svg id="${esc(id)}" class="hist" viewBox="0 0 ${w} ${H}" role="img" aria-label="${esc(name)} histogram" data-scale="${log ? 'log' : 'linear'}">${parts.join('')}</svg>`;
}

function histogramsSection(r: RunReport): string {
  const blocks: string[] = [];
  r.steps.forEach((s, i) => {
    for (const [name, h] of Object.entries(s.histograms)) {
      const mean = h.count ? h.sum / h.count : NaN;
      const id = `hist-${i}-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`;
      blocks.push(`<figure class="histogram" data-step="${i}" data-op="${esc(s.op)}" data-name="${esc(name)}">
<figcaption><code>${esc(s.op)}</code> · <strong>${esc(name)}</strong> <span class="stats">count <span data-field="count" data-value="${h.count}">${formatNumber(h.count)}</span> · mean <span data-field="mean" data-value="${Number.isFinite(mean) ? mean : ''}">${formatNumber(mean, 4)}</span> · min <span data-field="min" data-value="${h.min}">${formatNumber(h.min, 4)}</span> · max <span data-field="max" data-value="${h.max}">${formatNumber(h.max, 4)}</span> · sum <span data-field="sum" data-value="${h.sum}">${formatNumber(h.sum, 2)}</span></span></figcaption>
${histogramSvg(name, h, id)}
</figure>`);
    }
  });
  if (!blocks.length) return '';
  return `<section><h2>Distributions</h2><p class="note">Equal-width bins over [min, max], counts scaled from a fixed-size uniform sample of the values.</p><div class="hists">
${blocks.join('\n')}
</div></section>`;
}

/** Horizontal bars: documents and tokens after each step, relative to the largest. */
function funnelSvg(r: RunReport): string {
  const steps = r.steps;
  if (!steps.length) return '';
  const hasTokens = steps.some((s) => s.tokensOut > 0);
  const rowH = hasTokens ? 34 : 22;
  const left = 130;
  const w = 640;
  const pw = w - left - 120;
  const H = steps.length * rowH + 30;
  const maxR = Math.max(1, ...steps.map((s) => s.recordsOut));
  const maxT = Math.max(1, ...steps.map((s) => s.tokensOut));
  const parts: string[] = [`<title>documents and tokens after each step</title>`];
  steps.forEach((s, i) => {
    const y = 8 + i * rowH;
    parts.push(`<text class="tick" x="${left - 8}" y="${y + 12}" text-anchor="end">${esc(s.op)}</text>`);
    const rw = (s.recordsOut / maxR) * pw;
    parts.push(`<rect class="docs" x="${left}" y="${y}" width="${rw.toFixed(1)}" height="14" data-step="${i}" data-records-out="${s.recordsOut}"/>`);
    parts.push(`<text class="tick" x="${(left + rw + 6).toFixed(1)}" y="${y + 11}">${formatNumber(s.recordsOut)} docs</text>`);
    if (hasTokens && i >= firstTokenStep(r)) {
      const tw = (s.tokensOut / maxT) * pw;
      parts.push(`<rect class="toks" x="${left}" y="${y + 15}" width="${tw.toFixed(1)}" height="10" data-step="${i}" data-tokens-out="${s.tokensOut}"/>`);
      parts.push(`<text class="tick small" x="${(left + tw + 6).toFixed(1)}" y="${y + 24}">${tickLabel(s.tokensOut)} tokens</text>`);
    }
  });
  const ly = H - 10;
  parts.push(`<rect class="docs" x="${left}" y="${ly - 9}" width="10" height="10"/><text class="tick" x="${left + 14}" y="${ly}">documents out</text>`);
  if (hasTokens) parts.push(`<rect class="toks" x="${left + 120}" y="${ly - 9}" width="10" height="10"/><text class="tick" x="${left + 134}" y="${ly}">tokens out</text>`);
  return `<svg id="funnel" class="funnel" viewBox="0 0 ${w} ${H}" role="img" aria-label="documents and tokens after each step">${parts.join('')}</svg>`;
}

const CSS = `
:root{--fg:#1d2330;--muted:#5d6778;--line:#d9dee7;--bg:#fff;--alt:#f5f7fa;--accent:#2f6fdf;--accent2:#e08a1e;--bad:#b3261e;--ok:#1f7a3a}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);background:var(--bg);margin:0;padding:24px 32px;max-width:1500px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid var(--line);padding-bottom:4px}
.meta{color:var(--muted);margin:0 0 16px}.meta code{color:var(--fg)}
.status{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;font-size:12px;vertical-align:middle;margin-left:8px;color:#fff;background:var(--bad)}
.status.ok{background:var(--ok)}.status.interrupted,.status.input-errors{background:#a15c00}
.failure{border:1px solid var(--bad);background:#fdf0ef;padding:8px 12px;white-space:pre-wrap;font:12px/1.4 ui-monospace,monospace;overflow:auto}
dl.totals{display:flex;flex-wrap:wrap;gap:10px;margin:0}dl.totals div{border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:150px;background:var(--alt)}
dt{color:var(--muted);font-size:12px}dd{margin:0;font-size:20px;font-weight:600;font-variant-numeric:tabular-nums}
table{border-collapse:collapse;margin:6px 0;font-variant-numeric:tabular-nums}
caption{text-align:left;font-weight:600;padding:4px 0}
th,td{border-bottom:1px solid var(--line);padding:5px 9px;vertical-align:top}
thead th{background:var(--alt);font-weight:600;font-size:12px;text-align:center;border-bottom:2px solid var(--line)}
tbody tr:nth-child(even){background:#fafbfc}
td.num{text-align:right;white-space:nowrap}td.na,td.zero{color:#9aa3b2}
td.idx{color:var(--muted);text-align:center}td.op{white-space:nowrap}td.name{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all;max-width:560px}
td.error{color:var(--bad);font-size:12px}tr.incomplete td.name{color:var(--bad)}
ul.reasons{list-style:none;margin:2px 0 0;padding:0;font-size:11px;color:var(--muted)}ul.reasons li{white-space:nowrap}
td.dropped .total{color:#8a4b00;font-weight:600}td.errors .total{color:var(--bad);font-weight:600}
.note{color:var(--muted);font-size:12px;max-width:900px}
.hists{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:18px}
figure{margin:0;border:1px solid var(--line);border-radius:6px;padding:10px}figcaption{font-size:13px;margin-bottom:6px}.stats{color:var(--muted);font-size:12px;margin-left:6px}
svg{width:100%;height:auto;max-width:760px;display:block}svg.funnel{max-width:900px}
svg .bar{fill:var(--accent)}svg .docs{fill:var(--accent)}svg .toks{fill:var(--accent2)}
svg .grid{stroke:#eceff4}svg .axis{stroke:#8c95a6}svg text{fill:var(--fg);font-size:11px}svg text.small{font-size:10px;fill:var(--muted)}svg text.label{font-size:12px;fill:var(--muted)}
footer{margin-top:28px;color:var(--muted);font-size:12px}
@media print{body{padding:0}.hists{display:block}figure{break-inside:avoid;margin-bottom:12px}}
`;

export function renderReportHtml(report: RunReport): string {
  const r = report;
  const failure = (r as RunReport & { error?: string }).error;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="mixstream report">
<title>mixstream run: ${esc(r.pipeline)}</title>
<style>${CSS}</style>
</head>
<body data-version="${r.version}" data-status="${esc(r.status)}" data-exit-code="${r.exitCode}">
<h1>mixstream run: <code>${esc(r.pipeline)}</code><span class="status ${esc(r.status)}" id="status">${esc(r.status)}</span></h1>
<p class="meta">started <time datetime="${esc(r.startedAt)}">${esc(r.startedAt)}</time> · finished <time datetime="${esc(r.finishedAt)}">${esc(r.finishedAt)}</time> · exit code <span id="exit-code">${r.exitCode}</span> · ${r.machine.nproc} cores, Node ${esc(r.machine.node)}, ${esc(r.machine.platform)}</p>
${failure ? `<pre class="failure" id="failure">${esc(failure)}</pre>` : ''}
<section><h2>Totals</h2>${totalsBlock(r)}</section>
<section><h2>Steps</h2>
${funnelSvg(r)}
${stepsTable(r)}
</section>
${histogramsSection(r)}
${inputsTable(r.inputs)}
${countersTable(r)}
<footer>Generated by <code>mixstream report</code> from a version ${r.version} run report.</footer>
</body>
</html>
`;
}

/** Checks the shape of a parsed run report; every problem at once, each with its path. */
export function validateRunReport(x: unknown): string[] {
  const errs: string[] = [];
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const num = (o: Record<string, unknown>, k: string, p: string) => {
    if (typeof o[k] !== 'number' || !Number.isFinite(o[k])) errs.push(`${p}.${k}: expected a number, got ${JSON.stringify(o[k])}`);
  };
  const counts = (o: Record<string, unknown>, k: string, p: string) => {
    const v = o[k];
    if (!isObj(v)) return errs.push(`${p}.${k}: expected an object of counts`);
    for (const [rk, rv] of Object.entries(v)) if (typeof rv !== 'number') errs.push(`${p}.${k}.${rk}: expected a number`);
  };
  if (!isObj(x)) return ['expected a JSON object (a run report written by `mixstream run --report`)'];
  if (x.version !== 1) errs.push(`version: expected 1, got ${JSON.stringify(x.version)}`);
  for (const k of ['pipeline', 'startedAt', 'finishedAt', 'status']) if (typeof x[k] !== 'string') errs.push(`${k}: expected a string`);
  num(x, 'elapsedMs', '$');
  num(x, 'exitCode', '$');
  if (!Array.isArray(x.inputs)) errs.push('inputs: expected an array');
  else
    x.inputs.forEach((inp, i) => {
      const p = `inputs[${i}]`;
      if (!isObj(inp)) return errs.push(`${p}: expected an object`);
      if (typeof inp.name !== 'string') errs.push(`${p}.name: expected a string`);
      num(inp, 'bytes', p);
      num(inp, 'records', p);
      if (typeof inp.complete !== 'boolean') errs.push(`${p}.complete: expected a boolean`);
    });
  if (!Array.isArray(x.steps)) errs.push('steps: expected an array');
  else
    x.steps.forEach((s, i) => {
      const p = `steps[${i}]`;
      if (!isObj(s)) return errs.push(`${p}: expected an object`);
      if (typeof s.op !== 'string') errs.push(`${p}.op: expected a string`);
      for (const k of ['index', 'recordsIn', 'recordsOut', 'tokensIn', 'tokensOut', 'timeMs', 'recordsPerSec', 'mbPerSec']) num(s, k, p);
      for (const k of ['dropped', 'errors', 'counters']) counts(s, k, p);
      if (!isObj(s.histograms)) errs.push(`${p}.histograms: expected an object`);
      else
        for (const [name, h] of Object.entries(s.histograms)) {
          const hp = `${p}.histograms.${name}`;
          if (!isObj(h)) {
            errs.push(`${hp}: expected an object`);
            continue;
          }
          // min/max are ±Infinity (null in JSON) for an empty histogram.
          num(h, 'count', hp);
          num(h, 'sum', hp);
          if (!Array.isArray(h.bins)) errs.push(`${hp}.bins: expected an array`);
          else h.bins.forEach((b, j) => (isObj(b) ? ['lo', 'hi', 'count'].forEach((k) => num(b, k, `${hp}.bins[${j}]`)) : errs.push(`${hp}.bins[${j}]: expected an object`)));
        }
    });
  if (!isObj(x.totals)) errs.push('totals: expected an object');
  else for (const k of ['recordsIn', 'recordsOut', 'bytesIn', 'errors', 'dropped']) num(x.totals, k, 'totals');
  if (!isObj(x.machine)) errs.push('machine: expected an object');
  return errs;
}

/** Reads a run report and writes the HTML page (to a temporary name, renamed when complete). */
export async function writeReportHtml(runJsonPath: string, outPath: string): Promise<{ bytes: number }> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(runJsonPath, 'utf8'));
  } catch (e) {
    throw new Error(`${runJsonPath}: cannot read the run report: ${(e as Error).message}`);
  }
  const errs = validateRunReport(parsed);
  if (errs.length) throw new Error(`${runJsonPath}: not a mixstream run report (${errs.length} problem${errs.length > 1 ? 's' : ''}):\n  ${errs.join('\n  ')}`);
  const html = renderReportHtml(parsed as RunReport);
  const tmp = `${outPath}.tmp-${process.pid}`;
  await writeFile(tmp, html);
  await rename(tmp, outPath);
  return { bytes: Buffer.byteLength(html) };
}
