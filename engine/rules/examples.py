"""Linguist-style rule tests: each tag's examples must (not) raise it as a candidate."""
from __future__ import annotations

from engine.rules.pack import RulePack
from engine.taxonomy import Taxonomy


def run_examples(pack: RulePack) -> tuple[list[str], int]:
    """Returns (failure lines 'file:line: tag: ...', number of examples run)."""
    from engine.lexicon import Lexicon

    tax = Taxonomy.from_names([r.tag for r in pack.rules.values()])
    lex = Lexicon(pack, tax)
    failures: list[str] = []
    total = 0
    for key, rule in pack.rules.items():
        src = pack.sources[key]
        name = tax.get(rule.tag).name
        for text in rule.examples.match:
            total += 1
            if name not in {c.tag for c in lex.propose(text) if c.score > 0}:
                failures.append(f"{src.file}:{src.line}: {rule.tag}: expected a match: {text!r}")
        for text in rule.examples.no_match:
            total += 1
            if name in {c.tag for c in lex.propose(text) if c.score > 0}:
                failures.append(f"{src.file}:{src.line}: {rule.tag}: expected no match: {text!r}")
    return failures, total
