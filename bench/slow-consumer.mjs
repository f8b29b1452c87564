// A deliberately slow reader: takes one chunk, then waits, so the producer must hold back.
// Usage: producer | node bench/slow-consumer.mjs <ms per chunk>
const delay = Number(process.argv[2] ?? 1);
let bytes = 0;
process.stdin.on('data', (chunk) => {
  bytes += chunk.length;
  process.stdin.pause();
  setTimeout(() => process.stdin.resume(), delay);
});
process.stdin.on('end', () => process.stderr.write(`slow consumer read ${bytes} bytes\n`));
