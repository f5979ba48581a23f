"""Prefect flows: `distill_round` (one ELAD round) and `active_distillation` (the loop).

Environment defaults for the offline product are set here, before prefect and litellm are
imported: litellm's local price map (it fetches one at import otherwise) and no Prefect
telemetry. Users can override either in their environment.
"""

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
