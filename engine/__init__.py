"""tagsmith: tag software projects from their descriptions (rules + constrained LLM).

Pipeline: taxonomy -> lexicon (spaCy + rapidfuzz candidates with evidence) ->
decision (an LLM under an Outlines constraint) -> report (explanations).
"""
from engine.api import TagResult, Tagger
from engine.errors import TagsmithError
from engine.request import Request, parse_request
from engine.taxonomy import Taxonomy

__all__ = ["Request", "TagResult", "Tagger", "TagsmithError", "Taxonomy", "parse_request"]
__version__ = "0.1.0"
