"""Checks of a run's teacher settings before anything is written or paid, for every method."""

from __future__ import annotations

import os

from elad_core.errors import ConfigError


def check_teacher(config) -> None:
    """The teacher's key variable is set when one is named, and a dollar budget has prices
    to count with. Raises ConfigError.

    config: a method's run config (ELAD's RunConfig, EvoKD's EvoKDConfig): its `teacher`
    (TeacherConfig), `max_cost_usd` and `max_round_cost_usd`.
    """
    name = config.teacher.api_key_env
    if name and not os.environ.get(name):
        raise ConfigError(f"option 'teacher.api_key_env': environment variable {name} is not "
                          "set; export it with the provider's API key")
    if config.max_cost_usd is not None or config.max_round_cost_usd is not None:
        from elad_core.teacher.pricing import pricing_client

        if pricing_client(config.teacher).price_usd(1e6, 1e6) <= 0:
            raise ConfigError(
                f"option 'max_cost_usd': litellm has no price for teacher "
                f"{config.teacher.model!r}, so dollars cannot be counted; set "
                "teacher.input_cost_per_1m_usd and teacher.output_cost_per_1m_usd")
