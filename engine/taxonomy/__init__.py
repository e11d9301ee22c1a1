"""Taxonomy: the allowed tag list, kept byte-exact, matched loosely."""
from engine.taxonomy.model import Tag, Taxonomy, tag_key

__all__ = ["Tag", "Taxonomy", "tag_key"]
