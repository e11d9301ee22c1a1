"""Which of a rule pack's concepts a tag of another list names: the bridge.

The built-in pack knows 90 concepts under the home list's names (``k8s``, ``ai``,
``lib``). Another catalogue names the same concepts its own way (``kubernetes``,
``machine-learning``, ``library``) or merges them (``cloud-infra``), and a raw
request brings names only. Each of the pack's rules names its concept many ways (the
tag, aliases, phrases), so a list tag the pack has no rule for is **linked** to the
rules whose terms it names:

- its **name** (and each alias), as lemmas ("databases" -> "database"; a lookup lemma
  that is no inflection, "ai" -> "have", keeps the word), equal to a rule's tag, alias
  or phrase: the term's strength (1 for a tag or alias, a phrase's weight up to 1), or
  85% of it for a near spelling (rapidfuzz ratio >= 90, 5+ characters);
- each **description piece** (``engine.lexicon.described.pieces``: "container
  orchestration", "Kubernetes", "Helm") equal to a term: half the term's strength, so
  one alias in the description links, and a merged tag's description links every
  concept it lists.

A link needs ``MIN_SCORE`` in all. A concept goes to the list tag that names it best;
two tags that name it alike split it ("android" and "ios" for ``mobile-app``), and
neither gets it. A concept the list holds under its own name stays with it. The linked
tag gets the concept's rule under its own name (several concepts: their terms
together), its relations (``implies``, ``prefer_over``) rewritten to the list's tags.

Measured on the home list's concepts renamed (``bench/renamed_lists.py``; links
checked against the renaming): synonym names only, 62 of 90 tags linked, 62 of 63
links right; with descriptions 82 of 84; opaque codes with descriptions 74 of 76; the
coarse list (23 merged tags) with descriptions 69 of 69 links (77% of the 90 members).
Rules mode on train.jsonl relabelled (micro-F1 / top-1; nothing here is learned from
it, only these settings chosen on it): synonym names 0.257 / 0.346 -> 0.505 / 0.634,
synonyms with descriptions 0.472 -> 0.602, codes 0.440 -> 0.552, coarse names 0.188 ->
0.285, coarse with descriptions 0.456 -> 0.640 (the home list's hand rules on their own
names: 0.630). Tried and not kept: a name whose words *contain* a rule's name
("video-games" -> ``video``, "server-side" -> ``server``) links the wrong concept as
often as the right one (synonyms 0.505 -> 0.472); a description piece worth 0.3 of a
term (codes 0.546 -> 0.478); a threshold of 0.3 (synonyms 0.598 -> 0.487); a concept lent to every
tag that names it (0.593); only a tag's links within 80% of its best (coarse 0.640 ->
0.484). Dropping the tied concepts gained a little (synonyms 0.598 -> 0.602, codes 0.546
-> 0.552) and keeps a finer list's kinds from each taking the whole.
"""
from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from functools import lru_cache

from rapidfuzz import fuzz, process

from engine.lexicon.described import pieces
from engine.lexicon.nlp import get_nlp, lower_same_length
from engine.rules.pack import RulePack, RuleSource, merge_rule
from engine.rules.schema import Examples, TagRule
from engine.taxonomy import Tag, Taxonomy, tag_key

#: What a link needs: one alias named by the tag's name, or two in its description.
MIN_SCORE = 0.5
#: A description piece counts this share of the term it names (the name counts whole).
DESCRIPTION_SHARE = 0.5
#: A near spelling ("kubernets") counts this share, at rapidfuzz ratio ``FUZZY_RATIO``+.
FUZZY_SHARE, FUZZY_RATIO, FUZZY_MIN_CHARS = 0.85, 90, 5
_SPLIT = re.compile(r"[\s_\-./]+")


@dataclass(frozen=True)
class Link:
    """A list tag linked to a concept of the pack (a rule's tag), with why."""

    tag: str  # the list's name, exact
    concept: str  # the rule's tag
    score: float
    via: tuple[str, ...]  # "name 'kubernetes' = alias 'kubernetes'", ...
    source: RuleSource | None = None  # where the concept's rule is written

    def reason(self) -> str:
        where = f" ({self.source.file.rsplit('/', 1)[-1]}:{self.source.line})" if self.source else ""
        return f"rules of {self.concept!r}{where}: " + "; ".join(self.via)


@dataclass(frozen=True)
class Bridged:
    """A pack with the list's linked tags added, and the links that added them."""

    pack: RulePack
    links: tuple[Link, ...]

    def for_tag(self, name: str) -> list[Link]:
        return [lk for lk in self.links if lk.tag == name]


@lru_cache(maxsize=1)
def _nlp():
    return get_nlp()


@lru_cache(maxsize=65536)
def norm(text: str) -> str:
    """Words as lemmas, lower case, hyphens and underscores as spaces ("Video-Games" ->
    "video game"); a lookup lemma that is no inflection of its word keeps the word."""
    words = " ".join(_SPLIT.sub(" ", text).split())
    if not words:
        return ""
    out = []
    for t in _nlp()(lower_same_length(words)):
        if t.text.strip():
            lemma = (t.lemma_ or t.text).lower()
            out.append(lemma if lemma[:3] == t.text[:3] else t.text)
    return " ".join(out)


