// Records written to disk and read back (spill files, checkpoint state) as one line of JSON
// each. Plain JSON.stringify would lose what later steps may still need: the internals
// (hashing form, shingles, signatures: typed arrays under a symbol key) and the set of fields
// mixstream steps wrote (so a later annotate is not counted as overwriting user data).
// No stream code.
import { INTERNAL, peekInternals, type Internals, type Rec } from './operator.ts';

/** The symbol lib/context.ts keeps the fields written by steps under (a registered symbol). */
const OWNED = Symbol.for('mixstream.ownedFields');

const TYPED = {
  Uint8Array,
  Int8Array,
  Uint16Array,
  Int16Array,
  Uint32Array,
  Int32Array,
  Float32Array,
  Float64Array,
  BigUint64Array,
  BigInt64Array,
} as const;
type TypedName = keyof typeof TYPED;

interface TypedValue {
  $typed: TypedName;
  b64: string;
}

function encodeValue(v: unknown): unknown {
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
    const name = v.constructor.name as TypedName;
    if (!(name in TYPED)) throw new Error(`record codec: cannot store internals of type ${name}`);
    return { $typed: name, b64: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') } satisfies TypedValue;
  }
  return v;
}

function decodeValue(v: unknown): unknown {
  if (v && typeof v === 'object' && typeof (v as TypedValue).$typed === 'string') {
    const { $typed, b64 } = v as TypedValue;
    const Ctor = TYPED[$typed];
    if (!Ctor) throw new Error(`record codec: unknown typed array ${$typed}`);
    const bytes = Buffer.from(b64, 'base64');
    const out = new Ctor(bytes.byteLength / Ctor.BYTES_PER_ELEMENT);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  return v;
}

/**
 * One line (without the newline) that `decodeRecord` turns back into an equal record: the same
 * JSON fields, internals (strings, numbers, plain JSON values and typed arrays) and owned fields.
 */
export function encodeRecord(rec: Rec): string {
  const ints = peekInternals(rec);
  const owned = (rec as Rec & { [OWNED]?: Set<string> })[OWNED];
  const hasInts = ints !== undefined && Object.keys(ints).length > 0;
  if (!hasInts && !owned?.size) return JSON.stringify([rec]);
  const enc: Record<string, unknown> = {};
  if (hasInts) for (const [k, v] of Object.entries(ints!)) if (v !== undefined) enc[k] = encodeValue(v);
  return JSON.stringify(owned?.size ? [rec, enc, [...owned]] : [rec, enc]);
}

export function decodeRecord(line: string): Rec {
  const [rec, enc, owned] = JSON.parse(line) as [Rec, Record<string, unknown>?, string[]?];
  if (enc) {
    const ints: Internals = {};
    for (const [k, v] of Object.entries(enc)) ints[k] = decodeValue(v);
    (rec as Rec & { [INTERNAL]?: Internals })[INTERNAL] = ints;
  }
  if (owned) (rec as Rec & { [OWNED]?: Set<string> })[OWNED] = new Set(owned);
  return rec;
}
