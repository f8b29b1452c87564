// The command line: run, ops, lint, explain (and the commands of later capabilities).
import { statSync, type Stats } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yargs, { type Argv } from 'yargs';
import { builtins } from '../operators/index.ts';
import { describeSpec } from './options.ts';
import { formatErrors, loadPipeline, PipelineError, isWithin, realTarget, upstreamOf, writtenPaths, type ResolvedPipeline } from './pipeline.ts';
import { Registry } from './registry.ts';
import { EXIT, startRun } from './run.ts';
import { cannotWrite } from './io/output.ts';

export function defaultRegistry(): Registry {
  const r = new Registry();
  for (const d of builtins) r.register(d);
  return r;
}

async function loadOrExit(file: string, registry: Registry): Promise<ResolvedPipeline> {
  try {
    return await loadPipeline(file, registry);
  } catch (e) {
    if (e instanceof PipelineError) {
      process.stderr.write(`mixstream: invalid pipeline ${e.file}: ${e.errors.length} error(s)\n${formatErrors(e.errors)}\n`);
      process.exit(EXIT.usage);
    }
    throw e;
  }
}

/** A usage error: one line on stderr naming the problem, exit status 2, nothing is read. */
function usageExit(message: string): never {
  process.stderr.write(`mixstream: ${message}\n`);
  process.exit(EXIT.usage);
}

/** The commands, for usage errors (an unknown command, a hint at `--help`). */
const COMMANDS = ['run', 'ops', 'lint', 'explain', 'report', 'train-quality', 'decont'];

/** Most worker threads `--workers` accepts: threads beyond a few per core only cost memory (each holds its own heap). */
export const MAX_WORKERS = Math.min(256, 4 * os.availableParallelism());

/** A decimal number as written on the command line (no hex, no empty string, no trailing text). */
const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i;

/**
 * The value of a numeric `run` option: given more than once, the last one counts; one that is
 * not a number in `allowed` is a usage error naming the option, the value and what is allowed.
 */
function numericOption(name: string, raw: unknown, allowed: string, ok: (n: number) => boolean): number | undefined {
  const last = Array.isArray(raw) ? raw[raw.length - 1] : raw;
  if (last === undefined) return undefined;
  const text = String(last).trim();
  const n = NUMBER.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(n) || !ok(n)) usageExit(`--${name} must be ${allowed}, got ${JSON.stringify(String(last))}`);
  return n;
}

/** The numeric `run` options, checked before anything is read. */
function runNumbers(args: Record<string, unknown>): { workers?: number; maxErrors?: number; checkpointIntervalSec?: number } {
  const cores = os.availableParallelism();
  return {
    workers: numericOption(
      'workers',
      args.workers,
      `an integer from 0 (compute in the main thread) to ${MAX_WORKERS} (${MAX_WORKERS < 256 ? `4 per core, ${cores} core(s) here` : 'the limit'})`,
      (n) => Number.isInteger(n) && n >= 0 && n <= MAX_WORKERS,
    ),
    maxErrors: numericOption('max-errors', args['max-errors'], 'an integer >= 0 (the bad records allowed)', (n) => Number.isInteger(n) && n >= 0),
    checkpointIntervalSec: numericOption('checkpoint-interval', args['checkpoint-interval'], 'a number of seconds >= 0 (0: after every batch)', (n) => n >= 0),
  };
}

/** Output names that say "a file" (NDJSON, compressed): with --checkpoint the output is a directory of parts. */
const FILE_EXTENSION = /\.(jsonl|ndjson|json|gz|zst)$/i;

