// A tiny arithmetic expression language over record fields, for weights such as
// `quality_score ^ 2 * min(token_count, 2048)`. Parsed once into a closure; never uses eval.
//
//   expr    := term (('+' | '-') term)*
//   term    := unary (('*' | '/') unary)*
//   unary   := '-' unary | power
//   power   := primary ('^' unary)?          (right-associative)
//   primary := number | field | func '(' expr (',' expr)* ')' | '(' expr ')'
//   field   := [A-Za-z_][A-Za-z0-9_]* ('.' [A-Za-z_][A-Za-z0-9_]*)*    (dots reach nested objects)
//   func    := min | max | log | exp | sqrt | abs

export class ExpressionError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(message);
  }
}

/** A compiled expression: returns a number, or a string explaining why the record has none. */
export type Evaluator = (rec: Record<string, unknown>) => number | string;

const FUNCS: Record<string, { arity: [number, number]; f: (...a: number[]) => number }> = {
  min: { arity: [1, Infinity], f: Math.min },
  max: { arity: [1, Infinity], f: Math.max },
  log: { arity: [1, 1], f: Math.log },
  exp: { arity: [1, 1], f: Math.exp },
  sqrt: { arity: [1, 1], f: Math.sqrt },
  abs: { arity: [1, 1], f: Math.abs },
};

type Node = (rec: Record<string, unknown>) => number;

/** Thrown inside evaluation when a field is missing or not a number; caught by the evaluator. */
class MissingField {
  constructor(readonly message: string) {}
}

function fieldReader(name: string): Node {
  const parts = name.split('.');
  return (rec) => {
    let v: unknown = rec;
    for (const p of parts) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[p] : undefined;
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (typeof v === 'boolean') return v ? 1 : 0;
    throw new MissingField(v === undefined ? `field "${name}" is missing` : `field "${name}" is ${JSON.stringify(v)?.slice(0, 40)}, not a number`);
  };
}

/** Parses `src`; throws ExpressionError with the position of the problem. Returns the evaluator and the fields it reads. */
export function compileExpression(src: string): { evaluate: Evaluator; fields: string[] } {
  let i = 0;
  const fields = new Set<string>();
  const ws = () => {
    while (i < src.length && /\s/.test(src[i])) i++;
  };
  const fail = (msg: string): never => {
    throw new ExpressionError(`${msg} at position ${i + 1} in ${JSON.stringify(src)}`, i);
  };
  const peek = () => {
    ws();
    return src[i];
  };
  const expr = (): Node => {
    let left = term();
    for (let c = peek(); c === '+' || c === '-'; c = peek()) {
      i++;
      const l = left;
      const r = term();
      left = c === '+' ? (x) => l(x) + r(x) : (x) => l(x) - r(x);
    }
    return left;
  };
  const term = (): Node => {
    let left = unary();
    for (let c = peek(); c === '*' || c === '/'; c = peek()) {
      i++;
      const l = left;
      const r = unary();
      left = c === '*' ? (x) => l(x) * r(x) : (x) => l(x) / r(x);
    }
    return left;
  };
  const unary = (): Node => {
    if (peek() === '-') {
      i++;
      const u = unary();
      return (x) => -u(x);
    }
    return power();
  };
  const power = (): Node => {
    const base = primary();
    if (peek() === '^') {
      i++;
      const e = unary();
      return (x) => Math.pow(base(x), e(x));
    }
    return base;
  };
  const primary = (): Node => {
    const c = peek();
    if (c === undefined) return fail('unexpected end of expression');
    if (c === '(') {
      i++;
      const e = expr();
      if (peek() !== ')') fail('expected ")"');
      i++;
      return e;
    }
    const num = /^(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(src.slice(i));
    if (num) {
      i += num[0].length;
      const v = Number(num[0]);
      return () => v;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*/.exec(src.slice(i));
    if (!id) return fail(`unexpected ${JSON.stringify(c)}`);
    const start = i;
    i += id[0].length;
    if (peek() === '(') {
      const fn = FUNCS[id[0]];
      if (!fn) {
        i = start;
        return fail(`unknown function "${id[0]}" (known: ${Object.keys(FUNCS).join(', ')})`);
      }
      i++;
      const args: Node[] = [expr()];
      while (peek() === ',') {
        i++;
        args.push(expr());
      }
      if (peek() !== ')') fail('expected "," or ")"');
      i++;
      if (args.length < fn.arity[0] || args.length > fn.arity[1]) {
        i = start;
        fail(`${id[0]}() takes ${fn.arity[1] === Infinity ? `at least ${fn.arity[0]}` : fn.arity[0]} argument(s), got ${args.length}`);
      }
      if (args.length === 1) {
        const a = args[0];
        return (x) => fn.f(a(x));
      }
      return (x) => fn.f(...args.map((a) => a(x)));
    }
    fields.add(id[0]);
    return fieldReader(id[0]);
  };
  if (!src.trim()) fail('empty expression');
  const root = expr();
  if (peek() !== undefined) fail(`unexpected ${JSON.stringify(src[i])}`);
  const evaluate: Evaluator = (rec) => {
    try {
      return root(rec);
    } catch (e) {
      if (e instanceof MissingField) return e.message;
      throw e;
    }
  };
  return { evaluate, fields: [...fields] };
}
