"""Input and output of batch jobs: record readers and the resumable batch runner."""
from engine.io.records import Record, read_records

__all__ = ["Record", "read_records"]
