"""Stream records from JSONL, CSV or a folder of README files, one at a time.

Each yielded ``Record`` carries where it came from (line or file) so a bad one can be
reported precisely while the rest of the run goes on. Nothing is read ahead: memory
stays bounded whatever the input size.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from engine.errors import E_INPUT, E_OPTION, TagsmithError


@dataclass
class Record:
    where: int | str  # line number (JSONL/CSV) or file name (folder)
    id: str | None
    text: str | None
    error: str | None = None


@dataclass
class Position:
    """How far a reader is into its input, for a progress bar's ETA without a first
    pass over the input: bytes of a file (``size``: the file's, ``None`` for a pipe)
    or files of a folder, and records read so far."""

    size: int | None = None
    done: int = 0
    records: int = 0

    def expected_records(self) -> int | None:
        """Records the whole input likely holds, from the share read so far."""
        if not self.size or not self.done or not self.records:
            return None
        return round(self.records * self.size / min(self.done, self.size))


def _check(where: int | str, rid: object, text: object) -> Record:
    if rid is None or str(rid).strip() == "":
        return Record(where, None, None, "missing id")
    if not isinstance(text, str) or not text.strip():
        return Record(where, str(rid), None, "missing or empty text")
    return Record(where, str(rid), text)


def _jsonl(fh: io.BufferedReader, pos: Position) -> Iterator[Record]:
    for no, raw in enumerate(fh, 1):
        pos.done += len(raw)
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield Record(no, None, None, f"not UTF-8 (byte {exc.start})")
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Record(no, None, None, f"invalid JSON: {exc.msg}")
            continue
        if not isinstance(rec, dict):
            yield Record(no, None, None, "record is not a JSON object")
            continue
        yield _check(no, rec.get("id"), rec.get("text"))


def _csv(fh: io.BufferedReader, id_col: str, text_col: str, source: str, pos: Position) -> Iterator[Record]:
    text = io.TextIOWrapper(fh, encoding="utf-8", errors="strict", newline="")
    reader = csv.DictReader(text)
    try:
        fields = reader.fieldnames or []
    except UnicodeDecodeError as exc:
        raise TagsmithError(E_INPUT, f"CSV header is not UTF-8 (byte {exc.start})", file=source) from None
    for col in (id_col, text_col):
        if col not in fields:
            raise TagsmithError(E_OPTION, f"CSV has no column {col!r} (columns: {', '.join(fields)})", file=source, line=1)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            yield Record(reader.line_num + 1, None, None, f"not UTF-8 (byte {exc.start})")
            return  # the decoder cannot resynchronise inside a CSV stream
        except csv.Error as exc:
            yield Record(reader.line_num, None, None, f"CSV: {exc}")
            continue
        if pos.size:  # (a pipe cannot tell) the decoder reads ahead in chunks: close enough for an ETA
            pos.done = fh.tell()
        yield _check(reader.line_num, row.get(id_col), row.get(text_col))


def _folder(root: Path, pos: Position) -> Iterator[Record]:
    paths = sorted(p for p in root.rglob("*") if p.is_file())
    pos.size = len(paths)
    for path in paths:
        pos.done += 1
        name = str(path.relative_to(root))
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            yield Record(name, path.name, None, f"not UTF-8 (byte {exc.start})")
            continue
        yield _check(name, path.name, text)


def load_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """A whole small JSONL file (gold sets, answers); a bad line is an error naming it.

    Unlike ``read_records`` (a batch input, where bad records are reported and
    skipped), a gold file or an answer file must be intact.
    """
    out = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TagsmithError(E_INPUT, f"cannot read: {exc}", file=str(path)) from None
    for no, line in enumerate(lines, 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise TagsmithError(E_INPUT, f"invalid JSON: {exc.msg}", file=str(path), line=no) from None
    return out


def read_records(source: str, fmt: str = "auto", id_col: str = "id", text_col: str = "text",
                 position: Position | None = None) -> Iterator[Record]:
    """Records from ``source`` (a file, ``-`` for stdin, or a folder); ``position``,
    when given, follows how far into the input the reader is."""
    pos = position if position is not None else Position()
    if source != "-" and Path(source).is_dir():
        yield from _counted(_folder(Path(source), pos), pos)
        return
    if fmt == "auto":
        fmt = "csv" if source.lower().endswith(".csv") else "jsonl"
    try:
        fh = sys.stdin.buffer if source == "-" else open(source, "rb")
    except OSError as exc:
        raise TagsmithError(E_INPUT, f"cannot read input: {exc.strerror}", file=source) from None
    with fh:
        try:
            st = os.fstat(fh.fileno())
            pos.size = st.st_size if stat.S_ISREG(st.st_mode) else None  # a pipe has no size
        except (OSError, ValueError, io.UnsupportedOperation):
            pos.size = None
        yield from _counted(_csv(fh, id_col, text_col, source, pos) if fmt == "csv" else _jsonl(fh, pos), pos)


def _counted(records: Iterator[Record], pos: Position) -> Iterator[Record]:
    for rec in records:
        pos.records += 1
        yield rec


def data_hash(rows: list[dict[str, Any]]) -> str:
    """sha256 over (id, text, tags) of every row, in order: which data made an adapter."""
    h = hashlib.sha256()
    for r in rows:
        h.update(json.dumps([str(r.get("id")), r.get("text"), r.get("tags")], ensure_ascii=False).encode())
    return h.hexdigest()[:16]
