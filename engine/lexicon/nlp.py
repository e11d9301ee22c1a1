"""The spaCy pipeline: a fast word tokenizer + lookup lemmas, all from PyPI.

Why not spaCy's stock English tokenizer: its prefix/suffix/infix loop costs ~18 ms
on an 11k-character README, more than the rest of the lexicon stage together, and
the rules only need words. ``WordTokenizer`` splits with one compiled regex (words,
with ``c++``/``c#``/``node.js``-style names kept whole; every other symbol its own
token) and builds the ``Doc`` in ~4 ms. Phrase patterns are tokenised by the same
pipeline, so pattern and text always agree.

Lemmas come from the English lookup table of ``spacy-lookups-data`` (no trained
model download), looked up once per distinct word and written with
``Doc.from_array`` instead of token by token.

A word spaCy meets for the first time becomes a lexeme, and spaCy computes every
lexical attribute of it then (shape, prefix, suffix, norm, ~15 flags): 16 us a word,
3.7 without them (min of 10 alternations), and a README brings ~40-90 words new to the
vocabulary (after 300 or 10 others). The lexicon reads LOWER (the surface matcher)
and the lemmas, so only LOWER is computed; a rule's token pattern that reads another
attribute (``{IS_DIGIT: true}``, ``{SHAPE: dddd}``) brings that attribute's getter
back when the rule is compiled (``require_lex_attrs``), and fills it in for the words
met before.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from functools import lru_cache
from itertools import accumulate, chain

import numpy as np
import spacy
from spacy.attrs import IDS, LEMMA, LOWER, NAMES, ORTH
from spacy.language import Language
from spacy.tokens import Doc
from spacy.vocab import Vocab

#: A word (letters/digits/underscore, inner ``.``/``'`` joins: ``node.js``, ``don't``,
#: a ``++``/``#`` suffix: ``c++``, ``c#``) or any single other non-space character.
_TOKEN = r"\w+(?:[.'’]\w+)*(?:\+\+|#(?!\w))?|[^\w\s]"
_SPACED_TOKEN = re.compile(r"(\s*)(" + _TOKEN + ")")


class WordTokenizer:
    """Text -> ``Doc`` with one regex pass; offsets are exact (``token.idx``)."""

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab

    def __call__(self, text: str) -> Doc:
        # (whitespace before, token) pairs cover the text exactly, so running sums of
        # their lengths are the token offsets: no per-token Python work.
        pairs = _SPACED_TOKEN.findall(text)
        bounds = list(accumulate(map(len, chain.from_iterable(pairs))))
        # Doc derives token.idx from words + single spaces; the true offsets (newlines,
        # runs of spaces) are kept beside the doc.
        doc = Doc(self.vocab, words=[w for _, w in pairs])
        doc.user_data[_OFFSETS] = (bounds[0::2], bounds[1::2])
        return doc

    # spaCy serialises a pipeline's tokenizer; this one has no state to save.
    def to_bytes(self, **_: object) -> bytes:
        return b""

    def from_bytes(self, _data: bytes, **_: object) -> "WordTokenizer":
        return self


_OFFSETS = "tagsmith_idx"


def token_offsets(doc: Doc) -> tuple[list[int], list[int]]:
    """Each token's start and end character in the text the doc was made from: tokens
    ``s:e`` span ``starts[s]:ends[e - 1]``."""
    return doc.user_data[_OFFSETS]  # set by WordTokenizer, which makes every Doc here


class LookupLemmas:
    """Pipeline component: ``token.lemma_`` from the English lookup table."""

    def __init__(self, vocab: Vocab) -> None:
        from spacy.lookups import load_lookups

        self.table = load_lookups("en", ["lemma_lookup"]).get_table("lemma_lookup")
        self.strings = vocab.strings
        self._by_orth: dict[int, int] = {}

    def __call__(self, doc: Doc) -> Doc:
        if not len(doc):
            return doc
        orths = doc.to_array([ORTH])
        uniq, inverse = np.unique(orths, return_inverse=True)
        lemmas = np.empty(len(uniq), dtype=np.uint64)
        for i, h in enumerate(uniq.tolist()):
            lem = self._by_orth.get(h)
            if lem is None:
                word = self.strings[h]
                lem = self._by_orth[h] = self.strings.add(self.table.get(word, word))
            lemmas[i] = lem
        doc.from_array([LEMMA], lemmas[inverse].reshape(-1, 1))
        return doc


@Language.factory("tagsmith_lemmas")
def _make_lemmas(nlp: Language, name: str) -> LookupLemmas:
    return LookupLemmas(nlp.vocab)


@lru_cache(maxsize=1)
def get_nlp() -> Language:
    nlp = spacy.blank("en")
    nlp.tokenizer = WordTokenizer(nlp.vocab)
    nlp.add_pipe("tagsmith_lemmas")
    nlp.max_length = 5_000_000
    # Lexical attributes of new words: LOWER only, until a pattern needs more (module docstring).
    _ALL_GETTERS.update(nlp.vocab.lex_attr_getters)
    nlp.vocab.lex_attr_getters = {LOWER: _ALL_GETTERS[LOWER]}
    return nlp


_ALL_GETTERS: dict[int, object] = {}  # spaCy's English getters, by attribute id
_getters_lock = threading.Lock()


def require_lex_attrs(patterns: Iterable[Iterable[Mapping[str, object]]]) -> None:
    """Make the lexical attributes that token ``patterns`` (spaCy ``Matcher``
    patterns) read hold for every word: their getters run for new words from now on,
    and fill them in for the words the vocabulary already has."""
    vocab = get_nlp().vocab
    want = {}
    for pattern in patterns:
        for token in pattern:
            for key in token:
                attr = IDS.get(str(key).upper())
                if attr in _ALL_GETTERS and attr not in vocab.lex_attr_getters:
                    want[attr] = _ALL_GETTERS[attr]
    if not want:
        return
    with _getters_lock:
        want = {a: g for a, g in want.items() if a not in vocab.lex_attr_getters}
        vocab.lex_attr_getters = {**vocab.lex_attr_getters, **want}
        # A snapshot, taken in one C-level pass; words other threads add meanwhile get the getters.
        for lex in list(vocab):
            lex.set_attrs(**{NAMES[a]: v for a, g in want.items() if (v := g(lex.orth_)) is not None})  # type: ignore[operator]


def lower_same_length(text: str) -> str:
    """Lower-case without changing any offset (a few characters grow when lowered)."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
