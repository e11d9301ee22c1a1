"""The spaCy pipeline: English tokenizer + lookup lemmatizer, all from PyPI.

A blank English pipeline with the lookup lemmatizer (tables from
``spacy-lookups-data``) needs no trained model download, tokenises a 30k-character
README in milliseconds and gives lemmas good enough for phrase matching
("helm charts" -> "helm chart").
"""
from __future__ import annotations

from functools import lru_cache

import spacy
from spacy.language import Language


@lru_cache(maxsize=1)
def get_nlp() -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    nlp.max_length = 5_000_000
    return nlp


def lower_same_length(text: str) -> str:
    """Lower-case without changing any offset (a few characters grow when lowered)."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
