// The built-in operators. The CLI registers these; the core never imports this file.
import type { OperatorDescriptor } from '../lib/operator.ts';
import tokens from './tokens.ts';

export const builtins: OperatorDescriptor[] = [
  tokens,
];
