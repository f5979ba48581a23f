"""elad_core: the pure (Prefect-free) core of active distillation.

One folder per idea (docs/design.md §3; docs/how-it-works.md maps every step to its file),
imports pointing one way (pyproject.toml's import-linter contracts, checked by `make test`):

* the methods, which import neither each other: `elad/` (explanation-guided active
  distillation: config, loaders, teacher prompts, selectors, annotators, the round plan,
  state, record and cost estimates, the oracle judge) and `evokd/` (feedback-driven
  generation of hard + easy samples);
* the shared layers, which know no method: `student/` (the only package that imports torch:
  build, load, sample, probe, train, evaluate), `teacher/` (the `Teacher` protocol, its
  backends and wrappers, and under `teacher/oracle/` the offline oracle server, a test double
  for a real LLM), `budget.py`, `synthetic/` (generated benchmark tasks);
* `explanations/`: the explanation format both methods share (prompt format, steps, answer
  reading, records);
* basics: files, refs, seeds, timing, errors, config_base.

`tasks/` and `flows/` wrap it; the dependency rule is flows -> tasks -> elad_core.
"""

from pathlib import Path

__version__ = "0.1.0"

# the datasets shipped inside the package (GSM8K, an e-SNLI subset, WNUT-17), each with its
# licence notice in its folder
SHIPPED_DATA = Path(__file__).resolve().parent / "data"
