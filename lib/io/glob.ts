// File globs for operators that read files themselves (`mix`): `*`, `?`, `[...]` within one path
// segment and `**` across directories. Matches are sorted, so runs are deterministic.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const MAGIC = /[*?[]/;

function segmentRegex(seg: string): RegExp {
  let re = '';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = seg.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        let body = seg.slice(i + 1, end);
        if (body.startsWith('!')) body = '^' + body.slice(1);
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Sorted directory entries; none when the directory cannot be read. */
function list(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function walk(dir: string, segs: string[], out: string[]): void {
  if (segs.length === 0) {
    out.push(dir);
    return;
  }
  const [seg, ...rest] = segs;
  if (seg === '**') {
    walk(dir, rest, out);
    for (const e of list(dir)) {
      if (e.startsWith('.')) continue;
      const p = path.join(dir, e);
      if (isDir(p)) walk(p, segs, out);
    }
    return;
  }
  if (!MAGIC.test(seg)) {
    const p = path.join(dir, seg);
    if (rest.length === 0 ? exists(p) : isDir(p)) walk(p, rest, out);
    return;
  }
  const re = segmentRegex(seg);
  for (const e of list(dir)) {
    if (e.startsWith('.') && !seg.startsWith('.')) continue;
    if (!re.test(e)) continue;
    const p = path.join(dir, e);
    if (rest.length === 0 || isDir(p)) walk(p, rest, out);
  }
}

function exists(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** True when `pattern` contains glob characters. */
export function isGlob(pattern: string): boolean {
  return MAGIC.test(pattern);
}

/**
 * Expands one pattern (relative to `baseDir`) into the sorted list of matching files. A pattern
 * without glob characters is returned as is (resolved), whether it exists or not, so the reader
 * reports a missing file by name. Directories are never returned for glob patterns.
 */
export function expandGlob(pattern: string, baseDir = process.cwd()): string[] {
  const abs = path.resolve(baseDir, pattern);
  if (!isGlob(pattern)) return [abs];
  const root = path.parse(abs).root;
  const segs = abs.slice(root.length).split(path.sep).filter(Boolean);
  const out: string[] = [];
  walk(root, segs, out);
  return [...new Set(out.filter((p) => !isDir(p)))].sort();
}
