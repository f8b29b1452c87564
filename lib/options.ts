// Option schemas: one description per option drives validation, defaults, `mixstream ops`
// and the typed options an operator receives.

export type OptionSpec =
  | { type: 'string'; description: string; default?: string; enum?: readonly string[]; nonEmpty?: boolean; required?: boolean }
  | { type: 'number' | 'integer'; description: string; default?: number; min?: number; max?: number; exclusiveMin?: boolean; required?: boolean }
  | { type: 'boolean'; description: string; default?: boolean; required?: boolean }
  | { type: 'array'; description: string; items: OptionSpec; default?: unknown[]; minItems?: number; unique?: boolean; required?: boolean }
  | { type: 'object'; description: string; properties?: Record<string, OptionSpec>; additional?: OptionSpec; default?: Record<string, unknown>; required?: boolean }
  | { type: 'any'; description: string; default?: unknown; required?: boolean }
  | { type: 'oneOf'; description: string; variants: readonly OptionSpec[]; default?: unknown; required?: boolean };

export type OptionSchema = Record<string, OptionSpec>;

export interface OptionError {
  path: string;
  message: string;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** The `typeName` of the values a spec takes (undefined for any and oneOf). */
function kindOf(spec: OptionSpec): string | undefined {
  if (spec.type === 'integer') return 'number';
  return spec.type === 'any' || spec.type === 'oneOf' ? undefined : spec.type;
}

/** A short human form of what a spec expects, used in errors and in `mixstream ops`. */
export function describeSpec(spec: OptionSpec): string {
  switch (spec.type) {
    case 'string':
      return spec.enum ? spec.enum.map((e) => JSON.stringify(e)).join(' | ') : 'string';
    case 'number':
    case 'integer': {
      const lo = spec.min !== undefined ? `${spec.exclusiveMin ? '>' : '>='} ${spec.min}` : '';
      const hi = spec.max !== undefined ? `<= ${spec.max}` : '';
      const range = [lo, hi].filter(Boolean).join(', ');
      return range ? `${spec.type} (${range})` : spec.type;
    }
    case 'array':
      return `array of ${describeSpec(spec.items)}`;
    case 'oneOf':
      return spec.variants.map(describeSpec).join(' or ');
    default:
      return spec.type;
  }
}

/** A value as an error message shows it: its kind and its JSON (null, NaN and infinities by name). */
function shown(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'number' && !Number.isFinite(value)) return `number ${value}`;
  return `${typeName(value)} ${JSON.stringify(value)?.slice(0, 60)}`;
}

function check(value: unknown, spec: OptionSpec, path: string, errors: OptionError[]): unknown {
  const expected = () => `expected ${describeSpec(spec)}, got ${shown(value)}`;
  switch (spec.type) {
    case 'any':
      return value;
    case 'string':
      if (typeof value !== 'string') {
        errors.push({ path, message: expected() });
      } else if (spec.enum && !spec.enum.includes(value)) {
        errors.push({ path, message: `expected one of ${describeSpec(spec)}, got ${JSON.stringify(value)}` });
      } else if (spec.nonEmpty && value === '') {
        errors.push({ path, message: 'expected a non-empty string, got ""' });
      }
      return value;
    case 'number':
    case 'integer':
      if (typeof value !== 'number' || !Number.isFinite(value) || (spec.type === 'integer' && !Number.isInteger(value))) {
        errors.push({ path, message: expected() });
      } else if (
        (spec.min !== undefined && (spec.exclusiveMin ? value <= spec.min : value < spec.min)) ||
        (spec.max !== undefined && value > spec.max)
      ) {
        errors.push({ path, message: `out of range: expected ${describeSpec(spec)}, got ${value}` });
      }
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') errors.push({ path, message: expected() });
      return value;
    case 'array': {
      if (!Array.isArray(value)) {
        errors.push({ path, message: expected() });
        return value;
      }
      if (spec.minItems !== undefined && value.length < spec.minItems) {
        errors.push({ path, message: `expected at least ${spec.minItems} item(s), got ${value.length}` });
      }
      if (spec.unique) {
        const keys = value.map((item) => JSON.stringify(item));
        keys.forEach((key, i) => {
          const first = keys.indexOf(key);
          if (first < i) errors.push({ path: `${path}[${i}]`, message: `${key} is listed already (${path}[${first}]); list each value once` });
        });
      }
      return value.map((item, i) => check(item, spec.items, `${path}[${i}]`, errors));
    }
    case 'object': {
      if (typeName(value) !== 'object') {
        errors.push({ path, message: expected() });
        return value;
      }
      if (spec.properties) return validateOptions(value as Record<string, unknown>, spec.properties, errors, path, spec.additional);
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        out[k] = spec.additional ? check(v, spec.additional, `${path}.${k}`, errors) : v;
      }
      return out;
    }
    case 'oneOf': {
      const tried: OptionError[][] = [];
      for (const variant of spec.variants) {
        const sub: OptionError[] = [];
        const v = check(value, variant, path, sub);
        if (sub.length === 0) return v;
        tried.push(sub);
      }
      // A value of the kind only one variant takes is wrong within it: say where ({"set": "nope"}
      // is an unknown set, not "not an object").
      const kind = typeName(value);
      const sameKind = spec.variants.flatMap((variant, i) => (kindOf(variant) === kind ? [i] : []));
      if (sameKind.length === 1) errors.push(...tried[sameKind[0]]);
      else errors.push({ path, message: expected() });
      return value;
    }
  }
}

/** Levenshtein distance, for "did you mean" suggestions. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

export function closest(name: string, candidates: Iterable<string>, max = 3): string[] {
  const scored = [...candidates]
    .map((c) => ({ c, d: editDistance(name.toLowerCase(), c.toLowerCase()) }))
    .filter(({ c, d }) => d <= Math.max(2, Math.floor(c.length / 2)) || c.includes(name) || name.includes(c))
    .sort((x, y) => x.d - y.d);
  return scored.slice(0, max).map((s) => s.c);
}

/**
 * Validates `given` against `schema`, collecting every error (never stopping at the first),
 * and returns the options with defaults filled in.
 */
export function validateOptions(
  given: Record<string, unknown>,
  schema: OptionSchema,
  errors: OptionError[],
  prefix = '',
  additional?: OptionSpec,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const at = (k: string) => (prefix ? `${prefix}.${k}` : k);
  for (const [key, value] of Object.entries(given)) {
    const spec = schema[key];
    if (!spec) {
      if (additional) {
        out[key] = check(value, additional, at(key), errors);
        continue;
      }
      const hint = closest(key, Object.keys(schema));
      const known = Object.keys(schema);
      errors.push({
        path: at(key),
        message: `unknown option${hint.length ? `; did you mean ${hint.map((h) => `"${h}"`).join(' or ')}?` : ''}${known.length ? ` (known: ${known.join(', ')})` : ' (this operator takes no options)'}`,
      });
      continue;
    }
    if (value === undefined) continue;
    out[key] = check(value, spec, at(key), errors);
  }
  for (const [key, spec] of Object.entries(schema)) {
    if (out[key] !== undefined) continue;
    if (spec.default !== undefined) out[key] = structuredClone(spec.default);
    else if (spec.required) errors.push({ path: at(key), message: `required option missing: expected ${describeSpec(spec)}` });
  }
  return out;
}
