"""The answer language's token index, built directly: linear in the tag names.

The valid answers ``[]``, ``["a"]``, ``["a","b"]`` … (at most N items, each a listed name
as it appears inside a compact JSON string) are a small language: a character automaton
whose states are a phase of the array, a node of a trie over the escaped names, and the
count of items written. Outlines compiles the same language from a regex by walking
the whole vocabulary for every automaton state up front, which grows faster than the
tag list (0.9 s for 90 tags, 20 s for 1,000). Here the trie is built in one pass over
the names, and a state's allowed tokens are computed the first time a decoder reaches
it: the texts the automaton can spell from that state are enumerated, and a branch is
cut as soon as no token of the sorted vocabulary starts with it.

``AnswerGuide`` has the part of ``outlines_core.Guide``'s interface the decoder uses
(``get_tokens``, ``advance``, ``is_finished``); the property tests check that both
accept exactly the same token sequences on random taxonomies.
"""
from __future__ import annotations

from bisect import bisect_left
from typing import Iterable

# Phases of the array: before "[", after "[", inside a name, after a name's closing
# quote, after a comma, after "]".
START, OPENED, NAME, CLOSED_ITEM, COMMA, DONE = range(6)
State = tuple  # (phase, name-trie node, items finished)


class _NameTrie:
    """A character trie over the escaped names: per node, children by character and
    whether a name ends there."""

    __slots__ = ("children", "ends")

    def __init__(self, names: Iterable[str]) -> None:
        self.children: list[dict[str, int]] = [{}]
        self.ends: list[bool] = [False]
        for name in names:
            node = 0
            for ch in name:
                nxt = self.children[node].get(ch)
                if nxt is None:
                    nxt = len(self.children)
                    self.children[node][ch] = nxt
                    self.children.append({})
                    self.ends.append(False)
                node = nxt
            self.ends[node] = True


class TokenTable:
    """The vocabulary's token strings, sorted (built once per tokenizer, ~50 ms): which
    tokens read exactly as a text, and whether any token starts with it. Tokens with an
    empty string, and tokens that read as the EOS token, never match text."""

    def __init__(self, token_strings: list[str], eos_id: int) -> None:
        eos_text = token_strings[eos_id] if 0 <= eos_id < len(token_strings) else None
        by_text: dict[str, list[int]] = {}
        for tid, text in enumerate(token_strings):
            if text and tid != eos_id and text != eos_text:
                by_text.setdefault(text, []).append(tid)
        self.by_text = by_text
        self.sorted = sorted(by_text)

    def has_prefix(self, prefix: str) -> bool:
        i = bisect_left(self.sorted, prefix)
        return i < len(self.sorted) and self.sorted[i].startswith(prefix)


class AnswerIndex:
    """Allowed tokens per automaton state for (escaped names, N), computed on demand."""

    def __init__(self, escaped_names: Iterable[str], max_tags: int, tokens: TokenTable, eos_id: int) -> None:
        if max_tags < 1:
            raise ValueError("max_tags must be >= 1")
        self.max_tags = max_tags
        self.tokens = tokens
        self.eos_id = eos_id
        self.names = _NameTrie(escaped_names)
        self._allowed: dict[State, list[int]] = {}
        self._next: dict[tuple[State, int], State] = {}

    initial: State = (START, 0, 0)

    def step(self, state: State, ch: str) -> State | None:
        """The state after one more character, or None when no answer continues so."""
        phase, node, k = state
        if phase == NAME:
            if ch == '"' and self.names.ends[node]:
                # A raw quote ends the item: inside an escaped name a quote always
                # follows a backslash, so no name continues with one here.
                return (CLOSED_ITEM, 0, k + 1)
            nxt = self.names.children[node].get(ch)
            return None if nxt is None else (NAME, nxt, k)
        if phase == START:
            return (OPENED, 0, 0) if ch == "[" else None
        if phase == OPENED:
            return (NAME, 0, 0) if ch == '"' else (DONE, 0, 0) if ch == "]" else None
        if phase == CLOSED_ITEM:
            if ch == "]":
                return (DONE, 0, k)
            return (COMMA, 0, k) if ch == "," and k < self.max_tags else None
        if phase == COMMA:
            return (NAME, 0, k) if ch == '"' else None
        return None  # DONE: nothing follows "]"

    def next_chars(self, state: State) -> list[str]:
        """The characters that can follow in this state."""
        phase, node, k = state
        if phase == NAME:
            chars = list(self.names.children[node])
            return chars + ['"'] if self.names.ends[node] else chars
        return {START: ["["], OPENED: ['"', "]"], CLOSED_ITEM: ["]", ","] if k < self.max_tags else ["]"],
                COMMA: ['"'], DONE: []}[phase]

    def allowed(self, state: State) -> list[int]:
        """Token ids that keep the text inside the language (EOS only when it is complete):
        the texts the automaton can spell from here, pruned as soon as no token starts so."""
        hit = self._allowed.get(state)
        if hit is None:
            out: list[int] = []
            table = self.tokens
            stack = [("", state)]
            while stack:
                prefix, st = stack.pop()
                for ch in self.next_chars(st):
                    text = prefix + ch
                    if not table.has_prefix(text):
                        continue
                    out.extend(table.by_text.get(text, ()))
                    stack.append((text, self.step(st, ch)))
            if state[0] == DONE:
                out.append(self.eos_id)
            hit = self._allowed[state] = sorted(out)
        return hit

    def advance(self, state: State, token_id: int, text: str) -> State:
        key = (state, token_id)
        nxt = self._next.get(key)
        if nxt is None:
            nxt = state
            for ch in text:
                nxt = self.step(nxt, ch)
                if nxt is None:
                    raise ValueError(f"token {token_id} ({text!r}) is not allowed here")
            self._next[key] = nxt
        return nxt


class AnswerGuide:
    """One sequence's position in an ``AnswerIndex`` (the decoder's guide)."""

    __slots__ = ("index", "strings", "state")

    def __init__(self, index: AnswerIndex, token_strings: list[str]) -> None:
        self.index = index
        self.strings = token_strings
        self.state: State = index.initial

    def get_tokens(self) -> list[int]:
        return self.index.allowed(self.state)

    def advance(self, token_id: int, return_tokens: bool = False) -> list[int] | None:
        if token_id == self.index.eos_id:
            if self.state[0] != DONE:
                raise ValueError("EOS before the answer is complete")
        else:
            self.state = self.index.advance(self.state, token_id, self.strings[token_id])
        return self.get_tokens() if return_tokens else None

    def is_finished(self) -> bool:
        return self.state[0] == DONE
