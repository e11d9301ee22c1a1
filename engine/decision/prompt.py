"""Prompts for the decision model: task, allowed tags (with evidence), README excerpt.

The excerpt is what the project says about itself (title, tagline, intro, headings,
then body prose), cut to a token budget: small models read the first few hundred
tokens far better than a README's install and licence sections.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.lexicon.readme import Document
from engine.lexicon.types import Candidate

SYSTEM = "You label software projects for a catalogue. Answer only with a JSON list of tags."
_ORDER = ("title", "tagline", "intro", "heading", "body", "list")


def excerpt(doc: Document, tokenizer: Any, budget: int) -> str:
    """Prose of the README, most telling sections first, cut to ``budget`` tokens."""
    pieces: list[str] = []
    for kind in _ORDER:
        for s in doc.segments:
            if s.kind == kind:
                line = " ".join(doc.text[s.start:s.end].split())
                if line:
                    pieces.append(line)
        if sum(len(p) for p in pieces) > budget * 6:
            break
    text = "\n".join(pieces) or " ".join(doc.text.split())
    # A token is rarely longer than 8 characters: cutting first spares tokenising a
    # whole README to keep its first few hundred tokens.
    ids = tokenizer(text[:budget * 8], add_special_tokens=False)["input_ids"][:budget]
    return tokenizer.decode(ids)


@dataclass(frozen=True)
class Prompt:
    """A prompt in two parts: ``prefix`` is the same for every item of a taxonomy and
    mode (system message, allowed tags, instructions), ``suffix`` is the item's own.

    The decoder tokenises the parts separately and computes the prefix's KV cache
    once for all items; the token ids are ``ids(prefix) + ids(suffix)`` on every path,
    so batch and one-at-a-time answers stay identical.
    """

    prefix: str
    suffix: str

    @property
    def text(self) -> str:
        return self.prefix + self.suffix


_SPLIT = "\x00tagsmith-item\x00"
#: Words of a tag's description shown beside its name in the shortlist (a described list).
GLOSS_WORDS = 8


def prompt_glosses(taxonomy: Any) -> dict[str, str] | None:
    """Each described tag's gloss: the first ``GLOSS_WORDS`` words of its description,
    shown after its name in the shortlist, where the model meets the tag (a name such as
    ``c-017`` tells the model nothing), and the head reads the model's states over name
    and gloss. None for a list of bare names: its prompts stay as they were, and so do
    the answers of adapters trained on them. 5-fold CV on train, synonym list, learned
    pack, shortlist 12: micro-F1 0.671 / top-1 0.843 with glosses, 0.654 / 0.804 without."""
    if not getattr(taxonomy, "described", False):
        return None
    out = {}
    for t in taxonomy:
        words = t.description.replace("(", " ").replace(")", " ").replace(":", " ").split()[:GLOSS_WORDS]
        if words:
            out[t.name] = " ".join(words).rstrip(",;./ ")
    return out or None


def _label(name: str, glosses: dict[str, str] | None) -> str:
    """How a shortlisted tag is named in its line: ``name`` or ``name (gloss)``."""
    g = (glosses or {}).get(name)
    return f"{name.strip()} ({g})" if g else name.strip()


#: Opens the shortlist in a prompt; each candidate then has its own line, ``- name: words``
#: (``- name (gloss): words`` in a described list).
SHORTLIST_HEADER = "Candidate tags with the words that suggest them:"
_EVIDENCE_CHARS = 40


def _evidence_word(text: str) -> str:
    """An evidence span as the prompt shows it: one line, lower case, no link targets,
    at most ``_EVIDENCE_CHARS`` characters (a regex hit can span a whole Markdown link,
    which costs the model dozens of tokens and tells it nothing)."""
    text = " ".join(text.lower().split())
    if "](" in text or "://" in text:
        return ""
    return text[:_EVIDENCE_CHARS]


def build_prompt(
    tokenizer: Any,
    doc: Document,
    allowed: list[str],
    max_tags: int,
    budget: int,
    candidates: list[Candidate] | None = None,
    glosses: dict[str, str] | None = None,
) -> Prompt:
    """A chat-formatted prompt that ends where the JSON list must begin.

    Without ``candidates`` the model may pick any of ``allowed`` (the taxonomy): that
    list is part of the shared prefix. With candidates, the shortlist and its
    evidence are the item's own and follow the description; ``glosses`` (see
    ``prompt_glosses``) say what each shortlisted tag means.
    """
    if candidates is not None:
        shared = (f"Choose the tags that describe what the project below is: at most {max_tags}, most important first, "
                  "only from the candidate tags listed after its description.")
    else:
        shared = ("Allowed tags: " + ", ".join(n.strip() for n in allowed) + "\n\n"
                  f"Choose the tags that describe what the project below is: at most {max_tags}, most important first, "
                  "only from the allowed tags.")
    lines = ["", "", f"Project description:\n{excerpt(doc, tokenizer, budget)}"]
    if candidates is not None:
        lines += ["", SHORTLIST_HEADER]
        by_tag = {c.tag: c for c in candidates}
        for name in allowed:
            c = by_tag.get(name)
            # Shortest first, then alphabetical: a set's order changes with the process's hash seed.
            words = sorted({w for w in (_evidence_word(e.text) for e in (c.evidence if c else [])) if w},
                           key=lambda w: (len(w), w))[:4]
            lines.append(f"- {_label(name, glosses)}: {', '.join(words) if words else 'no direct evidence'}")
    user = shared + _SPLIT + "\n".join(lines)
    if getattr(tokenizer, "chat_template", None):
        msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
        full = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) + "Tags: "
    else:
        full = f"{SYSTEM}\n\n{user}\n\nTags: "
    prefix, suffix = full.split(_SPLIT)
    return Prompt(prefix, suffix)


def candidate_names(suffix: str, names: list[str], glosses: dict[str, str] | None = None) -> list[tuple[int, int]] | None:
    """Character span of each shortlisted tag's name (with its gloss) in its line of a
    prompt's suffix (in ``names`` order), or None when the suffix has no shortlist. The
    decision head reads the model's states there: the model has read the README and
    meets the tag."""
    at = suffix.find(SHORTLIST_HEADER)
    if at < 0:
        return None
    spans = []
    for name in names:
        label = _label(name, glosses)
        start = suffix.find(f"\n- {label}:", at)
        if start < 0:
            return None
        spans.append((start + 3, start + 3 + len(label)))
        at = start + 1
    return spans
