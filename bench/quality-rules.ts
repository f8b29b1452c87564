// Benchmark: heuristic rule sets (gopher-quality, gopher-repetition, c4, fineweb) on real text,
// docs/s per core, beside datatrove's filter classes run on the same documents in the same run:
// agreement of keep/drop decisions and of the drop reason, and the speed ratio.
//
//   npx tsx bench/quality-rules.ts [--quick] [--datatrove /work/peers/datatrove] [--shim /work/peers/dt-shim] [--show N]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { all, type Doc } from './corpus.ts';
import { machine } from './machine.ts';
import { resolveRuleOptions, RULE_SET_NAMES, RULE_SETS, type RuleSetName } from '../lib/quality/rules.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const flag = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const quick = args.includes('--quick');
const dtSrc = path.join(flag('--datatrove', '/work/peers/datatrove'), 'src');
const shim = flag('--shim', '/work/peers/dt-shim');
const show = Number(flag('--show', '0'));
const python = flag('--python', '/usr/bin/python3');

// Corpus: every source of bench/corpus.ts, interleaved, capped per source.
function corpus(): Doc[] {
  const perSource = quick ? 100 : 4000;
  const bySource = new Map<string, Doc[]>();
  for (const d of all()) {
    const key = `${d.source}/${d.lang ?? ''}`;
    const list = bySource.get(key) ?? [];
    if (list.length < perSource) list.push(d);
    bySource.set(key, list);
  }
  const lists = [...bySource.values()];
  const out: Doc[] = [];
  for (let i = 0; lists.some((l) => i < l.length); i++) for (const l of lists) if (i < l.length) out.push(l[i]);
  return out;
}

interface Decision {
  keep: boolean | null;
  reason: string | null;
  text?: string;
}

function runOurs(name: RuleSetName, docs: Doc[]): { seconds: number; decisions: Decision[] } {
  const set = RULE_SETS[name];
  const opts = resolveRuleOptions(name);
  // Warm the JIT on a slice first, as a long run would.
  for (const d of docs.slice(0, 200)) set.evaluate(d.text, opts, { firstFailure: true });
  const decisions: Decision[] = new Array(docs.length);
  const t0 = performance.now();
  for (let i = 0; i < docs.length; i++) {
    const r = set.evaluate(docs[i].text, opts, { firstFailure: true });
    decisions[i] = { keep: r.pass, reason: r.pass ? null : r.reasons[0], text: r.text };
  }
  return { seconds: (performance.now() - t0) / 1000, decisions };
}

