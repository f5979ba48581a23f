"""Prefect flows: `flows/elad/` (ELAD: `distill_round`, one round, and `active_distillation`,
the loop), `flows/evokd/` (EvoKD), the `elad` CLI, deployments, task runners.

Environment defaults for the offline product are set here, before prefect and litellm are
imported: litellm's local price map (it fetches one at import otherwise), no Prefect
telemetry, OpenMP threads that sleep instead of spinning while idle (torch's default
spin made student sampling ~7x slower on a loaded 2-core machine, benchmarks/throughput.py),
and 120 s for a run's temporary Prefect server to start.
Users can override any of them in their environment.
"""

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when torch loads its OpenMP runtime
# Prefect's own default is 20 s; on a loaded 2-core machine the temporary server of a run
# without PREFECT_API_URL took longer, and `elad run` died with "Timed out while attempting
# to connect to ephemeral Prefect API server"
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
