import t from 'tap';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cli, lines, ROOT, SAMPLES, tmpdir } from '../helpers.ts';

// A user's directory without a package.json (or with "type": "commonjs"): Node treats .ts files
// there as CommonJS, and they still load.
for (const type of [undefined, 'commonjs']) {
  t.test(`a .ts pipeline and a custom .ts operator load from a directory ${type ? `of a "type": "${type}" package` : 'without package.json'}`, async (t) => {
    const dir = tmpdir();
    if (type) writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type }));
    mkdirSync(path.join(dir, 'ops'));
    const operator = readFileSync(path.join(SAMPLES, 'operators', 'word-count.ts'), 'utf8').replace(/from '\.\.\/\.\.\/lib\//g, `from '${ROOT}/lib/`);
    writeFileSync(path.join(dir, 'ops', 'word-count.ts'), operator);
    writeFileSync(path.join(dir, 'pipeline.ts'), "export default { steps: [{ op: 'normalize' }, { op: './ops/word-count.ts', minWords: 40 }] };\n");
    const lint = cli(['lint', 'pipeline.ts'], { cwd: dir });
    t.equal(lint.code, 0, lint.stderr);
    t.match(lint.stdout, /normalize -> .*word-count\.ts/);
    const r = cli(['run', 'pipeline.ts', path.join(SAMPLES, 'kjv.jsonl'), '-q'], { cwd: dir });
    t.equal(r.code, 0, r.stderr);
    const out = lines(r.stdout);
    t.ok(out.length > 0 && out.every((o) => o.text.split(/\s+/).length >= 40), `${out.length} chapters of 40 words or more`);
  });
}
