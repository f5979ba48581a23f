"""Student tasks: build the embedded student, sample, probe, train, evaluate (docs/design.md §2 steps 1, 2, 6, 7).

Each task loads the student from disk by path (kept loaded between shards of one process),
writes its output atomically and returns the path with its content hash (typed refs,
elad_core.elad.state; `weights` None: the base model). Nothing else is
process-local, so sampling / probe shards run unchanged in Dask worker processes
(runner.kind "dask"): each worker loads the student itself and writes under the run dir.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

from prefect import task

from elad_core.elad import rounds
from elad_core.explanations.prompt import FORMAT_TEXTS
from elad_core.explanations.records import Annotation, Probe, Sample, from_rows, to_rows
from elad_core.elad.config import EvalConfig
from elad_core.elad.state import (
    DataRefs,
    ProbeSettings,
    SamplingSettings,
    ShardRef,
    StudentRef,
    TrainedRef,
)
from elad_core.files import hash_dir, hash_file, read_parquet, write_json, write_parquet
from elad_core.refs import FileRef
from elad_core.student.config import EmbeddedStudentConfig, TrainConfig
from tasks import CONTENT_CACHE
from tasks.elad.prepare import read_examples


@functools.lru_cache(maxsize=1)
def _load(base: str, weights: str | None, weights_sha: str | None, device: str):
    from elad_core.student import load_student

    return load_student(base, Path(weights) if weights else None, device)


def load_student_model(student: StudentRef, weights: FileRef | None, device: str):
    """(model, tokenizer) of the student's base with `weights` (None: the base model), kept
    loaded between shards of one process (keyed on the weights' hash)."""
    return _load(student.base, weights.path if weights else None,
                 weights.sha if weights else None, device)


@task(cache_policy=CONTENT_CACHE)
def build_student(model: str, embedded_cfg: EmbeddedStudentConfig, data: DataRefs, seed: int,
                  out_dir: Path, chat_template: str | bool = "auto") -> StudentRef:
    """The student's base: the embedded tiny model built on the pool text, a hub id / folder, a
    packaged model's short name or a `.gguf` file (converted once, elad_core.student.catalog).

    Returns its StudentRef (base, base_sha, source, prompt_template: str | None). The
    prompt template is the model's chat template around the question (prompts.student_prompt)
    when `chat_template` is true, or "auto" and the tokenizer has one; None: the plain format.
    The embedded tokenizer is trained on the pool's questions and the answer format only (no
    gold rationales: the pool is unlabelled).
    """
    if model != "embedded":
        from elad_core.explanations.prompt import chat_prompt_template
        from elad_core.student.catalog import resolve_student
        from elad_core.student.model import load_tokenizer

        resolved = resolve_student(model)
        template = None
        if chat_template is not False:
            template = chat_prompt_template(load_tokenizer(resolved.path))
            if template is None and chat_template is True:
                from elad_core.errors import ConfigError

                raise ConfigError(f"option 'student.chat_template' is true but the tokenizer of "
                                  f"{model!r} has no chat template")
        return StudentRef(base=resolved.path, base_sha=resolved.sha, source=model,
                          prompt_template=template)
    from elad_core.student import build_embedded_student

    texts = [e.question for e in read_examples(data.pool)] + FORMAT_TEXTS
    path = build_embedded_student(texts, embedded_cfg, Path(out_dir), seed)
    return StudentRef(base=str(path), base_sha=hash_dir(path), source=model,
                      prompt_template=None)


@task(cache_policy=CONTENT_CACHE)
def sample_shard(student: StudentRef, weights: FileRef | None, data: DataRefs,
                 question_ids: list[str], sampling: SamplingSettings, family: str, seed: int,
                 out_path: Path) -> ShardRef:
    """K explanations per question of one shard -> samples parquet (docs/design.md §2 step 1).
    Returns its ref with the wall time (s) and the student's new tokens."""
    from elad_core.student import sample_explanations

    model, tok = load_student_model(student, weights, sampling.device)
    questions = {e.id: e.question for e in read_examples(data.pool)}
    t0 = time.perf_counter()
    samples = sample_explanations(
        model, tok, question_ids, [questions[q] for q in question_ids], k=sampling.k_samples,
        temperature=sampling.temperature, max_new_tokens=sampling.max_new_tokens,
        batch_size=sampling.generate_batch_size, seed=seed, family=family, progress=True,
        template=student.prompt_template,
    )
    wall = time.perf_counter() - t0
    write_parquet(Path(out_path), to_rows(samples))
    return ShardRef(path=str(out_path), sha=hash_file(out_path), wall_s=wall,
                    new_tokens=sum(s.n_new_tokens for s in samples))


@task(cache_policy=CONTENT_CACHE)
def probe_shard(student: StudentRef, weights: FileRef | None, data: DataRefs, samples: FileRef,
                probing: ProbeSettings, family: str, out_path: Path) -> ShardRef:
    """EGSS answer probes for every step prefix of one shard's samples (docs/design.md §2.2).
    Returns its ref with the wall time (s) and the number of probes."""
    from elad_core.student import probe_answers

    model, tok = load_student_model(student, weights, probing.device)
    questions = {e.id: e.question for e in read_examples(data.pool)}
    shard = from_rows(Sample, read_parquet(Path(samples.path)))
    plan = rounds.probe_plan(shard, questions, probing.max_probe_steps, student.prompt_template)
    t0 = time.perf_counter()
    answers = probe_answers(model, tok, [p.prompt for p in plan], probing.probe_max_new_tokens,
                            probing.probe_batch_size, family=family, progress=True)
    wall = time.perf_counter() - t0
    probes = [Probe(p.question_id, p.sample_index, p.prefix_steps, a)
              for p, a in zip(plan, answers, strict=True)]
    write_parquet(Path(out_path), to_rows(probes))
    return ShardRef(path=str(out_path), sha=hash_file(out_path), wall_s=wall,
                    n_probes=len(plan))


@task(cache_policy=CONTENT_CACHE)
def fine_tune_student(student: StudentRef, init: FileRef | None, data: DataRefs,
                      annotation_files: list[FileRef], train_cfg: TrainConfig, mode: str,
                      seed: int, device: str, out_dir: Path, processes: int = 1,
                      filter_wrong_teacher: bool = False) -> TrainedRef:
    """Fine-tune on the accumulated annotated set D (docs/design.md §2 step 6): full or LoRA,
    from `init` (None: the base model). Returns the weights' ref with the step losses.

    processes > 1: data parallel over that many processes / GPUs (accelerate, runner.train_processes).
    filter_wrong_teacher: leave out annotations whose answer disagrees with the gold answer
    (`teacher_agrees` False); "skipped" counts them as "teacher_wrong".
    """
    from elad_core.student.training import launch_training

    questions = {e.id: e.question for e in read_examples(data.pool)}
    annotations = [a for f in annotation_files
                   for a in from_rows(Annotation, read_parquet(Path(f.path)))]
    pairs, skipped = rounds.training_pairs(annotations, questions, filter_wrong_teacher,
                                           student.prompt_template)
    init_path = Path(init.path) if init else None
    result = launch_training(student.base, init_path, pairs, train_cfg, mode, Path(out_dir),
                             seed, device=device, processes=processes, progress=True)
    return TrainedRef(path=str(out_dir), sha=hash_dir(Path(out_dir)), losses=result.losses,
                      n_examples=result.n_examples, skipped=dict(skipped),
                      wall_s=result.wall_s, precision=result.precision)


@task(cache_policy=CONTENT_CACHE)
def evaluate_student(student: StudentRef, weights: FileRef | None, data: DataRefs,
                     eval_cfg: EvalConfig, family: str, device: str, out_path: Path) -> dict:
    """Held-out split (data.eval): greedy accuracy, parse rate and teacher-forced loss ->
    eval.json (§2 step 7). Returns {"n", "accuracy", "parse_rate", "flexible_accuracy",
    "flexible_parse_rate", "eval_loss", "wall_s"} (shares in [0, 1], loss in nats, s)."""
    from elad_core.student.evaluation import evaluate, heldout_loss

    model, tok = load_student_model(student, weights, device)
    t0 = time.perf_counter()
    examples = read_examples(data.eval)
    template = student.prompt_template
    res = evaluate(model, tok, examples, eval_cfg.max_new_tokens,
                   eval_cfg.batch_size, family=family, progress=True, template=template)
    loss = heldout_loss(model, tok, examples, eval_cfg.max_length, eval_cfg.batch_size,
                        template)
    metrics = {"n": res.n, "accuracy": res.accuracy, "parse_rate": res.parse_rate,
               "flexible_accuracy": res.flexible_accuracy,
               "flexible_parse_rate": res.flexible_parse_rate,
               "eval_loss": loss, "wall_s": time.perf_counter() - t0}
    write_json(Path(out_path), {**metrics, "predictions": res.predictions})
    return metrics
