"""YAML rule packs: typed schema, line-aware loading, validation."""
from engine.rules.schema import Examples, PatternTerm, RegexTerm, RulePackFile, TagRule, Term
from engine.rules.pack import RulePack, default_pack_dir, load_pack

__all__ = [
    "Examples", "PatternTerm", "RegexTerm", "RulePack", "RulePackFile", "TagRule", "Term",
    "default_pack_dir", "load_pack",
]
