"""The bridge: a rule pack's concepts serving another tag list (``engine/bridge/link.py``)."""
from engine.bridge.link import MIN_SCORE, Bridged, Link, bridge, link_tags

__all__ = ["MIN_SCORE", "Bridged", "Link", "bridge", "link_tags"]
