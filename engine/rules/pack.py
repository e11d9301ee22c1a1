"""A rule pack: a folder of YAML files, validated and indexed by tag."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml
from pydantic import ValidationError

from engine.errors import E_PACK_LIMIT, E_REGEX_UNSAFE, E_RULES, TagsmithError
from engine.rules.schema import UNSAFE, RulePackFile, TagRule
from engine.rules.yaml_lines import ForbiddenTag, TooLarge, line_for, load_with_lines

MAX_FILE_BYTES = 1 << 20  # one pack file
MAX_PACK_BYTES = 16 << 20  # all files of a pack
MAX_PACK_FILES = 1000
from engine.taxonomy import tag_key


@dataclass(frozen=True)
class RuleSource:
    file: str
    line: int


@dataclass(frozen=True)
class RulePack:
    """All rules of a pack, one per tag key, with where each was defined."""

    rules: dict[str, TagRule]
    sources: dict[str, RuleSource] = field(default_factory=dict)
    digest: str = ""
    root: str = ""
    written: frozenset[str] = frozenset()  # keys of tags with a hand-written rule (not learned_from data)

    def get(self, tag_name: str) -> TagRule | None:
        return self.rules.get(tag_key(tag_name))

    def __len__(self) -> int:
        return len(self.rules)


def default_pack_dir() -> Path:
    """The pack shipped with tagsmith: ``rules/default`` in the checkout, or the installed copy."""
    here = Path(__file__).resolve()
    for cand in (here.parents[2] / "rules" / "default", here.parents[1] / "_rules" / "default"):
        if cand.is_dir():
            return cand
    raise TagsmithError(E_RULES, "the default rule pack is missing (rules/default)")


def _format_loc(loc: tuple) -> str:
    return ".".join(str(p) for p in loc)


def load_file(path: Path) -> tuple[RulePackFile, dict[tuple, int]]:
    """Load one YAML file; errors name file, line and field."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise TagsmithError(E_PACK_LIMIT, f"file too large: {size:,} bytes, at most {MAX_FILE_BYTES:,}", file=str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TagsmithError(E_RULES, f"not UTF-8 (byte {exc.start})", file=str(path)) from None
    try:
        data, lines = load_with_lines(text)
    except TooLarge as exc:
        raise TagsmithError(E_PACK_LIMIT, str(exc), file=str(path)) from None
    except ForbiddenTag as exc:
        raise TagsmithError(E_RULES, str(exc), file=str(path), line=exc.line) from None
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise TagsmithError(E_RULES, f"YAML syntax: {exc.problem}", file=str(path), line=line) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise TagsmithError(E_RULES, f"YAML: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=str(path)) from None
    if data is None:
        data = {}
    try:
        return RulePackFile.model_validate(data), lines
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        # pydantic may append a validator name to the location; keep the data path.
        msg = err["msg"].removeprefix("Value error, ")
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        code = E_REGEX_UNSAFE if msg.startswith(UNSAFE) else E_RULES
        raise TagsmithError(code, msg + more, file=str(path), line=line_for(lines, loc), field=_format_loc(loc)) from None


def load_pack(directory: str | Path | None = None) -> RulePack:
    """Load every ``*.yaml``/``*.yml`` file below ``directory`` (default pack if None).

    ``directory`` may list several packs, ``a,b``: each later one extends the ones
    before (``default`` names the built-in pack). A pack whose files say ``extends:``
    is loaded on top of that base."""
    if directory is not None and "," in str(directory) and not Path(directory).exists():
        parts = [p.strip() for p in str(directory).split(",") if p.strip()]
        pack = load_pack(_named(parts[0]))
        for part in parts[1:]:
            pack = combine(pack, load_pack(_named(part)))
        return replace(pack, root=str(directory))
    return _load_one(_named(directory) if directory is not None else None, ())


def _named(spec: str | Path) -> str | Path | None:
    """``default`` is the built-in pack (None), unless a folder of that name is here."""
    return None if str(spec) == "default" and not Path(spec).exists() else spec


def _load_one(directory: str | Path | None, chain: tuple[str, ...]) -> RulePack:
    root = Path(directory) if directory is not None else default_pack_dir()
    if not root.exists():
        raise TagsmithError(E_RULES, "rule pack folder not found", file=str(root))
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml"))
    if len(files) > MAX_PACK_FILES:
        raise TagsmithError(E_PACK_LIMIT, f"{len(files)} YAML files, at most {MAX_PACK_FILES}", file=str(root))
    total = sum(p.stat().st_size for p in files)
    if total > MAX_PACK_BYTES:
        raise TagsmithError(E_PACK_LIMIT, f"pack too large: {total:,} bytes, at most {MAX_PACK_BYTES:,}", file=str(root))
    rules: dict[str, TagRule] = {}
    sources: dict[str, RuleSource] = {}
    digest = hashlib.sha256()
    extends: tuple[str, Path, int] | None = None
    written: set[str] = set()
    for path in files:
        pack_file, lines = load_file(path)
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
        if pack_file.extends is not None:
            if extends is not None and extends[0] != pack_file.extends:
                raise TagsmithError(E_RULES, f"extends {pack_file.extends!r}, but {extends[1]} extends {extends[0]!r}: a pack has one base",
                                    file=str(path), line=lines.get(("extends",)), field="extends")
            extends = (pack_file.extends, path, lines.get(("extends",), 0))
        for i, rule in enumerate(pack_file.rules):
            key = tag_key(rule.tag)
            line = lines.get(("rules", i), 0)
            if key in rules:
                first = sources[key]
                raise TagsmithError(
                    E_RULES, f"tag {rule.tag!r} already has a rule at {first.file}:{first.line}",
                    file=str(path), line=line, field=f"rules.{i}.tag",
                )
            _check_matcher_patterns(rule, path, lines, i)
            rules[key] = rule
            sources[key] = RuleSource(str(path), line)
            if pack_file.learned_from is None:
                written.add(key)
    pack = RulePack(rules=rules, sources=sources, digest=digest.hexdigest()[:16], root=str(root), written=frozenset(written))
    if extends is None:
        return pack
    name, path, line = extends
    base_dir = None if name == "default" else (path.parent / name).resolve()
    key = str(base_dir or "default")
    if key in chain or (base_dir is not None and base_dir == root.resolve()):
        raise TagsmithError(E_RULES, f"extends {name!r} makes a cycle ({' -> '.join((*chain, key))})", file=str(path), line=line, field="extends")
    if base_dir is not None and not base_dir.exists():
        raise TagsmithError(E_RULES, f"extends {name!r}: no such pack folder", file=str(path), line=line, field="extends")
    return replace(combine(_load_one(base_dir, (*chain, str(root.resolve()))), pack), root=str(root))


def combine(base: RulePack, top: RulePack) -> RulePack:
    """``top`` added to ``base``: a tag in both gets one rule with the terms of both
    (aliases, phrases, patterns, regexes, negatives, examples) and the base's weight,
    admit and relations (``implies`` entries of the top only where the base has none)."""
    rules = dict(base.rules)
    sources = dict(base.sources)
    for key, rule in top.rules.items():
        old = rules.get(key)
        if old is None:
            rules[key] = rule
            sources[key] = top.sources[key]
            continue
        rules[key] = merge_rule(old, rule)
    digest = hashlib.sha256(f"{base.digest}+{top.digest}".encode()).hexdigest()[:16]
    return RulePack(rules=rules, sources=sources, digest=digest, root=top.root, written=base.written | top.written)


def merge_rule(old: TagRule, rule: TagRule) -> TagRule:
    """``old`` with ``rule``'s terms added (aliases, phrases, patterns, regexes,
    negatives, examples); ``old`` keeps its weight, admit and relations (``implies``
    entries of ``rule`` only where ``old`` has none)."""
    return old.model_copy(update={
        "aliases": [*old.aliases, *rule.aliases], "phrases": [*old.phrases, *rule.phrases],
        "patterns": [*old.patterns, *rule.patterns], "regexes": [*old.regexes, *rule.regexes],
        "negatives": [*old.negatives, *rule.negatives], "implies": {**rule.implies, **old.implies},
        "prefer_over": [*old.prefer_over, *(t for t in rule.prefer_over if t not in old.prefer_over)],
        "examples": old.examples.model_copy(update={"match": [*old.examples.match, *rule.examples.match],
                                                    "no_match": [*old.examples.no_match, *rule.examples.no_match]}),
    })


def extends_spec(base_spec: str | Path | None, folder: str | Path) -> str:
    """How a pack written in ``folder`` names the pack ``base_spec`` it extends:
    ``default`` for the built-in one, else a path relative to ``folder``."""
    if base_spec is None or str(base_spec) == "default":
        return "default"
    return os.path.relpath(Path(base_spec).resolve(), Path(folder).resolve())


def _check_matcher_patterns(rule: TagRule, path: Path, lines: dict, i: int) -> None:
    """Let spaCy itself validate token patterns, so a bad one fails at load time."""
    if not rule.patterns:
        return
    from spacy.matcher import Matcher

    from engine.lexicon.nlp import get_nlp

    matcher = Matcher(get_nlp().vocab, validate=True)
    for j, pat in enumerate(rule.patterns):
        try:
            matcher.add("check", [pat.pattern])
        except Exception as exc:  # spaCy raises ValueError/MatchPatternError
            loc = ("rules", i, "patterns", j, "pattern")
            first = str(exc).strip().splitlines()
            raise TagsmithError(
                E_RULES, f"invalid token pattern: {' '.join(first)[:200]}",
                file=str(path), line=line_for(lines, loc), field=_format_loc(loc),
            ) from None
