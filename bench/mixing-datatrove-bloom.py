"""Peer side of bench/mixing.ts: datatrove's Bloom filter (pipeline/dedup/bloom_filter.py,
SingleBloomFilter: 13-gram shingles of simplify_text, 32-bit hashes, k universal hash functions)
used as a decontamination filter on the same data: insert every n-gram of the evaluation set,
then query every n-gram of the corpus. Prints one JSON object.

Usage: python bench/mixing-datatrove-bloom.py eval.jsonl corpus.jsonl EXPECTED_NGRAMS FP_RATE shipped|tuned

"shipped": BloomFilterConfig(m_bytes = bits for FP_RATE / 8, expected_elements) as documented. Its k
comes from get_optimal_k(self.m, ...), which multiplies the bits by 8 again (k 8x too large), and
get_indexes reduces hashes with `& m_bytes` instead of a modulo, so only the bit positions that
are subsets of m_bytes' binary digits are reachable: the filter saturates at once.
"tuned": m_bytes = 2^p - 1 with 2^p >= the bits the rate needs, so `& m_bytes` acts as a modulo
over 2^p bits, and k = the optimum for 2^p bits: the same filter quality as ours, to compare speed.

datatrove is used as installed (outside this repository). Its English word tokenizer needs spaCy,
which is not installable here; words are split on whitespace after simplify_text (lowercase,
punctuation removed, numbers folded), which is what the tokenizer sees anyway.
"""
import json
import math
import sys
import time

from datatrove.pipeline.dedup.bloom_filter import BloomFilterConfig, SingleBloomFilter
from datatrove.utils.text import ngrams, simplify_text

eval_path, corpus_path, expected, rate, variant = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
m_bits = math.ceil(-expected * math.log(rate) / (math.log(2) ** 2))
if variant == "shipped":
    config = BloomFilterConfig(m_bytes=(m_bits + 7) // 8, expected_elements=expected, n_grams=13)
else:
    p = max(6, math.ceil(math.log2(m_bits)))
    config = BloomFilterConfig(m_bytes=2**p - 1, k=max(1, round(2**p / expected * math.log(2))), n_grams=13)
m_bytes = config.m_bytes


class Words:
    def word_tokenize(self, text):
        return text.split()


bf = SingleBloomFilter.__new__(SingleBloomFilter)
bf.config = config
bf.tokenizer = Words()
bf.bit_vector = bytearray(config.m_bytes)
from datatrove.utils.hashing import create_hash_func  # noqa: E402

_hash = create_hash_func(config.hash_config, input_type=bytes)  # xxhash32 of the UTF-8 n-gram
bf.hash_fc = lambda s: _hash(s.encode("utf8"))
bf._parameters = None


def grams(text):
    return [" ".join(x) for x in ngrams(simplify_text(text, config.norm_config).split(), config.n_grams)]


eval_texts = [json.loads(line)["text"] for line in open(eval_path, encoding="utf8")]
exact = set()
for t in eval_texts:
    exact.update(grams(t))

t0 = time.perf_counter()
c0 = time.process_time()
inserted = 0
for t in eval_texts:
    sh = bf.get_shingles(t)
    if sh.size == 0:
        continue
    for idx in bf.get_indexes(sh):
        bf.update_bf(idx)
    inserted += sh.size
build = time.perf_counter() - t0
build_cpu = time.process_time() - c0

t0 = time.perf_counter()
c0 = time.process_time()
docs = 0
nbytes = 0
queries = 0
hits = 0
flagged = 0
hit_docs = []
for line in open(corpus_path, encoding="utf8"):
    nbytes += len(line.encode("utf8"))
    text = json.loads(line)["text"]
    docs += 1
    sh = bf.get_shingles(text)
    if sh.size == 0:
        continue
    queries += sh.size
    found = 0
    for idx in bf.get_indexes(sh):
        if bf.query(idx):
            found += 1
    if found:
        flagged += 1
        hits += found
        hit_docs.append(text)
query = time.perf_counter() - t0
query_cpu = time.process_time() - c0

# Exact truth for the documents with hits: n-grams really in the evaluation set.
true_hits = sum(1 for text in hit_docs for g in grams(text) if g in exact)
print(json.dumps({
    "m_bytes": m_bytes, "k": config.k, "inserted": inserted, "build_seconds": build, "build_cpu": build_cpu, "query_cpu": query_cpu,
    "docs": docs, "bytes": nbytes, "queries": queries, "query_seconds": query,
    "hits": hits, "true_hits": true_hits, "flagged_docs": flagged,
}))
