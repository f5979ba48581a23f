"""ELAD's teacher task: annotate one batch of selected questions (docs/design.md §2 step 4, §3).

A retry sends only the requests that failed: rows already annotated are kept in a partial
file keyed on the batch's content, and every reply paid for is journaled before it is used
(tasks.teacher.teacher_session), so a CLEAR dialogue resumed after a failed turn or a killed
process pays no turn twice. Permanent failures are recorded per question (status "failed");
a rejected API key (401/403) stops the batch. `teacher.processes` > 1 spreads a batch's
questions over that many worker processes (elad_core.elad.fanout).
"""

from __future__ import annotations

from pathlib import Path

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
def annotate_batch_task(annotator: str, requests: list[dict], teacher_key: dict, teacher_cfg: dict,
                        api_base: str | None, family: str, out_path: Path,
                        gold: dict[str, str | None] | None = None,
                        run: str | None = None) -> AnnotationBatchRef:
    """Annotate one batch -> annotations parquet. Returns its ref: path, hash, teacher tokens,
    cost (USD) and each request's status, in request order.

    requests: the AnnotationRequests' fields as dicts (question_id, question[, sample]).
    teacher_key: TeacherConfig.reply_key (the cache key); teacher_cfg: the whole
    TeacherConfig as a dict (endpoint, concurrency, timeouts).
    gold: question_id -> gold answer, where the pool has one: each annotation records whether
    the teacher agrees with it (`teacher_agrees`; rounds.mark_teacher_agreement).
    run: the run dir whose RUN_COUNTS entry counts the requests (not part of the cache key).
    Raises TransientTeacherError (retried by Prefect) when any request failed transiently.
    """
    cfg = TeacherConfig(**teacher_cfg)
    out_path = Path(out_path)
    reqs = [AnnotationRequest(**r) for r in requests]
    # rows paid for by an earlier attempt (or a killed run) of this very batch are kept
    key = hash_json([annotator, requests, teacher_key, family])[:16]
    partial = out_path.parent / f".{out_path.stem}.{key}.partial.parquet"
    done = from_rows(Annotation, read_parquet(partial)) if partial.exists() else []
    done_ids = {a.question_id for a in done}
    with teacher_session(cfg, api_base, out_path, run) as client:
        try:
            new = annotate_requests(client, annotator,
                                    [r for r in reqs if r.question_id not in done_ids], family,
                                    teacher_key["max_clear_turns"], cfg.processes,
                                    cfg.answer_turn)
        except TransientTeacherError as exc:
            write_parquet(partial, to_rows(done + exc.completed))
            raise
    by_id = {a.question_id: a for a in done + new}
    annotations = mark_teacher_agreement([by_id[r.question_id] for r in reqs], gold or {})
    write_parquet(out_path, to_rows(annotations))
    partial.unlink(missing_ok=True)
    return AnnotationBatchRef(path=str(out_path), sha=hash_file(out_path),
                              teacher_tokens=sum(a.teacher_tokens for a in annotations),
                              cost_usd=sum(a.cost_usd for a in annotations),
                              statuses=tuple(a.status for a in annotations))
