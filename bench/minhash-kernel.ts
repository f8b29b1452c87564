// Child process of bench/minhash.ts: shingles and MinHashes the documents of a JSONL file
// `passes` times in one thread and prints the seconds the timed passes took (one untimed pass
// first, so the compiler has optimized the kernels).
//   node --import tsx bench/minhash-kernel.ts FILE classic|oph PASSES
import { readFileSync } from 'node:fs';
import { createMinHasher, type MinHashScheme } from '../lib/sketch/minhash.ts';
import { shingleText } from '../lib/text/shingle.ts';

const [file, scheme, passes] = process.argv.slice(2);
const texts = readFileSync(file, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l).text as string);
const hasher = createMinHasher({ scheme: scheme as MinHashScheme });
const run = () => {
  let check = 0;
  for (const t of texts) check ^= hasher.signature(shingleText(t, { unit: 'word', n: 5 }))[0];
  return check;
};
run();
const t0 = performance.now();
for (let p = 0; p < Number(passes); p++) run();
process.stdout.write(`${(performance.now() - t0) / 1000}\n`);
