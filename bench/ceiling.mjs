// The ceiling for any Node NDJSON tool: readline + JSON.parse + JSON.stringify, nothing else.
import { createReadStream } from 'node:fs';
import readline from 'node:readline';

const rl = readline.createInterface({ input: process.argv[2] ? createReadStream(process.argv[2]) : process.stdin, crlfDelay: Infinity });
let out = '';
for await (const line of rl) {
  if (!line) continue;
  out += JSON.stringify(JSON.parse(line)) + '\n';
  if (out.length > 1 << 16) {
    if (!process.stdout.write(out)) await new Promise((r) => process.stdout.once('drain', r));
    out = '';
  }
}
process.stdout.write(out);
