"""The answer constraint: an index of the answer language plus a no-repeat mask.

The index is built directly from the names (``answer_index``); ``build_regex`` fills the
``grammars/`` template for Outlines' regex index, the reference it is tested against.
``TagConstraint`` is made once per (taxonomy, N, tokenizer) and, per sequence, narrows
the guide's allowed tokens to those that keep every tag distinct and inside the row's
allowed set. ``ArrayText`` is the incremental reading of the generated array that
both the mask and the prior bias use.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from string import Template
from typing import Any, Iterable

from engine.taxonomy import Taxonomy

_HERE = Path(__file__).resolve()
#: The checkout's grammars/ folder, or its copy inside an installed wheel.
_TEMPLATE = next(
    (p for p in (_HERE.parents[2] / "grammars" / "tags_array.regex.tmpl", _HERE.parents[1] / "_grammars" / "tags_array.regex.tmpl") if p.exists()),
    _HERE.parents[2] / "grammars" / "tags_array.regex.tmpl",
)


def json_escaped(name: str) -> str:
    """The name as it appears between the quotes of a compact JSON string."""
    return json.dumps(name, ensure_ascii=False)[1:-1]


def build_regex(names: Iterable[str], max_tags: int) -> str:
    """The regular language of valid answers for these names and N."""
    names = list(names)
    if max_tags < 1:
        raise ValueError("max_tags must be >= 1")
    alts = "|".join(re.escape(json_escaped(n)) for n in sorted(names, key=lambda n: (-len(n), n)))
    template = _TEMPLATE.read_text().strip()
    return Template(template).substitute(TAG=f'"(?:{alts})"', MORE=str(max_tags - 1))


@dataclass
class ArrayText:
    """What a (partial) generated array says: finished items, the item being written, closed?"""

    items: list[str] = field(default_factory=list)  # JSON-escaped item contents
    partial: str | None = None  # escaped content of an open string, if any
    closed: bool = False
    pending_comma: bool = False

    @classmethod
    def parse(cls, text: str) -> "ArrayText":
        """Read ``text``; results are shared (treat them as read-only)."""
        return _parse_cached(text)

    @classmethod
    def _parse(cls, text: str) -> "ArrayText":
        out = cls()
        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if out.partial is not None:
                if c == "\\" and i + 1 < n:
                    out.partial += text[i:i + 2]
                    i += 2
                    continue
                if c == '"':
                    out.items.append(out.partial)
                    out.partial = None
                    out.pending_comma = False
                else:
                    out.partial += c
            elif c == '"':
                out.partial = ""
            elif c == ",":
                out.pending_comma = True
            elif c == "]":
                out.closed = True
            i += 1
        return out

    @property
    def started(self) -> int:
        """Items written or begun (an open string or a trailing comma counts)."""
        return len(self.items) + (1 if self.partial is not None or self.pending_comma else 0)


@lru_cache(maxsize=1 << 16)
def _parse_cached(text: str) -> ArrayText:
    # Every step re-reads the answer so far plus each candidate token; the same
    # strings recur across steps and rows, so parsing is memoised.
    return ArrayText._parse(text)


class TagConstraint:
    """Valid answers for one taxonomy and N, compiled once: the direct index (default)
    or Outlines' regex index (``--constraint outlines``)."""

    def __init__(self, taxonomy: Taxonomy, max_tags: int, vocabulary: Any, token_strings: list[str], eos_id: int) -> None:
        """``vocabulary``: a ``TokenTable`` (the direct index) or an Outlines vocabulary
        (Outlines' regex index, the reference)."""
        from engine.decision.answer_index import AnswerIndex, TokenTable

        self.names = taxonomy.names
        self.max_tags = max_tags
        self.escaped = {json_escaped(n): n for n in self.names}
        if isinstance(vocabulary, TokenTable):
            self.regex = None
            self.index = AnswerIndex(self.escaped, max_tags, vocabulary, eos_id)
        else:
            from outlines_core import Index

            self.regex = build_regex(self.names, max_tags)
            self.index = Index(self.regex, vocabulary)
        self.token_strings = token_strings
        self.eos_id = eos_id
        self._consistent: dict[tuple[str, frozenset[str]], list[str]] = {}
        self._by_prefix: dict[str, list[str]] = {}
        # Every token adds at least one character, so the longest valid answer in
        # characters bounds the number of decoding steps whatever tokens the model
        # picks (a model may spell a name in many small tokens).
        self.max_answer_chars = 2 + max_tags * (max(len(e) for e in self.escaped) + 3)

    def new_guide(self) -> Any:
        from engine.decision.answer_index import AnswerGuide, AnswerIndex

        if isinstance(self.index, AnswerIndex):
            return AnswerGuide(self.index, self.token_strings)
        from outlines_core import Guide

        return Guide(self.index)

    def consistent(self, partial: str, allowed: frozenset[str]) -> list[str]:
        """Allowed names whose escaped form starts with ``partial`` (memoised: a hot path)."""
        key = (partial, allowed)
        hit = self._consistent.get(key)
        if hit is None:
            # Names by prefix do not depend on the row's allowed set: computed once each
            # (partials are prefixes of names, so there are few).
            named = self._by_prefix.get(partial)
            if named is None:
                named = self._by_prefix[partial] = [n for e, n in self.escaped.items() if e.startswith(partial)]
            hit = [n for n in named if n in allowed]
            if len(self._consistent) > 1 << 16:
                self._consistent.clear()
            self._consistent[key] = hit
        return hit

    def kept_tokens(self, text: str, candidates: Iterable[int], allowed: frozenset[str],
                    target: int | None, min_tags: int = 0) -> list[int]:
        """The tokens of ``candidates`` (the guide's, for the answer ``text`` so far) that
        keep every tag distinct and inside ``allowed`` and the count within ``target``.

        A function of (text, allowed, target, min_tags) alone, since the guide's
        candidates are a function of the text: the decoder memoises it per state.
        """
        return [tok for tok in candidates
                if tok == self.eos_id or self._valid(ArrayText.parse(text + self.token_strings[tok]), allowed, target, min_tags)]

    def prior_bias(self, text: str, kept: list[int], allowed: frozenset[str],
                   log_prior: dict[str, float] | None, prior_weight: float) -> list[float]:
        """Per kept token, ``prior_weight * (Phi(text + token) - Phi(text))``: a potential
        that telescopes to ``prior_weight * log prior(tag)`` over a whole tag."""
        if not log_prior:
            return [0.0] * len(kept)
        phi_before = self._potential(ArrayText.parse(text), allowed, log_prior)
        return [0.0 if tok == self.eos_id else
                prior_weight * (self._potential(ArrayText.parse(text + self.token_strings[tok]), allowed, log_prior) - phi_before)
                for tok in kept]

    def _valid(self, a: ArrayText, allowed: frozenset[str], target: int | None, min_tags: int = 0) -> bool:
        names = [self.escaped.get(e) for e in a.items]
        if any(n is None or n not in allowed for n in names) or len(set(names)) != len(names):
            return False
        if a.partial is not None:
            if not [n for n in self.consistent(a.partial, allowed) if n not in names]:
                return False
        elif a.pending_comma and not (allowed - set(names)):
            return False  # a comma with no unused tag left could never be completed
        cap = len(allowed) if target is None else min(target, len(allowed))
        if a.started > cap:
            return False
        floor = min(min_tags if target is None else target, len(allowed))
        if a.closed and len(a.items) < floor:
            return False
        return True

    def _potential(self, a: ArrayText, allowed: frozenset[str], log_prior: dict[str, float]) -> float:
        done = [self.escaped[e] for e in a.items if e in self.escaped]
        phi = sum(log_prior.get(n, -20.0) for n in done)
        if a.closed:
            return phi
        remaining = [n for n in allowed if n not in done]
        pool = self.consistent(a.partial, allowed) if a.partial is not None else remaining
        pool = [n for n in pool if n not in done]
        if not pool:
            return phi
        return phi + _logsumexp([log_prior.get(n, -20.0) for n in pool])


def _logsumexp(xs: list[float]) -> float:
    # fsum: exact whatever the order of ``xs`` (a set's order changes with the hash seed).
    m = max(xs)
    return m + math.log(math.fsum(math.exp(x - m) for x in xs))
