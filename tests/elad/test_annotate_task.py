"""The keys of ELAD's teacher task (tasks/elad/annotate.py, a tasks.teacher.teacher_task):
Prefect's cache key is decided by the requests and the reply slice of the config, never by the
endpoint, the rest of the config or the run dir; the partial-file key of a batch is the one
the dict-taking task computed (a resumed run finds its partial file)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from prefect.serializers import JSONSerializer
from prefect.utilities.callables import get_call_parameters
from prefect.utilities.hashing import hash_objects

from elad_core.elad.annotators import AnnotationRequest
from elad_core.elad.prompts import PROMPT_VERSION
from elad_core.files import hash_json
from elad_core.teacher.config import TeacherConfig
from tasks.elad.annotate import ELAD_REPLY_FIELDS, annotate_batch_task, partial_key

ROOT = Path(__file__).resolve().parents[2]
REQS = [AnnotationRequest("q1", "How many?"),
        AnnotationRequest(question_id="q2", question="Why?", explanation="step 1\n#### 3",
                          sample_index=1, student_answer="3")]
KEY = {"model": "oracle", "temperature": 0.0, "max_clear_turns": 16, "prompt_version": "v9"}


def test_prefect_hashes_equal_requests_equally_and_any_changed_field_differently():
    base = hash_objects(REQS)
    assert base is not None and hash_objects([replace(r) for r in REQS]) == base
    changed = [[REQS[0], replace(REQS[1], **{field: value})] for field, value in (
        ("question_id", "q3"), ("question", "Why not?"), ("explanation", None),
        ("sample_index", 0), ("student_answer", "4"))]
    keys = {hash_objects(c) for c in changed}
    assert base not in keys and len(keys) == len(changed)
    # by value through Prefect's JSON serializer (never cloudpickle, whose bytes may differ)
    assert b'"question_id": "q2"' in JSONSerializer(dumps_kwargs={"sort_keys": True}).dumps(REQS)


def test_prefect_hashes_requests_equally_in_another_process():
    code = ("from prefect.utilities.hashing import hash_objects\n"
            "from elad_core.elad.annotators import AnnotationRequest as A\n"
            "print(hash_objects([A('q1', 'How many?'), A('q2', 'Why?', 'step 1\\n#### 3', 1, '3')]))")
    env = {**os.environ, "PYTHONHASHSEED": "7", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    assert out[-1] == hash_objects(REQS)


def test_partial_key_is_the_one_the_dict_taking_task_computed():
    old = hash_json(["clear", [r.__dict__ for r in REQS], KEY, "number"])[:16]
    assert partial_key("clear", REQS, KEY, "number") == old == "8ebfb186bf71e859"


def _cache_key(task, cfg: TeacherConfig, **inputs) -> str:
    """The Inputs part of the task's cache key (its source part is the same for any call)."""
    params = get_call_parameters(task.fn, (), {"teacher_cfg": cfg, **inputs})
    return task.cache_policy.compute_key(task_ctx=None, inputs=params, flow_parameters={})


def _annotate_key(cfg: TeacherConfig, api_base: str = "http://127.0.0.1:1/v1",
                  run: str = "runs/a") -> str:
    return _cache_key(annotate_batch_task, cfg, annotator="clear", requests=REQS,
                      teacher_key=cfg.reply_key(PROMPT_VERSION, *ELAD_REPLY_FIELDS),
                      api_base=api_base, family="number", out_path=Path("a.parquet"), run=run)


def test_endpoint_config_and_run_are_not_in_the_cache_key_and_reply_fields_are():
    cfg = TeacherConfig()
    base = _annotate_key(cfg)
    assert base is not None and _annotate_key(TeacherConfig()) == base
    same = [_annotate_key(cfg.model_copy(update={"max_concurrency": 3, "timeout_s": 5.0,
                                                 "api_base": "http://elsewhere/v1"})),
            _annotate_key(cfg, api_base="http://127.0.0.1:2/v1", run="runs/b")]
    assert same == [base, base]
    other = {_annotate_key(cfg.model_copy(update=u)) for u in (
        {"model": "openai/gpt-4o-mini"}, {"temperature": 0.7}, {"max_clear_turns": 3})}
    assert base not in other and len(other) == 3

