"""Decision stage: an LLM chooses the final tags under an Outlines constraint."""
from engine.decision.constraint import TagConstraint, build_regex
from engine.decision.model import LoadedModel, load_model
from engine.decision.decoder import ConstrainedDecoder, DecodeRequest, DecodeResult
from engine.decision.policy import DecisionPolicy, Plan

__all__ = [
    "ConstrainedDecoder", "DecisionPolicy", "DecodeRequest", "DecodeResult", "LoadedModel",
    "Plan", "TagConstraint", "build_regex", "load_model",
]
