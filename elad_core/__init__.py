"""elad_core: the pure (Prefect-free) core of active distillation.

Configs, records, parsing, selectors, prompts, student sampling/training, the litellm
teacher client, the offline oracle teacher and evaluation. `tasks/` and `flows/` wrap it.
See docs/design.md §3 for the dependency rule: flows -> tasks -> elad_core.
"""

__version__ = "0.1.0"
