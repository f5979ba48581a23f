"""Client-side teacher rate limits as Prefect global rate limits (issue: reliability).

`teacher.rpm_limit` / `teacher.tpm_limit` become limits with slot decay, shared by every
run on the same Prefect API, created or updated on first use and awaited before each
request (litellm's Router rejects over-limit calls instead of waiting).
"""

from __future__ import annotations

import re

from elad_core.teacher.config import TeacherConfig


def rate_limit_names(cfg: TeacherConfig) -> dict[str, str]:
    """Global rate-limit names for cfg's model: {"rpm": ..., "tpm": ...}, shared by all runs."""
    slug = re.sub(r"[^a-z0-9-]+", "-", cfg.model.lower()).strip("-")
    return {"rpm": f"elad-teacher-rpm-{slug}", "tpm": f"elad-teacher-tpm-{slug}"}


def rate_limit_shapes(cfg: TeacherConfig) -> dict[str, tuple[int, float]]:
    """{name: (slots, slot_decay_per_second)} of the configured limits.

    A token bucket refilled at limit/60 per second, holding at most one second of requests
    (rpm) or ten seconds of tokens (tpm), so no minute ever sees much more than the limit.
    """
    names, shapes = rate_limit_names(cfg), {}
    if cfg.rpm_limit:
        shapes[names["rpm"]] = (max(1, cfg.rpm_limit // 60), cfg.rpm_limit / 60)
    if cfg.tpm_limit:
        shapes[names["tpm"]] = (max(1, cfg.tpm_limit // 6), cfg.tpm_limit / 60)
    return shapes


def ensure_rate_limits(cfg: TeacherConfig) -> None:
    """Create (or update to cfg's values) the Prefect global rate limits of cfg."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
    )
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        for name, (slots, decay) in rate_limit_shapes(cfg).items():
            try:
                gcl = client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                try:
                    client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(
                        name=name, limit=slots, slot_decay_per_second=decay, active=True))
                    continue
                except ObjectAlreadyExists:  # a concurrent batch created it first
                    gcl = client.read_global_concurrency_limit_by_name(name)
            if (gcl.limit, gcl.slot_decay_per_second, gcl.active) != (slots, decay, True):
                client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(
                    limit=slots, slot_decay_per_second=decay, active=True))


def rate_limiter(cfg: TeacherConfig):
    """The client's throttle for cfg's rpm / tpm limits (None when neither is set).

    Returns an async callable(tokens) that takes one request slot and `tokens` token slots
    (capped at the bucket size) from Prefect's rate limits, waiting until they are free.
    """
    shapes = rate_limit_shapes(cfg)
    if not shapes:
        return None
    from prefect.concurrency.asyncio import rate_limit

    ensure_rate_limits(cfg)
    names = rate_limit_names(cfg)

    async def throttle(tokens: int) -> None:
        if cfg.rpm_limit:
            await rate_limit(names["rpm"], occupy=1, strict=True)
        if cfg.tpm_limit:
            await rate_limit(names["tpm"], occupy=min(tokens, shapes[names["tpm"]][0]), strict=True)

    return throttle
