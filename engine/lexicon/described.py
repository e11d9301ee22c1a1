"""Evidence from the tag list itself: a tag's aliases and its description.

A requester's list may say what each tag means (``description``) and give other
names (``aliases``). With no rule and no label for a tag, that is all tagsmith knows
of it, so it becomes a rule here (``described_rule``):

- the tag's **name words** and each **alias** are aliases (exact, lemma and fuzzy
  matches, weight 1);
- each **description piece** of two or three words ("deep learning", "point
  clouds"; the description is cut at commas, slashes, brackets, "and", "or") is a
  phrase (weight 0.8);
- each content **word** of the description is a weak phrase, weighted by how
  specific it is: rare in English (``en_lexeme_prob`` of spacy-lookups-data: "mesh"
  counts, "data" and "game" barely) and rare across the list's descriptions (a word in
  five descriptions counts a fifth).

The description's terms add to a rule learned from labels (``tagsmith rules
learn``): together they rank the right tag higher than either alone (5-fold cross-validation on train, the synonym catalogue of
``bench/catalogues.py``, rules only: micro-F1 0.482 learned / 0.472 described / 0.515
both; gold tags in the top 8 candidates 0.776 / - / 0.800). A hand-written rule
supersedes the description (its aliases still count): the default pack was written
with care, and its tags' descriptions added on top cost 0.016 of dev micro-F1 in rules
mode (0.711 -> 0.695).
"""
from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from functools import lru_cache

from engine.rules.schema import TagRule, Term
from engine.taxonomy import Tag, Taxonomy

_PIECES = re.compile(r"[,;:/()\[\]]|\s(?:and|or|&)\s|\s-\s|\*", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9][a-z0-9+#.\-]*[a-z0-9+#]|[a-z0-9]")
#: Words that say nothing about a tag however rare they are.
STOPWORDS = frozenset("""a an the and or of for to in on with by from as at into their its your our this that these those
is are be it they them projects project tool tools library libraries framework frameworks other general
specific specifically related based etc e.g i.e such like any all more most using use used""".split())
PIECE_WEIGHT = 0.8
#: log-probabilities (natural log) between which a word goes from common to rare.
COMMON, RARE = -8.0, -16.0
WORD_WEIGHT = 0.6
MIN_WORD_WEIGHT = 0.05


@lru_cache(maxsize=1)
def _log_probs() -> dict[str, float]:
    """English word log-probabilities (spacy-lookups-data's ``en_lexeme_prob``)."""
    from pathlib import Path

    import spacy_lookups_data

    path = Path(spacy_lookups_data.__file__).parent / "data" / "en_lexeme_prob.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def rarity(word: str) -> float:
    """0 for a word as common as "the", 1 for one rarer than about 1 in 9 million
    (or unknown to the table: names such as "kubernetes")."""
    lp = _log_probs().get(word.lower(), RARE - 1)
    return min(1.0, max(0.0, (COMMON - lp) / (COMMON - RARE)))


def pieces(description: str) -> list[str]:
    """The description cut into short pieces at punctuation and conjunctions."""
    return [" ".join(p.split()) for p in _PIECES.split(description) if p and p.strip()]


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS and not w.isdigit()]


def word_spread(taxonomy: Taxonomy) -> Counter[str]:
    """In how many tags' descriptions (and names) each content word appears."""
    spread: Counter[str] = Counter()
    for tag in taxonomy:
        spread.update(set(content_words(tag.description + " " + tag.words)))
    return spread


def described_rule(tag: Tag, spread: Counter[str], written: bool = False) -> TagRule | None:
    """The rule a tag's aliases and description give (None: they give nothing).
    ``written``: the pack has a hand-written rule for the tag (then aliases only)."""
    aliases = [Term(text=a) for a in tag.aliases if content_words(a)]
    phrases: list[Term] = []
    if tag.description and not written:
        seen = {tag.words.lower(), *(a.lower() for a in tag.aliases)}
        for piece in pieces(tag.description):
            words = content_words(piece)
            if 2 <= len(words) <= 3 and " ".join(words) not in seen:
                seen.add(" ".join(words))
                phrases.append(Term(text=" ".join(words), weight=PIECE_WEIGHT))
        for word in dict.fromkeys(content_words(tag.description)):
            if word in seen:
                continue
            w = round(WORD_WEIGHT * rarity(word) / max(1, spread[word]), 3)
            if w >= MIN_WORD_WEIGHT:
                seen.add(word)
                phrases.append(Term(text=word, weight=w))
    if not aliases and not phrases:
        return None
    return TagRule(tag=tag.name, aliases=aliases, phrases=phrases)


def described_rules(taxonomy: Taxonomy, written: set[str] | frozenset[str] = frozenset()) -> dict[str, TagRule]:
    """``described_rule`` for every tag of a list that has aliases or a description, by
    exact name; ``written``: the names the pack has a hand-written rule for."""
    if not taxonomy.described:
        return {}
    spread = word_spread(taxonomy)
    out = {}
    for tag in taxonomy:
        rule = described_rule(tag, spread, tag.name in written)
        if rule is not None:
            out[tag.name] = rule
    return out


__all__ = ["described_rule", "described_rules", "rarity", "pieces"]