function main() {
  const docs = corpus();
  const dataDir = path.join(here, 'data');
  mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, `quality-rules${quick ? '-quick' : ''}.jsonl`);
  writeFileSync(file, docs.map((d) => JSON.stringify({ id: d.id, text: d.text })).join('\n') + '\n');
  const mb = docs.reduce((a, d) => a + Buffer.byteLength(d.text), 0) / 1e6;
  process.stderr.write(`${docs.length} documents, ${mb.toFixed(1)} MB of text\n`);

  const ours = Object.fromEntries(RULE_SET_NAMES.map((n) => [n, runOurs(n, docs)])) as Record<RuleSetName, ReturnType<typeof runOurs>>;

  let peer: Record<string, { seconds: number; decisions: Decision[] }> | undefined;
  let peerNote = '';
  if (existsSync(dtSrc)) {
    const r = spawnSync(python, [path.join(here, 'quality-rules-datatrove.py'), dtSrc, shim, file], { encoding: 'utf8', maxBuffer: 1 << 30 });
    if (r.status === 0) peer = JSON.parse(r.stdout);
    else peerNote = `datatrove run failed: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join(' ')}`;
  } else peerNote = `datatrove not found at ${dtSrc}`;
  const dtCommit = existsSync(dtSrc) ? spawnSync('git', ['-C', dtSrc, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim() : '';

  const rows: string[] = [];
  const details: string[] = [];
  for (const n of RULE_SET_NAMES) {
    const o = ours[n];
    const ourRate = docs.length / o.seconds;
    const kept = o.decisions.filter((d) => d.keep).length;
    let agree = '', reasonAgree = '', textAgree = '', dtRate = '', ratio = '', dtKept = '';
    if (peer?.[n]) {
      const p = peer[n];
      let same = 0;
      let sameReason = 0;
      let c4Both = 0;
      let c4Text = 0;
      const confusion = new Map<string, number>();
      const examples = new Map<string, string>();
      p.decisions.forEach((pd, i) => {
        const od = o.decisions[i];
        if (pd.keep === od.keep) same++;
        if (pd.keep === od.keep && (pd.keep || pd.reason === od.reason)) sameReason++;
        else {
          const key = `${od.keep ? 'keep' : od.reason} / ${pd.keep ? 'keep' : pd.reason}`;
          confusion.set(key, (confusion.get(key) ?? 0) + 1);
          if (!examples.has(key)) examples.set(key, docs[i].id);
        }
        if (n === 'c4' && pd.keep && od.keep) {
          c4Both++;
          if (pd.text === od.text) c4Text++;
        }
      });
      agree = `${((100 * same) / docs.length).toFixed(2)}%`;
      reasonAgree = `${((100 * sameReason) / docs.length).toFixed(2)}%`;
      if (n === 'c4') textAgree = `${((100 * c4Text) / Math.max(1, c4Both)).toFixed(2)}% of ${c4Both}`;
      const pr = docs.length / p.seconds;
      dtRate = pr.toFixed(0);
      ratio = `${(ourRate / pr).toFixed(1)}x`;
      dtKept = `${((100 * p.decisions.filter((d) => d.keep).length) / docs.length).toFixed(1)}%`;
      const top = [...confusion].sort((a, b) => b[1] - a[1]).slice(0, 5);
      if (top.length) details.push(`- ${n}: ${top.map(([k, c]) => `${k}: ${c} (e.g. ${examples.get(k)})`).join('; ')}`);
      if (show) {
        let shown = 0;
        p.decisions.forEach((pd, i) => {
          const od = o.decisions[i];
          if (shown < show && pd.keep !== od.keep) {
            shown++;
            process.stderr.write(`\n[${n}] ${docs[i].id} ours=${od.reason ?? 'keep'} datatrove=${pd.reason ?? 'keep'}\n${docs[i].text.slice(0, 400)}\n`);
          }
        });
      }
    }
    rows.push(`| ${n} | ${ourRate.toFixed(0)} | ${dtRate} | ${ratio} | ${((100 * kept) / docs.length).toFixed(1)}% | ${dtKept} | ${agree} | ${reasonAgree} |${n === 'c4' ? ` edited text identical: ${textAgree}` : ''}`);
  }

  const md = [
    '## Heuristic quality rules (`filter`)',
    '',
    `${docs.length} real documents (${mb.toFixed(1)} MB; bench/corpus.ts: Debian handbook in 26 languages, KJV chapters, GCIDE entries, fortunes en/de/ru; at most ${quick ? 100 : 4000} per source and language), one core, rule sets applied with the published defaults and stopping at the first failing rule (drop mode).`,
    `Machine: ${machine()}. Peer: datatrove ${dtCommit || '(not run)'} filter classes, Python ${spawnSync(python, ['--version'], { encoding: 'utf8' }).stdout.trim()}, run on the same file in the same benchmark run.`,
    '',
    '| rule set | mixstream docs/s | datatrove docs/s | speed ratio | kept (mixstream) | kept (datatrove) | keep/drop agreement | agreement incl. reason |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    peer ? 'Largest disagreements (mixstream / datatrove: count, example id):' : peerNote,
    ...details,
    '',
    'datatrove\'s English word tokenizer is spaCy, which cannot be installed here (no PyPI, no Debian package); the datatrove filters ran with an NLTK tokenizer (Treebank words over sentences from an untrained Punkt splitter, since Punkt\'s trained English model cannot be downloaded either), passed through their `language` argument. `huggingface_hub` (imported by datatrove.io at load time, never called by these filters) is replaced by an import shim in /work/peers/dt-shim. Agreement is therefore measured against an NLTK-tokenized datatrove, not the spaCy one.',
    '',
    `Command: \`npx tsx bench/quality-rules.ts${quick ? ' --quick' : ''}\``,
    '',
  ].join('\n');
  mkdirSync(path.join(here, 'results'), { recursive: true });
  writeFileSync(path.join(here, 'results', `quality-rules${quick ? '-quick' : ''}.md`), md);
  process.stdout.write(md);
}

main();
