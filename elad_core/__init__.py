"""elad_core: the pure (Prefect-free) core of active distillation.

One folder per idea (docs/design.md §3; the README's "How it works" maps every step to
its file):

* `elad/`: ELAD (explanation-guided active distillation): configs, records, dataset
  loaders, reply parsing, prompts, selectors, teacher annotators, round bookkeeping;
* `evokd/`: EvoKD (feedback-driven generation of hard + easy samples);
* `teacher/`: the litellm teacher client, its reply journal, the process fan-out, pricing,
  and the offline oracle teacher (a test double for a real LLM) under `teacher/oracle/`;
* `student/`: the only package that imports torch: build, load, sample, probe, train,
  evaluate;
* `synthetic/`: generated benchmark tasks; shared modules at this level (budget, seeds,
  refs, files, errors, config_base).

`tasks/` and `flows/` wrap it; the dependency rule is flows -> tasks -> elad_core.
"""

from pathlib import Path

__version__ = "0.1.0"

# the datasets shipped inside the package (GSM8K, an e-SNLI subset, WNUT-17), each with its
# licence notice in its folder
SHIPPED_DATA = Path(__file__).resolve().parent / "data"
