import t from 'tap';
import { wtf8Bytes, wtf8String } from '../../lib/text/wtf8.ts';

t.test('well-formed strings are their UTF-8 bytes', async (t) => {
  for (const s of ['', 'plain', 'straße', '日本語', 'emoji 😀 and \u{20000}', '\ud55c\uae00 \ud7a3']) {
    t.same(Buffer.from(wtf8Bytes(s)), Buffer.from(s, 'utf8'), s);
    t.equal(wtf8String(wtf8Bytes(s)), s);
  }
});

t.test('lone surrogates come back as they were', async (t) => {
  for (const s of ['doc-\udcff', '\ud800', '\udfff', 'a\ud83d', '\ud83db', '\udc00\ud800', 'x\udcff😀\ud800y', '\ud83d\ud83d\ude00']) {
    const bytes = wtf8Bytes(s);
    t.equal(wtf8String(bytes), s, JSON.stringify(s));
    t.notSame(Buffer.from(bytes), Buffer.from(s, 'utf8'), 'UTF-8 would replace it');
  }
  t.same([...wtf8Bytes('\udcff')], [0xed, 0xb3, 0xbf]);
});
