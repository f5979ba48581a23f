"""EvoKD's teacher task (tasks/evokd/teacher.py) is cached on the call and the reply slice of
the config (TeacherConfig.reply_key), never on the endpoint or the rest of the config."""

from __future__ import annotations

from pathlib import Path

from prefect.utilities.callables import get_call_parameters

from elad_core.teacher.config import TeacherConfig
from tasks.evokd.teacher import teacher_call


def _cache_key(cfg: TeacherConfig, api_base: str = "http://127.0.0.1:1/v1",
               run: str = "runs/a") -> str:
    """The Inputs part of the task's cache key (its source part is the same for any call)."""
    params = get_call_parameters(teacher_call.fn, (), {
        "step": "label", "messages": [{"role": "user", "content": "x"}],
        "teacher_key": cfg.reply_key("v1"), "teacher_cfg": cfg, "api_base": api_base,
        "out_path": Path("t.json"), "run": run})
    return teacher_call.cache_policy.compute_key(task_ctx=None, inputs=params,
                                                 flow_parameters={})


def test_teacher_call_keys_on_the_reply_slice_only():
    cfg = TeacherConfig()
    base = _cache_key(cfg)
    assert base is not None
    assert _cache_key(cfg.model_copy(update={"max_concurrency": 3, "api_base": "http://x/v1"}),
                      "http://127.0.0.1:2/v1", "runs/b") == base
    other = {_cache_key(cfg.model_copy(update=u))
             for u in ({"model": "openai/gpt-4o-mini"}, {"temperature": 0.7})}
    assert base not in other and len(other) == 2
