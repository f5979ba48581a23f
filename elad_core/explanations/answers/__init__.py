"""Reading the final answer of a model's reply, whatever its phrasing. Never raises.

docs/design.md §2.1 (answers and answer families) and §2.3 (teacher replies). Four answer
families: "number" (GSM8K), "option" (A-E, AQuA / CommonsenseQA), "label" (entailment /
neutral / contradiction, e-SNLI / ANLI) and "yesno" (StrategyQA).

Two readers:

- `parse_answer`: the student's trained format only, the last `#### <answer>` line (what
  lm-evaluation-harness's GSM8K "strict-match" filter reads).
- `extract_answer` (and `flexible_answer`, `find_answer`): any reply. Strict rules first (an
  explicit answer statement: `#### N`, `\\boxed{N}`, "the answer ... is N", "Answer: N", a last
  line that is only an answer; the statement nearest the end of the reply wins), then a
  family-aware **flexible** rule in the manner of lm-evaluation-harness's GSM8K
  "flexible-extract" filter (regex `(-?[$0-9.,]{2,})|(-?[0-9]+)`, last match) and of the
  Qwen2.5-Math evaluator (last number of the prediction): the last candidate of the family in
  the reply's final statement, never one copied from the question.

A reply is untrusted text: None, non-str, huge or binary input gives (None, None).

The modules, each importing only modules listed above it:

- `families`: the answer families, `normalize_answer` / `normalize_number`, `parse_answer`;
- `markup`: `clean_markup` (markdown and LaTeX wrappers stripped from a line);
- `fragments`: the answer a fragment of a reply states (`read_fragment`);
- `lines`: the reply as lines: `AnswerSpan`, the size limits, protocol echoes (`#### <answer>`);
- `candidates`: sentences, closing remarks, the answer candidates a sentence names per family,
  hedges;
- `phrases`: answer statements ("the answer ... is N", "Answer: N") and `is_answer_line`;
- `strict`: the strict rules (STRICT_RULES);
- `flexible`: the flexible rule;
- `reader`: `find_answer`, `extract_answer`, `flexible_answer` (the rules combined,
  ANSWER_RULES).
"""

from __future__ import annotations

from elad_core.explanations.answers.families import (
    ANSWER_MARK,
    FAMILIES,
    NLI_LABELS,
    OPTION_LETTERS,
    ParsedAnswer,
    normalize_answer,
    normalize_number,
    parse_answer,
)
from elad_core.explanations.answers.lines import MAX_REPLY_CHARS, AnswerSpan
from elad_core.explanations.answers.markup import clean_markup
from elad_core.explanations.answers.phrases import is_answer_line
from elad_core.explanations.answers.reader import (
    ANSWER_RULES,
    extract_answer,
    find_answer,
    flexible_answer,
)
from elad_core.explanations.answers.strict import STRICT_RULES

__all__ = [
    "ANSWER_MARK",
    "ANSWER_RULES",
    "FAMILIES",
    "MAX_REPLY_CHARS",
    "NLI_LABELS",
    "OPTION_LETTERS",
    "STRICT_RULES",
    "AnswerSpan",
    "ParsedAnswer",
    "clean_markup",
    "extract_answer",
    "find_answer",
    "flexible_answer",
    "is_answer_line",
    "normalize_answer",
    "normalize_number",
    "parse_answer",
]
