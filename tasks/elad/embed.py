"""Embedding task: the student's question embeddings of the whole pool (docs/design.md §2.2.2).

Run by step [2] of a round whose selector `needs_embeddings` (`typical`, `hybrid`, `auto`
when it picks typicality). Cached on content like the other student tasks: the weights' hash
decides, so a resumed round reuses the file.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from prefect import task

from elad_core.elad.state import DataRefs, EmbeddingsRef, StudentRef
from elad_core.files import hash_file, read_parquet, write_parquet
from elad_core.refs import FileRef
from tasks import CONTENT_CACHE
from tasks.elad.prepare import read_examples
from tasks.elad.student import load_student_model


@task(cache_policy=CONTENT_CACHE)
def embed_pool(student: StudentRef, weights: FileRef | None, data: DataRefs, batch_size: int,
               device: str, out_path: Path) -> EmbeddingsRef:
    """Every pool question's embedding -> parquet (question_id, embedding: list of floats),
    by the student with `weights` (None: the base model).

    Returns its ref with rows (questions), dim (floats per embedding) and wall_s (s).
    """
    from elad_core.student.embeddings import question_embeddings

    model, tok = load_student_model(student, weights, device)
    examples = read_examples(data.pool)
    t0 = time.perf_counter()
    x = question_embeddings(model, tok, [e.question for e in examples], batch_size, progress=True,
                            template=student.prompt_template)
    wall = time.perf_counter() - t0
    write_parquet(Path(out_path), [{"question_id": e.id, "embedding": row.tolist()}
                                   for e, row in zip(examples, x, strict=True)])
    return EmbeddingsRef(path=str(out_path), sha=hash_file(out_path), rows=len(examples),
                         dim=int(x.shape[1]), wall_s=wall)


def read_embeddings(ref: FileRef) -> dict[str, np.ndarray]:
    """question_id -> embedding (d,) float64 from an `embed_pool` file."""
    return {r["question_id"]: np.asarray(r["embedding"], float)
            for r in read_parquet(Path(ref.path))}
