// Pipeline files (.ts, .json, .yaml): loading, and validation of every step before any data is read.
import { existsSync, lstatSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import YAML from 'yaml';
import type { OperatorDescriptor, UpstreamStep } from './operator.ts';
import { validateOptions, type OptionError } from './options.ts';
import { isPathReference, loadOperatorFile, type Registry } from './registry.ts';

/** One step: an operator name (or a path to a custom operator file) and its options. */
export interface StepSpec {
  op: string;
  [option: string]: unknown;
}

export interface PipelineSpec {
  /** Optional description shown by `lint`. */
  description?: string;
  /** Input files (default: the CLI's inputs, else stdin). */
  source?: string | string[] | { inputs: string[] };
  steps: StepSpec[];
  /** Output file (default: `-o`, else stdout). Compression follows the extension. */
  sink?: string | { path: string };
  /** Error output for bad records (same as `--errors`). */
  errors?: string;
  /** Output for records dropped by steps (same as `--rejects`). */
  rejects?: string;
}

/** Typed helper for TypeScript pipeline files: `export default definePipeline({ steps: [...] })`. */
export function definePipeline(spec: PipelineSpec): PipelineSpec {
  return spec;
}

export interface ValidationError {
  /** 0-based step index, or undefined for pipeline-level errors. */
  step?: number;
  op?: string;
  path: string;
  message: string;
}

export class PipelineError extends Error {
  constructor(
    readonly file: string,
    readonly errors: ValidationError[],
  ) {
    super(`${file}: ${errors.length} error(s)\n${formatErrors(errors)}`);
  }
}

export function formatErrors(errors: ValidationError[]): string {
  return errors
    .map((e) => {
      const where = e.step !== undefined ? `step ${e.step} (${e.op ?? '?'})` : 'pipeline';
      return `  ${where}${e.path ? ` ${e.path}` : ''}: ${e.message}`;
    })
    .join('\n');
}

/** The steps of `resolved` as the `upstream` of the step after them (decode excluded). */
export function upstreamOf(resolved: readonly ResolvedStep[]): UpstreamStep[] {
  return resolved.filter((r) => r.descriptor.name !== 'decode').map((r) => ({ op: r.op, options: r.options }));
}

export interface ResolvedStep {
  index: number;
  op: string;
  descriptor: OperatorDescriptor;
  options: Record<string, unknown>;
}

export interface ResolvedPipeline {
  file: string;
  baseDir: string;
  spec: PipelineSpec;
  /** The decode step's options (an explicit first `decode` step, or its defaults). */
  decode: ResolvedStep;
  /** Every step after decode. */
  steps: ResolvedStep[];
  inputs: string[];
  sink?: string;
}

/** Reads a pipeline file of any supported kind into its plain spec. */
export async function loadPipelineFile(file: string): Promise<PipelineSpec> {
  if (!existsSync(file)) throw new PipelineError(file, [{ path: '', message: 'pipeline file not found' }]);
  const ext = path.extname(file).toLowerCase();
  try {
    if (ext === '.json') return JSON.parse(readFileSync(file, 'utf8'));
    if (ext === '.yaml' || ext === '.yml') return YAML.parse(readFileSync(file, 'utf8'));
    if (ext === '.ts' || ext === '.mts' || ext === '.js' || ext === '.mjs') {
      const mod = await import(pathToFileURL(path.resolve(file)).href);
      return mod.default ?? mod.pipeline;
    }
  } catch (e) {
    throw new PipelineError(file, [{ path: '', message: `cannot parse ${ext.slice(1).toUpperCase()}: ${(e as Error).message}` }]);
  }
  throw new PipelineError(file, [{ path: '', message: `unknown pipeline file type "${ext}": use .json, .yaml, .yml or .ts` }]);
}

const TOP_LEVEL = ['description', 'source', 'steps', 'sink', 'errors', 'rejects'];

function asList(source: PipelineSpec['source']): string[] | undefined {
  if (source === undefined) return undefined;
  if (typeof source === 'string') return [source];
  if (Array.isArray(source)) return source;
  return source.inputs;
}

/**
 * Resolves every step to its descriptor and validates all options. Collects every error
 * (unknown operators with suggestions, unknown options, wrong types and ranges, cross-option
 * checks) and throws them together in one PipelineError.
 */
export async function resolvePipeline(spec: unknown, registry: Registry, file = '<pipeline>', baseDir = process.cwd()): Promise<ResolvedPipeline> {
  const errors: ValidationError[] = [];
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    throw new PipelineError(file, [{ path: '', message: 'a pipeline is an object with a "steps" list' }]);
  }
  const p = spec as PipelineSpec;
  for (const key of Object.keys(p)) {
    if (!TOP_LEVEL.includes(key)) errors.push({ path: key, message: `unknown pipeline key; expected one of ${TOP_LEVEL.join(', ')}` });
  }
  if (!Array.isArray(p.steps)) {
    errors.push({ path: 'steps', message: 'expected a list of steps like [{"op": "normalize"}]' });
    throw new PipelineError(file, errors);
  }
  const inputs = asList(p.source);
  if (p.source !== undefined && (!inputs || !inputs.every((i) => typeof i === 'string'))) {
    errors.push({ path: 'source', message: 'expected a path, a list of paths, or {"inputs": [...]}' });
  }
  const sink = typeof p.sink === 'string' ? p.sink : p.sink?.path;
  if (p.sink !== undefined && typeof sink !== 'string') errors.push({ path: 'sink', message: 'expected a path or {"path": "..."}' });

  const resolved: ResolvedStep[] = [];
  const refusedSteps = new Set<number>();
  for (let index = 0; index < p.steps.length; index++) {
    const step = p.steps[index] as StepSpec;
    if (step === null || typeof step !== 'object' || Array.isArray(step)) {
      errors.push({ step: index, path: '', message: 'a step is an object like {"op": "normalize", ...options}' });
      continue;
    }
    const { op, ...given } = step;
    if (typeof op !== 'string' || !op) {
      errors.push({ step: index, path: 'op', message: 'missing "op": the operator name' });
      continue;
    }
    let descriptor: OperatorDescriptor | undefined;
    if (isPathReference(op)) {
      const opFile = path.resolve(baseDir, op);
      if (!existsSync(opFile)) {
        errors.push({ step: index, op, path: 'op', message: `custom operator file not found: ${opFile}` });
        continue;
      }
      try {
        descriptor = await loadOperatorFile(opFile);
      } catch (e) {
        errors.push({ step: index, op, path: 'op', message: (e as Error).message });
        continue;
      }
    } else {
      descriptor = registry.get(op);
      if (!descriptor) {
        const hint = registry.suggest(op);
        errors.push({ step: index, op, path: 'op', message: `unknown operator "${op}"${hint.length ? `; did you mean ${hint.map((h) => `"${h}"`).join(' or ')}?` : ''} (see \`mixstream ops\`)` });
        continue;
      }
    }
    const optionErrors: OptionError[] = [];
    const options = validateOptions(given, descriptor.options, optionErrors);
    if (descriptor.check) {
      // All errors at once: with options the schema refused, the check still runs, and adds what
      // it finds at other paths (a check may also fail on values of the wrong type: then nothing).
      const refused = optionErrors.map((e) => e.path);
      try {
        const found = descriptor.check(options, upstreamOf(resolved));
        optionErrors.push(...found.filter((e) => !refused.some((r) => overlaps(r, e.path))));
      } catch (e) {
        if (refused.length === 0) optionErrors.push({ path: '', message: (e as Error).message });
      }
    }
    for (const e of optionErrors) errors.push({ step: index, op, path: e.path, message: e.message });
    if (optionErrors.length) refusedSteps.add(index);
    if (descriptor.name === 'decode' && index !== 0) {
      errors.push({ step: index, op, path: 'op', message: 'decode reads the inputs, so it can only be the first step' });
    }
    resolved.push({ index, op, descriptor, options });
  }
  // What a step reads and writes is asked of it only when its options are what the schema says
  // (`against: "x.idx"` is a type error, not a list to look through).
  const checked = resolved.filter((r) => !refusedSteps.has(r.index));
  for (const r of resolved) {
    if (r.index > 0 && r.descriptor.name !== 'decode' && resolved.length && isSourceOnly(r.descriptor)) {
      errors.push({ step: r.index, op: r.op, path: 'op', message: `${r.op} generates records, so it can only be the first step` });
    }
    if (r.descriptor.terminal && r !== resolved[resolved.length - 1]) {
      errors.push({ step: r.index, op: r.op, path: 'op', message: `${r.op} writes every record itself and passes none on, so it can only be the last step` });
    }
  }
  // Two steps writing one file or directory (or one inside the other) would write over each other.
  const writes = stepWrites(checked, baseDir);
  writes.forEach((w, k) => {
    const before = writes.slice(0, k).find((o) => isWithin(w.path, o.path) || isWithin(o.path, w.path));
    if (!before) return;
    const how = before.path === w.path ? 'is also written by' : isWithin(w.path, before.path) ? 'is inside the path written by' : 'holds the path written by';
    errors.push({ step: w.step.index, op: w.step.op, path: w.option, message: `${w.given} ${how} step ${before.step.index} (${before.step.op}) as ${before.option}; give each step its own path` });
  });
  // The files the pipeline file names (its sink, errors and rejects) are not a step's either.
  for (const [key, given] of [['sink', sink], ['errors', p.errors], ['rejects', p.rejects]] as const) {
    if (typeof given !== 'string' || given === '' || given === '-') continue;
    const at = realTarget(path.resolve(baseDir, given));
    const w = writes.find((o) => isWithin(at, o.path) || isWithin(o.path, at));
    if (w) errors.push({ path: key, message: `${given} ${placed(at, w.path)} step ${w.step.index} (${w.step.op}) writes as ${w.option}; give ${key} another path` });
  }
  // What steps read as they start is looked for now: a missing model or filter fails lint, not
  // only the run.
  for (const r of checked) {
    const seen: { option: string; real: string }[] = [];
    for (const f of r.descriptor.reads?.(r.options, upstreamOf(resolved.slice(0, resolved.indexOf(r)))) ?? []) {
      const at = path.resolve(baseDir, f.path);
      if (!existsSync(at)) {
        errors.push({ step: r.index, op: r.op, path: f.option, message: `${f.path} does not exist${at !== f.path ? ` (${at})` : ''}${f.hint ? `; ${f.hint}` : ''}` });
        continue;
      }
      const real = realTarget(at);
      const again = seen.find((x) => x.real === real);
      const written = writes.find((w) => isWithin(real, w.path) || isWithin(w.path, real));
      if (again) errors.push({ step: r.index, op: r.op, path: f.option, message: `${f.path} is what ${again.option} names already (${real}); list it once` });
      else if (written) errors.push({ step: r.index, op: r.op, path: f.option, message: `${f.path} ${placed(real, written.path)} step ${written.step.index} (${written.step.op}) writes as ${written.option}; a step cannot read what the run writes` });
      else {
        const problem = f.check?.(at);
        if (problem) errors.push({ step: r.index, op: r.op, path: f.option, message: problem });
      }
      seen.push({ option: f.option, real });
    }
  }
  if (errors.length) throw new PipelineError(file, errors);

  let decode: ResolvedStep;
  let steps = resolved;
  if (resolved[0]?.descriptor.name === 'decode') {
    decode = resolved[0];
    steps = resolved.slice(1);
  } else {
    const d = registry.get('decode');
    if (!d) throw new Error('the decode operator is not registered');
    decode = { index: -1, op: 'decode', descriptor: d, options: validateOptions({}, d.options, []) };
  }
  return { file, baseDir, spec: p, decode, steps, inputs: inputs ?? [], sink };
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false; // not there, or under a file: the checks that follow name it
  }
}

