"""Raw requests: the requester's free-text prompt format, parsed into parts."""
from engine.request.parser import Request, parse_request

__all__ = ["Request", "parse_request"]
