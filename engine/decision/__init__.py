"""Decision stage: an LLM (with a trained decision head, by default) chooses the final
tags, and the answer is written under a constraint: the direct index of the answer
language, or Outlines' regex index (``--constraint outlines``), plus a no-repeat mask."""
from engine.decision.constraint import TagConstraint, build_regex
from engine.decision.model import LoadedModel, load_model
from engine.decision.decoder import ConstrainedDecoder, DecodeRequest, DecodeResult
from engine.decision.policy import DecisionPolicy, Plan

__all__ = [
    "ConstrainedDecoder", "DecisionPolicy", "DecodeRequest", "DecodeResult", "LoadedModel",
    "Plan", "TagConstraint", "build_regex", "load_model",
]
