"""The typed schema of a rule-pack file.

One model serves the loader (validation with file/line/field errors) and the
editor (``tagsmith rules schema`` prints its JSON Schema), so the two never drift.
"""
from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.rules.regex_safety import unsafe_reason

#: Where in a README a hit was found. ``boilerplate`` is badges, licence, install,
#: contributors, sponsors and changelogs; ``code`` is fenced/indented code.
Section = Literal["title", "tagline", "heading", "intro", "body", "list", "code", "boilerplate"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _StringShorthand(_Strict):
    """A term may be written as a plain string; the JSON Schema says so too."""

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        obj = handler(core_schema)
        obj = handler.resolve_ref_schema(obj)
        return {"anyOf": [{"type": "string", "minLength": 1}, dict(obj)], "description": obj.get("description", "")}


class Term(_StringShorthand):
    """A word or phrase that is evidence for a tag."""

    text: str = Field(min_length=1, description="Phrase, matched on lemmas, case-insensitive.")
    weight: float = Field(1.0, ge=0, le=10, description="Strength of one hit, before section weights.")
    where: list[Section] | None = Field(None, description="Only count hits in these sections (default: all, weighted).")

    @model_validator(mode="before")
    @classmethod
    def _from_str(cls, v: Any) -> Any:
        return {"text": v} if isinstance(v, str) else v


class RegexTerm(_StringShorthand):
    """A regular expression (Python syntax, case-insensitive, multiline).

    ``{name}`` stands for the project's own name, read from the README title, so a
    rule can say "the README shows ``pip install <this project>``" or "a shell line
    runs ``<this project> --flag``" without naming any project.
    """

    pattern: str = Field(min_length=1)
    weight: float = Field(1.0, ge=0, le=10)
    where: list[Section] | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_str(cls, v: Any) -> Any:
        return {"pattern": v} if isinstance(v, str) else v

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        if len(v) > MAX_PATTERN_CHARS:
            raise ValueError(f"pattern too long: {len(v)} characters, at most {MAX_PATTERN_CHARS}")
        probe = v.replace("{name}", "(?:foo|bar)")
        try:
            re.compile(probe)
        except re.error as exc:
            raise ValueError(f"invalid regex: {exc}") from None
        why = unsafe_reason(probe)
        if why:
            raise ValueError(f"{UNSAFE} {why}")
        return v


#: Bounds on what one pack may hold: a shared pack is untrusted input.
MAX_PATTERN_CHARS = 2000
MAX_RULES_PER_FILE = 2000
MAX_TERMS_PER_RULE = 5000
UNSAFE = "unsafe regex (catastrophic backtracking):"


class PatternTerm(_Strict):
    """A spaCy ``Matcher`` token pattern, e.g. ``[{LOWER: helm}, {LEMMA: chart}]``."""

    pattern: list[dict[str, Any]] = Field(min_length=1)
    weight: float = Field(1.0, ge=0, le=10)
    where: list[Section] | None = None


class Examples(_Strict):
    """Linguist-style samples: sentences that must / must not raise the tag."""

    match: list[str] = Field(default_factory=list)
    no_match: list[str] = Field(default_factory=list)


class TagRule(_Strict):
    """Everything the lexicon knows about one tag."""

    tag: str = Field(min_length=1, description="Tag name; matched loosely against the taxonomy.")
    weight: float = Field(1.0, ge=0, le=10, description="Multiplies every hit of this tag.")
    aliases: list[Term] = Field(default_factory=list, max_length=MAX_TERMS_PER_RULE, description="Names of the thing; also matched fuzzily (typos).")
    phrases: list[Term] = Field(default_factory=list, max_length=MAX_TERMS_PER_RULE)
    patterns: list[PatternTerm] = Field(default_factory=list, max_length=MAX_TERMS_PER_RULE)
    regexes: list[RegexTerm] = Field(default_factory=list, max_length=MAX_TERMS_PER_RULE)
    negatives: list[str] = Field(default_factory=list, max_length=MAX_TERMS_PER_RULE, description="Phrases that veto a hit on the same line (false friends).")
    implies: dict[str, float] = Field(default_factory=dict, description="Other tag -> share of this tag's score it receives.")
    prefer_over: list[str] = Field(default_factory=list, description="More generic tags this one outranks when both fire.")
    admit: float | None = Field(
        None, gt=0, lt=1,
        description="Score at which this tag joins an answer that has room, even below the relative cut "
                    "(for tags common in catalogues, such as lib, whose base rate makes a middling score likely right).",
    )
    examples: Examples = Field(default_factory=Examples)

    @field_validator("implies")
    @classmethod
    def _shares(cls, v: dict[str, float]) -> dict[str, float]:
        for k, share in v.items():
            if not 0 <= share <= 1:
                raise ValueError(f"share for {k!r} must be within [0, 1], got {share}")
        return v


class RulePackFile(_Strict):
    """One YAML file of a rule pack."""

    version: Literal[1] = 1
    learned_from: str | None = Field(
        None, min_length=1,
        description="Set by `tagsmith rules learn`: the labelled data the rules were learned from. A tag list's "
                    "descriptions add to learned rules; a hand-written rule (a file without this) supersedes them.",
    )
    extends: str | None = Field(
        None, min_length=1,
        description="A pack this one adds to: 'default' (the built-in pack) or a folder, relative to this file. "
                    "Rules for a tag both packs have are combined (terms of both count); the base's weight, admit "
                    "and relations stay.",
    )
    rules: list[TagRule] = Field(default_factory=list, max_length=MAX_RULES_PER_FILE)