class _Terms:
    """Every term of the pack's rules, normalised, with its concept and strength: looked
    up exactly, and by near spelling in one rapidfuzz pass over all of them."""

    def __init__(self, pack: RulePack, skip: set[str]) -> None:
        self.exact: dict[str, list[tuple[str, float, str]]] = defaultdict(list)
        for rule in pack.rules.values():
            if tag_key(rule.tag) in skip:
                continue
            terms: dict[str, tuple[float, str]] = {}
            named = [(rule.tag, 1.0, "name")] + [(a.text, 1.0, "alias") for a in rule.aliases]
            for text, s, kind in named + [(p.text, min(1.0, p.weight), "phrase") for p in rule.phrases]:
                n = norm(text)
                if n and s > terms.get(n, (0.0, ""))[0]:
                    terms[n] = (s, kind)
            for n, (s, kind) in terms.items():
                self.exact[n].append((rule.tag, s, kind))
        self.keys = [n for n in self.exact if len(n) >= FUZZY_MIN_CHARS]

    def match(self, text: str) -> dict[str, tuple[float, str]]:
        """Per concept, the strength of its term that ``text`` names, and which: an
        equal term, else its best near spelling."""
        n = norm(text)
        if not n:
            return {}
        out = {c: (s, f"{kind} {n!r}") for c, s, kind in self.exact.get(n, ())}
        if len(n) >= FUZZY_MIN_CHARS:
            for key, _, _ in process.extract(n, self.keys, scorer=fuzz.ratio, score_cutoff=FUZZY_RATIO, limit=None):
                for c, s, kind in self.exact[key] if key != n else ():
                    if c not in out or (out[c][1].endswith("(near spelling)") and FUZZY_SHARE * s > out[c][0]):
                        out[c] = (FUZZY_SHARE * s, f"{kind} {key!r} (near spelling)")
        return out


def _scores(tag: Tag, terms: _Terms) -> dict[str, tuple[float, list[str]]]:
    """Per concept the tag names: its score (the name's best term, plus a share of each
    description piece's) and the evidence."""
    out: dict[str, tuple[float, list[str]]] = {}
    for name in (tag.words, *tag.aliases):
        for c, (s, why) in terms.match(name).items():
            if s > out.get(c, (0.0, []))[0]:
                out[c] = (s, [f"name {name!r} = {why}"])
    for piece in pieces(tag.description) if tag.description else ():
        for c, (s, why) in terms.match(piece).items():
            old, via = out.get(c, (0.0, []))
            out[c] = (old + DESCRIPTION_SHARE * s, [*via, f"description {piece!r} = {why}"])
    return out


def link_tags(taxonomy: Taxonomy, pack: RulePack) -> list[Link]:
    """The links of the list's tags that ``pack`` has no rule for, best first per tag."""
    own = {tag_key(t.name) for t in taxonomy if pack.get(t.name) is not None}
    if len(own) == len(taxonomy) or not pack.rules:
        return []
    terms = _Terms(pack, own)
    found: list[Link] = []
    for tag in taxonomy:
        if tag_key(tag.name) in own:
            continue
        for concept, (s, via) in _scores(tag, terms).items():
            if s >= MIN_SCORE:
                found.append(Link(tag.name, concept, round(s, 3), tuple(via), pack.sources.get(tag_key(concept))))
    best: dict[str, float] = defaultdict(float)
    for lk in found:
        best[lk.concept] = max(best[lk.concept], lk.score)
    kept = [lk for lk in found if lk.score >= best[lk.concept]]
    # Two tags naming a concept alike split it ("android", "ios" -> mobile-app): neither
    # is the concept, and lending both its rules would tag every mobile app with both.
    takers = Counter(lk.concept for lk in kept)
    kept = [lk for lk in kept if takers[lk.concept] == 1]
    order = {t.name: i for i, t in enumerate(taxonomy)}
    return sorted(kept, key=lambda lk: (order[lk.tag], -lk.score, lk.concept))


def _merged(name: str, rules: list[TagRule]) -> TagRule:
    """The rules of a tag's concepts as one rule under its name (the first's weight, admit
    and relations; the others' terms added), without examples: they name the concepts."""
    first, *rest = rules
    merged = first
    for r in rest:
        merged = merge_rule(merged, r)
    return merged.model_copy(update={"tag": name, "examples": Examples()})


def bridge(pack: RulePack, taxonomy: Taxonomy) -> Bridged:
    """``pack`` with a rule for each linked tag of the list (the pack itself when none
    links). A linked tag counts as hand-written when its first concept's rule is (a
    described list's description then adds aliases only, as for the home list)."""
    links = link_tags(taxonomy, pack)
    if not links:
        return Bridged(pack, ())
    by_tag: dict[str, list[Link]] = defaultdict(list)
    owner: dict[str, tuple[float, str]] = {}
    for lk in links:
        by_tag[lk.tag].append(lk)
        if lk.score > owner.get(lk.concept, (0.0, ""))[0]:
            owner[lk.concept] = (lk.score, lk.tag)
    listed = {t.key: t.name for t in taxonomy}

    def renamed(concept: str) -> str | None:  # a relation's target, as the list names it
        return listed.get(tag_key(concept)) or owner.get(concept, (0.0, None))[1]

    rules, sources, written = dict(pack.rules), dict(pack.sources), set(pack.written)
    for name, ls in by_tag.items():
        merged = _merged(name, [pack.get(lk.concept) for lk in ls])
        implies = {m: share for t, share in merged.implies.items() if (m := renamed(t)) and m != name}
        prefer = [m for t in merged.prefer_over if (m := renamed(t)) and m != name]
        key, first = tag_key(name), tag_key(ls[0].concept)
        rules[key] = merged.model_copy(update={"implies": implies, "prefer_over": list(dict.fromkeys(prefer))})
        if first in pack.sources:
            sources[key] = pack.sources[first]
        if first in pack.written:
            written.add(key)
    digest = hashlib.sha256((pack.digest + "".join(f"|{lk.tag}>{lk.concept}" for lk in links)).encode()).hexdigest()[:16]
    return Bridged(replace(pack, rules=rules, sources=sources, written=frozenset(written), digest=digest), tuple(links))


__all__ = ["Bridged", "Link", "bridge", "link_tags", "norm", "MIN_SCORE"]
