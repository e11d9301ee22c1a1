"""Constraints per (taxonomy, N) for one tokenizer, compiled once and kept.

The tokenizer's token strings (as Outlines reads them), sorted, are built once
per compiler; a tag list's index is then a trie over its names, built in one pass
(``answer_index``), so compiling does not grow with the vocabulary times the list.
``engine="outlines"`` compiles Outlines' own regex index instead (``--constraint
outlines``): the reference the property tests hold the direct index to. Both give the
same allowed tokens in every state, so the same answers; the direct index compiles
250-850x faster (README, "Constraint compile").
"""
from __future__ import annotations

from typing import Any

from engine.decision.answer_index import TokenTable
from engine.decision.constraint import TagConstraint
from engine.errors import E_OPTION, TagsmithError
from engine.taxonomy import Taxonomy

SPIECE_UNDERLINE = "\u2581"


def token_strings(tokenizer: Any) -> list[str]:
    """Each token id's text, read as Outlines' transformers tokenizer reads it
    (SentencePiece's word marker as a leading space)."""
    vocab = tokenizer.get_vocab()
    strings = [""] * max(len(tokenizer), max(vocab.values()) + 1)
    for token, tid in vocab.items():
        text = tokenizer.convert_tokens_to_string([token])
        if token.startswith(SPIECE_UNDERLINE) or token == "<0x20>":
            text = " " + text
        strings[tid] = text
    return strings


#: The constraint engines a user may choose: the direct index (default) and Outlines'.
ENGINES = ("direct", "outlines")


class ConstraintCompiler:
    def __init__(self, model: Any, tokenizer: Any, engine: str = "direct") -> None:
        if engine not in ENGINES:
            raise TagsmithError(E_OPTION, f"constraint must be one of {', '.join(ENGINES)}, got {engine!r}")
        self.engine = engine
        self.model = model
        self.tokenizer = tokenizer
        self.eos_id = tokenizer.eos_token_id
        self.token_strings = token_strings(tokenizer)
        self._tokens: TokenTable | None = None
        self._vocabulary: Any = None
        self._cache: dict[tuple[str, int], TagConstraint] = {}

    @property
    def tokens(self) -> TokenTable:
        if self._tokens is None:
            self._tokens = TokenTable(self.token_strings, self.eos_id)
        return self._tokens

    @property
    def vocabulary(self) -> Any:
        """Outlines' vocabulary (the reference engine only)."""
        if self._vocabulary is None:
            import outlines
            from outlines.backends.outlines_core import OutlinesCoreBackend

            self._vocabulary = OutlinesCoreBackend(outlines.from_transformers(self.model, self.tokenizer)).vocabulary
        return self._vocabulary

    def get(self, taxonomy: Taxonomy, max_tags: int) -> TagConstraint:
        key = (taxonomy.fingerprint(), max_tags)
        c = self._cache.get(key)
        if c is None:
            index = self.tokens if self.engine == "direct" else self.vocabulary
            c = TagConstraint(taxonomy, max_tags, index, self.token_strings, self.eos_id)
            self._cache[key] = c
        return c

    def forget(self, fingerprint: str) -> list[TagConstraint]:
        """Drop the constraints of one tag list (every N); returns them."""
        keys = [k for k in self._cache if k[0] == fingerprint]
        return [self._cache.pop(k) for k in keys]
