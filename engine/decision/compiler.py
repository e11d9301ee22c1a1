"""Compile constraints once per (taxonomy, N) for a tokenizer, and keep them.

Building the Outlines vocabulary walks the whole tokenizer (~0.2 s) and compiling
the 90-tag index takes ~1 s; both are done once and cached here, never per item.
"""
from __future__ import annotations

from typing import Any

from engine.decision.constraint import TagConstraint
from engine.taxonomy import Taxonomy


class ConstraintCompiler:
    def __init__(self, model: Any, tokenizer: Any) -> None:
        import outlines
        from outlines.backends.outlines_core import OutlinesCoreBackend

        outlines_model = outlines.from_transformers(model, tokenizer)
        backend = OutlinesCoreBackend(outlines_model)
        self.vocabulary = backend.vocabulary
        self.eos_id = backend.eos_token_id
        adapter = outlines_model.tokenizer
        size = max(len(tokenizer), max(tokenizer.get_vocab().values()) + 1)
        strings = [""] * size
        for token, tid in tokenizer.get_vocab().items():
            strings[tid] = adapter.convert_token_to_string(token)
        self.token_strings = strings
        self._cache: dict[tuple[str, int], TagConstraint] = {}

    def get(self, taxonomy: Taxonomy, max_tags: int) -> TagConstraint:
        key = (taxonomy.fingerprint(), max_tags)
        c = self._cache.get(key)
        if c is None:
            c = TagConstraint(taxonomy, max_tags, self.vocabulary, self.token_strings, self.eos_id)
            self._cache[key] = c
        return c

    def forget(self, fingerprint: str) -> list[TagConstraint]:
        """Drop the constraints of one tag list (every N); returns them."""
        keys = [k for k in self._cache if k[0] == fingerprint]
        return [self._cache.pop(k) for k in keys]
