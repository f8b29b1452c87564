// Operator registry: name -> descriptor. The core never imports operators; the CLI registers
// the built-ins (operators/index.ts) and pipeline files may reference custom ones by path.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { OperatorDescriptor } from './operator.ts';
import { closest } from './options.ts';

export class Registry {
  private readonly ops = new Map<string, OperatorDescriptor>();

  register(descriptor: OperatorDescriptor): this {
    if (!/^[a-z][a-z0-9-]*$/.test(descriptor.name) && !descriptor.name.startsWith('.') && !path.isAbsolute(descriptor.name)) {
      throw new Error(`operator name "${descriptor.name}" must be kebab-case`);
    }
    this.ops.set(descriptor.name, descriptor);
    return this;
  }

  get(name: string): OperatorDescriptor | undefined {
    return this.ops.get(name);
  }

  names(): string[] {
    return [...this.ops.keys()].sort();
  }

  all(): OperatorDescriptor[] {
    return this.names().map((n) => this.ops.get(n)!);
  }

  suggest(name: string): string[] {
    return closest(name, this.ops.keys());
  }
}

export function isPathReference(op: string): boolean {
  return op.startsWith('./') || op.startsWith('../') || path.isAbsolute(op);
}

/** Loads a custom operator file: its default export (or `operator` export) is a descriptor. */
export async function loadOperatorFile(file: string): Promise<OperatorDescriptor> {
  const mod = await import(pathToFileURL(file).href);
  // A .ts file outside an ESM package is loaded as CommonJS: its default export arrives one level down.
  const candidates = [mod.default, mod.operator, mod.default?.default, mod.default?.operator];
  const d = candidates.find((c) => c && typeof c === 'object' && typeof c.create === 'function') ?? mod.default;
  if (!d || typeof d !== 'object' || typeof d.create !== 'function' || typeof d.name !== 'string') {
    throw new Error(`${file} does not export an operator descriptor (default export with name, summary, options, create)`);
  }
  d.options ??= {};
  d.summary ??= '';
  return d as OperatorDescriptor;
}