/**
 * Where a path really is: symbolic links of its existing part followed, the part not made yet
 * appended (two spellings of one file or directory, through links, compare equal).
 */
export function realTarget(p: string, links = 0): string {
  const abs = path.resolve(p);
  const rest: string[] = [];
  for (let at = abs; ; at = path.dirname(at)) {
    try {
      return path.join(realpathSync(at), ...rest.reverse());
    } catch {
      // A link to what is not made yet: where it points (a few links deep; a loop stays as it is).
      if (links < 8 && isLink(at)) {
        return realTarget(path.join(path.resolve(path.dirname(at), readlinkSync(at)), ...rest.reverse()), links + 1);
      }
      if (path.dirname(at) === at) return abs;
      rest.push(path.basename(at));
    }
  }
}

/** Whether one option path is the other or lies within it (`rules` and `rules[0].set`). */
function overlaps(a: string, b: string): boolean {
  const within = (x: string, y: string) => x === y || x.startsWith(`${y}.`) || x.startsWith(`${y}[`);
  return within(a, b) || within(b, a);
}

/** How resolved path `a` stands to `b`, one within the other, in words: "is the path", "is inside the path" or "holds the path". */
function placed(a: string, b: string): string {
  return a === b ? 'is the path' : isWithin(a, b) ? 'is inside the path' : 'holds the path';
}

