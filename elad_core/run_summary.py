"""What every method's summary.json ends with (elad_core.elad.round_record.RunSummary,
elad_core.evokd.round_record.EvoKDSummary): this invocation's teacher requests and wall time."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Invocation:
    """One invocation of a run (a resumed run is a new one): teacher requests sent, replies
    replayed from a batch's journal (paid earlier in this run), replies reused from the
    cross-run reply cache (paid by another run), and its wall time (s)."""

    teacher_requests_sent: int
    teacher_replies_replayed: int
    teacher_replies_reused: int
    wall_s: float


class SummaryJson:
    """Mixin of a summary dataclass whose last field is `invocation: Invocation`."""

    def as_dict(self) -> dict:
        """The summary.json object: the fields in order, the invocation's flattened last."""
        row = dataclasses.asdict(self)
        row.update(row.pop("invocation"))
        return row
