"""Lexicon stage: README segmentation, rule matching (spaCy + rapidfuzz), scored candidates."""
import sys as _sys

if "thinc" not in _sys.modules and "torch" not in _sys.modules:
    # spaCy imports thinc, and thinc probes for torch on import (``thinc.compat``):
    # 2.3 s of a 4 s start-up, for GPU layers this stage never uses. thinc is loaded
    # with torch hidden (a ``None`` entry makes ``import torch`` fail at once); torch
    # imports normally afterwards, for the decision stage or anyone else.
    _sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        import thinc.compat  # noqa: F401
    finally:
        del _sys.modules["torch"]
from engine.lexicon.types import Candidate, Evidence
from engine.lexicon.readme import Document, Segment, segment_readme
from engine.lexicon.proposer import Lexicon

__all__ = ["Candidate", "Document", "Evidence", "Lexicon", "Segment", "segment_readme"]
