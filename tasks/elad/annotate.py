"""ELAD's teacher task: annotate one batch of selected questions (docs/design.md §2 step 4, §3).

A retry sends only the requests that failed: rows already annotated are kept in a partial
file keyed on the batch's content, and every reply paid for is journaled before it is used
(tasks.teacher.teacher_session), so a CLEAR dialogue resumed after a failed turn or a killed
process pays no turn twice. Permanent failures are recorded per question (status "failed");
a rejected API key (401/403) stops the batch. `teacher.processes` > 1 spreads a batch's
questions over that many worker processes (elad_core.elad.fanout).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from elad_core.elad.annotators import AnnotationRequest
from elad_core.explanations.records import Annotation, from_rows, to_rows
from elad_core.elad.rounds import mark_teacher_agreement
from elad_core.elad.state import AnnotationBatchRef
from elad_core.errors import TransientTeacherError
from elad_core.files import hash_file, hash_json, read_parquet, write_parquet
from elad_core.teacher.config import TeacherConfig
from elad_core.elad.fanout import annotate_requests
from tasks.teacher import teacher_session, teacher_task

# ELAD's own TeacherConfig fields in the cache key of a batch (besides teacher.config.REPLY_FIELDS)
ELAD_REPLY_FIELDS = ("max_clear_turns", "filter_wrong_teacher", "answer_turn")


@teacher_task
def annotate_batch_task(annotator: str, requests: list[AnnotationRequest],
                        teacher_key: dict[str, Any], teacher_cfg: TeacherConfig,
                        api_base: str | None, family: str, out_path: Path,
                        gold: dict[str, str | None] | None = None,
                        run: str | None = None) -> AnnotationBatchRef:
    """Annotate one batch -> annotations parquet. Returns its ref: path, hash, teacher tokens,
    cost (USD) and each request's status, in request order.

    requests: the batch's AnnotationRequests (elad_core.elad.rounds.annotation_requests), frozen
    dataclasses that Prefect hashes by value (class name + fields) for the cache key.
    teacher_key: the cache key's config slice, TeacherConfig.reply_key(PROMPT_VERSION,
    *ELAD_REPLY_FIELDS): a plain dict because each method picks its own fields (EvoKD's has no
    max_clear_turns); this task reads max_clear_turns from it. teacher_cfg: the whole
    TeacherConfig (endpoint, concurrency, timeouts); not in the cache key (tasks.teacher).
    gold: question_id -> gold answer, where the pool has one: each annotation records whether
    the teacher agrees with it (`teacher_agrees`; rounds.mark_teacher_agreement).
    run: the run dir whose RUN_COUNTS entry counts the requests (not part of the cache key).
    Raises TransientTeacherError (retried by Prefect) when any request failed transiently.
    """
    out_path = Path(out_path)
    # rows paid for by an earlier attempt (or a killed run) of this very batch are kept
    partial = partial_path(out_path, partial_key(annotator, requests, teacher_key, family))
    done = from_rows(Annotation, read_parquet(partial)) if partial.exists() else []
    done_ids = {a.question_id for a in done}
    with teacher_session(teacher_cfg, api_base, out_path, run) as client:
        try:
            new = annotate_requests(client, annotator,
                                    [r for r in requests if r.question_id not in done_ids],
                                    family, teacher_key["max_clear_turns"],
                                    teacher_cfg.processes, teacher_cfg.answer_turn)
        except TransientTeacherError as exc:
            write_parquet(partial, to_rows(done + exc.completed))
            raise
    by_id = {a.question_id: a for a in done + new}
    annotations = mark_teacher_agreement([by_id[r.question_id] for r in requests], gold or {})
    write_parquet(out_path, to_rows(annotations))
    partial.unlink(missing_ok=True)
    return AnnotationBatchRef(path=str(out_path), sha=hash_file(out_path),
                              teacher_tokens=sum(a.teacher_tokens for a in annotations),
                              cost_usd=sum(a.cost_usd for a in annotations),
                              statuses=tuple(a.status for a in annotations))


def partial_key(annotator: str, requests: list[AnnotationRequest], teacher_key: dict[str, Any],
                family: str) -> str:
    """The batch's content key (16 hex): the hash_json of [annotator, the requests' fields as
    dicts, teacher_key, family], as when the task took dicts, so a run resumed across that
    change finds the partial file of its batch."""
    return hash_json([annotator, [asdict(r) for r in requests], teacher_key, family])[:16]


def partial_path(out_path: Path, key: str) -> Path:
    """Where the rows paid for by a failed attempt of the batch `key` wait, beside out_path."""
    return out_path.parent / f".{out_path.stem}.{key}.partial.parquet"
