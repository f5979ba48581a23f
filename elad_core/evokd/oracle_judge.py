"""The EvoKD oracle teacher: a SIMULATION of an LLM teacher for offline runs (docs/design.md §2.5).

A TEST DOUBLE, not a language model: it never writes a new text. It answers the four EvoKD
prompts (`elad_core.evokd.prompts`) from a labelled *reserve pool* (the train split minus
the k-shot seeds, gold labels known):

* analyse  -> a short deterministic summary of the wrong examples shown (classification:
  counts of correct -> student label confusions; NER: entity types of the missed inputs).
* generate -> n_hard + n_easy real held-out texts from the reserve. Hard: for each wrong
  example in turn, the most similar unused reserve text with the same correct label
  (NER: holding one of its entity types, or none when it had none); easy: the same around
  the right examples. With no wrong (right) example shown, or once the compatible texts
  run out, the rest are drawn at random from the unused reserve. Similarity: cosine over TF-IDF vectors (scikit-learn, word 1-2-grams, sublinear
  tf) fitted on the reserve — not the student's encoder, so the oracle does not see the
  student's representation.
* static generate (the AugGPT-like baseline) -> for each seed example shown, in turn, the
  most similar unused reserve text with the same label: chosen without reference to the
  student.
* label -> the gold label (NER: gold BIO tags) of each text; a text the oracle does not
  know is an UnknownQuestion (HTTP 400), never a made-up label.

A text is never handed out twice by one judge (`given`, which the flow seeds with the
texts already in the run's batches). It has the same duck-typed interface as
`elad_core.elad.oracle_judge.OracleJudge` (`reply(messages) -> (text, id, mode)`,
`__len__`), so `OracleServer(judge, ...)` serves it unchanged behind
`/v1/chat/completions`, reached through litellm like a real provider. Its numbers measure
the pipeline, not what a real LLM would generate.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Iterable

import numpy as np

from elad_core.evokd import prompts
from elad_core.evokd.datasets import TaskExample, example_types, text_key
from elad_core.teacher.oracle.judging import UnknownQuestion, user_texts


class EvoKDOracleJudge:
    """Answers EvoKD prompts from a labelled reserve pool (a simulation; see module doc).

    reserve: labelled examples it may hand out; known: further labelled examples it can
    label but never hands out (the seeds); kind: "classification" | "ner"; given: texts
    already handed out (never again); seed: for the random fallbacks.
    """

    def __init__(self, reserve: list[TaskExample], kind: str, known: Iterable[TaskExample] = (),
                 given: Iterable[str] = (), seed: int = 0):
        from sklearn.feature_extraction.text import TfidfVectorizer

        if not reserve:
            raise ValueError("the oracle's reserve pool is empty")
        self.kind, self.seed = kind, seed
        self.reserve = list(reserve)
        self._gold = {text_key(e.text): e.label for e in [*known, *self.reserve]}
        self._types = [example_types(e) if kind == "ner" else set() for e in self.reserve]
        self.given: set[str] = {text_key(t) for t in given}
        self._tfidf = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)
        self._matrix = self._tfidf.fit_transform([e.text for e in self.reserve])  # (n, V), L2

    def __len__(self) -> int:
        return len(self.reserve)

    def reply(self, messages: list[dict]) -> tuple[str, str, str]:
        """Chat messages -> (reply text, request id, mode analyse|generate|static|label).

        Raises UnknownQuestion for a prompt it does not recognise or a text it cannot label.
        """
        users = user_texts(messages)
        mode = prompts.prompt_kind(users[-1]) if users else None
        rid = "evokd-" + hashlib.sha256((users[0] if users else "").encode()).hexdigest()[:12]
        if mode == "analyse":
            return self._analyse(*prompts.shown_examples(users[-1])), rid, mode
        if mode == "generate":
            right, wrong = prompts.shown_examples(users[0])
            n_hard, n_easy = prompts.requested_counts(users[-1])
            return self._generate(right, wrong, n_hard, n_easy, rid), rid, mode
        if mode == "static":
            n, _ = prompts.requested_counts(users[-1])
            texts = self._near(prompts.static_examples(users[-1]), n, rid)
            return "\n".join(f"{i}. {t}" for i, t in enumerate(texts, 1)), rid, mode
        if mode == "label":
            return self._label(prompts.label_inputs(users[-1])), rid, mode
        raise UnknownQuestion("EvoKD oracle teacher: not an analyse, generate or label prompt: "
                              f"'{(users[-1] if users else '')[:80]}'")

    # ------------------------------------------------------------------ the four answers
    def _analyse(self, right: list[tuple], wrong: list[tuple]) -> str:
        total = len(right) + len(wrong)
        head = f"The student got {len(wrong)} of the {total} inputs shown wrong."
        if not wrong:
            return head + " No error pattern to report."
        if self.kind == "ner":
            missed = Counter(t for _, gold, _ in wrong for t in prompts.types_of_answer(gold))
            empty = sum(prompt == prompts.NO_ENTITIES for _, _, prompt in wrong)
            types = ", ".join(f"{t} ({n})" for t, n in missed.most_common()) or "none"
            return (f"{head} Entity types in the inputs it got wrong: {types}. "
                    f"It found no entity at all in {empty} of them.")
        pairs = Counter(f"{gold} -> {pred}" for _, gold, pred in wrong)
        conf = "; ".join(f"{p}: {n}" for p, n in pairs.most_common())
        return f"{head} Confusions (correct -> student): {conf}."

    def _generate(self, right: list[tuple], wrong: list[tuple], n_hard: int, n_easy: int,
                  rid: str) -> str:
        hard = self._near([w[:2] for w in wrong], n_hard, rid + "h")
        easy = self._near(right, n_easy, rid + "e")
        lines = ["HARD"] + [f"{i}. {t}" for i, t in enumerate(hard, 1)]
        lines += ["EASY"] + [f"{i}. {t}" for i, t in enumerate(easy, 1)]
        return "\n".join(lines)

    def _label(self, texts: list[str]) -> str:
        lines = []
        for i, text in enumerate(texts, 1):
            gold = self._gold.get(text_key(text))
            if gold is None:
                raise UnknownQuestion(f"EvoKD oracle teacher: unknown text '{text[:80]}'")
            lines.append(f"{i}. {gold}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ retrieval
    def _compatible(self, answer: str) -> np.ndarray:
        """(n_reserve,) bool: reserve texts with the anchor's label (NER: sharing one of its
        entity types, or entity-free when it had none)."""
        if self.kind == "ner":
            want = prompts.types_of_answer(answer)
            return np.array([bool(t & want) if want else not t for t in self._types])
        return np.array([e.label == answer.strip() for e in self.reserve])

    def _near(self, anchors: list[tuple], n: int, rid: str) -> list[str]:
        """Up to n unused reserve texts: round robin over anchors (text, answer), each time
        the most similar compatible unused one; random unused ones when anchors run dry."""
        out: list[str] = []
        shown = {text_key(a[0]) for a in anchors}
        if anchors and n:
            sims = (self._tfidf.transform([a[0] for a in anchors]) @ self._matrix.T).toarray()
            ranked = [[j for j in np.argsort(-sims[i], kind="stable") if ok[j]]
                      for i, ok in enumerate(self._compatible(a[1]) for a in anchors)]
            cursor = [0] * len(anchors)
            while len(out) < n and any(c < len(r) for c, r in zip(cursor, ranked, strict=True)):
                for i, order in enumerate(ranked):
                    while cursor[i] < len(order) and len(out) < n:
                        key = text_key(self.reserve[order[cursor[i]]].text)
                        cursor[i] += 1
                        if key not in self.given and key not in shown:
                            self.given.add(key)
                            out.append(self.reserve[order[cursor[i] - 1]].text)
                            break
        return out + self._random(n - len(out), shown, rid)

    def _random(self, n: int, shown: set[str], rid: str) -> list[str]:
        rng = random.Random(f"{self.seed}:{rid}")
        order = list(range(len(self.reserve)))
        rng.shuffle(order)
        out = []
        for j in order:
            if len(out) >= n:
                break
            key = text_key(self.reserve[j].text)
            if key not in self.given and key not in shown:
                self.given.add(key)
                out.append(self.reserve[j].text)
        return out
