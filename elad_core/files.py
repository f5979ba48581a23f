"""Files: atomic writes, parquet round-trips and content hashes (docs/design.md §3).

Every write goes to a temporary file in the same folder and is renamed into place, so a
killed process never leaves a partial file that a later run would take as finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from elad_core.errors import DataError


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` via temp file + os.replace. Returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, obj: Any) -> Path:
    """Pretty JSON, atomically."""
    return atomic_write_bytes(path, json.dumps(obj, indent=2, default=str).encode("utf-8"))


def write_parquet(path: Path, rows: list[dict[str, Any]], schema: pa.Schema | None = None) -> Path:
    """Rows (list of flat dicts) -> parquet, atomically. An empty list writes an empty table."""
    table = pa.Table.from_pylist(rows, schema=schema)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return atomic_write_bytes(path, sink.getvalue().to_pybytes())


def read_parquet(path: Path) -> list[dict[str, Any]]:
    """Parquet -> list of dicts."""
    return pq.read_table(path).to_pylist()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_file(path: Path) -> str:
    """sha256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_dir(path: Path) -> str:
    """sha256 over a folder's files (relative names + contents, sorted). For model dirs."""
    h = hashlib.sha256()
    root = Path(path)
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(root)).encode())
        h.update(hash_file(f).encode())
    return h.hexdigest()


def hash_json(obj: Any) -> str:
    """sha256 of canonical JSON (sorted keys): for config slices and id lists."""
    return sha256_bytes(json.dumps(obj, sort_keys=True, default=str).encode("utf-8"))


def read_json_lines(path: Path) -> list[dict]:
    """The rows of an append-only JSON-lines file ([] when it does not exist); a line torn
    by a killed writer is skipped (request logs, benchmark result rows)."""
    if not Path(path).exists():
        return []
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text without its newline) of each line of a UTF-8 file, from 1.

    Raises DataError naming the file on a missing file, and file:line on non-UTF-8 bytes.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                yield lineno, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not UTF-8 ({exc.reason} at byte {exc.start})") \
                    from None


def iter_jsonl(path: Path) -> Iterator[tuple[str, dict]]:
    """("file:line", row) for each line of a JSONL file of objects (row i is line i).

    Raises DataError naming file:line on a missing file, non-UTF-8 bytes, an empty line,
    invalid JSON or a line that is not an object.
    """
    for lineno, line in text_lines(path):
        where = f"{Path(path)}:{lineno}"
        if not line.strip():
            raise DataError(f"{where}: empty line")
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON: {exc.msg}") from None
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object")
        yield where, row
