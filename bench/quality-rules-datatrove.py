"""Runs datatrove's heuristic filters (GopherQuality, GopherRepetition, C4Quality, FineWebQuality)
over an NDJSON file and prints one JSON object: per filter, seconds and per-document decisions.

Usage: python3 bench/quality-rules-datatrove.py DATATROVE_SRC SHIM_DIR docs.jsonl [filters...]

datatrove is used as fetched (outside this repository). Its English word tokenizer is spaCy's,
which cannot be installed here (no PyPI); the filters are given NLTK's Treebank word tokenizer
over sentences from an untrained Punkt splitter instead (what nltk.word_tokenize does, minus
Punkt's trained English parameters, which cannot be downloaded here either).
"""
import json
import sys
import time

src, shim, path = sys.argv[1], sys.argv[2], sys.argv[3]
wanted = sys.argv[4:] or ["gopher-quality", "gopher-repetition", "c4", "fineweb"]
sys.path.insert(0, src)
sys.path.insert(0, shim)

from nltk.tokenize import NLTKWordTokenizer  # noqa: E402
from nltk.tokenize.punkt import PunktSentenceTokenizer  # noqa: E402

from datatrove.data import Document  # noqa: E402
from datatrove.pipeline.filters import (  # noqa: E402
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from datatrove.utils.word_tokenizers import WordTokenizer, strip_strings  # noqa: E402


class NltkWithoutData(WordTokenizer):
    def __init__(self):
        super().__init__("en")
        self._sent = PunktSentenceTokenizer()
        self._word = NLTKWordTokenizer()

    def word_tokenize(self, text):
        return strip_strings([t for s in self._sent.tokenize(text) for t in self._word.tokenize(s)])

    def sent_tokenize(self, text):
        return strip_strings(self._sent.tokenize(text))

    def span_tokenize(self, text):
        return list(self._sent.span_tokenize(text))


tok = NltkWithoutData()
filters = {
    "gopher-quality": lambda: GopherQualityFilter(language=tok),
    "gopher-repetition": lambda: GopherRepetitionFilter(language=tok),
    "c4": lambda: C4QualityFilter(language=tok),
    "fineweb": lambda: FineWebQualityFilter(language=tok),
}

docs = []
with open(path, encoding="utf-8") as f:
    for line in f:
        if line.strip():
            r = json.loads(line)
            docs.append((r["id"], r["text"]))

out = {}
for name in wanted:
    flt = filters[name]()
    decisions = []
    t0 = time.perf_counter()
    for doc_id, text in docs:
        doc = Document(text=text, id=doc_id)
        try:
            res = flt.filter(doc)
        except Exception as e:  # datatrove raises on some edge cases (e.g. no words)
            decisions.append({"keep": None, "reason": f"error:{type(e).__name__}"})
            continue
        keep, reason = (res, None) if not isinstance(res, tuple) else res
        d = {"keep": bool(keep), "reason": reason}
        if name == "c4" and keep:
            d["text"] = doc.text
        decisions.append(d)
    out[name] = {"seconds": time.perf_counter() - t0, "decisions": decisions}
json.dump(out, sys.stdout)
