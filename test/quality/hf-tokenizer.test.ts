import { readFileSync } from 'node:fs';
import t from 'tap';
import { SequenceTokenizer, WordPiece } from '../../lib/quality/hf-tokenizer.ts';
import { byteLevelAlphabet } from '../../lib/text/tokenizer.ts';

// A BERT-style tokenizer.json in the Hugging Face format, with an 18-word vocabulary.
const bertJson = JSON.parse(readFileSync(new URL('../fixtures/tiny-bert-tokenizer.json', import.meta.url), 'utf8'));
const VOCAB = Object.keys(bertJson.model.vocab);
const id = (w: string) => VOCAB.indexOf(w);

t.test('WordPiece with the BERT normalizer and pre-tokenizer', async (t) => {
  const tok = new SequenceTokenizer(bertJson, 'bert.json');
  t.equal(tok.kind, 'WordPiece');
  t.same(tok.encode('The LORD said,', 16), [2, id('the'), id('lord'), id('said'), id(','), 3]);
  t.same(tok.encode('unknown running!', 16), [2, id('un'), id('##know'), id('##n'), id('run'), id('##ning'), id('!'), 3], 'longest match first, ## continuations');
  t.same(tok.encode('Café', 16), [2, id('cafe'), 3], 'accents stripped when lowercasing');
  t.same(tok.encode('unx zebra', 16), [2, id('[UNK]'), id('[UNK]'), 3], 'a word with an unknown piece is one [UNK]');
  t.same(tok.encode('日本', 16), [2, id('日'), id('本'), 3], 'CJK characters are words of their own');
  t.same(tok.encode('the\u0000 lord\u200b', 16), [2, id('the'), id('lord'), 3], 'control and format characters removed');
  t.same(tok.encode('the lord said the lord said', 5), [2, id('the'), id('lord'), id('said'), 3], 'truncated to maxLength with specials kept');
});

t.test('batches are padded with the pad id and masked', async (t) => {
  const tok = new SequenceTokenizer(bertJson, 'bert.json');
  const b = tok.batch(['the lord', 'said'], 8);
  t.equal(b.seq, 4);
  t.same([...b.inputIds].map(Number), [2, 4, 5, 3, 2, 6, 3, 0]);
  t.same([...b.attentionMask].map(Number), [1, 1, 1, 1, 1, 1, 1, 0]);
  t.same([...b.tokenTypeIds].map(Number), new Array(8).fill(0));
});

t.test('BertProcessing post-processor and unsupported parts', async (t) => {
  const json = { ...bertJson, post_processor: { type: 'BertProcessing', sep: ['[SEP]', 3], cls: ['[CLS]', 2] } };
  t.same(new SequenceTokenizer(json, 'x').encode('lord', 8), [2, 5, 3]);
  t.throws(() => new SequenceTokenizer({ ...bertJson, normalizer: { type: 'Precompiled' } }, 'x.json'), /x\.json: normalizer\.type "Precompiled" is not supported/);
  t.throws(() => new SequenceTokenizer({ ...bertJson, model: { type: 'Unigram', vocab: [] } }, 'x.json'), /model\.type "Unigram" is not supported/);
  t.throws(() => SequenceTokenizer.fromFile('/nonexistent/tokenizer.json'), /cannot read tokenizer/);
  const wp = new WordPiece({ ...bertJson, model: { ...bertJson.model, max_input_chars_per_word: 3 } }, 'x');
  t.same(wp.word('lord'), [id('[UNK]')], 'over-long words are [UNK]');
});

t.test('byte-level BPE tokenizer.json with RoBERTa specials', async (t) => {
  const alpha = byteLevelAlphabet();
  const vocab: Record<string, number> = { '<s>': 0, '<pad>': 1, '</s>': 2 };
  for (const ch of alpha) vocab[ch] = Object.keys(vocab).length;
  const G = alpha[32]; // the byte-level symbol of a space
  for (const tok of ['hi', `${G}h`, `${G}hi`]) vocab[tok] = Object.keys(vocab).length;
  const json = {
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, use_regex: true },
    post_processor: { type: 'RobertaProcessing', sep: ['</s>', 2], cls: ['<s>', 0] },
    model: { type: 'BPE', vocab, merges: [`${G} h`, `${G}h i`, 'h i'] },
  };
  const tok = new SequenceTokenizer(json, 'bpe.json');
  t.equal(tok.kind, 'BPE');
  t.equal(tok.padId, 1);
  t.same(tok.encode('hi hi', 16), [0, vocab.hi, vocab[`${G}hi`], 2]);
  t.same(tok.encode('hi!', 16), [0, vocab.hi, vocab['!'], 2]);
});