/** Whether path `a` is `b` or lies inside it (both resolved, as `realTarget` gives them). */
export function isWithin(a: string, b: string): boolean {
  return a === b || a.startsWith(b.endsWith(path.sep) ? b : b + path.sep);
}

interface StepWrite {
  /** Where it really is (`realTarget`). */
  path: string;
  /** The path as the option gives it. */
  given: string;
  option: string;
  step: ResolvedStep;
  /** "step N (op) option". */
  by: string;
}

/** What `steps` write (see `OperatorDescriptor.writes`), resolved against `baseDir`. */
function stepWrites(steps: ResolvedStep[], baseDir: string): StepWrite[] {
  const out: StepWrite[] = [];
  for (const step of steps) {
    for (const w of step.descriptor.writes?.(step.options) ?? []) {
      if (typeof w.path !== 'string') continue; // a wrong type is reported with the options
      out.push({ path: realTarget(path.resolve(baseDir, w.path)), given: w.path, option: w.option, step, by: `step ${step.index} (${step.op}) ${w.option}` });
    }
  }
  return out;
}

/** The paths the steps of a pipeline write, resolved, with the step and option that write each. */
export function writtenPaths(p: ResolvedPipeline): { path: string; by: string }[] {
  return stepWrites([p.decode, ...p.steps], p.baseDir);
}

/** Operators that declare themselves sources (they generate records; see `mix`). */
function isSourceOnly(d: OperatorDescriptor): boolean {
  return d.source === true;
}

/** Loads and validates a pipeline file; relative paths inside it resolve against its directory. */
export async function loadPipeline(file: string, registry: Registry): Promise<ResolvedPipeline> {
  const spec = await loadPipelineFile(file);
  const baseDir = path.dirname(path.resolve(file));
  const resolved = await resolvePipeline(spec, registry, file, baseDir);
  resolved.inputs = resolved.inputs.map((i) => (i === '-' || /^https?:\/\//.test(i) ? i : path.resolve(baseDir, i)));
  if (resolved.sink && resolved.sink !== '-') resolved.sink = path.resolve(baseDir, resolved.sink);
  return resolved;
}