/** With --checkpoint the output is a directory (`-o DIR/`): refuses (exit 2) an output that is or names a file. */
function checkCheckpointOutput(output: string | undefined, fromPipeline: boolean): void {
  if (!output || output === '-') return; // the run refuses it: --checkpoint needs -o DIR/
  const what = fromPipeline ? `the pipeline's sink ${output}` : `-o ${output}`;
  const why = '--checkpoint writes the output as parts (part-000000.jsonl.zst, ...) into a directory';
  let st: Stats | undefined;
  try {
    st = statSync(path.resolve(output));
  } catch {
    // Not there yet: the run creates the directory.
  }
  if (st) {
    if (!st.isDirectory()) usageExit(`${why}, and ${what} is a file; give a directory (-o DIR/)`);
    return;
  }
  if (!/[\\/]$/.test(output) && FILE_EXTENSION.test(output)) usageExit(`${why}, and ${what} names a file; give a directory (-o DIR/)`);
}

/** Two of the run's files (output, side outputs, report) that are one file: the later would overwrite the earlier (exit 2). */
function checkDistinct(files: [string, string | undefined][]): void {
  const seen = new Map<string, string>();
  for (const [flag, file] of files) {
    if (!file || file === '-') continue;
    const at = path.resolve(file);
    const before = seen.get(at);
    if (before) usageExit(`${before} and ${flag} name the same file (${file}); give each its own`);
    seen.set(at, flag);
  }
}

/**
 * An output that is one of the inputs (the same file by any name or link) would replace what the
 * run reads (exit 2). Outputs not there yet cannot be inputs.
 */
