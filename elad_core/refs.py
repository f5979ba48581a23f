"""Typed references to the files tasks write, for every method (docs/design.md §3): a path
plus the sha256 content hash of the file or folder (elad_core.files.hash_file / hash_dir),
never a loaded model. Frozen pydantic models: Prefect hashes them for cache keys like the plain
values they hold (its JSON serializer), a flow validates them as parameters, and the UI shows
them as JSON."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FileRef(Frozen):
    """A file or folder written by a task: its path and sha256 content hash."""

    path: str
    sha: str

    @classmethod
    def of(cls, ref: dict) -> FileRef:
        """The path + hash of a task's result dict (which may carry more keys)."""
        return cls(path=ref["path"], sha=ref["sha"])
