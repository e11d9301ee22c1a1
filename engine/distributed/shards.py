"""Cut a batch input into shards of whole records, and read one shard back.

A shard is the unit of distributed work, of output and of resumption: its records are
read, tagged and written together, and a finished shard is never done again. Shards
are planned by counting newlines (no JSON is parsed on the driver), so planning a large
file costs one sequential read; each shard keeps the line numbers of its records, so a
bad record is reported exactly as the local batch job reports it.
"""
from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

from engine.errors import E_INPUT, TagsmithError
from engine.io.records import Position, Record, _check, _jsonl

_CHUNK = 1 << 24


@dataclass(frozen=True)
class Shard:
    index: int
    path: str
    kind: str  # "jsonl" or "parquet"
    start: int  # byte offset (jsonl) or first row (parquet)
    end: int  # byte offset or row, exclusive
    first_line: int  # line (row) number of the shard's first line, from 1
    file: str | None = None  # the file's name in error entries when the input has several files

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def input_files(source: str) -> list[Path]:
    """The input's files: one JSONL or Parquet file, or every ``*.jsonl``/``*.parquet``
    file under a folder (sorted), which is how sharded data sets are stored."""
    p = Path(source)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in (".jsonl", ".parquet"))
        if not files:
            raise TagsmithError(E_INPUT, "no .jsonl or .parquet files in the folder", file=source)
        return files
    if not p.is_file():
        raise TagsmithError(E_INPUT, "cannot read input: no such file", file=source)
    return [p]


def plan_shards(source: str, lines_per_shard: int = 1000) -> list[Shard]:
    files = input_files(source)
    several = len(files) > 1 or Path(source).is_dir()
    shards: list[Shard] = []
    for f in files:
        label = str(f.relative_to(source)) if several else None
        if f.suffix == ".parquet":
            import pyarrow.parquet as pq

            rows = pq.ParquetFile(f).metadata.num_rows
            for s in range(0, rows, lines_per_shard):
                shards.append(Shard(len(shards), str(f), "parquet", s, min(rows, s + lines_per_shard), s + 1, label))
            continue
        starts = _line_cuts(f, lines_per_shard)
        for k, (s, e) in enumerate(zip(starts, starts[1:])):
            if e > s:
                shards.append(Shard(len(shards), str(f), "jsonl", s, e, k * lines_per_shard + 1, label))
    return shards


def _line_cuts(path: Path, every: int) -> list[int]:
    """Byte offsets where every ``every``-th line starts, with 0 and the file's size."""
    cuts, lines, pos = [0], 0, 0
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                start = 0
                while True:
                    nl = chunk.find(b"\n", start)
                    if nl < 0:
                        break
                    lines += 1
                    if lines % every == 0:
                        cuts.append(pos + nl + 1)
                    start = nl + 1
                pos += len(chunk)
    except OSError as exc:
        raise TagsmithError(E_INPUT, f"cannot read input: {exc.strerror}", file=str(path)) from None
    if cuts[-1] != pos:
        cuts.append(pos)
    return cuts


def read_shard(shard: Shard, id_col: str = "id", text_col: str = "text") -> Iterator[Record]:
    """The shard's records, numbered as in the whole file."""
    if shard.kind == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(shard.path, columns=[c for c in (id_col, text_col)])
        part = table.slice(shard.start, shard.end - shard.start).to_pydict()
        for k, (rid, text) in enumerate(zip(part[id_col], part[text_col])):
            yield _check(shard.first_line + k, rid, text)
        return
    with open(shard.path, "rb") as fh:
        fh.seek(shard.start)
        data = fh.read(shard.end - shard.start)
    for rec in _jsonl(io.BytesIO(data), Position()):
        rec.where = int(rec.where) + shard.first_line - 1
        yield rec
