"""The label file: one JSONL line per decision, appended, flushed and synced as it is
made, under the batch job's exclusive lock.

Why a log and not a table: a kill (or a power cut) can lose at most the decision being
written, never an earlier one; reopening reads the log back and goes on; a changed
decision is one more line (the last line of an id wins, ``engine.io.labels``), so the
file also keeps the history of an annotator's corrections.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.errors import E_INPUT, E_WRITE_STOPPED, TagsmithError
from engine.io.batch import open_locked, whole_lines


@dataclass
class Decision:
    """One annotator's decision on one README: the line a label file holds."""

    id: str
    tags: list[str]  # exact names, in the order chosen (the first is the main tag)
    text: str  # the README, so that the file is gold that train and eval read as it is
    suggestion: list[str]  # what the engine pre-checked
    seconds: float  # from the item painted to the decision
    annotator: str
    time: str  # UTC, ISO 8601, when the decision was written
    skipped: bool = False
    pick: str = "file"  # why the item came when it did: file, random, uncertain, review, adjudicate
    margin: float | None = None  # the engine's uncertainty when picked (smaller: less sure)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the two annotators' tags when adjudicating

    def to_json(self) -> str:
        d = asdict(self)
        extra = d.pop("extra")
        d.update(extra)
        return json.dumps(d, ensure_ascii=False, separators=(",", ":"))


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class LabelStore:
    """An open label file: ``latest`` maps each id to its last line; ``append`` writes one
    decision durably. Held open (and locked) for the life of a labelling session."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fh = open_locked(path, holder="tagsmith label", hint="close that session first, or label into another -o")
        self.latest: dict[str, dict[str, Any]] = {}
        for no, line in enumerate(whole_lines(path), 1):  # after the lock: a torn line is ours to cut
            try:
                row = json.loads(line)
                rid = str(row["id"])
            except (ValueError, KeyError, TypeError):
                self.close()
                raise TagsmithError(E_INPUT, "not a label line (JSON with an id)", file=path, line=no) from None
            self.latest[rid] = row

    def append(self, d: Decision) -> None:
        line = d.to_json()
        try:
            self._fh.write(line + "\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:
            raise TagsmithError(E_WRITE_STOPPED, f"cannot write the decision on {d.id!r}: {exc.strerror or exc}", file=self.path) from None
        self.latest[d.id] = json.loads(line)

    def close(self) -> None:
        try:
            self._fh.close()
        except OSError:
            pass
