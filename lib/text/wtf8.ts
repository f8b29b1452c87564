// Strings as bytes without loss. A JavaScript string may hold a lone surrogate (a JSON
// "\udcff" escape, bytes a Python tool decoded with surrogateescape); UTF-8 cannot, and
// TextEncoder/Buffer turn it into U+FFFD, so an id stored that way comes back as another id.
// WTF-8 writes a lone surrogate as the 3-byte sequence UTF-8 would give its code point, and is
// plain UTF-8 for every well-formed string. No stream code.

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/** The WTF-8 bytes of `value` (its UTF-8 bytes when it has no lone surrogate; not a string: of its String()). */
export function wtf8Bytes(value: string): Uint8Array {
  const s = typeof value === 'string' ? value : String(value);
  if (isWellFormed(s)) return encoder.encode(s);
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return Uint8Array.from(out);
}

/** The string of WTF-8 (or UTF-8) bytes written by `wtf8Bytes`. */
export function wtf8String(b: Uint8Array): string {
  if (!hasLoneSurrogate(b)) return decoder.decode(b);
  let s = '';
  for (let i = 0; i < b.length; ) {
    const x = b[i];
    let c: number;
    if (x < 0x80) (c = x), (i += 1);
    else if (x < 0xe0) (c = ((x & 31) << 6) | (b[i + 1] & 63)), (i += 2);
    else if (x < 0xf0) (c = ((x & 15) << 12) | ((b[i + 1] & 63) << 6) | (b[i + 2] & 63)), (i += 3);
    else (c = ((x & 7) << 18) | ((b[i + 1] & 63) << 12) | ((b[i + 2] & 63) << 6) | (b[i + 3] & 63)), (i += 4);
    s += String.fromCodePoint(c);
  }
  return s;
}

/** A surrogate's sequence: 0xED then 0xA0..0xBF (in UTF-8, 0xED is followed by 0x80..0x9F only). */
function hasLoneSurrogate(b: Uint8Array): boolean {
  for (let i = b.indexOf(0xed); i >= 0 && i + 1 < b.length; i = b.indexOf(0xed, i + 1)) if (b[i + 1] >= 0xa0) return true;
  return false;
}
