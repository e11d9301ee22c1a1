"""Lexicon stage: README segmentation, rule matching (spaCy + rapidfuzz), scored candidates."""
from engine.lexicon.types import Candidate, Evidence
from engine.lexicon.readme import Document, Segment, segment_readme
from engine.lexicon.proposer import Lexicon

__all__ = ["Candidate", "Document", "Evidence", "Lexicon", "Segment", "segment_readme"]
