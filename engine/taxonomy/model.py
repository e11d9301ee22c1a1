"""The allowed tag list of one request.

Names are emitted exactly as the requester wrote them (``"declarative-gui "`` keeps
its trailing space) but matched loosely, so a rule pack that says ``game-engine`` or
``Game Engine`` reaches the listed ``"game-engine "``.
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from engine.errors import E_DUPLICATE_TAG, E_ENCODING, E_INPUT, E_TAXONOMY, TagsmithError

_LOOSE = re.compile(r"[\s_\-.]+")


def tag_key(name: str) -> str:
    """Loose identity of a tag name: case, spaces, hyphens, underscores, dots ignored."""
    return _LOOSE.sub("", unicodedata.normalize("NFKC", name).casefold())


@dataclass(frozen=True)
class Tag:
    """One allowed tag. ``name`` is exact; ``key`` is for matching. A tag list may also
    say what a tag means (``description``, a sentence) and other names for it
    (``aliases``): the lexicon takes both as evidence, answers still use ``name``."""

    name: str
    id: Any = None
    key: str = ""
    description: str = ""
    aliases: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The tag as a tag list holds it (description and aliases only when set)."""
        out: dict[str, Any] = {"id": self.id, "name": self.name}
        if self.description:
            out["description"] = self.description
        if self.aliases:
            out["aliases"] = list(self.aliases)
        return out

    @property
    def words(self) -> str:
        """The name as plain words (``game-engine `` -> ``game engine``), for prompts and fuzzy match."""
        return " ".join(_LOOSE.sub(" ", self.name).split())


def _extras(item: dict[str, Any], i: int, source: str) -> tuple[str, tuple[str, ...]]:
    """A tag object's optional ``description`` (a string) and ``aliases`` (strings)."""
    description = item.get("description", "") or ""
    if not isinstance(description, str):
        raise TagsmithError(E_TAXONOMY, "description must be a string", file=source, field=f"[{i}].description")
    aliases = item.get("aliases", []) or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise TagsmithError(E_TAXONOMY, "aliases must be a list of non-empty strings", file=source, field=f"[{i}].aliases")
    return " ".join(description.split()), tuple(dict.fromkeys(a.strip() for a in aliases))


@dataclass(frozen=True)
class Taxonomy:
    """An ordered, duplicate-free list of allowed tags."""

    tags: tuple[Tag, ...]
    _by_key: dict[str, Tag] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_names(cls, items: Iterable[Any], source: str = "<taxonomy>") -> "Taxonomy":
        """Build from ``[{"id":..,"name":..}]`` objects or plain names."""
        if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
            raise TagsmithError(E_TAXONOMY, "the tag list must be a JSON array", file=source)
        tags: list[Tag] = []
        by_key: dict[str, Tag] = {}
        for i, item in enumerate(items):
            description, aliases = "", ()
            if isinstance(item, dict):
                name, tid = item.get("name"), item.get("id")
                description, aliases = _extras(item, i, source)
            else:
                name, tid = item, None
            if not isinstance(name, str) or not name.strip():
                raise TagsmithError(
                    E_TAXONOMY, f"entry {i} has no non-empty string name: {json.dumps(item)[:80]}",
                    file=source, field=f"[{i}].name",
                )
            key = tag_key(name)
            if not key:
                raise TagsmithError(E_TAXONOMY, f"tag name {name!r} has no letters or digits", file=source, field=f"[{i}].name")
            if key in by_key:
                raise TagsmithError(
                    E_DUPLICATE_TAG,
                    f"duplicate tag name {name!r} (same as {by_key[key].name!r})",
                    file=source, field=f"[{i}].name",
                )
            tag = Tag(name=name, id=tid, key=key, description=description, aliases=aliases)
            tags.append(tag)
            by_key[key] = tag
        if not tags:
            raise TagsmithError(E_TAXONOMY, "the tag list is empty", file=source)
        return cls(tuple(tags), by_key)

    @classmethod
    def load(cls, path: str | Path) -> "Taxonomy":
        """Read a taxonomy JSON file (a list of objects or names)."""
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise TagsmithError(E_INPUT, f"cannot read taxonomy: {exc.strerror}", file=str(p)) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TagsmithError(E_ENCODING, f"not UTF-8 (byte {exc.start})", file=str(p)) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TagsmithError(E_TAXONOMY, f"invalid JSON: {exc.msg}", file=str(p), line=exc.lineno) from None
        if isinstance(data, dict) and "tags" in data:
            data = data["tags"]
        return cls.from_names(data, source=str(p))

    def to_list(self) -> list[dict[str, Any]]:
        """The list as JSON-ready objects (``from_names`` reads it back)."""
        return [t.to_dict() for t in self.tags]

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tags]

    def get(self, name: str) -> Tag | None:
        """Find a tag by loose name (``Game Engine`` finds ``"game-engine "``)."""
        return self._by_key.get(tag_key(name))

    def canonical(self, name: str) -> str:
        """The exact listed name for a loosely written one; unknown names pass through."""
        tag = self.get(name)
        return tag.name if tag is not None else name

    def __len__(self) -> int:
        return len(self.tags)

    def __iter__(self):
        return iter(self.tags)

    @property
    def described(self) -> bool:
        """Whether any tag carries a description or aliases."""
        return self.described_share > 0

    @property
    def described_share(self) -> float:
        """The share of the tags that carry a description or aliases (0 for a raw
        request's names)."""
        return sum(1 for t in self.tags if t.description or t.aliases) / max(len(self.tags), 1)

    def fingerprint(self) -> str:
        """Stable hash of the exact names (and of descriptions and aliases, when the list
        has any: the lexicon reads them), for caches keyed by taxonomy (computed once:
        lexicon, constraint, adapter and explanation look-ups ask for it per item)."""
        fp = self.__dict__.get("_fingerprint")
        if fp is None:
            data: Any = self.names
            if self.described:
                data = [[t.name, t.description, list(t.aliases)] for t in self.tags]
            fp = hashlib.sha256(json.dumps(data, ensure_ascii=False).encode()).hexdigest()[:16]
            object.__setattr__(self, "_fingerprint", fp)  # frozen: set once, like a cached property
        return fp