function checkNotInput(outputs: [string, string | undefined][], inputs: string[]): void {
  const inputIds = new Map<string, string>();
  for (const input of inputs) {
    if (input === '-' || /^[a-z][a-z0-9+.-]*:\/\//i.test(input)) continue;
    const id = fileId(input);
    if (id) inputIds.set(id, input);
  }
  for (const [flag, file] of outputs) {
    if (!file || file === '-') continue;
    const input = inputIds.get(fileId(file) ?? '');
    if (input !== undefined) usageExit(`${flag} ${file} is the input ${input}: the run would overwrite what it reads; give ${flag} another file`);
  }
}

/**
 * A run's output, side output, report or checkpoint directory that is, or lies inside, a path a
 * step writes (an index directory), or one that holds such a path: each would write over or mix
 * into the other (exit 2).
 */
function checkNotWrittenBySteps(files: [string, string | undefined][], written: { path: string; by: string }[]): void {
  for (const [flag, file] of files) {
    if (!file || file === '-') continue;
    const at = realTarget(file);
    for (const w of written) {
      if (isWithin(at, w.path)) usageExit(`${flag} ${file} is ${at === w.path ? '' : 'inside '}the path ${w.by} writes (${w.path}); give ${flag} another path`);
      if (isWithin(w.path, at)) usageExit(`${w.by} writes ${w.path}, inside ${flag} ${file}; give it a path of its own`);
    }
  }
}

/** Device and inode of an existing file (symbolic links followed), or undefined. */
function fileId(file: string): string | undefined {
  try {
    const st = statSync(file);
    return st.isFile() ? `${st.dev}:${st.ino}` : undefined;
  } catch {
    return undefined;
  }
}

/** The run's output, side outputs, report and checkpoint directory must be writable: checked before anything is read (exit 1). */
function checkWritable(paths: [string | undefined, 'file' | 'dir'][]): void {
  for (const [file, as] of paths) {
    if (!file || file === '-') continue;
    const problem = cannotWrite(file, as);
    if (problem) {
      process.stderr.write(`mixstream: cannot write ${file}: ${problem}\n`);
      process.exit(EXIT.failed);
    }
  }
}

/** A run that failed (a bug, or an output that could not be written): one line, the stack only with MIXSTREAM_DEBUG. */
function failedExit(e: unknown, what?: string): never {
  const err = e as Error;
  process.stderr.write(`mixstream: ${what ? `${what}: ` : ''}${err?.message ?? String(e)}${process.env.MIXSTREAM_DEBUG && err?.stack ? `\n${err.stack}` : ''}\n`);
  process.exit(EXIT.failed);
}

function exitAfterFlush(code: number): void {
  // Let stdout drain before exiting; worker threads or native handles must not keep a finished run alive.
  if (process.stdout.destroyed || process.stdout.writableEnded) process.exit(code);
  process.stdout.write('', () => process.exit(code));
}

export function opsText(registry: Registry, name?: string): string {
  const list = name ? [registry.get(name)].filter((d) => d !== undefined) : registry.all();
  if (name && !list.length) {
    const hint = registry.suggest(name);
    return `unknown operator "${name}"${hint.length ? `; did you mean ${hint.join(' or ')}?` : ''}\n`;
  }
  const out: string[] = [];
  for (const d of list) {
    out.push(`${d.name}  ${d.summary}`);
    if (name && d.description) out.push('', `  ${d.description}`, '');
    for (const [key, spec] of Object.entries(d.options)) {
      const def = spec.default !== undefined ? ` (default ${JSON.stringify(spec.default)})` : spec.required ? ' (required)' : '';
      out.push(`    ${key}: ${describeSpec(spec)}${def}  ${spec.description}`);
    }
    if (name && d.outputs) {
      out.push('  adds fields:');
      for (const [k, v] of Object.entries(d.outputs)) out.push(`    ${k}: ${v}`);
    }
    out.push('');
  }
  return out.join('\n');
}

export function buildCli(argv: string[], registry = defaultRegistry()): Argv {
  return yargs(argv)
    .scriptName('mixstream')
    .usage('$0 <command> [options]')
    .command(
      'run <pipeline> [inputs..]',
      'run a pipeline over inputs (files, - for stdin; default stdin), writing NDJSON to stdout or -o',
      (y) =>
        y
          .positional('pipeline', { type: 'string', describe: 'pipeline file (.json, .yaml, .ts)', demandOption: true })
          .positional('inputs', { type: 'string', array: true, describe: 'input files (.jsonl, .jsonl.gz, .jsonl.zst, .parquet, .arrow); - for stdin' })
          .option('output', { alias: 'o', type: 'string', requiresArg: true, describe: 'output file; .gz/.zst compress (default stdout)' })
          .option('errors', { type: 'string', requiresArg: true, describe: 'write every bad record (input, line, reason, raw) to this NDJSON file' })
          .option('rejects', { type: 'string', requiresArg: true, describe: 'write every record a step dropped (with its reason) to this NDJSON file' })
          .option('report', { type: 'string', requiresArg: true, describe: 'write the run report as JSON' })
          .option('max-errors', { type: 'string', requiresArg: true, describe: 'stop after more than N bad records (exit 4); an integer >= 0' })
          .option('workers', { type: 'string', requiresArg: true, describe: `worker threads for parallel steps, 0 to ${MAX_WORKERS} (0: the main thread; default: all cores)` })
          .option('progress', { type: 'boolean', describe: 'progress line on stderr (default: when stderr is a terminal)' })
          .option('checkpoint', { type: 'string', requiresArg: true, describe: 'checkpoint directory: resume exactly after a crash or kill (needs -o DIR/)' })
          .option('checkpoint-interval', { type: 'string', requiresArg: true, default: '30', describe: 'seconds between checkpoints (0: after every batch)' })
          .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no summary on stderr' }),
      async (args) => {
        // A path option given twice arrives as an array of its values: which file was meant is
        // unclear, so it is refused (a number given twice takes the last value).
        for (const [name, flag] of [['output', '-o'], ['errors', '--errors'], ['rejects', '--rejects'], ['report', '--report'], ['checkpoint', '--checkpoint']]) {
          const value = args[name];
          if (Array.isArray(value)) usageExit(`${flag} is given ${value.length} times (${value.join(', ')}); give it once`);
        }
        const numbers = runNumbers(args);
        const pipeline = await loadOrExit(args.pipeline as string, registry);
        const output = args.output ?? pipeline.sink;
        if (args.checkpoint !== undefined) checkCheckpointOutput(output, args.output === undefined);
        const sidePath = (flag: string | undefined, spec: string | undefined) => flag ?? (spec ? path.resolve(pipeline.baseDir, spec) : undefined);
        const errorsFile = sidePath(args.errors, pipeline.spec.errors);
        const rejectsFile = sidePath(args.rejects, pipeline.spec.rejects);
        // The files the run writes (with --checkpoint the output is a directory of parts).
        // Each named as the user gave it: a flag, or the pipeline file's key.
        const outputName = args.output !== undefined ? '-o' : 'sink';
        const files: [string, string | undefined][] = [
          [outputName, args.checkpoint === undefined ? output : undefined],
          [args.errors !== undefined ? '--errors' : 'errors', errorsFile],
          [args.rejects !== undefined ? '--rejects' : 'rejects', rejectsFile],
          ['--report', args.report],
        ];
        checkDistinct(files);
        const runInputs = (args.inputs as string[] | undefined)?.length ? (args.inputs as string[]).map((x) => (x === STDIN_ARG ? '-' : x)) : undefined;
        checkNotInput(files, runInputs ?? pipeline.inputs);
        checkNotWrittenBySteps([...files, [outputName, args.checkpoint !== undefined ? output : undefined], ['--checkpoint', args.checkpoint]], writtenPaths(pipeline));
        checkWritable([
          [output, args.checkpoint !== undefined ? 'dir' : 'file'],
          [errorsFile, 'file'],
          [rejectsFile, 'file'],
          [args.report, 'file'],
          [args.checkpoint, 'dir'],
        ]);
        const handle = startRun({
          pipeline,
          inputs: runInputs,
          output: args.output,
          errors: args.errors,
          rejects: args.rejects,
          report: args.report,
          maxErrors: numbers.maxErrors,
          workers: numbers.workers,
          progress: args.progress ?? Boolean(process.stderr.isTTY),
          summary: !args.quiet,
          checkpoint: args.checkpoint,
          checkpointIntervalSec: numbers.checkpointIntervalSec,
        });
        let signalCode: number | undefined;
        const onSignal = (sig: NodeJS.Signals) => {
          if (signalCode !== undefined) process.exit(signalCode); // a second signal exits at once
          signalCode = sig === 'SIGTERM' ? 143 : 130;
          process.stderr.write(`\nmixstream: ${sig}: stopping after the records in flight (send again to exit at once)\n`);
          handle.stop('interrupted', signalCode);
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        process.stdout.on('error', () => {}); // EPIPE is handled by the run: it ends quietly
        let report;
        try {
          report = await handle.done;
        } catch (e) {
          failedExit(e, 'the run failed');
        }
        const code = report.exitCode;
        exitAfterFlush(code);
      },
    )
    .command(
      'ops [name]',
      'list operators with their options (or one operator in detail)',
      (y) => y.positional('name', { type: 'string' }),
      (args) => {
        const text = opsText(registry, args.name);
        if (args.name && !registry.get(args.name)) {
          process.stderr.write(`mixstream: ${text}`);
          process.exit(EXIT.usage);
        }
        process.stdout.write(text);
      },
    )
    .command(
      'lint <pipeline>',
      'validate a pipeline file without reading data',
      (y) => y.positional('pipeline', { type: 'string', demandOption: true }),
      async (args) => {
        const p = await loadOrExit(args.pipeline as string, registry);
        process.stdout.write(`ok: ${args.pipeline}: decode + ${p.steps.length} step(s): ${p.steps.map((s) => s.op).join(' -> ') || '(identity)'}\n`);
      },
    )
    .command(
      'explain <pipeline>',
      'validate a pipeline and describe what each step will do with its options',
      (y) => y.positional('pipeline', { type: 'string', demandOption: true }),
      async (args) => {
        const p = await loadOrExit(args.pipeline as string, registry);
        const lines = [`${args.pipeline}`];
        for (const s of [p.decode, ...p.steps]) {
          lines.push(`${s.index < 0 ? '-' : s.index}. ${s.op}: ${s.descriptor.summary}`);
          lines.push(`   options: ${JSON.stringify(s.options)}`);
          const text = s.descriptor.explain?.(s.options, upstreamOf(p.steps.slice(0, Math.max(0, p.steps.indexOf(s)))));
          if (text) lines.push(...text.split('\n').map((l) => `   ${l}`));
        }
        process.stdout.write(lines.join('\n') + '\n');
      },
    )
    .command(
      'report <run>',
      'render a run report (--report run.json) as a self-contained HTML page',
      (y) =>
        y
          .positional('run', { type: 'string', demandOption: true, describe: 'run.json written by `run --report`' })
          .option('output', { alias: 'o', type: 'string', describe: 'HTML file (default stdout)' }),
      async (args) => {
        const { renderReportHtml, validateRunReport, writeReportHtml } = await import('./commands/report-html.ts');
        try {
          if (args.output) {
            await writeReportHtml(args.run as string, args.output);
            process.stderr.write(`mixstream: wrote ${args.output}\n`);
          } else {
            const { readFileSync } = await import('node:fs');
            const report = JSON.parse(readFileSync(args.run as string, 'utf8'));
            const problems = validateRunReport(report);
            if (problems.length) throw new Error(problems.join('\n'));
            process.stdout.write(renderReportHtml(report));
          }
        } catch (e) {
          // A file that is missing or not a run report is a failed command, as an unreadable input fails a run; usage errors (2) are for the command line.
          process.stderr.write(`mixstream: cannot render ${args.run}: ${(e as Error).message}\n`);
          process.exit(EXIT.failed);
        }
      },
    )
    .command(
      'train-quality <inputs..>',
      'train a hashed n-gram logistic-regression quality classifier from labelled NDJSON; writes <out>.onnx and <out>.json',
      (y) =>
        y
          .positional('inputs', { type: 'string', array: true, demandOption: true, describe: 'labelled NDJSON files (a `label` field: 1/0, true/false, hq/lq, ...)' })
          .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'output path without extension (writes .onnx and .json)' })
          .option('label-field', { type: 'string', default: 'label' })
          .option('text-field', { type: 'string', default: 'text' })
          .option('dim', { type: 'number', describe: 'hashed feature dimension' })
          .option('ngrams', { type: 'number', describe: 'word n-gram order (2 = unigrams + bigrams)' })
          .option('epochs', { type: 'number' })
          .option('lr', { type: 'number', describe: 'learning rate' })
          .option('l2', { type: 'number', describe: 'L2 regularization' })
          .option('holdout', { type: 'number', default: 0.1, describe: 'fraction held out to report accuracy' })
          .option('seed', { type: 'number', default: 1 })
          .option('layout', { type: 'string', choices: ['dense', 'sparse'], describe: 'ONNX input layout' }),
      async (args) => {
        const { trainQuality } = await import('./commands/train-quality.ts');
        checkWritable([[args.output, 'file']]);
        try {
          const r = await trainQuality({
            input: args.inputs as string[],
            out: args.output,
            labelField: args['label-field'],
            textField: args['text-field'],
            dim: args.dim,
            ngrams: args.ngrams,
            epochs: args.epochs,
            lr: args.lr,
            l2: args.l2,
            holdout: args.holdout,
            seed: args.seed,
            layout: args.layout as 'dense' | 'sparse' | undefined,
            log: (m) => process.stderr.write(m + '\n'),
          });
          process.stdout.write(JSON.stringify(r, null, 2) + '\n');
        } catch (e) {
          process.stderr.write(`mixstream train-quality: ${(e as Error).message}\n`);
          process.exit(EXIT.usage);
        }
      },
    )
    .command(
      'decont <action>',
      'decontamination: `decont build` makes a Bloom filter of evaluation-set n-grams',
      (y) =>
        y.command(
          'build <inputs..>',
          'build a Bloom filter of n-grams from evaluation sets (NDJSON)',
          (b) =>
            b
              .positional('inputs', { type: 'string', array: true, demandOption: true, describe: 'evaluation set files or globs' })
              .option('output', { alias: ['o', 'out'], type: 'string', demandOption: true, describe: 'filter file (.bloom)' })
              .option('n', { type: 'number', default: 13, describe: 'words per n-gram' })
              .option('fp-rate', { type: 'number', default: 1e-6, describe: 'false-positive rate the filter is sized for' })
              .option('text-field', { type: 'string', default: 'text' })
              .option('expected-items', { type: 'number', describe: 'n-grams to size for (skips the counting pass)' })
              .option('fold-digits', { type: 'boolean', default: false, describe: 'fold every digit to 0 in the word form' })
              .option('keep-case', { type: 'boolean', default: false, describe: 'do not lowercase' })
              .option('keep-punctuation', { type: 'boolean', default: false, describe: 'punctuation stays part of words' }),
          async (args) => {
            const { buildDecontFilter } = await import('./commands/decont-build.ts');
            checkWritable([[args.output, 'file']]);
            try {
              const r = await buildDecontFilter({
                inputs: args.inputs as string[],
                out: args.output,
                n: args.n,
                fpRate: args['fp-rate'],
                textField: args['text-field'],
                expectedItems: args['expected-items'],
                form: { foldDigits: args['fold-digits'], lowercase: !args['keep-case'], stripPunctuation: !args['keep-punctuation'] },
              });
              process.stdout.write(JSON.stringify(r, null, 2) + '\n');
            } catch (e) {
              process.stderr.write(`mixstream decont build: ${(e as Error).message}\n`);
              process.exit(EXIT.usage);
            }
          },
        ),
      // Reached only when <action> is not a subcommand (yargs runs the subcommand's handler instead).
      (args) => usageExit(`unknown decont action "${args.action}"; the action is build (mixstream decont build --help)`),
    )
    .demandCommand(1, `name a command: ${COMMANDS.join(', ').replace('decont', 'decont build')}`)
    .strict()
    .help()
    .fail((message, error) => {
      // Thrown by a command's handler: a failed run, reported by main (exit 1).
      if (error && error.name !== 'YError') throw error;
      const first = argv[0];
      if (first !== undefined && !first.startsWith('-') && !COMMANDS.includes(first)) {
        usageExit(`unknown command "${first}"; the commands are ${COMMANDS.join(', ').replace('decont', 'decont build')} (mixstream --help)`);
      }
      const command = COMMANDS.includes(first) ? `${first === 'decont' && argv[1] === 'build' ? 'decont build' : first} ` : '';
      usageExit(`${message ?? error?.message}\n  (mixstream ${command}--help shows the usage)`);
    })
    .wrap(Math.min(120, process.stdout.columns || 100));
}

/** Stands for a `-` input while yargs parses (it drops a lone `-` from positional lists). */
const STDIN_ARG = '\u0000stdin';
/** Options of `run` that are flags: the token after one of them is not its value. */
const RUN_FLAGS = new Set(['-q', '--quiet', '--progress', '--no-progress', '--help', '--version']);

/** `run`'s `-` inputs (stdin), kept through parsing wherever they stand among the files. */
function protectStdinInputs(argv: string[]): string[] {
  if (argv[0] !== 'run') return argv;
  return argv.map((a, i) => {
    if (a !== '-') return a;
    const before = argv[i - 1];
    const isOptionValue = before.startsWith('-') && before.length > 1 && !before.includes('=') && !RUN_FLAGS.has(before);
    return isOptionValue ? a : STDIN_ARG;
  });
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildCli(protectStdinInputs(argv)).parseAsync();
  } catch (e) {
    failedExit(e);
  }
}
